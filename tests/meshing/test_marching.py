"""Tests for pcflow.meshing.marching: marching cubes against the boundary mesh."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.meshing import boundary_mesh, marching_cubes_mesh, validity

from meshing_stand_ins import StandInModel


@pytest.mark.parametrize(
    "model",
    [StandInModel(matrix=np.diag([1.0, 0.6, 0.4]), shift=(0.5, 0.0, -1.0)), StandInModel("shear", scale=2.0)],
    ids=["ellipsoid", "shear"],
)
def test_marching_cubes_agrees_with_the_boundary_mesh(model):
    resolution, padding = 40, 0.1
    cubes = marching_cubes_mesh(model, resolution=resolution, padding=padding)
    report = validity(cubes, check_intersections=False)
    assert report["watertight"] and report["positive_volume"] and report["n_components"] == 1
    assert report["volume"] == pytest.approx(model.volume_, rel=0.03)

    reference = boundary_mesh(model).mesh
    spacing = np.ptp(reference.bounds, axis=0).max() * (1 + 2 * padding) / (resolution - 1)
    to_reference = np.abs(trimesh.proximity.closest_point(reference, cubes.vertices)[1]).max()
    to_cubes = np.abs(trimesh.proximity.closest_point(cubes, reference.vertices)[1]).max()
    assert max(to_reference, to_cubes) < 0.25 * spacing


def test_marching_cubes_with_coverage_is_smaller():
    model = StandInModel(matrix=np.diag([1.0, 0.6, 0.4]))
    cubes = marching_cubes_mesh(model, coverage=0.5, resolution=32)
    assert cubes.volume == pytest.approx(0.5 * model.volume_, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"resolution": 4}, {"resolution": 32.0}, {"padding": -0.1}, {"padding": "wide"}, {"coverage": 2.0}]
)
def test_marching_cubes_rejects_bad_arguments(kwargs):
    with pytest.raises(PcflowError):
        marching_cubes_mesh(StandInModel(), **kwargs)
