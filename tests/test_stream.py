"""Tests of chunked denoising: the same rows, fields and model as the whole-file path, in any chunking."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pcflow import PcflowError
from pcflow.io import PointCloud, iter_cloud_chunks, read_cloud, write_cloud
from pcflow.pipeline import PER_RUN_REPORT_KEYS, FitOptions, MeshOptions, fit_cloud, reconstruct
from pcflow.pipeline import stream
from pcflow.pipeline.stream import (available_memory, denoise_file, fit_file, in_memory_bytes, point_count_hint,
                                    should_stream, split_file)

ROOT = Path(__file__).resolve().parents[1]
TINY = FitOptions(epochs=3, surface_steps=10, n_couplings=2, hidden_features=16, max_train_points=300, seed=3)


class BallModel:
    """Stand-in for a fitted OneFlow: inside a ball around the origin; can fail on its n-th call."""

    def __init__(self, radius=1.0, fail_on_call=None):
        self.radius, self.fail_on_call, self.calls = radius, fail_on_call, 0

    def predict(self, X):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise PcflowError("scoring failed on purpose")
        X = np.asarray(X, dtype=np.float64)
        assert X.ndim == 2 and X.shape[1] == 3 and np.isfinite(X).all()
        return np.where(np.linalg.norm(X, axis=1) <= self.radius, 1, -1)


def make_cloud(n=500, seed=0, n_nan=3):
    """Sphere surface plus uniform outliers, float32 xyz, uchar colours, a float64 intensity, some NaN rows."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, 3))
    points = direction / np.linalg.norm(direction, axis=1, keepdims=True) * 0.8
    points[: n // 10] = rng.uniform(-1.5, 1.5, size=(n // 10, 3))
    rng.shuffle(points)
    fields = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("intensity", "f8")])
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    fields["intensity"] = rng.normal(size=n)
    fields["x"][rng.choice(n, n_nan, replace=False)] = np.nan
    return fields


def write_input(folder, suffix, ascii, fields):
    """Writes `fields` (NaN rows included) through pcflow's own writers, which keep non-finite rows."""
    points = np.stack([fields[axis].astype(np.float64) for axis in "xyz"], axis=1)
    path = Path(folder) / f"input{'_ascii' if ascii else ''}{suffix}"
    write_cloud(path, PointCloud(points, fields), ascii=ascii)
    return path


def in_memory(path, model, folder, suffix=".ply", ascii=False):
    """The whole-file reference: read_cloud, predict, write_cloud."""
    cloud = read_cloud(path)
    inside = model.predict(cloud.points) == 1
    inliers, outliers = Path(folder) / f"ref_in{suffix}", Path(folder) / f"ref_out{suffix}"
    write_cloud(inliers, cloud.subset(inside), ascii=ascii)
    write_cloud(outliers, cloud.subset(~inside), ascii=ascii)
    return cloud, read_cloud(inliers), read_cloud(outliers)


def assert_same_cloud(actual, expected):
    np.testing.assert_array_equal(actual.points, expected.points)
    if expected.fields is None:
        assert actual.fields is None
    else:
        assert actual.fields.dtype == expected.fields.dtype
        np.testing.assert_array_equal(actual.fields, expected.fields)


INPUTS = [(".ply", False), (".ply", True), (".xyz", False), (".pcd", False), (".pcd", True), (".csv", False)]


@pytest.mark.parametrize("suffix, ascii", INPUTS, ids=lambda v: str(v))
@pytest.mark.parametrize("chunk_size", [97, 500, 10**6])
def test_split_equals_whole_file_path(tmp_path, suffix, ascii, chunk_size):
    path = write_input(tmp_path, suffix, ascii, make_cloud())
    source, ref_in, ref_out = in_memory(path, BallModel(), tmp_path)
    counts = split_file(path, BallModel(), tmp_path / "in.ply", tmp_path / "out.ply", chunk_size=chunk_size)
    assert counts["streamed"]
    assert counts["n_dropped_nonfinite"] == source.n_dropped_nonfinite == 3
    assert counts["n_points"] == 500 and counts["n_inliers"] + counts["n_outliers"] == len(source) == 497
    inliers, outliers = read_cloud(tmp_path / "in.ply"), read_cloud(tmp_path / "out.ply")
    assert len(inliers) == counts["n_inliers"] and 0 < counts["n_outliers"] < 100
    assert_same_cloud(inliers, ref_in)
    assert_same_cloud(outliers, ref_out)


@pytest.mark.parametrize("suffix, ascii", [(".ply", True), (".pcd", False), (".pcd", True), (".xyz", False),
                                           (".txt", False), (".csv", False)], ids=lambda v: str(v))
def test_every_output_format_matches_write_cloud(tmp_path, suffix, ascii):
    path = write_input(tmp_path, ".ply", False, make_cloud(seed=1))
    _, ref_in, ref_out = in_memory(path, BallModel(), tmp_path, suffix=suffix, ascii=ascii)
    split_file(path, BallModel(), tmp_path / f"in{suffix}", tmp_path / f"out{suffix}", chunk_size=61, ascii=ascii)
    assert_same_cloud(read_cloud(tmp_path / f"in{suffix}"), ref_in)
    assert_same_cloud(read_cloud(tmp_path / f"out{suffix}"), ref_out)


