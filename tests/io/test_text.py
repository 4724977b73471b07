"""Tests of pcflow.io.text: XYZ/CSV round trips, header lines, column names, PTS."""

import numpy as np

from pcflow.io import read_cloud, write_cloud

from iosamples import rich_cloud


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
