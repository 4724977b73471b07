"""Tests of --classify (outliers marked ASPRS class 7, every point kept) and --scores (per-point outlier_score)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pcflow.cli import main
from pcflow.models import OneFlow
from pcflow.io import PointCloud, read_cloud, write_cloud
from pcflow.pipeline.stream import NOISE_CLASS, SCORE_FIELD, UNCLASSIFIED, classified_cloud, judge, split_cloud, split_file

FIT = ["--epochs", "3", "--surface-steps", "10", "--couplings", "2", "--hidden", "16", "--mode", "envelope", "-q"]


class CentreModel:
    """Inliers within `radius` of `centre` (stand-in for a fitted OneFlow, with a decision function)."""

    def __init__(self, centre, radius):
        self.centre, self.radius = np.asarray(centre, dtype=np.float64), radius

    def decision_function(self, X):
        return self.radius - np.linalg.norm(np.asarray(X, dtype=np.float64) - self.centre, axis=1)

    def predict(self, X):
        return np.where(self.decision_function(X) >= 0, 1, -1)


def centre_model(points, share=0.9):
    centre = np.median(points, axis=0)
    return CentreModel(centre, np.quantile(np.linalg.norm(points - centre, axis=1), share))


def noisy_sphere(n=1200, n_outliers=60, seed=0, classification=None):
    """float32 points on a unit sphere plus uniform outliers, with colours and, on request, a classification."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points[:n_outliers] = rng.uniform(-2, 2, size=(n_outliers, 3))
    dtype = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    fields = np.empty(n, dtype=dtype + ([("classification", classification)] if classification else []))
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    if classification:
        fields["classification"] = rng.integers(0, 6, n)
    return PointCloud(fields_points(fields), fields)


def fields_points(fields):
    return np.stack([fields[axis].astype(np.float64) for axis in "xyz"], axis=1)


def test_classified_cloud_keeps_classes_and_adds_the_field_where_absent():
    cloud = noisy_sphere(n=100, classification="i4")
    inside = np.random.default_rng(1).random(100) < 0.8
    marked = classified_cloud(cloud, inside)
    assert marked.fields.dtype == cloud.fields.dtype  # an existing int32 classification stays int32
    np.testing.assert_array_equal(marked.fields["classification"][inside], cloud.fields["classification"][inside])
    assert (marked.fields["classification"][~inside] == NOISE_CLASS).all()
    np.testing.assert_array_equal(marked.points, cloud.points)
    plain = classified_cloud(noisy_sphere(n=100), inside)
    assert plain.fields.dtype["classification"] == np.uint8
    np.testing.assert_array_equal(plain.fields["classification"], np.where(inside, UNCLASSIFIED, NOISE_CLASS))


def test_judge_scores_are_minus_the_decision_function_and_split_at_zero():
    points = np.random.default_rng(2).normal(size=(200, 3))
    model = centre_model(points)
    inside, scores = judge(model, points, scores=True)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, (-model.decision_function(points)).astype(np.float32))
    np.testing.assert_array_equal(inside, model.predict(points) == 1)
    np.testing.assert_array_equal(inside, scores <= 0)
    assert judge(model, points)[1] is None


@pytest.mark.parametrize("suffix, ascii", [(".ply", False), (".ply", True), (".pcd", False), (".csv", False),
                                           (".las", False)])
@pytest.mark.parametrize("classification", [None, "u1"])
def test_classified_output_holds_every_point_streamed_or_whole(tmp_path, suffix, ascii, classification):
    if suffix == ".las":
        pytest.importorskip("laspy")
    cloud = noisy_sphere(classification=classification)
    write_cloud(tmp_path / "scan.ply", cloud)
    source = read_cloud(tmp_path / "scan.ply")
    model = centre_model(source.points)
    inside, scores = judge(model, source.points, scores=True)
    expected = classified_cloud(source, inside).with_fields({SCORE_FIELD: scores})
    split_file(tmp_path / "scan.ply", model, None, classified_path=tmp_path / f"streamed{suffix}", scores=True,
               chunk_size=100, ascii=ascii)
    split_cloud(source, model, [], classified=tmp_path / f"whole{suffix}", scores=True, ascii=ascii)
    for name in ("streamed", "whole"):
        back = read_cloud(tmp_path / f"{name}{suffix}")
        assert len(back) == len(source)
        np.testing.assert_array_equal(back.fields["classification"], expected.fields["classification"])
        np.testing.assert_array_equal(back.fields[SCORE_FIELD], scores)
        assert (back.fields["classification"] == NOISE_CLASS).sum() == (~inside).sum() > 0
        np.testing.assert_allclose(back.points, source.points, atol=1e-6 if suffix == ".las" else 0)
        if suffix != ".csv":  # text has no dtypes
            assert back.fields.dtype[SCORE_FIELD] == np.float32
            assert back.fields.dtype["classification"] == np.uint8


