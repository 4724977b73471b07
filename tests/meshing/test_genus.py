"""Tests for pcflow.meshing.genus: the genus a cloud's surface needs, the area a mesh spans, the warning."""

import math

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.meshing import estimate_genus, needs_higher_genus, spanned_area, topology


def _sample(mesh, n, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    points, _ = trimesh.sample.sample_surface(mesh, n, seed=rng)
    return points + rng.normal(scale=noise, size=points.shape)


def _tori(centres, major, minor):
    """A watertight mesh of the union of tori in the xy-plane (marching cubes of their distance field)."""
    from skimage.measure import marching_cubes

    axis = np.linspace(-1.6, 1.6, 129) + 0.0037  # no grid value exactly 0
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.min([np.hypot(np.hypot(x - cx, y) - major, z) - minor for cx in centres], axis=0)
    vertices, faces, _, _ = marching_cubes(field, 0.0, spacing=(axis[1] - axis[0],) * 3)
    mesh = trimesh.Trimesh(vertices + axis[0], faces[:, ::-1])
    assert mesh.is_watertight
    return mesh


@pytest.mark.parametrize(("mesh", "genus"), [
    (trimesh.creation.icosphere(subdivisions=4), 0),
    (trimesh.creation.box(extents=(1.0, 0.6, 0.4)), 0),
    (trimesh.creation.torus(major_radius=1.0, minor_radius=0.35), 1),
    (_tori((-0.66, 0.66), 0.6, 0.22), 2),
])
def test_closed_surfaces_get_their_euler_genus(mesh, genus):
    assert mesh.euler_number == 2 - 2 * genus  # the reference
    for seed in (0, 1):
        estimate = estimate_genus(_sample(mesh, 12_000, seed, noise=0.002 * np.linalg.norm(mesh.extents)))
        assert estimate.genus == genus and estimate.encloses
        assert estimate.per_scale == (genus,) * len(estimate.per_scale)


def test_background_outliers_do_not_add_handles():
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    rng = np.random.default_rng(3)
    surface = _sample(torus, 10_000, seed=3, noise=0.005)
    outliers = rng.uniform(torus.bounds[0] * 1.5, torus.bounds[1] * 1.5, size=(500, 3))
    assert estimate_genus(np.vstack([surface, outliers])).genus == 1


def test_an_open_sheet_encloses_nothing():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    points = _sample(sphere, 8000)
    cap = points[points[:, 2] > 0.2]  # one side of an object, as one viewpoint sees it
    plane = np.c_[np.random.default_rng(0).uniform(-1, 1, size=(6000, 2)), np.zeros(6000)]
    for sheet in (cap, plane):
        estimate = estimate_genus(sheet)
        assert not estimate.encloses and estimate.genus == 0


def test_bad_points_are_one_line_errors():
    for bad in (np.zeros((5, 3)), np.zeros((100, 2)), np.full((100, 3), np.nan)):
        with pytest.raises(PcflowError, match="at least 10 finite 3-D points"):
            estimate_genus(bad)


def test_spanned_area_of_a_half_covered_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    north = sphere.vertices[sphere.vertices[:, 2] > 0]
    assert spanned_area(sphere, sphere.vertices, 0.05) == 0.0
    assert spanned_area(sphere, north, 0.05) == pytest.approx(sphere.area / 2, rel=0.08)


def test_topology_of_a_sphere_mesh_around_torus_points():
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    points = _sample(torus, 30_000)  # more than TOPOLOGY_POINTS: a seeded subset is used
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.35)
    sphere.vertices[:, 2] *= 0.35 / 1.35  # a genus-0 lid over the torus: the hole is spanned
    facts = topology(points, sphere, seed=0)
    assert facts["genus_estimate"] == 1 and facts == topology(points, sphere, seed=0)
    assert 0.0 < facts["spanned_share"] < 1.0
    assert math.isclose(facts["spanned_area"], facts["spanned_share"] * sphere.area)


def test_the_warning_is_given_only_for_a_surface_of_too_low_a_genus():
    report = {"mode": "surface", "genus_estimate": 1, "spanned_area": 0.0967, "spanned_share": 0.09,
              "mesh": {"genus": 0}}
    warning = needs_higher_genus(report)
    assert "1 handle (genus 1)" in warning and "mesh has genus 0" in warning and "9%" in warning
    assert "\n" not in warning
    assert "2 handles (genus 2)" in needs_higher_genus({**report, "genus_estimate": 2})
    for quiet in ({"mode": "envelope"}, {"genus_estimate": 0}, {"genus_estimate": None}, {"mesh": {"genus": 1}}):
        assert needs_higher_genus({**report, **quiet}) is None
