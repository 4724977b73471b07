"""Tests that every vertex property, and every field's dtype, survives denoising in each format, whole or streamed."""

from pathlib import Path

import numpy as np
import pytest

from pcflow.io import PointCloud, read_cloud, write_cloud
from pcflow.pipeline.stream import split_cloud, split_file



class CentreModel:
    """Inliers within `radius` of `centre` (stand-in for a fitted OneFlow, with a decision function)."""

    def __init__(self, radius=2.0, centre=(0.0, 0.0, 0.0)):
        self.radius, self.centre = radius, np.asarray(centre, dtype=np.float64)

    def decision_function(self, X):
        return self.radius - np.linalg.norm(np.asarray(X, dtype=np.float64) - self.centre, axis=1)

    def predict(self, X):
        return np.where(self.decision_function(X) >= 0, 1, -1)


def rich_cloud(n=300, seed=0):
    """float32 coordinates and one field of each kind a scan carries: colours, intensity, classification, normals,
    a float64 curvature and a signed label."""
    rng = np.random.default_rng(seed)
    fields = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
                                ("intensity", "u2"), ("classification", "u1"), ("nx", "f4"), ("ny", "f4"),
                                ("nz", "f4"), ("curvature", "f8"), ("label", "i4")])
    points = rng.normal(size=(n, 3)).astype(np.float32) * 1.5
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    fields["intensity"] = rng.integers(0, 65536, n)
    fields["classification"] = rng.integers(0, 10, n)
    for name in ("nx", "ny", "nz"):
        fields[name] = rng.normal(size=n)
    fields["curvature"] = rng.random(n)
    fields["label"] = rng.integers(-1000, 1000, n)
    return PointCloud(points, fields)


#: (suffix, ascii, whether the format stores dtypes): the writer/reader pairs a cloud goes through
FORMATS = [(".ply", False, True), (".ply", True, True), (".pcd", False, True), (".pcd", True, True),
           (".xyz", False, False), (".txt", False, False), (".csv", False, False), (".las", False, True),
           (".laz", False, True)]


def source_file(folder, suffix, ascii):
    """The rich cloud in `suffix`; for LAS/LAZ a LAS file of every kind of dimension (standard and extra bytes)."""
    path = Path(folder) / f"source{'_ascii' if ascii else ''}{suffix}"
    cloud = rich_cloud()
    if suffix in (".las", ".laz"):
        laspy = pytest.importorskip("laspy")
        las = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
        las.header.scales, las.header.offsets = [1e-4] * 3, [0.0] * 3
        las.header.add_extra_dims([laspy.ExtraBytesParams(name, cloud.fields.dtype[name])
                                   for name in ("nx", "ny", "nz", "curvature", "label")])
        las.points = laspy.ScaleAwarePointRecord.zeros(len(cloud), header=las.header)
        las.x, las.y, las.z = cloud.points.T
        for name in cloud.fields.dtype.names[3:]:
            las[name] = cloud.fields[name].astype(np.uint16) * 257 if name in ("red", "green", "blue") else \
                cloud.fields[name]
        las.gps_time = np.arange(len(cloud)) * 0.5
        las.write(str(path))
    else:
        write_cloud(path, cloud, ascii=ascii)
    return path


def assert_same_fields(actual: PointCloud, expected: PointCloud, dtypes: bool):
    assert actual.fields.dtype.names == expected.fields.dtype.names
    for name in expected.fields.dtype.names:
        if dtypes:
            assert actual.fields.dtype[name] == expected.fields.dtype[name], name
        np.testing.assert_array_equal(actual.fields[name], expected.fields[name], err_msg=name)
    np.testing.assert_array_equal(actual.points, expected.points)


@pytest.mark.parametrize("suffix, ascii, typed", FORMATS, ids=lambda v: str(v))
def test_reading_keeps_every_property(tmp_path, suffix, ascii, typed):
    cloud, back = rich_cloud(), read_cloud(source_file(tmp_path, suffix, ascii))
    for name in cloud.fields.dtype.names:
        values = back.fields[name]
        if name in ("red", "green", "blue") and suffix in (".las", ".laz"):
            values = values // 257
        if typed and name not in ("x", "y", "z", "red", "green", "blue"):
            assert values.dtype == cloud.fields.dtype[name], name
        tolerance = 1e-4 / 2 if suffix in (".las", ".laz") and name in "xyz" else 0  # the LAS scale
        np.testing.assert_allclose(values, cloud.fields[name], rtol=0, atol=tolerance, err_msg=name)
    if typed and suffix not in (".las", ".laz"):
        assert back.fields.dtype == cloud.fields.dtype  # float32 coordinates stay float32


