"""Written meshes as other tools read them: Open3D, trimesh and meshio, without warnings, watertight, with normals."""

import json
import logging
import warnings

import numpy as np
import pytest
import trimesh
from plyfile import PlyData

from pcflow.cli import main
from pcflow.io import MESH_SUFFIXES, write_mesh
from pcflow.meshing import sphere_mesh

o3d = pytest.importorskip("open3d")
meshio = pytest.importorskip("meshio")

FIT = ["--epochs", "4", "--couplings", "2", "--hidden", "16", "--mode", "envelope", "-q"]
#: Largest angle between a normal as read and trimesh's own vertex normal of the mesh as read (float32 files).
MAX_NORMAL_DEGREES = 0.05
CENTER = np.array([120.0, -45.0, 7.5])


def ellipsoid(z):
    """A rotated ellipsoid (convex, so every outward normal points away from its centre) far from the origin."""
    rotation = trimesh.transformations.rotation_matrix(0.7, [1.0, 2.0, 0.5])[:3, :3]
    return (z * [3.0, 1.0, 0.5]) @ rotation.T + CENTER


@pytest.fixture(scope="module")
def boundary():
    return sphere_mesh(ellipsoid, 1.0, subdivisions=2, tolerance=np.inf, check_intersections=False)


def read_quietly(read, path, capfd, caplog):
    """`read(path)`, failing on any Python warning, trimesh log warning or Open3D message on stdout/stderr."""
    capfd.readouterr()
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")
        caplog.clear()
        result = read(str(path))
    out, err = capfd.readouterr()
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    assert "warning" not in (out + err).lower() and "error" not in (out + err).lower(), out + err
    return result


def read_trimesh(path):
    loaded = trimesh.load(path)  # default processing: vertices merged
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_mesh()
    return {"vertices": loaded.vertices, "faces": loaded.faces, "normals": loaded.vertex_normals,
            "watertight": loaded.is_watertight, "mesh": loaded}


def read_open3d(path):
    return open3d_summary(o3d.io.read_triangle_mesh(path))


def open3d_summary(mesh):
    normals = np.asarray(mesh.vertex_normals) if mesh.has_vertex_normals() else None
    return {"vertices": np.asarray(mesh.vertices), "faces": np.asarray(mesh.triangles), "normals": normals,
            "watertight": mesh.is_watertight() and mesh.is_edge_manifold(), "mesh": mesh}


def read_meshio(path):
    mesh = meshio.read(path)
    data = mesh.point_data
    normals = np.c_[data["nx"], data["ny"], data["nz"]] if "nx" in data else data.get("obj:vn")
    faces = mesh.cells_dict["triangle"]
    as_read = trimesh.Trimesh(mesh.points, faces, process=False)
    return {"vertices": mesh.points, "faces": faces, "normals": normals, "watertight": as_read.is_watertight,
            "mesh": mesh}


READERS = {"trimesh": read_trimesh, "open3d": read_open3d, "meshio": read_meshio}


