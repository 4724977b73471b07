"""Tests for sphere_mesh's refinement: the inverse map, edge bisection, budgets, intersection rounds."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.meshing import BoundaryMesh, count_self_intersections, sphere_mesh, validity

from meshing_stand_ins import BALL, anisotropic_matrix, assert_valid, shear


@pytest.mark.parametrize("radius", [0.3, 1.0, 7.5])
def test_identity_gives_the_sphere(radius):
    bm = sphere_mesh(lambda z: z.copy(), radius)
    assert isinstance(bm, BoundaryMesh) and bm.radius == radius
    np.testing.assert_allclose(np.linalg.norm(bm.mesh.vertices, axis=1), radius, rtol=0, atol=1e-12 * radius)
    np.testing.assert_array_equal(bm.mesh.vertices, bm.latent)
    assert bm.info["max_edge"] <= bm.info["tolerance"] and not bm.info["hit_face_budget"]
    report = assert_valid(bm.mesh)
    assert abs(report["volume"] / (BALL * radius**3) - 1) < 0.01


def test_unrefined_mesh_is_the_icosphere_and_volume_converges():
    deficits = []
    for level in range(1, 6):
        bm = sphere_mesh(lambda z: z.copy(), 2.0, subdivisions=level, tolerance=np.inf, check_intersections=False)
        reference = trimesh.creation.icosphere(subdivisions=level, radius=2.0)
        assert len(bm.mesh.faces) == len(reference.faces) and bm.info["n_refinement_passes"] == 0
        assert bm.mesh.volume == pytest.approx(reference.volume, rel=1e-12)
        deficits.append(1 - bm.mesh.volume / (BALL * 8.0))
    assert all(d > 0 for d in deficits)
    # The inscribed polyhedron's deficit falls about fourfold per level (second-order convergence).
    ratios = np.array(deficits[:-1]) / np.array(deficits[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5))
    assert deficits[-1] < 1e-3


@pytest.mark.parametrize("det_sign", [1.0, -1.0])
def test_linear_map_scales_volume_by_determinant(det_sign):
    matrix = anisotropic_matrix(det_sign)
    bm = sphere_mesh(lambda z: z @ matrix.T, 1.3)
    np.testing.assert_allclose(np.linalg.norm(bm.latent, axis=1), 1.3, rtol=0, atol=1e-12)
    latent_volume = abs(trimesh.Trimesh(bm.latent, bm.mesh.faces, process=False).volume)
    determinant = abs(np.linalg.det(matrix))
    report = assert_valid(bm.mesh)
    assert report["volume"] == pytest.approx(determinant * latent_volume, rel=1e-10)
    assert report["volume"] / (determinant * BALL * 1.3**3) == pytest.approx(1.0, abs=0.01)
    assert bm.info["flipped"] == (det_sign < 0)
    assert bm.info["max_edge"] <= bm.info["tolerance"]


def test_refinement_follows_the_stretch():
    """Long mapped edges are split: the refined mesh is finer along the stretched axis."""
    matrix = np.diag([4.0, 1.0, 1.0])
    bm = sphere_mesh(lambda z: z @ matrix.T, 1.0, subdivisions=2, tolerance=0.2)
    edges = bm.mesh.edges_unique
    latent_vectors = np.abs(bm.latent[edges[:, 0]] - bm.latent[edges[:, 1]])
    assert bm.info["max_edge"] <= 0.2 and bm.info["n_refinement_passes"] > 0
    # Latent edges end up shorter in x (stretched 4x) than in y and z.
    assert latent_vectors[:, 0].max() < 0.6 * latent_vectors[:, 1:].max()
    assert_valid(bm.mesh)


def test_nonlinear_volume_preserving_map():
    bm = sphere_mesh(shear, 1.0)
    report = assert_valid(bm.mesh)
    assert report["volume"] / BALL == pytest.approx(1.0, abs=0.01)
    assert bm.info["max_edge"] <= bm.info["tolerance"]
    np.testing.assert_allclose(bm.mesh.vertices, shear(bm.latent), atol=1e-12)


def test_face_budget_is_respected_and_mesh_stays_closed():
    bm = sphere_mesh(shear, 1.0, subdivisions=2, tolerance=0.01, max_faces=3000)
    assert bm.info["hit_face_budget"]
    assert len(bm.mesh.faces) <= 3000
    assert bm.info["max_edge"] > 0.01
    assert_valid(bm.mesh)


def test_budget_below_the_start_keeps_the_icosphere():
    bm = sphere_mesh(shear, 1.0, subdivisions=1, tolerance=0.01, max_faces=10)
    assert bm.info["hit_face_budget"] and len(bm.mesh.faces) == 80


def roll(z):
    """Rolls a flattened ball up into a tight spiral: injective, but coarse chords cut between the layers."""
    angle = 4.0 * (z[:, 0] + 1.0)
    rho = 1.0 + 0.04 * angle + 0.05 * z[:, 2]
    return np.column_stack([rho * np.cos(angle), rho * np.sin(angle), z[:, 1]])


def test_intersection_rounds_repair_discretisation_crossings():
    coarse = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=np.inf, check_intersections=False)
    assert count_self_intersections(coarse.mesh) > 0
    repaired = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=np.inf)
    assert repaired.info["n_intersection_rounds"] >= 1 and repaired.info["self_intersections"] == 0
    assert_valid(repaired.mesh)


def test_short_chords_over_long_arcs_are_split():
    """Latent edges across the rolled-up direction have short chords but their arcs leave the chord far behind."""
    bm = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=0.15, check_intersections=False)
    assert bm.info["n_refinement_passes"] < 20 and not bm.info["hit_face_budget"]
    edges = bm.mesh.edges_unique
    midpoints = bm.latent[edges[:, 0]] + bm.latent[edges[:, 1]]
    midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
    arcs = np.linalg.norm(roll(midpoints) - bm.mesh.vertices[edges[:, 0]], axis=1)
    arcs += np.linalg.norm(roll(midpoints) - bm.mesh.vertices[edges[:, 1]], axis=1)
    assert arcs.max() <= 0.15 and bm.info["max_edge"] <= 0.15


def test_folding_map_reports_its_self_intersections():
    """A map that bends a stretched ball round more than a full turn makes its ends overlap."""

    def bend(z):
        angle, rho = 3.5 * z[:, 0], 2.0 + 0.5 * z[:, 1]
        return np.column_stack([rho * np.cos(angle), rho * np.sin(angle), 0.5 * z[:, 2]])

    bm = sphere_mesh(bend, 1.0, subdivisions=2, max_faces=4000)
    assert bm.info["self_intersections"] > 0
    assert bm.info["n_intersection_rounds"] >= 1 or bm.info["hit_face_budget"]
    assert len(bm.mesh.faces) <= 4000
    report = validity(bm.mesh)
    assert report["watertight"] and report["winding_consistent"]
    assert report["self_intersections"] == bm.info["self_intersections"]


@pytest.mark.parametrize(
    "kwargs",
    [{"radius": 0.0}, {"radius": -1.0}, {"radius": np.nan}, {"radius": np.inf}, {"radius": "one"},
     {"radius": 1.0, "subdivisions": -1}, {"radius": 1.0, "subdivisions": 1.5},
     {"radius": 1.0, "tolerance": 0.0}, {"radius": 1.0, "max_faces": 0}, {"radius": 1.0, "max_passes": -1},
     {"radius": 1.0, "max_intersection_rounds": 0.5}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(PcflowError):
        sphere_mesh(lambda z: z, **kwargs)


@pytest.mark.parametrize("inverse", [lambda z: z[:, :2], lambda z: np.full_like(z, np.nan)])
def test_bad_inverse_output_raises(inverse):
    with pytest.raises(PcflowError, match="inverse returned"):
        sphere_mesh(inverse, 1.0, subdivisions=1)


def test_pass_and_round_budgets_stop_the_refinement():
    """With no passes allowed the mesh stays the icosphere; with no rounds the crossings stay."""
    still = sphere_mesh(shear, 1.0, subdivisions=1, tolerance=0.01, max_passes=0)
    assert still.info["n_refinement_passes"] == 0 and len(still.mesh.faces) == 80
    one = sphere_mesh(shear, 1.0, subdivisions=1, tolerance=0.01, max_passes=1)
    assert one.info["n_refinement_passes"] == 1 and len(one.mesh.faces) > 80 and one.info["max_edge"] > 0.01
    kept = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=np.inf, max_intersection_rounds=0)
    assert kept.info["n_intersection_rounds"] == 0 and kept.info["self_intersections"] > 0