def test_chunks_concatenate_to_the_whole_file(tmp_path):
    path = write_input(tmp_path, ".pcd", False, make_cloud())
    chunks = list(iter_cloud_chunks(path, 128))
    assert [len(c) for c in chunks] == [128, 128, 128, 116]
    whole = np.concatenate(chunks)
    finite = np.isfinite(whole["x"])
    np.testing.assert_array_equal(whole[finite], read_cloud(path).fields)


def test_fit_file_gives_the_model_fit_cloud_gives(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud(n=700))
    fitted = fit_file(path, TINY, chunk_size=101)
    cloud = read_cloud(path)
    reference = fit_cloud(cloud, TINY)
    assert fitted.n_points == 700 and fitted.n_dropped_nonfinite == 3 and len(fitted.train) == 300
    assert fitted.model.radius_ == reference.radius_
    np.testing.assert_array_equal(fitted.model.score_samples(cloud.points), reference.score_samples(cloud.points))


def test_denoise_file_reports_counts_and_keeps_everything(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud(n=700))
    result = denoise_file(path, tmp_path / "in.ply", tmp_path / "out.ply", fit_options=TINY, chunk_size=200)
    assert result["n_points"] == 700 and result["n_dropped_nonfinite"] == 3 and result["n_train"] == 300
    assert result["n_inliers"] + result["n_outliers"] == 697
    _, ref_in, ref_out = in_memory(path, result["model"], tmp_path)
    assert_same_cloud(read_cloud(tmp_path / "in.ply"), ref_in)
    assert_same_cloud(read_cloud(tmp_path / "out.ply"), ref_out)
    for stage in ("read", "fit", "score", "write_clouds", "total"):
        assert result["timings"][stage] >= 0


def test_failure_midway_leaves_no_file(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud())
    before = set(tmp_path.iterdir())
    with pytest.raises(PcflowError, match="on purpose"):
        split_file(path, BallModel(fail_on_call=3), tmp_path / "in.ply", tmp_path / "out.ply", chunk_size=100)
    assert set(tmp_path.iterdir()) == before  # neither outputs nor temporary files


def test_truncated_file_found_late_leaves_no_file(tmp_path):
    path = write_input(tmp_path, ".pcd", True, make_cloud())
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-50]))  # the header still declares 500 points
    before = set(tmp_path.iterdir())
    with pytest.raises(PcflowError, match="declares 500 points"):
        split_file(path, BallModel(), tmp_path / "in.ply", chunk_size=100)
    assert set(tmp_path.iterdir()) == before


def test_later_chunk_with_other_dtypes_falls_back_to_whole_file(tmp_path):
    rows = [f"{x:.3f} {y:.3f} {z:.3f} {r}" for x, y, z, r in
            zip(*np.random.default_rng(0).uniform(-1, 1, (3, 300)), range(300))]
    path = tmp_path / "colours.xyz"
    path.write_text("x y z red\n" + "\n".join(rows) + "\n")  # red is a byte in the first 256 rows only
    assert read_cloud(path).fields.dtype["red"] == np.float64
    _, ref_in, _ = in_memory(path, BallModel(), tmp_path)
    counts = split_file(path, BallModel(), tmp_path / "in.ply", chunk_size=100)
    assert not counts["streamed"]
    assert_same_cloud(read_cloud(tmp_path / "in.ply"), ref_in)


def test_refuses_to_overwrite_the_input(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud())
    data = path.read_bytes()
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        split_file(path, BallModel(), path, chunk_size=100)
    assert path.read_bytes() == data


def test_should_stream_reads_the_header_count(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud())
    assert should_stream(path, min_points=500) and not should_stream(path, min_points=501)


@pytest.mark.parametrize("suffix, ascii", [(".ply", False), (".ply", True), (".pcd", False), (".pcd", True)])
def test_memory_estimate_counts_the_records_the_reader_holds(tmp_path, suffix, ascii):
    path = write_input(tmp_path, suffix, ascii, make_cloud())
    count, record = stream._size_hint(path)
    assert count == point_count_hint(path) == 500
    assert record == read_cloud(path).fields.dtype.itemsize  # the header's record size is what the reader keeps
    assert in_memory_bytes(path) > count * record


def test_las_point_count_comes_from_its_header(shared_data):
    path = shared_data("scans", "simple.las")
    assert point_count_hint(path) == len(read_cloud(path))  # not the file size's guess: LAZ is compressed
    assert in_memory_bytes(path) > 0


def test_should_stream_weighs_the_memory_available(tmp_path):
    path = write_input(tmp_path, ".ply", False, make_cloud())
    need = in_memory_bytes(path)
    assert not should_stream(path, available=2 * need + 1) and not should_stream(path, available=10**15)
    assert should_stream(path, available=2 * need - 1) and should_stream(path, available=0)
    assert should_stream(path, min_points=500, available=10**15)  # the point count alone still decides
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert available_memory() is None or 0 <= available_memory() <= total


