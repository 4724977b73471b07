"""Tests of pcflow.io.meshes: mesh writers round trip through trimesh, texture coordinates, meshes as clouds."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.io import MESH_SUFFIXES, describe, read_cloud, read_mesh, write_mesh


def canonical_triangles(vertices, faces, decimals=5):
    """Sorted triangles as coordinates, each rotated to start at its smallest corner (orientation kept)."""
    tris = np.round(np.asarray(vertices)[np.asarray(faces)], decimals)
    keys = [tuple(map(tuple, t)) for t in tris]
    rotated = [min(k[i:] + k[:i] for i in range(3)) for k in keys]
    return sorted(rotated)


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
@pytest.mark.parametrize("with_uv", [False, True])
def test_mesh_writers_round_trip(tmp_path, suffix, with_uv):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    uv = np.random.default_rng(4).random((len(mesh.vertices), 2)) if with_uv else None
    path = tmp_path / f"m{suffix}"
    write_mesh(path, mesh, uv=uv)
    back = trimesh.load(path, force="mesh")
    back.merge_vertices(merge_tex=True, merge_norm=True)
    assert back.vertices.shape == mesh.vertices.shape and back.faces.shape == mesh.faces.shape
    assert canonical_triangles(back.vertices, back.faces) == canonical_triangles(mesh.vertices, mesh.faces)
    ours = read_mesh(path)
    assert ours.is_watertight and ours.vertices.shape == mesh.vertices.shape
    if with_uv and suffix in (".obj", ".ply"):
        np.testing.assert_allclose(trimesh.load(path, force="mesh", process=False).visual.uv, uv)


def test_obj_uv_per_face_corner(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    corners = np.random.default_rng(6).random((len(mesh.faces), 3, 2))
    corners[len(corners) // 2:] = corners[0]  # equal corners share a vt row
    write_mesh(tmp_path / "m.obj", mesh, uv=corners)
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert sum(line.startswith("vt ") for line in lines) == 3 * (len(mesh.faces) // 2)
    back = trimesh.load(tmp_path / "m.obj", force="mesh", process=False)  # splits vertices by texture corner
    np.testing.assert_allclose(back.visual.uv[back.faces], corners)
    np.testing.assert_allclose(back.vertices[back.faces], mesh.vertices[mesh.faces])
    assert read_mesh(tmp_path / "m.obj").is_watertight  # welded again on reading
    with pytest.raises(PcflowError, match="per face corner can only be written to OBJ"):
        write_mesh(tmp_path / "m.ply", mesh, uv=corners)
    assert not (tmp_path / "m.ply").exists()


def test_obj_uv_one_vt_per_vertex_and_float64(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    mesh.vertices += [6.5e5, 8.5e5, 400.0]
    uv = np.random.default_rng(5).random((len(mesh.vertices), 2))
    write_mesh(tmp_path / "m.obj", mesh, uv=uv)
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert sum(line.startswith("vt ") for line in lines) == len(mesh.vertices)
    first_face = next(line for line in lines if line.startswith("f "))
    corners = [token.split("/") for token in first_face.split()[1:]]
    assert len(corners) == 3 and all(len(c) == 3 and c[0] == c[1] == c[2] for c in corners)  # v/vt/vn
    np.testing.assert_array_equal(read_cloud(tmp_path / "m.obj").points.shape, mesh.vertices.shape)
    for suffix in (".obj", ".ply", ".off"):
        write_mesh(tmp_path / f"g{suffix}", mesh)
        np.testing.assert_array_equal(read_mesh(tmp_path / f"g{suffix}").vertices, mesh.vertices)


def test_mesh_file_as_cloud_and_describe(tmp_path):
    mesh = trimesh.creation.box()
    write_mesh(tmp_path / "box.stl", mesh)  # triangle soup on disk: vertices are welded on reading
    cloud = read_cloud(tmp_path / "box.stl")
    assert cloud.points.shape == (8, 3)
    info = describe(tmp_path / "box.stl")
    assert info["is_mesh"] and info["n_faces"] == 12
    write_mesh(tmp_path / "box.ply", mesh)
    assert read_cloud(tmp_path / "box.ply").points.shape == (8, 3)
    assert describe(tmp_path / "box.ply")["n_faces"] == 12


def test_a_glb_chunk_length_beyond_the_file_is_refused_before_allocating(tmp_path):
    import struct

    from iosamples import traced_peak

    write_mesh(tmp_path / "ok.glb", trimesh.creation.icosphere(subdivisions=1))
    data = (tmp_path / "ok.glb").read_bytes()
    assert len(read_cloud(tmp_path / "ok.glb").points) == 42
    json_length = struct.unpack_from("<I", data, 12)[0]
    for at in (12, 20 + json_length):  # the JSON chunk's length, then the binary chunk's
        (tmp_path / "big.glb").write_bytes(data[:at] + struct.pack("<I", 2 ** 31) + data[at + 4:])
        error, peak = traced_peak(read_cloud, tmp_path / "big.glb")
        assert isinstance(error, PcflowError) and "a chunk of 2147483648 bytes declared" in str(error), error
        assert peak < 1 << 20
    (tmp_path / "other.glb").write_bytes(b"GLTF" + data[4:])
    with pytest.raises(PcflowError, match="no glTF binary header"):
        read_cloud(tmp_path / "other.glb")
