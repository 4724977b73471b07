"""Tests of pcflow.io.ply: big-endian input, upper-case coordinates, packed colours for PLY viewers."""

import numpy as np

from pcflow.io import PointCloud, describe, read_cloud, write_cloud


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