@pytest.fixture(scope="module")
def in_memory_run(tmp_path_factory):
    """A cloud with NaN rows and more points than the training subset, reconstructed whole: (path, folder, report)."""
    folder = tmp_path_factory.mktemp("whole")
    path = write_input(folder, ".ply", False, make_cloud(n=700))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stream, "available_memory", lambda: 10**15)
        report = reconstruct(path, folder / "out", TINY, MeshOptions(subdivisions=2), preview=False)
    assert not report["streamed"]
    return path, folder / "out", report


def assert_same_reconstruction(folder, report, reference, reference_report):
    """The same clouds (rows, fields, dtypes), byte-identical meshes and model, the same report but for its
    per-run entries and `streamed`."""
    for name in ("inliers.ply", "outliers.ply"):
        assert_same_cloud(read_cloud(folder / name), read_cloud(reference / name))
    for name in ("mesh.ply", "mesh.obj", "model.pt"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name
    ignored = {"streamed", *PER_RUN_REPORT_KEYS}
    assert {k: v for k, v in report.items() if k not in ignored} == {
        k: v for k, v in reference_report.items() if k not in ignored}
    assert json.loads((folder / "report.json").read_text())["n_train"] == TINY.max_train_points


def test_streamed_reconstruct_in_tiny_chunks_equals_the_in_memory_one(in_memory_run, tmp_path):
    path, whole, whole_report = in_memory_run
    report = reconstruct(path, tmp_path / "out", TINY, MeshOptions(subdivisions=2), preview=False, chunk_size=37)
    assert report["streamed"] and report["n_points"] == 700 and report["n_dropped_nonfinite"] == 3
    assert_same_reconstruction(tmp_path / "out", report, whole, whole_report)


def test_reconstruct_streams_when_little_memory_is_available(in_memory_run, tmp_path, monkeypatch):
    path, whole, whole_report = in_memory_run
    monkeypatch.setattr(stream, "available_memory", lambda: in_memory_bytes(path))  # less than twice the need
    report = reconstruct(path, tmp_path / "out", TINY, MeshOptions(subdivisions=2), preview=False)
    assert report["streamed"]
    assert_same_reconstruction(tmp_path / "out", report, whole, whole_report)


def test_quick_scale_benchmark_prints_sane_numbers(tmp_path):
    out, markdown = tmp_path / "scale.json", tmp_path / "scale.md"
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_scale.py"), "--quick", "--out", str(out),
               "--markdown", str(markdown)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    table = markdown.read_text()
    assert "time / M points" in table
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)  # never replaces a file
    assert again.returncode == 2 and "exists" in again.stderr and markdown.read_text() == table
    result = json.loads(out.read_text())
    rows = {row["name"]: row for row in result["rows"]}
    sizes = result["sizes"]
    for n in sizes:
        row = rows[f"pcflow stream {n}"]
        assert row["ok"] and row["n_points"] == n and row["n_inliers"] + row["n_outliers"] == n
        assert 0.85 < row["n_inliers"] / n < 0.99
        assert row["peak_rss_mib"] > 50 and row["seconds"] > 0
    assert rows[f"pcflow in-memory {sizes[0]}"]["n_inliers"] == rows[f"pcflow stream {sizes[0]}"]["n_inliers"]
    assert result["growth"]["time"][-1] > 0 and "open3d" in run.stdout.lower()
    assert "time / M points" in run.stdout


def test_fit_options_take_a_genus_and_refuse_others():
    from pcflow import PcflowError

    assert FitOptions().estimator().genus == 0  # auto: fit_cloud sets it from the points
    assert FitOptions(genus=1).estimator().genus == 1
    # the sphere keeps shapes undistorted; a torus's fit scales each axis by its spread
    assert FitOptions().estimator().normalize == "isotropic"
    assert FitOptions(genus=1).estimator().normalize == "standard"
    assert FitOptions(mode="envelope", genus=1).estimator().normalize == "isotropic"
    assert (FitOptions(genus=2).estimator().genus, FitOptions(genus=2).estimator().normalize) == (2, "isotropic")
    assert FitOptions(genus=3).estimator().genus == 3
    with pytest.raises(PcflowError, match="genus must be one of 'auto', 0, 1, 2, 3, got 4"):
        FitOptions(genus=4).estimator()


def test_choose_genus_takes_a_torus_for_a_ring_only():
    import trimesh

    from pcflow.pipeline import choose_genus

    ring, ball = FitOptions().estimator(), FitOptions().estimator()
    estimate = choose_genus(ring, trimesh.creation.torus(1.0, 0.35).sample(8000, seed=0), seed=0)
    assert estimate.genus == 1 and (ring.genus, ring.normalize) == (1, "standard")
    estimate = choose_genus(ball, trimesh.creation.icosphere(4).sample(8000, seed=0), seed=0)
    assert estimate.genus == 0 and (ball.genus, ball.normalize) == (0, "isotropic")
