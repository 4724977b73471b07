"""Tests of pcflow.io.las reading: scales, offsets and fields against laspy; a missing laspy; damaged LAZ."""

import struct
import sys
import time

import numpy as np
import pytest

from pcflow.errors import PcflowError
from pcflow.io import iter_cloud_chunks, read_cloud, write_cloud

from iosamples import rich_cloud, traced_peak


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


def _patched(data: bytes, at: int, layout: str, value) -> bytes:
    return data[:at] + struct.pack(layout, value) + data[at + struct.calcsize(layout):]


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_a_point_count_beyond_the_file_is_refused_before_allocating(tmp_path, suffix):
    if suffix == ".laz":
        pytest.importorskip("lazrs")
    write_cloud(tmp_path / f"a{suffix}", rich_cloud(40))
    data = (tmp_path / f"a{suffix}").read_bytes()
    read_cloud(tmp_path / f"a{suffix}")  # warm: laspy imported
    for count in (41, 10 ** 6, 10 ** 12):
        (tmp_path / f"big{suffix}").write_bytes(_patched(data, 247, "<Q", count))  # LAS 1.4's point count
        error, peak = traced_peak(read_cloud, tmp_path / f"big{suffix}")
        assert isinstance(error, PcflowError) and f"declares {count} points" in str(error), error
        assert peak < 1 << 20


def test_damaged_laz_chunk_tables_and_layers_are_refused_without_decoding(tmp_path):
    pytest.importorskip("lazrs")
    cloud = rich_cloud(40)
    write_cloud(tmp_path / "a.laz", cloud)
    data = (tmp_path / "a.laz").read_bytes()
    points_at, record = struct.unpack_from("<I", data, 96)[0], struct.unpack_from("<H", data, 105)[0]
    table = struct.unpack_from("<q", data, points_at)[0]
    laszip = data.index(b"laszip encoded") - 2 + 54  # the LASzip VLR's data
    # lazrs reserves the chunk table by this count (a failed reservation aborts the process)
    (tmp_path / "chunks.laz").write_bytes(_patched(data, table + 4, "<I", 2 ** 31))
    with pytest.raises(PcflowError, match="2147483648 LAZ chunks declared"):
        read_cloud(tmp_path / "chunks.laz")
    # the second layer (z) of the first chunk declared 3 GB: lazrs would fill that much before failing
    (tmp_path / "layer.laz").write_bytes(_patched(data, points_at + 8 + record + 8, "<I", 3 * 10 ** 9))
    start = time.perf_counter()
    with pytest.raises(PcflowError, match="a LAZ chunk at byte .* declares layers of"):
        read_cloud(tmp_path / "layer.laz")
    assert time.perf_counter() - start < 1
    # a damaged chunk size (points per chunk) is harmless to the one-thread decompressor
    (tmp_path / "size.laz").write_bytes(_patched(data, laszip + 12, "<I", 536920912))
    np.testing.assert_array_equal(read_cloud(tmp_path / "size.laz").points, read_cloud(tmp_path / "a.laz").points)
