"""Tests for pcflow.meshing.snap: moving a boundary mesh onto points without losing its guarantees."""

import inspect
import re

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.meshing import (SNAP_OFFSET_FRACTION, BoundaryMesh, count_self_intersections, snap_to_points,
                            sphere_mesh, validity)

from meshing_stand_ins import unit_directions

DEFAULT_ROUNDS = inspect.signature(snap_to_points).parameters["iterations"].default
DEFAULT_REFINE_ROUNDS = inspect.signature(snap_to_points).parameters["refine_iterations"].default


def test_snap_moves_a_sphere_onto_the_noisy_sphere_of_its_points():
    rng = np.random.default_rng(1)
    points = 1.06 * unit_directions(30_000) + rng.normal(scale=0.005, size=(30_000, 3))
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    snapped = snap_to_points(unit, points)
    radii = np.linalg.norm(snapped.mesh.vertices, axis=1)
    assert abs(radii.mean() - 1.06) < 0.002 and np.abs(radii - 1.06).max() < 0.01
    np.testing.assert_array_equal(snapped.mesh.faces, unit.mesh.faces)
    np.testing.assert_array_equal(snapped.latent, unit.latent)
    np.testing.assert_array_equal(snapped.uv, unit.uv)
    checks = validity(snapped.mesh)
    assert checks["watertight"] and checks["genus"] == 0 and checks["self_intersections"] == 0
    info = snapped.info["snap"]
    assert info["rounds"] == DEFAULT_ROUNDS and info["refine_rounds"] == DEFAULT_REFINE_ROUNDS  # no round dropped
    assert info["n_points"] == 30_000
    assert info["max_offset"] == pytest.approx(SNAP_OFFSET_FRACTION * np.linalg.norm(np.ptp(unit.mesh.vertices,
                                                                                                  axis=0)))
    assert info["mean_move"] == pytest.approx(np.linalg.norm(snapped.mesh.vertices - unit.mesh.vertices, axis=1).mean())
    np.testing.assert_array_equal(unit.mesh.vertices, unit.latent)  # the input is not changed


def test_snap_reach_does_not_shrink_with_the_edge_length():
    """Points 0.06 off a unit sphere meshed with edges under 0.05: the default reach is 4% of the diagonal."""
    points = 1.06 * unit_directions(30_000)
    fine = sphere_mesh(lambda z: z, 1.0, tolerance=0.05)
    assert fine.info["tolerance"] < 0.06
    radii = np.linalg.norm(snap_to_points(fine, points).mesh.vertices, axis=1)
    assert abs(radii.mean() - 1.06) < 0.002


@pytest.mark.parametrize("half", [0.03, 0.015])
def test_snap_keeps_a_thin_part_thick(half):
    """Points on both sides of a slab thinner than max_offset: each side keeps to its own points."""
    rng = np.random.default_rng(2)
    points = unit_directions(40_000) * [1.0, 1.0, half] + rng.normal(scale=0.004, size=(40_000, 3))
    start = sphere_mesh(lambda z: z * [1.0, 1.0, half + 0.01], 1.0, tolerance=0.08)
    snapped = snap_to_points(start, points, max_offset=0.08)  # the other side is within reach
    vertices = snapped.mesh.vertices
    centre = np.hypot(vertices[:, 0], vertices[:, 1]) < 0.5
    assert abs(vertices[centre & (vertices[:, 2] > 0), 2].mean() - half) < 0.003
    assert abs(vertices[centre & (vertices[:, 2] < 0), 2].mean() + half) < 0.003


def test_snap_onto_sparse_noisy_points_keeps_a_fine_mesh_smooth():
    """Ten times more vertices than points, noise 0.01: the offsets pool enough rings and are shrunk by their
    standard error, so the mesh stays within a fraction of the noise of the surface the points were drawn from."""
    rng = np.random.default_rng(5)
    points = unit_directions(1500, seed=4) + rng.normal(scale=0.01, size=(1500, 3))
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.05)
    assert len(unit.mesh.vertices) > 10 * len(points)
    radii = np.linalg.norm(snap_to_points(unit, points).mesh.vertices, axis=1)
    assert np.abs(radii - 1.0).mean() < 0.003


