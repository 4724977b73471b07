"""Tests of LAS/LAZ output: a LAS source keeps its header and every dimension, other clouds get a fitting header."""

import numpy as np
import pytest

from pcflow.cli import main
from pcflow.errors import PcflowError
from pcflow.io import CloudWriter, PointCloud, _las_scaling, read_cloud, read_las_header, write_cloud
from pcflow.pipeline.stream import split_file

laspy = pytest.importorskip("laspy")

WKT = ('PROJCS["NAD83 / North Carolina (ftUS)",GEOGCS["NAD83",DATUM["North_American_Datum_1983",'
       'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
       'PROJECTION["Lambert_Conformal_Conic_2SP"],UNIT["US survey foot",0.304800609601219],'
       'AUTHORITY["EPSG","2264"]]')


@pytest.fixture(scope="module")
def simple_las(shared_data):
    return shared_data("scans", "simple.las")


@pytest.fixture(scope="module")
def rich_las(tmp_path_factory, simple_las):
    """simple.las as LAS 1.4 point format 7 with a CRS record, a custom VLR, an EVLR and extra-bytes dimensions
    (a float, a scaled integer and an array of three)."""
    las = laspy.convert(laspy.read(str(simple_las)), point_format_id=7, file_version="1.4")
    las.add_extra_dims([
        laspy.ExtraBytesParams("reflectance", "f4"),
        laspy.ExtraBytesParams("height", "i4", scales=np.array([0.01]), offsets=np.array([0.0])),
        laspy.ExtraBytesParams("echo", "3u2"),
    ])
    rng = np.random.default_rng(0)
    n = len(las.points)
    las.reflectance = rng.normal(size=n).astype(np.float32)
    las.height = np.round(rng.uniform(0, 50, n), 2)
    las.echo = rng.integers(0, 65535, size=(n, 3))
    las.classification = rng.integers(0, 20, n)  # format 7 holds classes above 31 too; these fit both
    las.header.vlrs.append(laspy.vlrs.known.WktCoordinateSystemVlr(WKT))
    las.header.vlrs.append(laspy.VLR("pcflow-test", 42, "a custom record", b"\x01\x02\x03"))
    las.evlrs = laspy.vlrs.vlrlist.VLRList([laspy.VLR("pcflow-test", 43, "an extended record", bytes(range(200)))])
    path = tmp_path_factory.mktemp("las") / "rich.las"
    las.write(str(path))
    return path


def vlr_keys(vlrs, skip=()):
    return [(v.user_id, v.record_id, v.description, bytes(v.record_data_bytes())) for v in vlrs
            if type(v).__name__ not in skip]


def assert_same_las(path, reference, rows=None, new_dims=()):
    """Every dimension of `path` equals `reference`'s (at `rows`), and so do the header's layout and records."""
    out, ref = laspy.read(str(path)), laspy.read(str(reference))
    rows = np.arange(len(ref.points)) if rows is None else rows
    assert out.header.version == ref.header.version
    assert out.header.point_format.id == ref.header.point_format.id
    assert list(out.point_format.dimension_names) == list(ref.point_format.dimension_names) + list(new_dims)
    np.testing.assert_array_equal(out.header.scales, ref.header.scales)
    np.testing.assert_array_equal(out.header.offsets, ref.header.offsets)
    skip = ("ExtraBytesVlr", "LasZipVlr")  # extra bytes: their min / max statistics follow the rows written
    assert vlr_keys(out.header.vlrs, skip) == vlr_keys(ref.header.vlrs, skip)
    for dim in ref.point_format.extra_dimensions:
        again = out.point_format.dimension_by_name(dim.name)
        assert (again.dtype, again.num_elements, again.scales, again.offsets) == \
            (dim.dtype, dim.num_elements, dim.scales, dim.offsets), dim.name
    assert vlr_keys(out.evlrs or []) == vlr_keys(ref.evlrs or [])
    assert out.header.point_count == len(rows)
    for name in ref.point_format.dimension_names:
        np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(ref[name])[rows], err_msg=name)
    np.testing.assert_allclose(out.header.mins, np.asarray([ref.x, ref.y, ref.z])[:, rows].min(axis=1))
    return out


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_round_trip_keeps_header_and_every_dimension(tmp_path, suffix, simple_las):
    cloud = read_cloud(simple_las)
    assert cloud.las_header is not None and "scan_angle_rank" in cloud.fields.dtype.names
    write_cloud(tmp_path / f"out{suffix}", cloud)
    out = assert_same_las(tmp_path / f"out{suffix}", simple_las)
    assert out.header.are_points_compressed == (suffix == ".laz")
    np.testing.assert_array_equal(out.points.array, laspy.read(str(simple_las)).points.array)  # byte for byte


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_14_with_vlrs_evlrs_and_extra_bytes_keeps_them_in_a_subset(tmp_path, rich_las, suffix):
    cloud = read_cloud(rich_las)
    assert {"reflectance", "height", "echo_0", "echo_2"} <= set(cloud.fields.dtype.names)
    rows = np.flatnonzero(np.random.default_rng(1).random(len(cloud)) < 0.6)
    write_cloud(tmp_path / f"part{suffix}", cloud.subset(rows))
    assert_same_las(tmp_path / f"part{suffix}", rich_las, rows)
    back = read_cloud(tmp_path / f"part{suffix}")
    assert back.fields.dtype == cloud.fields.dtype
    np.testing.assert_array_equal(back.fields, cloud.fields[rows])


