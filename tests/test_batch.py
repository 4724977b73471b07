"""Tests of batch reconstruction: inputs expanded, bad files reported without stopping the rest, jobs-invariant."""

import json
from pathlib import Path

import numpy as np
import pytest

from pcflow import PcflowError
from pcflow.pipeline.batch import BATCH_REPORT, expand_inputs, is_batch, output_names, run_batch
from pcflow.cli import main
from pcflow.io import PointCloud, read_cloud, write_cloud
from pcflow.pipeline import FitOptions, MeshOptions

TINY = FitOptions(epochs=3, surface_steps=10, n_couplings=2, hidden_features=16, seed=0)
MESH = MeshOptions(subdivisions=1, max_faces=2_000)


def ellipsoid(n=600, seed=0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, 3))
    points = direction / np.linalg.norm(direction, axis=1, keepdims=True) * [1.0, 0.6, 0.4]
    points[: n // 20] = rng.uniform(-1.5, 1.5, size=(n // 20, 3))
    return PointCloud(points + rng.normal(scale=0.01, size=(n, 3)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    write_cloud(folder / "a.ply", ellipsoid(seed=1))
    write_cloud(folder / "b.xyz", ellipsoid(seed=2))
    (folder / "broken.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 600\n"
                                        b"property float x\nproperty float y\nproperty float z\nend_header\n" + b"\0" * 40)
    (folder / "notes.md").write_text("not a cloud")
    return folder


@pytest.fixture(scope="module")
def serial(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return out, run_batch([folder], out, TINY, MESH, jobs=1, preview=False)


def test_bad_file_is_reported_and_the_others_complete(serial, folder):
    out, report = serial
    assert report["n_files"] == 3 and report["n_ok"] == 2 and report["n_failed"] == 1
    entries = {Path(entry["input"]).name: entry for entry in report["files"]}
    assert set(entries) == {"a.ply", "b.xyz", "broken.ply"}
    bad = entries["broken.ply"]
    assert not bad["ok"] and "broken.ply" in bad["error"] and "\n" not in bad["error"]
    assert bad["n_inliers"] is None and bad["mode"] is None and bad["warnings"] == []
    for name in ("a", "b"):
        entry = entries[f"{name}.{'ply' if name == 'a' else 'xyz'}"]
        assert entry["ok"] and entry["error"] is None and entry["output"] == str(out / name)
        single = json.loads((out / name / "report.json").read_text())
        assert entry["n_inliers"] == single["n_inliers"] == len(read_cloud(out / name / "inliers.ply"))
        assert entry["mode"] == single["mode"] in ("surface", "envelope")
        assert entry["warnings"] == single["warnings"]
        assert entry["n_inliers"] + entry["n_outliers"] == 600
        assert (out / name / "mesh.ply").stat().st_size > 0
    assert json.loads((out / BATCH_REPORT).read_text()) == json.loads(json.dumps(report))
    assert not (out / "broken").exists() or not any((out / "broken").iterdir())


def test_two_jobs_give_the_same_results(serial, folder, tmp_path):
    out, report = serial
    finished = []
    parallel = run_batch([folder / "*.*"], tmp_path, TINY, MESH, jobs=2, preview=False, progress=finished.append)
    assert parallel["jobs"] == 2 and len(finished) == 3

    def key(entries):
        return [(Path(e["input"]).name, e["ok"], e["error"], e["n_inliers"], e["n_outliers"]) for e in entries]

    assert key(parallel["files"]) == key(report["files"])
    for name in ("a", "b"):
        assert (tmp_path / name / "inliers.ply").read_bytes() == (out / name / "inliers.ply").read_bytes()


def test_expand_inputs_and_names(folder):
    assert [p.name for p in expand_inputs([folder])] == ["a.ply", "b.xyz", "broken.ply"]
    assert [p.name for p in expand_inputs([folder / "*.ply", folder / "a.ply"])] == ["a.ply", "broken.ply"]
    assert output_names(["x/scan.ply", "y/scan.pcd", "scan.xyz", "other.ply"]) == ["scan", "scan-2", "scan-3", "other"]
    assert is_batch([folder]) and is_batch([folder / "*.ply"]) and is_batch([folder / "a.ply", folder / "b.xyz"])
    assert not is_batch([folder / "a.ply"]) and not is_batch([folder / "missing.ply"])
    with pytest.raises(PcflowError, match="matches no point cloud files"):
        expand_inputs([folder / "*.las"])
    with pytest.raises(PcflowError, match="no such file"):
        expand_inputs([folder / "missing.ply"])


def test_refuses_an_existing_report_without_overwrite(serial, folder):
    out, _ = serial
    with pytest.raises(PcflowError, match="--overwrite"):
        run_batch([folder / "a.ply", folder / "b.xyz"], out, TINY, MESH)


FIT = ["--epochs", "3", "--surface-steps", "10", "--couplings", "2", "--hidden", "16", "--subdivisions", "1", "--max-faces", "2000",
       "--no-preview", "-q"]


def test_cli_batch_reports_the_bad_file_and_fails(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a.ply", "b.xyz"):
        write_cloud(tmp_path / name, PointCloud(rng.normal(size=(600, 3))))
    (tmp_path / "c.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nend_header\n")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path), "-o", str(out), "--jobs", "2", *FIT]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "c.ply" in errors[0]
    report = json.loads((out / "batch_report.json").read_text())
    assert [f["ok"] for f in report["files"]] == [True, True, False]
    assert len(read_cloud(out / "a" / "inliers.ply")) == report["files"][0]["n_inliers"]


def test_cli_single_input_keeps_its_layout(tmp_path):
    write_cloud(tmp_path / "a.ply", PointCloud(np.random.default_rng(0).normal(size=(600, 3))))
    assert main(["reconstruct", str(tmp_path / "a.ply"), "-o", str(tmp_path / "out"), *FIT]) == 0
    assert (tmp_path / "out" / "report.json").is_file() and not (tmp_path / "out" / "batch_report.json").exists()


def test_cli_denoise_streams_with_small_chunks(tmp_path):
    cloud = PointCloud(np.random.default_rng(0).normal(size=(700, 3)))
    write_cloud(tmp_path / "a.ply", cloud)
    base = ["denoise", str(tmp_path / "a.ply"), "--epochs", "3", "--surface-steps", "10", "--couplings", "2", "--hidden", "16", "-q"]
    assert main([*base, "-o", str(tmp_path / "one.ply"), "--chunk-size", "1000000"]) == 0
    assert main([*base, "-o", str(tmp_path / "many.ply"), "--chunk-size", "99"]) == 0
    np.testing.assert_array_equal(read_cloud(tmp_path / "one.ply").points, read_cloud(tmp_path / "many.ply").points)


def test_resume_redoes_exactly_the_unfinished_files(folder, tmp_path):
    out = tmp_path / "out"
    first = run_batch([folder], out, TINY, MESH, preview=False)
    assert [e["ok"] for e in first["files"]] == [True, True, False] and first["n_skipped"] == 0
    stamps = {name: (out / name / "inliers.ply").stat().st_mtime_ns for name in ("a", "b")}
    reference = (out / "b" / "mesh.ply").read_bytes()
    # a crash while b was written: its report.json (written last) missing, a half-written mesh and a temporary file
    (out / "b" / "report.json").unlink()
    (out / "b" / "mesh.ply").write_bytes(reference[: len(reference) // 2])
    (out / "b" / ".mesh.obj.x1y2z3w4.tmp").write_text("partial")
    with pytest.raises(PcflowError, match="--overwrite"):
        run_batch([folder], out, TINY, MESH, preview=False)
    seen = []
    again = run_batch([folder], out, TINY, MESH, preview=False, resume=True, progress=seen.append)
    entries = {Path(e["input"]).name: e for e in again["files"]}
    assert again["skipped"] == [str(folder / "a.ply")] and again["n_skipped"] == 1 and entries["a.ply"]["skipped"]
    assert entries["a.ply"]["ok"] and entries["a.ply"]["n_inliers"] == first["files"][0]["n_inliers"]
    assert (out / "a" / "inliers.ply").stat().st_mtime_ns == stamps["a"]  # untouched
    assert entries["b.xyz"]["ok"] and not entries["b.xyz"]["skipped"]
    assert (out / "b" / "inliers.ply").stat().st_mtime_ns != stamps["b"]  # redone
    assert (out / "b" / "mesh.ply").read_bytes() == reference  # the same seed gives the same, complete mesh
    assert sorted(p.name for p in (out / "b").iterdir()) == sorted(json.loads((out / "b" / "report.json").read_text())
                                                                   ["files"])
    assert not entries["broken.ply"]["ok"] and "broken.ply" in entries["broken.ply"]["error"]  # tried again
    assert [e["skipped"] for e in seen] == [True, False, False]
    assert json.loads((out / BATCH_REPORT).read_text()) == json.loads(json.dumps(again))


def test_cli_resume_skips_complete_files_and_fails_on_the_bad_one(folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["reconstruct", str(folder), "-o", str(out), *FIT]
    assert main(args) == 1
    (out / "a" / "report.json").write_text('{"input": "truncated')  # a report cut short: not complete
    capsys.readouterr()
    assert main([*args, "--resume"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"pcflow: error: {folder / 'broken.ply'}: ")
    report = json.loads((out / BATCH_REPORT).read_text())
    assert report["skipped"] == [str(folder / "b.xyz")] and report["n_ok"] == 2 and report["n_failed"] == 1
    single = out / "a"
    assert main(["reconstruct", str(folder / "a.ply"), "-o", str(single), *FIT, "--resume"]) == 0
    assert main(["reconstruct", str(folder / "a.ply"), "-o", str(single), *FIT[:-1], "--resume"]) == 0
    assert "already holds a complete reconstruct" in capsys.readouterr().out
