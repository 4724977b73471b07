"""Tests of pcflow.io's suffix table: round trips of every cloud format, suffixes, one-line errors on bad input."""

import struct

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.io import (CLOUD_SUFFIXES, CLOUD_WRITE_SUFFIXES, MESH_SUFFIXES, describe, read_cloud, read_mesh,
                       write_cloud, write_mesh)

from iosamples import rich_cloud, assert_same_fields, lzf_literals, ply_header, pcd_text


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


def test_modified_points_are_written_in_float64_when_the_field_dtype_would_round(tmp_path):
    cloud = rich_cloud()
    cloud.fields = cloud.fields.astype([(n, "f4" if n in "xyz" else cloud.fields.dtype[n])
                                        for n in cloud.fields.dtype.names])
    write_cloud(tmp_path / "c.ply", cloud)
    back = read_cloud(tmp_path / "c.ply")
    np.testing.assert_array_equal(back.points, cloud.points)
    assert back.fields.dtype["x"] == np.float64


def test_suffix_tables():
    assert {".ply", ".pcd", ".xyz", ".las", ".laz", ".obj"} <= set(CLOUD_SUFFIXES)
    assert {".ply", ".pcd", ".xyz"} <= set(CLOUD_WRITE_SUFFIXES)
    assert set(MESH_SUFFIXES) == {".ply", ".obj", ".stl", ".off", ".glb"}


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
    "overflow.ply": (ply_header(1, "ascii").replace(b"float z", b"uchar z") + b"1 2 300\n", "corrupt or truncated PLY"),
    "faces.off": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "corrupt or unreadable mesh file"),
    "version3.glb": (b"glTF" + struct.pack("<II", 3, 20) + bytes(8), "corrupt or unreadable mesh file"),
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
