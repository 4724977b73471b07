"""Tests of the conversions to and from Open3D and trimesh: round trips, the other libraries' readers, OneFlow input."""

import numpy as np
import pytest
import trimesh

from pcflow import OneFlow, PcflowError
from pcflow.interop import as_points, to_open3d, to_trimesh
from pcflow.io import PointCloud, write_cloud
from pcflow.meshing import sphere_mesh

o3d = pytest.importorskip("open3d")

RGB_NORMALS = [("x", "f8"), ("y", "f8"), ("z", "f8"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
               ("nx", "f4"), ("ny", "f4"), ("nz", "f4")]


@pytest.fixture
def cloud():
    """A pcflow cloud with colours and normals."""
    rng = np.random.default_rng(0)
    fields = np.zeros(200, dtype=RGB_NORMALS)
    points = rng.normal(size=(200, 3))
    for i, name in enumerate("xyz"):
        fields[name] = points[:, i]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, 200)
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    for i, name in enumerate(("nx", "ny", "nz")):
        fields[name] = normals[:, i]
    return PointCloud(points, fields)


@pytest.fixture(scope="module")
def boundary():
    """A refined ellipsoid boundary mesh."""
    return sphere_mesh(lambda z: z * [2.0, 1.0, 0.5], 1.0, subdivisions=2, tolerance=10.0)


def test_cloud_to_open3d_and_back(cloud):
    o3d_cloud = to_open3d(cloud)
    assert isinstance(o3d_cloud, o3d.geometry.PointCloud)
    np.testing.assert_array_equal(np.asarray(o3d_cloud.points), cloud.points)
    np.testing.assert_array_equal(np.round(np.asarray(o3d_cloud.colors) * 255).astype(np.uint8), cloud.colors)
    normals = np.stack([cloud.fields[name] for name in ("nx", "ny", "nz")], axis=1)
    np.testing.assert_allclose(np.asarray(o3d_cloud.normals), normals)
    np.testing.assert_array_equal(as_points(o3d_cloud), cloud.points)
    back = to_trimesh(o3d_cloud)
    np.testing.assert_array_equal(back.vertices, cloud.points)
    np.testing.assert_array_equal(back.colors[:, :3], cloud.colors)
    assert to_open3d(o3d_cloud) is o3d_cloud


def test_cloud_to_trimesh_and_back(cloud):
    tm_cloud = to_trimesh(cloud)
    assert isinstance(tm_cloud, trimesh.PointCloud)
    np.testing.assert_array_equal(tm_cloud.vertices, cloud.points)
    np.testing.assert_array_equal(tm_cloud.colors[:, :3], cloud.colors)
    again = to_open3d(tm_cloud)
    np.testing.assert_array_equal(np.asarray(again.points), cloud.points)
    np.testing.assert_array_equal(np.round(np.asarray(again.colors) * 255).astype(np.uint8), cloud.colors)
    assert to_trimesh(tm_cloud) is tm_cloud


def test_cloud_without_colours_and_plain_arrays():
    points = np.random.default_rng(1).normal(size=(50, 3))
    o3d_cloud = to_open3d(PointCloud(points))
    assert not o3d_cloud.has_colors() and not o3d_cloud.has_normals()
    np.testing.assert_array_equal(np.asarray(to_open3d(points).points), points)
    np.testing.assert_array_equal(to_trimesh(points).vertices, points)
    assert len(to_trimesh(PointCloud(points)).colors) == 0
    np.testing.assert_array_equal(as_points(points.tolist()), points)
    tensor_cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points))
    np.testing.assert_array_equal(as_points(tensor_cloud), points)


def test_path_matches_open3ds_own_reader(cloud, tmp_path):
    path = tmp_path / "cloud.ply"
    write_cloud(path, cloud)
    reference = o3d.io.read_point_cloud(str(path))
    ours = to_open3d(path)
    np.testing.assert_allclose(np.asarray(ours.points), np.asarray(reference.points))
    np.testing.assert_allclose(np.asarray(ours.colors), np.asarray(reference.colors))
    np.testing.assert_array_equal(as_points(str(path)), cloud.points)
    np.testing.assert_array_equal(to_trimesh(path).colors[:, :3], cloud.colors)