def max_angle(normals, reference) -> float:
    normals = np.asarray(normals, dtype=np.float64)
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    return float(np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", normals, reference), -1.0, 1.0))).max())


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
def test_every_format_opens_watertight_with_outward_normals(boundary, tmp_path, suffix, reader, capfd, caplog):
    if reader == "meshio" and suffix == ".glb":
        pytest.skip("meshio has no glTF reader")
    source = boundary.mesh
    path = tmp_path / f"mesh{suffix}"
    write_mesh(path, source)
    got = read_quietly(READERS[reader], path, capfd, caplog)
    if reader == "open3d" and suffix == ".stl":
        # STL keeps each triangle's corners apart, and Open3D does not weld them: one normal per corner, its facet's
        soup = trimesh.Trimesh(got["vertices"], got["faces"], process=False)
        assert len(got["faces"]) == len(source.faces) and len(got["vertices"]) == 3 * len(source.faces)
        assert max_angle(got["normals"], np.repeat(soup.face_normals, 3, axis=0)) < MAX_NORMAL_DEGREES
        got = open3d_summary(got["mesh"].remove_duplicated_vertices())  # welded: the checks below apply
    assert len(got["vertices"]) == len(source.vertices) and len(got["faces"]) == len(source.faces)
    assert got["watertight"]
    # coordinates and units as written (float32 in STL and GLB), nothing normalised
    tolerance = 1e-4 if suffix in (".stl", ".glb") else 1e-9
    np.testing.assert_allclose(np.asarray(got["vertices"]).min(axis=0), source.bounds[0], atol=tolerance)
    np.testing.assert_allclose(np.asarray(got["vertices"]).max(axis=0), source.bounds[1], atol=tolerance)
    as_read = trimesh.Trimesh(got["vertices"], got["faces"], process=False)
    assert as_read.volume > 0  # faces wind outward
    if suffix in (".ply", ".obj", ".glb"):
        assert got["normals"] is not None and len(got["normals"]) == len(got["vertices"])
        assert max_angle(got["normals"], as_read.vertex_normals) < MAX_NORMAL_DEGREES
        outward = np.einsum("ij,ij->i", got["normals"], np.asarray(got["vertices"]) - CENTER)
        assert np.all(outward > 0)


def test_ply_header_follows_the_common_conventions(boundary, tmp_path):
    write_mesh(tmp_path / "mesh.ply", boundary.mesh)
    ply = PlyData.read(str(tmp_path / "mesh.ply"))
    assert [element.name for element in ply.elements] == ["vertex", "face"]
    assert [p.name for p in ply["vertex"].properties] == ["x", "y", "z", "nx", "ny", "nz"]
    assert [p.val_dtype for p in ply["vertex"].properties[3:]] == ["f4"] * 3
    (faces,) = ply["face"].properties
    assert (faces.name, faces.len_dtype, faces.val_dtype) == ("vertex_indices", "u1", "i4")
    np.testing.assert_array_equal(ply["vertex"]["x"], boundary.mesh.vertices[:, 0])  # float64 kept
    np.testing.assert_array_equal(np.column_stack([ply["vertex"][c] for c in "yz"]), boundary.mesh.vertices[:, 1:])
    np.testing.assert_array_equal(np.stack(ply["face"]["vertex_indices"]), boundary.mesh.faces)


def test_default_obj_has_normals_and_no_texture_coordinates(boundary, tmp_path):
    write_mesh(tmp_path / "mesh.obj", boundary.mesh)
    lines = (tmp_path / "mesh.obj").read_text().splitlines()
    kinds = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert kinds.count("v") == kinds.count("vn") == len(boundary.mesh.vertices) and "vt" not in kinds
    first_face = next(line for line in lines if line.startswith("f "))
    assert all(corner.split("//")[0] == corner.split("//")[1] for corner in first_face.split()[1:])


def test_uv_obj_as_each_reader_opens_it(boundary, tmp_path, capfd, caplog):
    path = tmp_path / "mesh_uv.obj"
    write_mesh(path, boundary.mesh, uv=boundary.face_uv)
    corners = boundary.face_uv.reshape(-1, 2)
    n_vertices, n_faces = len(boundary.mesh.vertices), len(boundary.mesh.faces)
    # trimesh and Open3D split the vertices where a vertex has several texture coordinates (the chart's seam)
    got = read_quietly(trimesh.load, path, capfd, caplog)
    assert len(got.faces) == n_faces and len(got.vertices) > n_vertices and not got.is_watertight
    np.testing.assert_allclose(got.visual.uv[got.faces].reshape(-1, 2), corners, atol=1e-12)
    got.merge_vertices(merge_tex=True, merge_norm=True)
    assert len(got.vertices) == n_vertices and got.is_watertight
    got = read_quietly(o3d.io.read_triangle_mesh, path, capfd, caplog)
    assert len(got.triangles) == n_faces and len(got.vertices) > n_vertices and not got.is_watertight()
    np.testing.assert_allclose(np.asarray(got.triangle_uvs), corners, atol=1e-6)  # read as float32
    got.remove_duplicated_vertices()
    assert len(got.vertices) == n_vertices and got.is_watertight()
    # meshio holds texture coordinates per point only, so it refuses them per face corner: mesh.obj is for meshio
    with pytest.raises(ValueError, match="obj:vt"):
        meshio.read(path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1200, 3))
    points = direction / np.linalg.norm(direction, axis=1, keepdims=True) * [1.0, 0.6, 0.4] + 50.0
    folder = tmp_path_factory.mktemp("model")
    np.savetxt(folder / "cloud.xyz", points)
    assert main(["fit", str(folder / "cloud.xyz"), "-o", str(folder / "model.pt"), *FIT]) == 0
    return folder / "model.pt"


def test_mesh_command_writes_obj_for_every_reader_and_uv_on_request(model_path, tmp_path, capfd, caplog):
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "mesh.obj"), "--subdivisions", "1", "-q"]) == 0
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "mesh.ply"), "--subdivisions", "1", "-q"]) == 0
    source = trimesh.load(tmp_path / "mesh.ply", process=False)
    for reader in READERS.values():
        got = read_quietly(reader, tmp_path / "mesh.obj", capfd, caplog)
        assert got["watertight"] and len(got["faces"]) == len(source.faces)
        assert len(got["vertices"]) == len(source.vertices)
        as_read = trimesh.Trimesh(got["vertices"], got["faces"], process=False)
        assert max_angle(got["normals"], as_read.vertex_normals) < MAX_NORMAL_DEGREES
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "uv.obj"), "--subdivisions", "1", "--uv", "-q"]) == 0
    lines = (tmp_path / "uv.obj").read_text().splitlines()
    assert sum(line.startswith("vt ") for line in lines) > 0
    with pytest.raises(ValueError, match="obj:vt"):
        meshio.read(tmp_path / "uv.obj")


@pytest.mark.parametrize("extra, message", [(["-o", "m.ply"], "only OBJ"),
                                            (["-o", "m.obj", "--marching-cubes", "16"], "marching-cubes")])
def test_mesh_command_refuses_uv_it_cannot_write(model_path, tmp_path, extra, message, capsys):
    extra = [str(tmp_path / arg) if arg.startswith("m.") else arg for arg in extra]
    assert main(["mesh", str(model_path), *extra, "--uv", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pcflow: error:") and message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_reconstruct_writes_uv_obj_only_when_asked(model_path, tmp_path):
    cloud = model_path.parent / "cloud.xyz"
    for flag, name in (([], "plain"), (["--uv"], "uv")):
        out = tmp_path / name
        assert main(["reconstruct", str(cloud), "-o", str(out), *FIT, "--subdivisions", "1", "--no-preview",
                     *flag]) == 0
        report = json.loads((out / "report.json").read_text())
        assert sorted(report["files"]) == sorted(p.name for p in out.iterdir())  # the report lists what is there
        assert ("mesh_uv.obj" in report["files"]) == bool(flag)
        assert "vt" not in {line.split()[0] for line in (out / "mesh.obj").read_text().splitlines() if line}
