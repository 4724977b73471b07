"""Tests for pcflow.meshing.boundary: a model's boundary mesh at its own radius or a coverage."""

import numpy as np
import pytest

from pcflow.errors import PcflowError
from pcflow.meshing import boundary_mesh

from meshing_stand_ins import StandInModel, assert_valid


def test_boundary_mesh_uses_model_radius_and_coverage():
    model = StandInModel("shear", scale=0.5, shift=(1.0, -2.0, 3.0), radius=2.0)
    full = boundary_mesh(model)
    assert full.radius == 2.0
    assert full.mesh.volume == pytest.approx(model.volume_, rel=0.01)
    np.testing.assert_allclose(model.decision_function(full.mesh.vertices), 0.0, atol=1e-9)
    half = boundary_mesh(model, coverage=0.5)
    assert half.radius == pytest.approx(model.radius_at(0.5))
    np.testing.assert_allclose(np.linalg.norm(half.latent, axis=1), half.radius, atol=1e-12)
    assert half.mesh.volume == pytest.approx(0.5 * model.volume_, rel=0.01)
    assert_valid(half.mesh)


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, -0.1, "half"])
def test_boundary_mesh_rejects_bad_coverage(coverage):
    with pytest.raises(PcflowError, match="coverage"):
        boundary_mesh(StandInModel(), coverage=coverage)


def test_boundary_mesh_needs_a_3d_model():
    model = StandInModel()
    model.n_features_in_ = 2
    with pytest.raises(PcflowError, match="n_features_in_"):
        boundary_mesh(model)