@pytest.mark.parametrize("chunk_size", [100, 5000])
@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_chunked_writer_equals_write_cloud(tmp_path, rich_las, chunk_size, suffix):
    cloud = read_cloud(rich_las)
    with CloudWriter(tmp_path / f"chunks{suffix}") as writer:
        for start in range(0, len(cloud), chunk_size):
            writer.write(cloud.subset(np.arange(start, min(start + chunk_size, len(cloud)))))
    assert writer.count == len(cloud)
    assert_same_las(tmp_path / f"chunks{suffix}", rich_las)


def test_added_fields_become_extra_bytes(tmp_path, rich_las):
    cloud = read_cloud(rich_las)
    score = np.linspace(-1, 1, len(cloud), dtype=np.float32)
    write_cloud(tmp_path / "scored.las", cloud.with_fields({"outlier_score": score}))
    out = assert_same_las(tmp_path / "scored.las", rich_las, new_dims=["outlier_score"])
    np.testing.assert_array_equal(out.outlier_score, score)
    assert out.outlier_score.dtype == np.float32


def float32_cloud(n=400, seed=0, offset=(0.0, 0.0, 0.0)):
    """float32 coordinates, uchar colours, float32 normals, a float intensity in [0, 1], a uint8 classification and
    an int64 label."""
    rng = np.random.default_rng(seed)
    fields = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
                                ("nx", "f4"), ("ny", "f4"), ("nz", "f4"), ("intensity", "f4"),
                                ("classification", "u1"), ("label", "i8")])
    points = (rng.normal(size=(n, 3)) * [3.0, 2.0, 0.5] + offset).astype(np.float32)
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    for name in ("nx", "ny", "nz"):
        fields[name] = rng.normal(size=n)
    fields["intensity"] = rng.random(n)
    fields["classification"] = rng.integers(0, 64, n)
    fields["label"] = rng.integers(-2**40, 2**40, n)
    return PointCloud(points, fields)


@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (4.5e5, 5.6e6, 300.0)])
def test_other_clouds_get_a_header_that_keeps_their_values(tmp_path, offset):
    cloud = float32_cloud(offset=offset)
    write_cloud(tmp_path / "out.las", cloud)
    las = laspy.read(str(tmp_path / "out.las"))
    assert las.header.version == "1.4" and las.header.point_format.id == 7  # 7: with RGB
    assert list(las.point_format.extra_dimension_names) == ["nx", "ny", "nz", "intensity_value", "label"]
    back = read_cloud(tmp_path / "out.las")
    scales = las.header.scales
    assert np.all(np.abs(back.points - cloud.points) <= scales / 2 + 4 * np.spacing(np.abs(cloud.points)))
    extent = np.abs(cloud.points).max(axis=0)
    assert np.all(scales <= np.spacing(extent.astype(np.float32)))  # as fine as float32 at the cloud's extent
    np.testing.assert_array_equal(back.colors, cloud.colors)
    np.testing.assert_array_equal(back.fields["red"], cloud.fields["red"].astype(np.uint16) * 257)
    for name in ("nx", "ny", "nz", "classification", "label"):
        np.testing.assert_array_equal(back.fields[name], cloud.fields[name], err_msg=name)
        assert back.fields[name].dtype == cloud.fields[name].dtype, name
    np.testing.assert_array_equal(back.fields["intensity_value"], cloud.fields["intensity"])


def test_a_cloud_without_colours_gets_point_format_6_and_xyz_only_works(tmp_path):
    points = np.random.default_rng(2).uniform(-1, 1, (50, 3))
    write_cloud(tmp_path / "plain.laz", PointCloud(points))
    las = laspy.read(str(tmp_path / "plain.laz"))
    assert las.header.point_format.id == 6 and las.header.are_points_compressed
    np.testing.assert_allclose(read_cloud(tmp_path / "plain.laz").points, points, rtol=0, atol=las.header.scales[0])


@pytest.mark.parametrize("low, high", [([0, 0, 0], [1, 1, 1]), ([-1e6, 4e6, -10], [1e6, 4.1e6, 3000]),
                                       ([5, 5, 5], [5, 5, 5]), ([-0.001, 2, 7], [0.001, 2.5, 7.25])])
def test_scaling_fits_the_range_in_32_bits(low, high):
    scales, offsets = _las_scaling(np.array(low, float), np.array(high, float))
    np.testing.assert_allclose(np.log10(scales), np.round(np.log10(scales)))  # powers of ten
    for bound in (low, high):
        assert np.all(np.abs((np.array(bound) - offsets) / scales) < 2 ** 31 - 1)
    assert np.all(scales * 2 ** 31 / 10 < np.maximum(np.subtract(high, low), 2e-3))  # a ten times finer one won't fit


