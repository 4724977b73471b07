"""Tests of pcflow.io.ply: big-endian input, upper-case coordinates, packed colours for PLY viewers."""

import numpy as np
import pytest

from pcflow.errors import PcflowError
from pcflow.io import PointCloud, describe, read_cloud, write_cloud

from iosamples import ply_header, traced_peak


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


def test_packed_pcd_colours_become_ply_red_green_blue(tmp_path):
    cloud = PointCloud(np.eye(3), np.array([(1, 0, 0, 0xFF102030), (0, 1, 0, 0xFF405060), (0, 0, 1, 0xFF708090)],
                                           dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgba", "u4")]))
    write_cloud(tmp_path / "c.ply", cloud)
    back = read_cloud(tmp_path / "c.ply")
    assert back.fields.dtype.names == ("x", "y", "z", "rgba", "red", "green", "blue")
    np.testing.assert_array_equal(back.fields["rgba"], cloud.fields["rgba"])
    np.testing.assert_array_equal(back.colors, [[0x10, 0x20, 0x30], [0x40, 0x50, 0x60], [0x70, 0x80, 0x90]])


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
def test_a_header_count_beyond_the_file_is_refused_before_allocating(tmp_path, fmt):
    values = np.arange(6).reshape(2, 3)
    rows = b"0 1 2\n3 4 5\n" if fmt == "ascii" else values.astype("<f4" if "little" in fmt else ">f4").tobytes()
    (tmp_path / "ok.ply").write_bytes(ply_header(2, fmt) + rows)
    assert read_cloud(tmp_path / "ok.ply").points.tolist() == values.tolist()
    for count in (3, 10 ** 6, 10 ** 12):
        (tmp_path / "big.ply").write_bytes(ply_header(count, fmt) + rows)
        error, peak = traced_peak(read_cloud, tmp_path / "big.ply")
        assert isinstance(error, PcflowError) and f"declares {count} vertex rows" in str(error), error
        assert peak < 1 << 20