@pytest.mark.parametrize("chunk_size", [64, None])  # None: in memory (split_cloud), as reconstruct does
@pytest.mark.parametrize("suffix, ascii, typed", FORMATS, ids=lambda v: str(v))
def test_denoising_keeps_every_property_in_the_same_format(tmp_path, suffix, ascii, typed, chunk_size):
    path = source_file(tmp_path, suffix, ascii)
    source = read_cloud(path)
    model = CentreModel()
    outputs = [tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"]
    if chunk_size is None:
        split_cloud(source, model, outputs, ascii=ascii)
    else:
        split_file(path, model, *outputs, chunk_size=chunk_size, ascii=ascii)
    inside = model.predict(source.points) == 1
    assert 0 < (~inside).sum() < len(source)
    assert_same_fields(read_cloud(outputs[0]), source.subset(inside), typed)
    assert_same_fields(read_cloud(outputs[1]), source.subset(~inside), typed)


@pytest.mark.parametrize("name", ["table_scene_mug_stereo_textured.pcd", "milk_cartoon_all_small_clorox.pcd"])
def test_binary_compressed_pcd_scan_keeps_its_fields(tmp_path, name, shared_data):
    path = shared_data("scans", name)
    source = read_cloud(path)
    centre = np.median(source.points, axis=0)
    model = CentreModel(np.quantile(np.linalg.norm(source.points - centre, axis=1), 0.9), centre)
    split_file(path, model, tmp_path / "in.pcd", tmp_path / "out.ply", chunk_size=50_000)
    inside = model.predict(source.points) == 1
    assert_same_fields(read_cloud(tmp_path / "in.pcd"), source.subset(inside), dtypes=True)
    ply = read_cloud(tmp_path / "out.ply")  # PLY also gets red/green/blue from the packed rgba, for its viewers
    np.testing.assert_array_equal(ply.fields["rgba"], source.fields["rgba"][~inside])
    np.testing.assert_array_equal(ply.colors, source.colors[~inside])


@pytest.mark.parametrize("suffix, ascii", [(".ply", False), (".ply", True), (".pcd", False), (".pcd", True)])
@pytest.mark.parametrize("streamed", [True, False])
def test_float32_xyz_only_stays_float32(tmp_path, suffix, ascii, streamed):
    points = np.random.default_rng(3).normal(size=(1000, 3)).astype(np.float32)
    fields = np.empty(len(points), dtype=[(axis, "f4") for axis in "xyz"])
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    path = tmp_path / f"xyz{suffix}"
    write_cloud(path, PointCloud(points, fields), ascii=ascii)
    source = read_cloud(path)
    assert source.fields.dtype == fields.dtype
    if streamed:
        split_file(path, CentreModel(), tmp_path / f"clean{suffix}", chunk_size=300, ascii=ascii)
    else:
        split_cloud(source, CentreModel(), [tmp_path / f"clean{suffix}"], ascii=ascii)
    clean = read_cloud(tmp_path / f"clean{suffix}")
    assert clean.fields.dtype == fields.dtype
    if not ascii:  # 12 bytes a point, as in the input, not 24
        size = (tmp_path / f"clean{suffix}").stat().st_size
        assert len(clean) * 12 < size < len(clean) * 12 + 400


def test_float64_xyz_only_stays_without_fields(tmp_path):
    points = np.random.default_rng(4).normal(size=(50, 3))
    write_cloud(tmp_path / "a.ply", PointCloud(points))
    back = read_cloud(tmp_path / "a.ply")
    assert back.fields is None
    np.testing.assert_array_equal(back.points, points)


def test_int64_fields_keep_their_dtype_in_pcd_and_las(tmp_path):
    cloud = PointCloud(np.random.default_rng(5).normal(size=(20, 3))).with_fields(
        {"timestamp": np.arange(20, dtype=np.uint64) * 10**12, "offset": -np.arange(20, dtype=np.int64) * 2**40})
    for suffix in (".pcd", ".las"):
        if suffix == ".las":
            pytest.importorskip("laspy")
        write_cloud(tmp_path / f"a{suffix}", cloud)
        back = read_cloud(tmp_path / f"a{suffix}")
        for name in ("timestamp", "offset"):
            assert back.fields[name].dtype == cloud.fields[name].dtype, (suffix, name)
            np.testing.assert_array_equal(back.fields[name], cloud.fields[name])