def test_chunked_writer_without_bounds_falls_out_of_range_as_a_layout_error(tmp_path):
    from pcflow.io import ChunkLayoutError

    with pytest.raises(ChunkLayoutError, match="outside what the LAS header"):
        with CloudWriter(tmp_path / "a.las") as writer:
            writer.write(PointCloud(np.random.default_rng(0).uniform(0, 1, (20, 3))))
            writer.write(PointCloud(np.full((3, 3), 1e6)))
    assert list(tmp_path.iterdir()) == []
    with CloudWriter(tmp_path / "b.las", bounds=(np.zeros(3), np.full(3, 1e6))) as writer:
        writer.write(PointCloud(np.random.default_rng(0).uniform(0, 1, (20, 3))))
        writer.write(PointCloud(np.full((3, 3), 1e6)))
    np.testing.assert_allclose(read_cloud(tmp_path / "b.las").points[-1], [1e6] * 3)


class CentreModel:
    """Inliers within `radius` of `centre` (stand-in for a fitted OneFlow, with a decision function)."""

    def __init__(self, centre, radius):
        self.centre, self.radius = np.asarray(centre, float), radius

    def decision_function(self, X):
        return self.radius - np.linalg.norm(np.asarray(X) - self.centre, axis=1)

    def predict(self, X):
        return np.where(self.decision_function(X) >= 0, 1, -1)


def centre_model(cloud, share=0.9):
    centre = np.median(cloud.points, axis=0)
    return CentreModel(centre, np.quantile(np.linalg.norm(cloud.points - centre, axis=1), share))


@pytest.mark.parametrize("chunk_size", [128, 10**6])
def test_split_file_las_to_las_keeps_the_header_and_rows(tmp_path, rich_las, chunk_size):
    cloud = read_cloud(rich_las)
    model = centre_model(cloud)
    inside = model.predict(cloud.points) == 1
    counts = split_file(rich_las, model, tmp_path / "in.laz", tmp_path / "out.las", chunk_size=chunk_size)
    assert counts["streamed"] and counts["n_inliers"] == inside.sum()
    assert_same_las(tmp_path / "in.laz", rich_las, np.flatnonzero(inside))
    assert_same_las(tmp_path / "out.las", rich_las, np.flatnonzero(~inside))


def test_split_file_ply_to_las_streams_with_the_whole_cloud_bounds(tmp_path):
    cloud = float32_cloud(n=1000, offset=(4.5e5, 5.6e6, 300.0))
    write_cloud(tmp_path / "in.ply", cloud)
    model = centre_model(cloud)
    split_file(tmp_path / "in.ply", model, tmp_path / "streamed.las", chunk_size=97)
    split_file(tmp_path / "in.ply", model, tmp_path / "whole.las", chunk_size=10**6)
    streamed, whole = laspy.read(str(tmp_path / "streamed.las")), laspy.read(str(tmp_path / "whole.las"))
    np.testing.assert_array_equal(streamed.header.scales, whole.header.scales)
    np.testing.assert_array_equal(streamed.points.array, whole.points.array)


def test_read_las_header_and_errors(tmp_path, simple_las):
    assert read_las_header(tmp_path / "a.ply") is None
    assert read_las_header(simple_las).point_format.id == 3
    with pytest.raises(PcflowError, match="needs 3-D points"):
        write_cloud(tmp_path / "flat.las", PointCloud(np.zeros((4, 2))))
    long_name = "a_field_name_longer_than_32_bytes"
    cloud = PointCloud(np.zeros((2, 3))).with_fields({long_name: np.zeros(2)})
    with pytest.raises(PcflowError, match="longer than LAS extra bytes allow"):
        write_cloud(tmp_path / "long.las", cloud)
    assert list(tmp_path.iterdir()) == []


def test_cli_denoise_las_to_las(tmp_path, simple_las):
    argv = ["denoise", str(simple_las), "-o", str(tmp_path / "clean.las"), "--outliers", str(tmp_path / "noise.laz"),
            "--epochs", "3", "--surface-steps", "10", "--couplings", "2", "--hidden", "16", "--max-train-points",
            "300", "--mode", "envelope", "-q"]
    assert main(argv) == 0
    clean, noise = laspy.read(str(tmp_path / "clean.las")), laspy.read(str(tmp_path / "noise.laz"))
    source = laspy.read(str(simple_las))
    assert len(clean.points) + len(noise.points) == len(source.points) and len(noise.points) > 0
    rows = np.sort(np.concatenate([clean.gps_time, noise.gps_time]))
    np.testing.assert_array_equal(rows, np.sort(source.gps_time))
    for las in (clean, noise):
        assert las.header.point_format.id == 3 and las.header.version == "1.2"
        np.testing.assert_array_equal(las.header.scales, source.header.scales)
