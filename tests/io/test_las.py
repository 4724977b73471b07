"""Tests of pcflow.io.las reading: scales, offsets and fields against laspy; a missing laspy; damaged LAZ."""

import sys

import numpy as np
import pytest

from pcflow.errors import PcflowError
from pcflow.io import iter_cloud_chunks, read_cloud, write_cloud

from iosamples import rich_cloud


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


def test_damaged_laz_raises_one_line_pcflow_error(tmp_path):
    pytest.importorskip("lazrs")
    write_cloud(tmp_path / "a.laz", rich_cloud())
    data = (tmp_path / "a.laz").read_bytes()
    (tmp_path / "cut.laz").write_bytes(data[:len(data) * 3 // 4])  # the compressed points end early
    for read in (read_cloud, lambda path: list(iter_cloud_chunks(path, 7))):
        with pytest.raises(PcflowError, match="cut.laz: cannot read LAS/LAZ file") as info:
            read(tmp_path / "cut.laz")
        assert "\n" not in str(info.value)