def test_classified_las_keeps_the_header_and_every_other_dimension(tmp_path, shared_data):
    laspy = pytest.importorskip("laspy")
    simple = shared_data("scans", "simple.las")
    source = read_cloud(simple)
    model = centre_model(source.points)
    inside = model.predict(source.points) == 1
    split_file(simple, model, None, classified_path=tmp_path / "marked.laz", scores=True, chunk_size=300)
    out, ref = laspy.read(str(tmp_path / "marked.laz")), laspy.read(str(simple))
    assert out.header.point_format.id == ref.header.point_format.id and out.header.version == ref.header.version
    np.testing.assert_array_equal(out.header.scales, ref.header.scales)
    np.testing.assert_array_equal(out.header.offsets, ref.header.offsets)
    assert list(out.point_format.extra_dimension_names) == [SCORE_FIELD]
    np.testing.assert_array_equal(out.classification, np.where(inside, ref.classification, NOISE_CLASS))
    for name in ref.point_format.dimension_names:
        if name != "classification":
            np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(ref[name]), err_msg=name)
    assert ((np.asarray(out[SCORE_FIELD]) > 0) == ~inside).all()


@pytest.fixture(scope="module")
def sphere_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "sphere.ply"
    write_cloud(path, noisy_sphere())
    return path


def test_cli_denoise_classify_and_scores(sphere_file, tmp_path, capsys):
    out, removed = tmp_path / "marked.ply", tmp_path / "removed.pcd"
    loud = [arg for arg in FIT if arg != "-q"]
    assert main(["denoise", str(sphere_file), "-o", str(out), "--outliers", str(removed), "--classify", "--scores",
                 *loud]) == 0
    source, marked, noise = read_cloud(sphere_file), read_cloud(out), read_cloud(removed)
    assert len(marked) == len(source)
    np.testing.assert_array_equal(marked.points, source.points)
    assert marked.fields.dtype["x"] == np.float32 and marked.fields.dtype[SCORE_FIELD] == np.float32
    outlying = marked.fields["classification"] == NOISE_CLASS
    np.testing.assert_array_equal(outlying, marked.fields[SCORE_FIELD] > 0)
    assert (marked.fields["classification"][~outlying] == UNCLASSIFIED).all()
    assert 0 < outlying.sum() < 0.2 * len(source)
    np.testing.assert_array_equal(noise.points, source.points[outlying])
    np.testing.assert_array_equal(noise.fields[SCORE_FIELD], marked.fields[SCORE_FIELD][outlying])
    assert f"marked {outlying.sum()} of {len(source)} points as noise (class 7)" in capsys.readouterr().out


def test_cli_reconstruct_classify_and_scores(sphere_file, tmp_path):
    out = tmp_path / "out"
    assert main(["reconstruct", str(sphere_file), "-o", str(out), "--classify", "--scores", "--no-preview",
                 *FIT]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "classified.ply" in report["files"]
    source = read_cloud(sphere_file)
    model = OneFlow.load(out / "model.pt")
    scores = (-model.decision_function(source.points)).astype(np.float32)
    inliers, outliers, marked = (read_cloud(out / name) for name in ("inliers.ply", "outliers.ply", "classified.ply"))
    np.testing.assert_array_equal(marked.fields[SCORE_FIELD], scores)
    np.testing.assert_array_equal(inliers.fields[SCORE_FIELD], scores[scores <= 0])
    np.testing.assert_array_equal(outliers.fields[SCORE_FIELD], scores[scores > 0])
    np.testing.assert_array_equal(marked.fields["classification"], np.where(scores > 0, NOISE_CLASS, UNCLASSIFIED))
    assert report["n_outliers"] == len(outliers) == (scores > 0).sum()
    for cloud in (inliers, outliers, marked):  # float32 coordinates and the colours kept
        assert cloud.fields.dtype["x"] == np.float32 and cloud.fields.dtype["red"] == np.uint8


def test_cli_denoise_las_classify(tmp_path, shared_data):
    laspy = pytest.importorskip("laspy")
    simple = shared_data("scans", "simple.las")
    assert main(["denoise", str(simple), "-o", str(tmp_path / "marked.las"), "--classify", *FIT]) == 0
    out, ref = laspy.read(str(tmp_path / "marked.las")), laspy.read(str(simple))
    np.testing.assert_array_equal(out.points.array["X"], ref.points.array["X"])
    noise = out.classification == NOISE_CLASS
    assert 0 < noise.sum() < 0.2 * len(ref.points)
    np.testing.assert_array_equal(out.classification[~noise], ref.classification[~noise])


def test_batch_passes_classify_and_scores_to_every_file(sphere_file, tmp_path):
    other = tmp_path / "other.ply"
    other.write_bytes(sphere_file.read_bytes())
    assert main(["reconstruct", str(sphere_file), str(other), "-o", str(tmp_path / "out"), "--classify", "--scores",
                 "--no-preview", *FIT]) == 0
    report = json.loads((tmp_path / "out" / "batch_report.json").read_text())
    assert report["n_ok"] == 2
    for entry in report["files"]:
        folder = Path(entry["output"])
        classified = read_cloud(folder / "classified.ply")
        inliers = read_cloud(folder / "inliers.ply")
        assert len(classified) == len(read_cloud(sphere_file))
        assert (classified.fields["classification"] == NOISE_CLASS).sum() == entry["n_outliers"]
        assert (inliers.fields[SCORE_FIELD] <= 0).all()
