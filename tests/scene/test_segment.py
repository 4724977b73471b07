"""Tests for pcflow.scene.segment: planes by RANSAC, objects by DBSCAN, scales from the point spacing."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from pcflow.errors import PcflowError
from pcflow.scene import OUTLIER, PLANE, is_object, is_plane
from pcflow.scene.segment import dbscan, plane_mesh, point_spacing, segment_scene

from .scenes import table_scene


def matched_accuracy(found, truth):
    """Share of points whose label matches the truth's, objects matched to the truth's by majority."""
    mapping = {}
    for k in np.unique(found[is_object(found)]):
        values, counts = np.unique(truth[found == k], return_counts=True)
        mapping[k] = values[np.argmax(counts)]
    mapped = np.array([mapping.get(k, k) for k in found])
    return float(np.mean(mapped == truth))


@pytest.mark.parametrize("n_objects", [2, 3])
def test_objects_on_a_table_are_found_apart_from_it(n_objects):
    points, truth, _ = table_scene(n_objects, seed=n_objects)
    found = segment_scene(points)
    assert len(found.planes) == 1 and found.n_objects == n_objects and found.is_scene
    assert abs(found.planes[0].normal[2]) > 0.999  # the table z = 0
    assert found.planes[0].normal[2] > 0  # towards the objects standing on it
    assert matched_accuracy(found.labels, truth) > 0.95
    # the background points farther than DBSCAN's reach (5 spacings) from every scanned surface are outliers
    far = cKDTree(points[truth != OUTLIER]).query(points[truth == OUTLIER])[0] > 5 * found.spacing
    assert far.sum() > 20 and np.mean(found.labels[truth == OUTLIER][far] == OUTLIER) > 0.95
    # each object is one sphere: its points lie on one truth object only
    for k in range(found.n_objects):
        assert len(np.unique(truth[(found.labels == k) & is_object(truth)])) == 1


def test_one_closed_object_is_no_scene():
    rng = np.random.default_rng(0)
    box = trimesh.creation.box((1.0, 0.6, 0.4))  # flat faces: none is a supporting plane
    points, _ = trimesh.sample.sample_surface(box, 5000, seed=rng)
    found = segment_scene(points + rng.normal(0, 0.002, points.shape))
    assert found.planes == [] and found.n_objects == 1 and not found.is_scene


def test_a_plane_alone_is_no_scene():
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-1, 1, (3000, 2)), rng.normal(0, 0.002, 3000)])
    found = segment_scene(points)
    assert len(found.planes) == 1 and found.n_objects == 0 and not found.is_scene
    assert np.all(is_plane(found.labels) | (found.labels == OUTLIER))


def test_a_noisy_wall_is_a_plane_not_an_object():
    points, truth, _ = table_scene(2, seed=4)
    rng = np.random.default_rng(4)
    wall = np.column_stack([rng.uniform(-0.5, 0.5, 2500), rng.normal(0.6, 0.012, 2500), rng.uniform(0, 1.2, 2500)])
    found = segment_scene(np.vstack([points, wall]))
    assert found.n_objects == 2 and len(found.planes) == 2
    assert np.mean(found.labels[len(points):] == PLANE + 1) > 0.95
    assert abs(found.planes[1].normal[1]) > 0.99


def test_the_spacing_is_the_median_nearest_neighbour_distance():
    grid = np.stack(np.meshgrid(np.arange(30), np.arange(30), [0.0]), axis=-1).reshape(-1, 3) * 0.01
    assert point_spacing(grid) == pytest.approx(0.01)
    with pytest.raises(PcflowError, match="fewer than two distinct points"):
        point_spacing(np.zeros((50, 3)))


def test_segmentation_is_the_same_run_after_run():
    points, _, _ = table_scene(3, seed=5)
    first, second = segment_scene(points, seed=3), segment_scene(points, seed=3)
    assert np.array_equal(first.labels, second.labels)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(PcflowError, match="at least 100 3-D points"):
        segment_scene(np.zeros((10, 3)))
    with pytest.raises(PcflowError, match="spacing"):
        segment_scene(table_scene(2)[0], spacing=-1.0)


def test_a_planes_polygon_is_the_convex_hull_of_its_points_in_the_plane():
    points, _, _ = table_scene(2, seed=6)
    found = segment_scene(points)
    members = points[found.labels == PLANE]
    mesh = plane_mesh(members, found.planes[0])
    assert mesh.area == pytest.approx(1.0, rel=0.03)  # the table is [-0.5, 0.5]^2
    assert np.allclose(mesh.face_normals @ found.planes[0].normal, 1.0)
    assert np.abs(mesh.vertices @ found.planes[0].normal + found.planes[0].offset).max() < 1e-9


def test_dbscan_finds_open3ds_clusters():
    """Three noisy blobs, a thin ring apart from them and scattered noise: the same clusters as Open3D's cluster_dbscan
    (up to their numbers) and the same noise points, but for points within reach of two clusters (none here)."""
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(4)
    blobs = [rng.normal(centre, 0.05, size=(800, 3)) for centre in ([0, 0, 0], [1, 0, 0], [0, 1.2, 0.3])]
    angle = rng.uniform(0, 2 * np.pi, 600)
    ring = np.column_stack([3.5 + np.cos(angle), np.sin(angle), rng.normal(0, 0.01, 600)])
    noise = rng.uniform(-1, 4.5, size=(200, 3))
    points = np.concatenate([*blobs, ring, noise])
    ours = dbscan(points, 0.08, 10)
    theirs = np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(0.08, 10))
    np.testing.assert_array_equal(ours < 0, theirs < 0)
    pairs = set(zip(ours[ours >= 0].tolist(), theirs[theirs >= 0].tolist()))
    assert len(pairs) == len(set(ours[ours >= 0].tolist())) == len(set(theirs[theirs >= 0].tolist())) >= 4
    np.testing.assert_array_equal(dbscan(points[::-1], 0.08, 10)[::-1] >= 0, ours >= 0)  # order does not matter


def test_dbscan_of_sparse_points_is_all_noise():
    points = np.arange(30, dtype=float)[:, None] * [1.0, 0.0, 0.0]
    assert np.all(dbscan(points, 0.5, 3) == -1)