def test_snap_leaves_vertices_without_points_in_place():
    directions = unit_directions(20_000)
    points = 1.05 * directions[directions[:, 2] > 0.3]
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    moved = snap_to_points(unit, points).mesh.vertices
    far = unit.mesh.vertices[:, 2] < -0.3
    np.testing.assert_array_equal(moved[far], unit.mesh.vertices[far])
    assert np.linalg.norm(moved[unit.mesh.vertices[:, 2] > 0.6], axis=1).min() > 1.04


def test_snap_backs_off_where_moves_would_fold_or_cross(monkeypatch):
    import pcflow.meshing.snap as snap_module

    rng = np.random.default_rng(3)
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    wild = rng.choice([-0.4, 0.4], size=len(unit.mesh.vertices))  # neighbours pulled far apart: folds and crossings
    monkeypatch.setattr(snap_module, "_pooled_offsets", lambda *args: wild)
    snapped = snap_to_points(unit, unit_directions(1000), iterations=1, refine_iterations=0)
    info = snapped.info["snap"]
    assert info["rounds"] == 1 and info["n_backoffs"] > 0 and info["max_move"] > 0
    assert count_self_intersections(snapped.mesh) == 0
    before = unit.mesh.face_normals
    after = trimesh.Trimesh(snapped.mesh.vertices, snapped.mesh.faces, process=False).face_normals
    assert np.einsum("ij,ij->i", before, after).min() >= 0.5 - 1e-9  # no face turned by more than 60 degrees


def test_crossing_halvings_recheck_only_the_faces_they_moved(monkeypatch):
    """The halvings around crossings test only the pairs with a face the last halving moved: the same vertices and
    halvings as testing every pair each time."""
    import pcflow.meshing.snap as snap_module
    from pcflow.meshing.intersections import _intersecting_pairs
    from pcflow.meshing.primitives import _adjacency, _ring_mean

    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    start, faces = np.asarray(unit.mesh.vertices), np.asarray(unit.mesh.faces, dtype=np.int64)
    cap = np.clip((start[:, 2] - 0.6) / 0.2, 0.0, 1.0)  # the cap above z = 0.8 pushed down through the south pole
    displacement = -1.9 * cap[:, None] * np.array([0.0, 0.0, 1.0])
    assert len(_intersecting_pairs(start + displacement, faces)) > 0
    ring_mean = _ring_mean(_adjacency(faces, len(start)))
    settings = dict(min_cos=0.0, crossings=True, max_backoffs=12)
    moved, halvings = snap_module._backed_off(start, displacement, faces, ring_mean, **settings)
    monkeypatch.setattr(snap_module, "_intersecting_pairs", lambda vertices, faces, among=None:
                        _intersecting_pairs(vertices, faces))
    every, every_halvings = snap_module._backed_off(start, displacement, faces, ring_mean, **settings)
    assert moved is not None and halvings == every_halvings > 1
    np.testing.assert_array_equal(moved, every)
    assert count_self_intersections(trimesh.Trimesh(moved, faces, process=False)) == 0


def test_snap_returns_a_self_intersecting_mesh_unmoved():
    unit = sphere_mesh(lambda z: z, 1.0, subdivisions=2, tolerance=np.inf)
    crossed = BoundaryMesh(mesh=unit.mesh, latent=unit.latent, uv=unit.uv, radius=1.0,
                           info={**unit.info, "self_intersections": 2})
    snapped = snap_to_points(crossed, 1.1 * unit_directions(2000))
    np.testing.assert_array_equal(snapped.mesh.vertices, unit.mesh.vertices)
    assert snapped.info["snap"]["rounds"] == 0 and snapped.info["self_intersections"] == 2
    unchecked = BoundaryMesh(mesh=unit.mesh, latent=unit.latent, uv=unit.uv, radius=1.0,
                             info={**unit.info, "self_intersections": None})
    assert snap_to_points(unchecked, 1.1 * unit_directions(2000)).info["self_intersections"] == 0  # counted first


