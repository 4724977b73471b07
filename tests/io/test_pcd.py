"""Tests of pcflow.io.pcd: LZF against a reference decoder, compressed bodies, organized clouds, COUNT > 1, padding."""

import struct

import numpy as np
import pytest

from pcflow.errors import PcflowError
from pcflow.io import PointCloud, describe, read_cloud, write_cloud
from pcflow.io.pcd import lzf_decompress

from iosamples import lzf_literals, pcd_text, traced_peak


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


@pytest.mark.parametrize("line, message", [
    (b"COUNT 1 1 1", None),
    (b"COUNT 1000000000000 1 1", "SIZE x COUNT make points of more than"),
    (b"COUNT 536870912 1 1", "SIZE x COUNT make points of more than"),  # 2 GiB rows: numpy's dtype limit
    (b"COUNT 1000000 1 1", "truncated PCD binary data"),
])
def test_a_count_beyond_the_file_is_refused_before_allocating(tmp_path, line, message):
    body = pcd_text(2, np.arange(6, dtype="<f4").tobytes(), kind="binary").replace(b"COUNT 1 1 1", line)
    (tmp_path / "c.pcd").write_bytes(body)
    if message is None:
        assert read_cloud(tmp_path / "c.pcd").points.tolist() == [[0, 1, 2], [3, 4, 5]]
        return
    error, peak = traced_peak(read_cloud, tmp_path / "c.pcd")
    assert isinstance(error, PcflowError) and message in str(error) and peak < 1 << 20, error


@pytest.mark.parametrize("kind", ["ascii", "binary", "binary_compressed"])
def test_a_points_count_beyond_the_file_and_repeated_fields_are_refused(tmp_path, kind):
    rows = {"ascii": b"0 1 2\n3 4 5\n", "binary": np.arange(6, dtype="<f4").tobytes()}.get(kind)
    if rows is None:
        data = np.array([0, 3, 1, 4, 2, 5], dtype="<f4").tobytes()  # x x y y z z
        packed = lzf_literals(data)
        rows = struct.pack("<II", len(packed), len(data)) + packed
    (tmp_path / "ok.pcd").write_bytes(pcd_text(2, rows, kind))
    assert read_cloud(tmp_path / "ok.pcd").points.tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "big.pcd").write_bytes(pcd_text(10 ** 12, rows, kind))
    error, peak = traced_peak(read_cloud, tmp_path / "big.pcd")
    assert isinstance(error, PcflowError) and "10000000000" in str(error) and peak < 1 << 20, error
    (tmp_path / "twice.pcd").write_bytes(pcd_text(2, rows, kind).replace(b"FIELDS x y z", b"FIELDS x y x"))
    with pytest.raises(PcflowError, match="a field name occurs twice in FIELDS x y x"):
        read_cloud(tmp_path / "twice.pcd")
