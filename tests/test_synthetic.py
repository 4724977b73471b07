"""Tests of pcflow.synthetic: the docs/evaluation.md synthetic-scan protocol."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.synthetic import (BUILTIN_SHAPES, HELD_OUT_SHAPES, builtin_shape, normalize_mesh, points_inside,
                              synthetic_scan, winding_number)


@pytest.mark.parametrize("name", BUILTIN_SHAPES)
def test_builtin_shapes_are_closed_genus0_and_normalised(name):
    mesh = builtin_shape(name)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert mesh.euler_number == 2
    assert np.linalg.norm(mesh.extents) == pytest.approx(1.0)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("name,euler", list(zip(HELD_OUT_SHAPES, (2, 2, 0, 2, 2, 2), strict=True)))
def test_held_out_shapes_are_closed_and_normalised(name, euler):
    from pcflow.meshing import count_self_intersections

    mesh = builtin_shape(name)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert count_self_intersections(mesh) == 0
    assert mesh.euler_number == euler  # genus (2 - euler) / 2: the torus has one hole
    assert np.linalg.norm(mesh.extents) == pytest.approx(1.0)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-12)


def test_unknown_shape_raises():
    with pytest.raises(PcflowError, match="'cube'"):
        builtin_shape("cube")


def test_normalize_mesh_merges_seams_and_keeps_input():
    box = trimesh.creation.box(extents=(2.0, 3.0, 6.0))
    box.apply_translation([10.0, -4.0, 1.0])
    split = trimesh.Trimesh(box.triangles.reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False)
    assert not split.is_watertight  # every face has its own vertices, as after a UV-seam split
    before = split.vertices.copy()
    out = normalize_mesh(split)
    assert out.is_watertight and len(out.vertices) == 8
    np.testing.assert_allclose(out.extents, np.array([2.0, 3.0, 6.0]) / 7.0)
    np.testing.assert_allclose(out.bounds.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(split.vertices, before)


def test_scan_counts_labels_and_frame():
    box = trimesh.creation.box(extents=(2.0, 1.0, 4.0)).apply_translation([3.0, 3.0, 3.0])
    scan = synthetic_scan(box, n_points=4001, noise=0.0, outlier_ratio=0.1, seed=2)
    assert scan.points.shape == (4001, 3) and scan.points.dtype == np.float64
    assert scan.labels.dtype == np.int8 and set(np.unique(scan.labels)) == {0, 1}
    assert scan.labels.sum() == round(0.1 * 4001)
    assert np.linalg.norm(scan.mesh.extents) == pytest.approx(1.0)
    # labels are interleaved, not a block at the end
    assert abs(np.flatnonzero(scan.labels).mean() - 2000) < 300

    inliers = scan.points[scan.labels == 0]
    _, distance, _ = trimesh.proximity.closest_point(scan.mesh, inliers[:500])
    assert distance.max() < 1e-9  # noise 0: exactly on the surface

    outliers = scan.points[scan.labels == 1]
    half = 1.5 * scan.mesh.extents / 2
    assert np.all(np.abs(outliers) <= half) and np.all(np.abs(outliers).max(axis=0) > 0.9 * half)
    inside = np.all(np.abs(outliers) < scan.mesh.extents / 2, axis=1)
    assert scan.n_outliers_inside == inside.sum()  # a box: inside is a coordinate test
    # uniform in the enlarged box: the box holds 1 / 1.5^3 of it
    assert inside.mean() == pytest.approx(1 / 1.5 ** 3, abs=0.06)


def test_noise_level():
    scan = synthetic_scan(builtin_shape("sphere"), n_points=3000, noise=0.01, outlier_ratio=0.0, seed=1)
    assert scan.labels.sum() == 0 and scan.n_outliers_inside == 0
    radius = np.linalg.norm(scan.mesh.vertices, axis=1).mean()
    radial = np.linalg.norm(scan.points, axis=1) - radius
    assert radial.std() == pytest.approx(0.01, rel=0.1)  # radial component of isotropic noise
    assert abs(radial.mean()) < 0.002


def test_scan_is_seeded():
    mesh = builtin_shape("capsule")
    a = synthetic_scan(mesh, n_points=500, seed=3)
    b = synthetic_scan(mesh, n_points=500, seed=3)
    c = synthetic_scan(mesh, n_points=500, seed=4)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.points, c.points)


@pytest.mark.parametrize("name", BUILTIN_SHAPES + HELD_OUT_SHAPES)
def test_inside_test_agrees_with_winding_number(name):
    mesh = builtin_shape(name)
    points = np.random.default_rng(0).uniform(-0.6, 0.6, size=(400, 3))
    w = winding_number(mesh, points)
    assert np.all(np.minimum(np.abs(w), np.abs(w - 1)) < 1e-6)  # closed mesh: 0 or 1
    np.testing.assert_array_equal(points_inside(mesh, points), w > 0.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_points": 0}, "n_points"),
    ({"n_points": 10.5}, "n_points"),
    ({"noise": -1.0}, "noise"),
    ({"outlier_ratio": 1.0}, "outlier_ratio"),
    ({"outlier_ratio": -0.1}, "outlier_ratio"),
    ({"view": (0.0, 0.0, 0.0)}, "view"),
    ({"view": (1.0, 0.0)}, "view"),
])
def test_bad_scan_arguments_raise(kwargs, match):
    with pytest.raises(PcflowError, match=match):
        synthetic_scan(builtin_shape("sphere"), **kwargs)


def test_open_mesh_raises():
    sphere = builtin_shape("sphere")
    open_mesh = trimesh.Trimesh(sphere.vertices, sphere.faces[1:])
    with pytest.raises(PcflowError, match="watertight"):
        synthetic_scan(open_mesh, n_points=100)


def test_single_view_scan_keeps_the_cap_the_camera_sees():
    sphere = builtin_shape("sphere")  # normalised: radius r with diagonal 1
    r = float(np.linalg.norm(sphere.vertices, axis=1).max())
    direction = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    scan = synthetic_scan(sphere, n_points=20_000, noise=0.0, outlier_ratio=0.05, view=direction, seed=0)
    inliers = scan.points[scan.labels == 0]
    # from distance d the camera sees the cap p . u >= r^2 / d, a share (1 - r / d) / 2 of the sphere's area
    share = (1.0 - r / 2.0) / 2.0
    assert len(scan.points) == pytest.approx(20_000 * share, rel=0.03)
    assert scan.labels.sum() == round(0.05 * len(scan.points))
    assert (inliers @ direction).min() >= r * r / 2.0 - 0.015  # a tessellated sphere: a little slack
    whole = synthetic_scan(sphere, n_points=2000, seed=0)
    np.testing.assert_array_equal(whole.points, synthetic_scan(sphere, n_points=2000, seed=0, view=None).points)