@pytest.mark.parametrize(
    "points, kwargs, message",
    [
        (np.zeros((5, 2)), {}, "expected (N, 3)"),
        (np.zeros((0, 3)), {}, "expected (N, 3)"),
        (np.full((5, 3), np.nan), {}, "non-finite"),
        (np.zeros((5, 3)), {"iterations": -1}, "iterations=-1"),
        (np.zeros((5, 3)), {"refine_iterations": 1.5}, "refine_iterations=1.5"),
        (np.zeros((5, 3)), {"max_offset": 0.0}, "max_offset"),
        (np.zeros((5, 3)), {"min_cos": 1.0}, "min_cos=1.0"),
        (np.zeros((5, 3)), {"max_backoffs": -1}, "max_backoffs=-1"),
        (np.zeros((5, 3)), {"pool_points": 0}, "pool_points=0"),
        (np.zeros((5, 3)), {"max_rings": 1.5}, "max_rings=1.5"),
        (np.zeros((5, 3)), {"significance": -0.5}, "significance=-0.5"),
    ],
)
def test_snap_rejects_bad_arguments(points, kwargs, message):
    unit = sphere_mesh(lambda z: z, 1.0, subdivisions=1, tolerance=np.inf)
    with pytest.raises(PcflowError, match=re.escape(message)):
        snap_to_points(unit, points, **kwargs)


@pytest.mark.parametrize("iterations", [1, 2, 5])
def test_snap_keeps_every_round_asked_for_and_more_rounds_close_in(iterations):
    points = 1.06 * unit_directions(30_000)
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    snapped = snap_to_points(unit, points, iterations=iterations, refine_iterations=0)
    assert snapped.info["snap"]["rounds"] == iterations
    gap = np.abs(np.linalg.norm(snapped.mesh.vertices, axis=1) - 1.06).mean()
    fewer = snap_to_points(unit, points, iterations=iterations - 1, refine_iterations=0).mesh.vertices
    assert gap < np.abs(np.linalg.norm(fewer, axis=1) - 1.06).mean()


def test_snap_without_halvings_drops_a_folding_round(monkeypatch):
    import pcflow.meshing.snap as snap_module

    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    wild = np.random.default_rng(3).choice([-0.4, 0.4], size=len(unit.mesh.vertices))
    monkeypatch.setattr(snap_module, "_pooled_offsets", lambda *args: wild)
    snapped = snap_to_points(unit, unit_directions(1000), iterations=1, refine_iterations=0, max_backoffs=0)
    assert snapped.info["snap"]["rounds"] == 0 and snapped.info["snap"]["n_backoffs"] == 1
    np.testing.assert_array_equal(snapped.mesh.vertices, unit.mesh.vertices)


def test_snap_significance_shrinks_the_moves_toward_noise():
    rng = np.random.default_rng(6)
    points = unit_directions(1500, seed=7) + rng.normal(scale=0.02, size=(1500, 3))
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    moves = [snap_to_points(unit, points, significance=s).info["snap"]["mean_move"] for s in (0.0, 0.5, 2.0)]
    assert moves[0] > moves[1] > moves[2]


def test_snap_refine_rounds_follow_points_the_starting_normals_miss():
    """A sphere mesh off-centre in a shifted sphere of points: the starting normals point away from the points'
    normals on the near side, and the refine rounds, along the moved mesh's normals, close in further."""
    points = 1.05 * unit_directions(30_000) + [0.03, 0.0, 0.0]
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    gaps = []
    for refine in (0, 4):
        snapped = snap_to_points(unit, points, refine_iterations=refine)
        assert snapped.info["snap"]["refine_rounds"] == refine
        assert validity(snapped.mesh)["self_intersections"] == 0
        gaps.append(np.abs(np.linalg.norm(snapped.mesh.vertices - [0.03, 0.0, 0.0], axis=1) - 1.05).mean())
    assert gaps[1] < gaps[0]