def test_boundary_mesh_to_open3d_and_back(boundary):
    mesh = to_open3d(boundary)
    assert isinstance(mesh, o3d.geometry.TriangleMesh)
    np.testing.assert_array_equal(np.asarray(mesh.vertices), boundary.mesh.vertices)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), boundary.mesh.faces)
    assert mesh.is_watertight() and mesh.is_orientable() and mesh.has_vertex_normals()
    # the normals agree with Open3D's own, computed from the same faces (so they point outward)
    own = o3d.geometry.TriangleMesh(mesh.vertices, mesh.triangles)
    own.compute_vertex_normals()
    cosines = np.sum(np.asarray(mesh.vertex_normals) * np.asarray(own.vertex_normals), axis=1)
    assert cosines.min() > 0.95
    outward = np.sum(np.asarray(mesh.vertex_normals) * boundary.mesh.vertices, axis=1)
    assert (outward > 0).all()
    back = to_trimesh(mesh)
    np.testing.assert_array_equal(back.vertices, boundary.mesh.vertices)
    np.testing.assert_array_equal(back.faces, boundary.mesh.faces)
    assert back.is_watertight and back.volume > 0
    assert to_trimesh(boundary) is boundary.mesh
    np.testing.assert_array_equal(as_points(boundary), boundary.mesh.vertices)


def test_trimesh_vertex_colours_reach_open3d(boundary):
    mesh = boundary.mesh.copy()
    colors = np.random.default_rng(2).integers(0, 256, (len(mesh.vertices), 3)).astype(np.uint8)
    mesh.visual.vertex_colors = colors
    o3d_mesh = to_open3d(mesh)
    np.testing.assert_array_equal(np.round(np.asarray(o3d_mesh.vertex_colors) * 255).astype(np.uint8), colors)
    np.testing.assert_array_equal(to_trimesh(o3d_mesh).visual.vertex_colors[:, :3], colors)


@pytest.mark.parametrize("obj", [object(), {"x": [1, 2, 3]}, None, "not a number"])
def test_unsupported_objects_are_a_one_line_error(obj):
    with pytest.raises(PcflowError) as error:
        as_points(obj)
    assert "\n" not in str(error.value)
    if not isinstance(obj, str):
        assert "cannot take points from a" in str(error.value)


def test_unsupported_geometries_and_dimensions():
    with pytest.raises(PcflowError, match="cannot take points from an Open3D LineSet"):
        as_points(o3d.geometry.LineSet())
    with pytest.raises(PcflowError, match="Open3D needs 3-D points, got an array of shape"):
        to_open3d(np.zeros((4, 2)))
    with pytest.raises(PcflowError, match=r"points must be an \(N, D\) array"):
        to_trimesh(np.zeros(4))


def test_oneflow_takes_clouds_meshes_and_paths(cloud, boundary, tmp_path):
    settings = dict(n_couplings=2, hidden_features=8, n_hidden_layers=1, epochs=3, random_state=0)
    reference = OneFlow(**settings).fit(cloud.points)
    for obj in (cloud, to_open3d(cloud), to_trimesh(cloud)):
        model = OneFlow(**settings).fit(obj)
        np.testing.assert_array_equal(model.score_samples(obj), reference.score_samples(cloud.points))
        np.testing.assert_array_equal(model.predict(obj), reference.predict(cloud.points))
    path = tmp_path / "cloud.ply"
    write_cloud(path, cloud)
    np.testing.assert_array_equal(OneFlow(**settings).fit_predict(str(path)), reference.predict(cloud.points))
    np.testing.assert_array_equal(reference.decision_function(to_open3d(boundary)),
                                  reference.decision_function(boundary.mesh.vertices))
    np.testing.assert_array_equal(reference.transform(boundary), reference.transform(boundary.mesh.vertices))
