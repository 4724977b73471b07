"""Tests for pcflow.io and pcflow.pcd: round trips, real scans, atomic writes and one-line errors on bad input."""

import os
import struct
import sys

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.io import (
    CLOUD_SUFFIXES,
    CLOUD_WRITE_SUFFIXES,
    MESH_SUFFIXES,
    PointCloud,
    atomic_output,
    describe,
    read_cloud,
    read_mesh,
    write_cloud,
    write_mesh,
)
from pcflow.pcd import lzf_decompress



def rich_cloud(n=50, seed=0):
    """A georeferenced cloud with colours (uchar), normals (float), intensity (uint16)."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3)) * 10 + [4.5e6, 5.6e6, 300.0]  # needs float64 to keep the decimals
    fields = np.empty(n, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("nx", "f4"), ("ny", "f4"), ("nz", "f4"), ("intensity", "u2")])
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    normals = rng.normal(size=(n, 3)).astype(np.float32)
    for k, name in enumerate(("nx", "ny", "nz")):
        fields[name] = normals[:, k]
    fields["intensity"] = rng.integers(0, 65536, n)
    return PointCloud(points, fields)


def assert_same_fields(a: np.ndarray, b: np.ndarray):
    assert a.dtype.names == b.dtype.names
    for name in a.dtype.names:
        assert a.dtype[name] == b.dtype[name], name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("suffix, ascii", [(".ply", False), (".ply", True), (".pcd", False), (".pcd", True)])
def test_cloud_round_trip_keeps_values_and_properties(tmp_path, suffix, ascii):
    cloud = rich_cloud()
    path = tmp_path / f"cloud{suffix}"
    write_cloud(path, cloud, ascii=ascii)
    back = read_cloud(path)
    np.testing.assert_array_equal(back.points, cloud.points)
    assert_same_fields(back.fields, cloud.fields)
    np.testing.assert_array_equal(back.colors, np.stack([cloud.fields[c] for c in ("red", "green", "blue")], 1))
    assert back.n_dropped_nonfinite == 0 and back.source == str(path)
    kind = "ascii" if ascii else "binary"
    assert describe(path)["format"].lower().endswith(kind)


@pytest.mark.parametrize("ascii", [False, True])
def test_pcd_packed_rgb_float_keeps_colours(tmp_path, ascii):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(20, 3)).astype(np.uint32)
    packed = ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).view(np.float32)
    fields = np.empty(20, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "f4")])
    points = rng.normal(size=(20, 3)).astype(np.float32)
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    fields["rgb"] = packed
    write_cloud(tmp_path / "c.pcd", PointCloud(points, fields), ascii=ascii)
    back = read_cloud(tmp_path / "c.pcd")
    np.testing.assert_array_equal(back.colors, rgb)
    assert back.fields.dtype["x"] == np.float32  # coordinates exact in float32 keep their dtype


def test_modified_points_are_written_in_float64_when_the_field_dtype_would_round(tmp_path):
    cloud = rich_cloud()
    cloud.fields = cloud.fields.astype([(n, "f4" if n in "xyz" else cloud.fields.dtype[n])
                                        for n in cloud.fields.dtype.names])
    write_cloud(tmp_path / "c.ply", cloud)
    back = read_cloud(tmp_path / "c.ply")
    np.testing.assert_array_equal(back.points, cloud.points)
    assert back.fields.dtype["x"] == np.float64


def test_xyz_and_csv_round_trip(tmp_path):
    cloud = rich_cloud(n=30)
    write_cloud(tmp_path / "c.xyz", cloud)
    back = read_cloud(tmp_path / "c.xyz")
    np.testing.assert_array_equal(back.points, cloud.points)
    assert back.fields.dtype.names == cloud.fields.dtype.names  # named by the "# x y z ..." line
    np.testing.assert_array_equal(back.colors, cloud.colors)
    write_cloud(tmp_path / "c.csv", cloud)
    back = read_cloud(tmp_path / "c.csv")
    np.testing.assert_array_equal(back.points, cloud.points)
    assert back.fields.dtype.names == cloud.fields.dtype.names
    np.testing.assert_array_equal(back.colors, cloud.colors)
    np.testing.assert_array_equal(back.fields["intensity"], cloud.fields["intensity"])
    np.testing.assert_array_equal(back.fields["nx"], cloud.fields["nx"])


def test_big_endian_ply_and_uppercase_coordinates(tmp_path):
    from plyfile import PlyData, PlyElement

    vertex = np.array([(1.5, 2.5, 3.5, 7), (4.0, 5.0, 6.0, 8)], dtype=[("X", ">f8"), ("Y", ">f8"), ("Z", ">f8"),
                                                                     ("label", ">i4")])
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order=">").write(str(tmp_path / "be.ply"))
    cloud = read_cloud(tmp_path / "be.ply")
    np.testing.assert_array_equal(cloud.points, [[1.5, 2.5, 3.5], [4, 5, 6]])
    assert cloud.fields.dtype["label"] == np.dtype("=i4")
    write_cloud(tmp_path / "le.ply", cloud)
    assert read_cloud(tmp_path / "le.ply").fields.dtype.names == ("X", "Y", "Z", "label")


def test_subset_keeps_fields_rows():
    cloud = rich_cloud(n=10)
    mask = np.arange(10) % 3 == 0
    part = cloud.subset(mask)
    np.testing.assert_array_equal(part.points, cloud.points[mask])
    assert_same_fields(part.fields, cloud.fields[mask])
    assert len(cloud.subset([1, 2]).points) == 2


# ---------------------------------------------------------------------------------------------------------------
# text formats


def test_text_with_header_lines_and_named_columns(tmp_path):
    path = tmp_path / "scan.csv"
    path.write_text("exported by some scanner\nX,Y,Z,Intensity\n1,2,3,10\n4,5,6,20\n")
    cloud = read_cloud(path)
    np.testing.assert_array_equal(cloud.points, [[1, 2, 3], [4, 5, 6]])
    assert cloud.fields.dtype.names == ("x", "y", "z", "intensity")
    np.testing.assert_array_equal(cloud.fields["intensity"], [10, 20])


def test_text_extra_columns_are_numbered_and_two_columns_give_2d(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\n1 2 3 7 8\n4 5 6 9 10\n")
    cloud = read_cloud(tmp_path / "a.txt")
    assert cloud.fields.dtype.names == ("x", "y", "z", "f3", "f4")
    np.testing.assert_array_equal(cloud.fields["f4"], [8, 10])
    (tmp_path / "b.xyz").write_text("0.5 1.5\n2.5 3.5\n4.5 5.5\n")
    flat = read_cloud(tmp_path / "b.xyz")
    assert flat.points.shape == (3, 2) and flat.fields is None


def test_pts_count_line_and_colour_columns(tmp_path):
    (tmp_path / "s.pts").write_text("2\n1 2 3 -100 255 0 10\n4 5 nan 50 1 2 3\n7 8 9 0 4 5 6\n")
    cloud = read_cloud(tmp_path / "s.pts")
    np.testing.assert_array_equal(cloud.points, [[1, 2, 3], [7, 8, 9]])
    assert cloud.n_dropped_nonfinite == 1
    assert cloud.fields.dtype["red"] == np.uint8
    np.testing.assert_array_equal(cloud.colors, [[255, 0, 10], [4, 5, 6]])
    np.testing.assert_array_equal(cloud.fields["intensity"], [-100, 0])


# ---------------------------------------------------------------------------------------------------------------
# PCD: compressed bodies, organized clouds, COUNT > 1, padding


def lzf_reference(stream: bytes) -> bytes:
    """Byte-by-byte LZF decoder, slow and obviously correct."""
    out, i = bytearray(), 0
    while i < len(stream):
        ctrl = stream[i]
        i += 1
        if ctrl < 32:
            for _ in range(ctrl + 1):
                out.append(stream[i])
                i += 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += stream[i]
            i += 1
        ref = len(out) - ((ctrl & 31) << 8) - stream[i] - 1
        i += 1
        for k in range(length + 2):
            out.append(out[ref + k])
    return bytes(out)


def random_lzf_stream(rng, n_tokens=300) -> bytes:
    stream, size = bytearray(), 0
    for _ in range(n_tokens):
        if size == 0 or rng.random() < 0.4:
            run = int(rng.integers(1, 33))
            stream += bytes([run - 1]) + rng.integers(0, 256, run, dtype=np.uint8).tobytes()
            size += run
            continue
        distance = int(rng.integers(1, min(size, 8192) + 1)) - 1
        length = int(rng.integers(3, 265)) - 2  # overlapping copies happen when length > distance
        if length < 7:
            stream += bytes([(length << 5) | (distance >> 8), distance & 255])
        else:
            stream += bytes([(7 << 5) | (distance >> 8), length - 7, distance & 255])
        size += length + 2
    return bytes(stream)


def test_lzf_decompress_matches_reference():
    rng = np.random.default_rng(2)
    for _ in range(5):
        stream = random_lzf_stream(rng)
        expected = lzf_reference(stream)
        assert lzf_decompress(stream, len(expected)) == expected
    with pytest.raises(ValueError, match="expands to"):
        lzf_decompress(stream, len(expected) + 1)
    for tail in (bytes([31]), bytes([0xE0]), bytes([0x20])):  # literal run or back-reference cut short
        with pytest.raises(ValueError, match="truncated"):
            lzf_decompress(stream + tail, len(expected) + 40)


def lzf_literals(data: bytes) -> bytes:
    """A valid LZF stream of literal runs only (control byte = run length - 1, runs of at most 32 bytes)."""
    return b"".join(bytes([len(data[i:i + 32]) - 1]) + data[i:i + 32] for i in range(0, len(data), 32))


PCD_HEADER = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z _ hist\nSIZE 4 4 4 1 2\nTYPE F F F U U\nCOUNT 1 1 1 4 2\n"
              "WIDTH 4\nHEIGHT 3\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {kind}\n")


def organized_columns(seed=3):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(12, 3)).astype(np.float32)
    xyz[[2, 5, 11]] = np.nan
    xyz[7, 1] = np.inf
    hist = rng.integers(0, 60000, size=(12, 2)).astype(np.uint16)
    return xyz, hist


def check_organized(path, xyz, hist):
    keep = np.isfinite(xyz).all(axis=1)
    cloud = read_cloud(path)
    np.testing.assert_array_equal(cloud.points, xyz[keep].astype(np.float64))
    assert cloud.n_dropped_nonfinite == 4
    assert cloud.fields.dtype.names == ("x", "y", "z", "hist_0", "hist_1")
    np.testing.assert_array_equal(cloud.fields["hist_1"], hist[keep, 1])
    info = describe(path)
    assert info["organized"] == (4, 3) and info["n_points"] == 12 and info["n_nonfinite"] == 4


def test_pcd_binary_compressed_round_trip(tmp_path):
    xyz, hist = organized_columns()
    soa = b"".join(np.ascontiguousarray(c).tobytes() for c in (xyz[:, 0], xyz[:, 1], xyz[:, 2], hist))  # no padding
    compressed = lzf_literals(soa)
    path = tmp_path / "c.pcd"
    path.write_bytes(PCD_HEADER.format(n=12, kind="binary_compressed").encode()
                     + struct.pack("<II", len(compressed), len(soa)) + compressed)
    check_organized(path, xyz, hist)


def test_pcd_binary_with_padding_and_counts(tmp_path):
    xyz, hist = organized_columns()
    rows = np.zeros(12, dtype=[("xyz", "<f4", (3,)), ("pad", "u1", (4,)), ("hist", "<u2", (2,))])
    rows["xyz"], rows["pad"], rows["hist"] = xyz, 255, hist
    path = tmp_path / "b.pcd"
    path.write_bytes(PCD_HEADER.format(n=12, kind="binary").encode() + rows.tobytes())
    check_organized(path, xyz, hist)


@pytest.mark.parametrize("name, finite", [("table_scene_mug_stereo_textured.pcd", 209_280),
                                          ("milk_cartoon_all_small_clorox.pcd", 241_407)])
def test_real_binary_compressed_scans(name, finite, shared_data):
    path = shared_data("scans", name)
    cloud = read_cloud(path)
    assert cloud.points.shape == (finite, 3)
    assert cloud.n_dropped_nonfinite == 640 * 480 - finite
    assert np.isfinite(cloud.points).all()
    assert cloud.colors.shape == (finite, 3) and cloud.colors.dtype == np.uint8
    info = describe(path)
    assert info["organized"] == (640, 480) and info["format"] == "PCD binary_compressed"


def test_packed_pcd_colours_become_ply_red_green_blue(tmp_path):
    cloud = PointCloud(np.eye(3), np.array([(1, 0, 0, 0xFF102030), (0, 1, 0, 0xFF405060), (0, 0, 1, 0xFF708090)],
                                           dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgba", "u4")]))
    write_cloud(tmp_path / "c.ply", cloud)
    back = read_cloud(tmp_path / "c.ply")
    assert back.fields.dtype.names == ("x", "y", "z", "rgba", "red", "green", "blue")
    np.testing.assert_array_equal(back.fields["rgba"], cloud.fields["rgba"])
    np.testing.assert_array_equal(back.colors, [[0x10, 0x20, 0x30], [0x40, 0x50, 0x60], [0x70, 0x80, 0x90]])


# ---------------------------------------------------------------------------------------------------------------
# LAS / LAZ


def test_las_scale_offset_and_fields(shared_data):
    laspy = pytest.importorskip("laspy")
    path = shared_data("scans", "simple.las")
    cloud = read_cloud(path)
    las = laspy.read(str(path))
    assert cloud.points.shape == (1065, 3)
    expected = las.header.scales * np.stack([las.X, las.Y, las.Z], 1) + las.header.offsets
    np.testing.assert_array_equal(cloud.points, expected)
    for name in ("intensity", "classification", "return_number", "red"):
        np.testing.assert_array_equal(cloud.fields[name], np.asarray(las[name]))
    assert cloud.has_colors


def test_las_without_laspy_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "laspy", None)
    (tmp_path / "a.las").write_bytes(b"LASF" + bytes(300))
    with pytest.raises(PcflowError, match=r'pip install "pcflow\[las\]"'):
        read_cloud(tmp_path / "a.las")


# ---------------------------------------------------------------------------------------------------------------
# meshes


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


def test_suffix_tables():
    assert {".ply", ".pcd", ".xyz", ".las", ".laz", ".obj"} <= set(CLOUD_SUFFIXES)
    assert {".ply", ".pcd", ".xyz"} <= set(CLOUD_WRITE_SUFFIXES)
    assert set(MESH_SUFFIXES) == {".ply", ".obj", ".stl", ".off", ".glb"}


# ---------------------------------------------------------------------------------------------------------------
# atomic output


def test_atomic_output_leaves_nothing_when_the_body_raises(tmp_path):
    target = tmp_path / "out.ply"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_never_overwrites_an_input(tmp_path):
    write_cloud(tmp_path / "in.ply", rich_cloud())
    before = (tmp_path / "in.ply").read_bytes()
    cloud = read_cloud(tmp_path / "in.ply")
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_cloud(tmp_path / "in.ply", cloud)
    (tmp_path / "sub").mkdir()
    alias = tmp_path / "sub" / ".." / "in.ply"
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_cloud(alias, cloud.subset([0]), inputs=())
    os.symlink(tmp_path / "in.ply", tmp_path / "link.ply")
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        with atomic_output(tmp_path / "link.ply", inputs=[tmp_path / "in.ply"]):
            pass
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_mesh(tmp_path / "in.ply", trimesh.creation.box(), inputs=[tmp_path / "in.ply"])
    assert (tmp_path / "in.ply").read_bytes() == before


def test_atomic_output_refuses_a_missing_folder(tmp_path):
    with pytest.raises(PcflowError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "a.ply"):
            pass
    with pytest.raises(PcflowError, match="is a folder"):
        with atomic_output(tmp_path):
            pass


# ---------------------------------------------------------------------------------------------------------------
# bad input: one-line PcflowError naming the file


def ply_header(n, fmt="binary_little_endian", props=("x", "y", "z")):
    lines = ["ply", f"format {fmt} 1.0", f"element vertex {n}"] + [f"property float {p}" for p in props]
    return ("\n".join(lines + ["end_header"]) + "\n").encode()


def pcd_text(n_declared, rows, kind="ascii"):
    header = (f"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n_declared}\nHEIGHT 1\n"
              f"POINTS {n_declared}\nDATA {kind}\n")
    return header.encode() + rows


BAD_FILES = {
    "empty.ply": (b"", "empty file"),
    "cloud.foo": (b"1 2 3\n", r"suffix '\.foo'.*supported: \.ply, \.pcd"),
    "short.ply": (ply_header(100) + np.zeros((10, 3), "<f4").tobytes(), "corrupt or truncated PLY"),
    "short_ascii.ply": (ply_header(5, "ascii") + b"1 2 3\n4 5 6\n", "corrupt or truncated PLY"),
    "garbage.ply": (b"ply\nformat nonsense 1.0\nend_header\n", "corrupt or truncated PLY"),
    "notply.ply": (b"\x00\x01\x02binary junk", "corrupt or truncated PLY"),
    "abc.ply": (ply_header(2, props=("a", "b", "c")) + np.zeros(6, "<f4").tobytes(), "no x/y/z fields"),
    "lies.pcd": (pcd_text(100, b"1 2 3\n4 5 6\n"), "declares 100 points but the data holds 2 rows"),
    "lies_binary.pcd": (pcd_text(100, np.zeros(30, "<f4").tobytes(), "binary"), "truncated PCD binary"),
    "lies_compressed.pcd": (pcd_text(100, struct.pack("<II", 62, 1200) + lzf_literals(bytes(60))[:30],
                                     "binary_compressed"), "truncated PCD binary_compressed"),
    "bad_lzf.pcd": (pcd_text(5, struct.pack("<II", 2, 60) + bytes([0x20, 0x05]), "binary_compressed"),
                    "corrupt PCD binary_compressed"),
    "small_lzf.pcd": (pcd_text(5, struct.pack("<II", 13, 12) + lzf_literals(bytes(12)), "binary_compressed"),
                      "declares 5 points"),
    "noheader.pcd": (b"hello world\n", "corrupt PCD header"),
    "badtype.pcd": (pcd_text(1, b"1 2 3\n").replace(b"TYPE F F F", b"TYPE Q F F"), "corrupt PCD header"),
    "words.pcd": (pcd_text(2, b"1 2 3\n4 five 6\n"), "non-numeric"),
    "allnan.pcd": (pcd_text(2, b"nan nan nan\nnan 1 2\n"), "no finite points left"),
    "words.xyz": (b"1 2 3\n4 five 6\n", "non-numeric"),
    "prose.txt": (b"just some words\nand more words\n", "no numeric rows"),
    "ragged.csv": (b"1,2,3\n4,5\n", "line 2 has 2 columns"),
    "allnan.xyz": (b"nan 1 2\n3 inf 4\n", "no finite points left"),
    "binary.xyz": (b"\xff\xfe\x00\x81 1 2", "not a text file"),
    "corrupt.obj": (b"v 1 2\nf 1 2 9\n", "corrupt or unreadable mesh file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_raises_one_line_pcflow_error(tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PcflowError, match=message) as info:
        read_cloud(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_files_and_mesh_only_errors(tmp_path):
    with pytest.raises(PcflowError, match="no such file"):
        read_cloud(tmp_path / "missing.ply")
    with pytest.raises(PcflowError, match="no such file"):
        read_mesh(tmp_path / "missing.obj")
    write_cloud(tmp_path / "points.ply", rich_cloud())
    with pytest.raises(PcflowError, match="no faces"):
        read_mesh(tmp_path / "points.ply")
    with pytest.raises(PcflowError, match="cannot read meshes from files with suffix '.pcd'"):
        read_mesh(tmp_path / "points.pcd")
    with pytest.raises(PcflowError, match="cannot write point clouds to files with suffix '.pts'"):
        write_cloud(tmp_path / "out.pts", rich_cloud())
    with pytest.raises(PcflowError, match="uv has shape"):
        write_mesh(tmp_path / "m.obj", trimesh.creation.box(), uv=np.zeros((3, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.ply"]
