"""Tests of pcflow.synthetic: the docs/evaluation.md synthetic-scan protocol."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.scene import OUTLIER, PLANE
from pcflow.sdf import HARD_SHAPE_DISTANCES, implicit_mesh
from pcflow.synthetic import (BUILTIN_SHAPES, HARD_SHAPES, HELD_OUT_SHAPES, MAX_SCENE_OBJECTS, SHAPE_GENUS,
                              builtin_shape, normalize_mesh, points_inside, synthetic_scan, synthetic_scene,
                              winding_number)


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


@pytest.fixture(scope="module")
def level_sets():
    """Each hard shape's marching-cubes mesh before normalisation, in its signed distance's coordinates."""
    return {name: implicit_mesh(*HARD_SHAPE_DISTANCES[name]) for name in HARD_SHAPES}


@pytest.mark.parametrize("name", HARD_SHAPES)
def test_hard_shapes_are_closed_with_their_genus(name, level_sets):
    from pcflow.meshing import count_self_intersections

    mesh = builtin_shape(name)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert count_self_intersections(mesh) == 0
    assert mesh.euler_number == 2 - 2 * SHAPE_GENUS.get(name, 0)
    assert np.linalg.norm(mesh.extents) == pytest.approx(1.0)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(mesh.vertices, normalize_mesh(level_sets[name]).vertices)


@pytest.mark.parametrize("name", HARD_SHAPES)
def test_hard_shapes_follow_their_signed_distance(name, level_sets):
    distance, lo, hi, resolution = HARD_SHAPE_DISTANCES[name]
    step = float(np.max(np.subtract(hi, lo))) / resolution
    mesh = level_sets[name]
    assert np.abs(distance(mesh.vertices)).max() < step  # on the zero level set, to within a cell
    points = np.random.default_rng(0).uniform(lo, hi, size=(4000, 3))
    d = distance(points)
    clear = np.abs(d) > step
    assert (clear & (d < 0)).sum() > 50  # the test reaches inside points as well as outside ones
    np.testing.assert_array_equal(points_inside(mesh, points[clear]), d[clear] < 0)


def test_implicit_mesh_of_a_ball():
    mesh = implicit_mesh(lambda p: np.linalg.norm(p, axis=1) - 0.5, (-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), 40)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.euler_number == 2
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 0.5, atol=0.5 / 40)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.5**3, rel=0.01)


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


# ------------------------------------------------------------------------------------------------------------------
# scenes


def scene_shapes(names=("sphere", "capsule", "rounded_box")):
    return [builtin_shape(name) for name in names]


def test_scene_labels_follow_the_scene_convention():
    scene = synthetic_scene(scene_shapes(), n_points=3000, wall=True, outlier_ratio=0.05, seed=1)
    assert scene.points.shape == (len(scene.labels), 3) and scene.labels.dtype == np.int32
    assert set(np.unique(scene.labels)) == {OUTLIER, 0, 1, 2, PLANE, PLANE + 1}
    assert np.count_nonzero(scene.labels == OUTLIER) == round(0.05 * len(scene.labels))
    assert len(scene.meshes) == 3 and len(scene.planes) == 2 and scene.camera is None
    outliers = scene.points[scene.labels == OUTLIER]
    assert scene.n_outliers_inside == np.count_nonzero(points_inside(trimesh.util.concatenate(scene.meshes),
                                                                     outliers))
    without_wall = synthetic_scene(scene_shapes(), n_points=3000, seed=1)
    assert set(np.unique(without_wall.labels)) == {OUTLIER, 0, 1, 2, PLANE} and len(without_wall.planes) == 1


def test_scene_objects_stand_apart_on_the_table_in_the_normalised_frame():
    size, gap = 0.2, 0.3
    scene = synthetic_scene(scene_shapes(("sphere", "capsule", "rounded_box", "cone", "torus")), n_points=6000,
                            size=size, gap=gap, wall=True, noise=0.0, outlier_ratio=0.0, seed=3)
    table, wall = scene.planes
    top, back = table.bounds[1, 2], wall.bounds[0, 1]
    points, labels = scene.points, scene.labels
    np.testing.assert_allclose(points[labels == PLANE][:, 2], top)  # noise 0: on the table top
    np.testing.assert_allclose(points[labels == PLANE + 1][:, 1], back)  # and on the wall's front
    # the box around the objects, the table top and the wall's front
    (x0, y0, _), (x1, _, _) = table.bounds
    corners = np.concatenate([m.bounds for m in scene.meshes] + [[[x0, y0, top], [x1, back, wall.bounds[1, 2]]]])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0) and np.allclose((lo + hi) / 2, 0.0, atol=1e-12)
    for k, mesh in enumerate(scene.meshes):
        assert mesh.is_watertight and np.linalg.norm(mesh.extents) == pytest.approx(size)
        assert mesh.bounds[0, 2] == pytest.approx(top, abs=1e-12)  # standing on the table, not in it
        assert np.all(mesh.bounds[0, :2] > table.bounds[0, :2]) and np.all(mesh.bounds[1, :2] < table.bounds[1, :2])
        assert mesh.bounds[1, 1] < back
        _, distance, _ = trimesh.proximity.closest_point(mesh, points[labels == k][:300])
        assert distance.max() < 1e-4 * size  # noise 0: on the surface (up to trimesh's closest point)
        for other in scene.meshes[k + 1:]:  # boxes apart by the gap in x or in y
            apart = np.maximum(other.bounds[0, :2] - mesh.bounds[1, :2], mesh.bounds[0, :2] - other.bounds[1, :2])
            assert apart.max() >= gap * size - 1e-12
    # far more than a point spacing between the points of two objects: a clustering can tell them apart
    from scipy.spatial import cKDTree

    for k in range(len(scene.meshes)):
        others = points[(labels >= 0) & (labels < PLANE) & (labels != k)]
        assert cKDTree(others).query(points[labels == k])[0].min() > 3 * scene.spacing


def test_scene_samples_by_area_and_drops_what_no_scanner_sees():
    scene = synthetic_scene(scene_shapes(("sphere", "rounded_box")), n_points=8000, noise=0.0, outlier_ratio=0.0,
                            seed=0)
    table = scene.planes[0]
    areas = np.array([m.area for m in scene.meshes] + [np.prod(table.extents[:2])])
    expected = 8000 * areas / areas.sum()
    counts = np.array([np.count_nonzero(scene.labels == k) for k in (0, 1, PLANE)])
    assert scene.spacing == pytest.approx(np.sqrt(areas.sum() / 8000))
    assert np.all(counts <= expected + 4 * np.sqrt(expected))
    # a sphere rests on a point: all of it is seen but the cap within 10 degrees of it, (1 - cos 10 deg) / 2
    hidden = (1 - np.cos(np.radians(10))) / 2
    assert counts[0] == pytest.approx(expected[0] * (1 - hidden), abs=4 * np.sqrt(expected[0]))
    # the box rests on its flat bottom, and hides the table under it: both are dropped
    box = scene.meshes[1]
    bottom = box.area_faces[box.face_normals[:, 2] < -0.99].sum() / box.area
    assert counts[1] < expected[1] * (1 - 0.5 * bottom)
    top = table.bounds[1, 2]
    low = scene.points[scene.labels == 1][:, 2] < top + 1e-3 * np.linalg.norm(box.extents)
    assert np.count_nonzero(low) < 0.1 * bottom * expected[1]  # only grazing rays escape between table and box
    table_points = scene.points[scene.labels == PLANE]
    centre = box.bounds.mean(axis=0)[:2]  # the middle of its footprint, where the gap under the box is below 1e-4
    under = np.all(np.abs(table_points[:, :2] - centre) < 0.25 * box.extents[:2], axis=1)
    assert not under.any()


def test_one_view_scene_keeps_only_what_the_camera_sees():
    view = np.array([0.3, -1.0, 0.8])
    whole = synthetic_scene(scene_shapes(), n_points=4000, wall=True, noise=0.0, outlier_ratio=0.0, seed=2)
    scene = synthetic_scene(scene_shapes(), n_points=4000, wall=True, noise=0.0, outlier_ratio=0.0, seed=2, view=view)
    np.testing.assert_allclose(scene.camera, 2.0 * view / np.linalg.norm(view))
    assert len(scene.points) < len(whole.points)
    for k, mesh in enumerate(scene.meshes):
        assert np.count_nonzero(scene.labels == k) < 0.7 * np.count_nonzero(whole.labels == k)
        for points in (scene.points[scene.labels == k], scene.visible_truth(k, n_samples=2000)):
            _, _, face = trimesh.proximity.closest_point(mesh, points)
            rays = scene.camera - points
            facing = np.einsum("ij,ij->i", mesh.face_normals[face], rays / np.linalg.norm(rays, axis=1)[:, None])
            assert facing.min() > -0.25  # nothing from the far side (but at the outline, next to a back face)
            assert np.mean(facing > 0) > 0.99
        truth = scene.visible_truth(k, n_samples=2000, seed=1)
        assert 0 < len(truth) < 0.7 * 2000
        np.testing.assert_array_equal(truth, scene.visible_samples(mesh, k, n_samples=2000, seed=1))
    assert len(whole.visible_truth(0, n_samples=500)) == 500  # all around: the whole surface


def test_scene_is_determined_by_its_seed():
    a, b, c = (synthetic_scene(scene_shapes(), n_points=1500, wall=True, seed=s) for s in (4, 4, 5))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    for m, n in zip(a.meshes, b.meshes, strict=True):
        np.testing.assert_array_equal(m.vertices, n.vertices)
    assert not np.array_equal(a.points[:100], c.points[:100])


@pytest.mark.parametrize("kwargs, match", [
    ({"meshes": []}, "meshes holds 0"),
    ({"meshes": [builtin_shape("sphere")] * (MAX_SCENE_OBJECTS + 1)}, "meshes holds"),
    ({"meshes": [builtin_shape("sphere"), "cube"]}, "meshes\\[1\\]"),
    ({"n_points": 0}, "n_points"),
    ({"size": 0.0}, "size"),
    ({"size": 0.9}, "size is 0.9; 2 objects"),
    ({"gap": 0.0}, "gap"),
    ({"noise": -1.0}, "noise"),
    ({"outlier_ratio": 1.0}, "outlier_ratio"),
    ({"view": (0.0, 0.0, 0.0)}, "view"),
    ({"view": (0.0, 0.0, -1.0)}, "sees no point"),  # from under the table
])
def test_bad_scene_arguments_raise(kwargs, match):
    kwargs = {"meshes": [builtin_shape("sphere"), builtin_shape("capsule")], "n_points": 500, **kwargs}
    with pytest.raises(PcflowError, match=match):
        synthetic_scene(**kwargs)


def test_scene_of_an_open_mesh_raises():
    sphere = builtin_shape("sphere")
    with pytest.raises(PcflowError, match="meshes\\[1\\] is not watertight"):
        synthetic_scene([sphere, trimesh.Trimesh(sphere.vertices, sphere.faces[1:])], n_points=100)
