"""Tests of the benchmark scripts: helpers, argument handling, and `--quick` runs that write sane outputs."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """Imports scripts/<name>.py as a module (the scripts folder is not a package)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def in_unit(value) -> bool:
    value = float(value)
    return 0.0 <= value <= 1.0


# ------------------------------------------------------------------------------------------------------------------
# helpers of _common


def test_markdown_table_formats_numbers_and_missing_values():
    common = load_script("_common")
    text = common.markdown_table([{"a": 0.12345, "b": float("nan"), "c": True}, {"a": 2, "b": None, "c": "x"}],
                                 ["a", "b", "c"])
    assert text.splitlines() == ["| a | b | c |", "|---|---|---|", "| 0.123 | - | yes |", "| 2 | - | x |"]


def test_write_json_turns_nan_into_null(tmp_path):
    common = load_script("_common")
    common.write_json(tmp_path / "x.json", {"v": [1.5, float("nan"), np.float64(2.0)], "n": np.int64(3)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"v": [1.5, None, 2.0], "n": 3}


def test_cpu_timed_counts_threads_and_child_processes():
    common = load_script("_common")
    busy = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass\n"
    result, wall, cpu = common.cpu_timed(subprocess.run, [sys.executable, "-c", busy], check=True)
    assert result.returncode == 0 and cpu >= 0.3 and wall >= 0.3
    _, wall, cpu = common.cpu_timed(__import__("time").sleep, 0.2)
    assert wall >= 0.2 and cpu < 0.1  # waiting is no work


def test_mean_std_ignores_nan():
    common = load_script("_common")
    mean, std = common.mean_std([1.0, 3.0, float("nan")])
    assert (mean, std) == (2.0, 1.0)


# ------------------------------------------------------------------------------------------------------------------
# protocol pieces of the paper scripts


def test_tabular_split_follows_the_protocol():
    tabular = load_script("paper_tabular")
    y = np.r_[np.zeros(100, dtype=bool), np.ones(10, dtype=bool)]
    train, test, n_half = tabular.split(y, seed=0, max_train=None)
    assert n_half == 50 and len(train) == 50
    assert not y[train].any()  # training data is normal only
    assert set(np.flatnonzero(y)) <= set(test)  # every anomaly is tested
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
    train_small, _, _ = tabular.split(y, seed=0, max_train=20)
    assert len(train_small) == 20 and set(train_small) <= set(train)


def test_tabular_threshold_flags_the_anomaly_share():
    tabular = load_script("paper_tabular")
    labels = np.r_[np.zeros(90, dtype=bool), np.ones(10, dtype=bool)]
    perfect = tabular.evaluate(np.r_[np.zeros(90), np.ones(10)] + np.linspace(0, 0.01, 100), labels)
    assert perfect["f1"] == 1.0 and perfect["roc_auc"] == 1.0
    scores = np.random.default_rng(0).normal(size=100)
    result = tabular.evaluate(scores, labels)
    flagged = scores > np.percentile(scores, 90)
    assert flagged.sum() == 10
    assert math.isclose(result["precision"], (flagged & labels).sum() / 10)


def test_boundary_length_of_an_affine_region():
    paper_2d = load_script("paper_2d")

    class Affine:  # region = image of the latent disc of radius 1 under x = 2 z: a circle of radius 2
        radius_ = 1.0

        def inverse_transform(self, Z):
            return 2.0 * np.asarray(Z) + 1.0

    curve = paper_2d.boundary_curve(Affine(), n=4000)
    assert math.isclose(paper_2d.boundary_length(curve), 4.0 * math.pi, rel_tol=1e-5)
    assert math.isclose(paper_2d.shoelace_area(curve), 4.0 * math.pi, rel_tol=1e-5)


# ------------------------------------------------------------------------------------------------------------------
# argument handling


@pytest.mark.parametrize("device, message", [("cuda", "torch sees no CUDA GPU"), ("quantum", "is not a torch device")])
def test_benchmark_speed_refuses_a_device_this_machine_lacks_as_a_usage_error(tmp_path, device, message):
    if device == "cuda" and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "speed.json"
    run = subprocess.run([sys.executable, str(SCRIPTS / "benchmark_speed.py"), "--quick", "--device", device,
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------------------------------------------
# quick runs end to end


def test_paper_2d_quick(tmp_path):
    paper_2d = load_script("paper_2d")
    assert paper_2d.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "paper_2d.csv")
    assert {r["method"] for r in rows} == {"OneFlow", "LL-Flow"}
    for row in rows:
        assert float(row["boundary_length"]) > 0 and float(row["volume"]) > 0
        assert abs(float(row["coverage"]) - 0.95) < 0.02  # each region holds 1 - alpha of its training points
    assert (tmp_path / "paper_2d_boundaries.png").stat().st_size > 0
    assert "| Two Blobs |" in (tmp_path / "summary.md").read_text()


def test_paper_tabular_quick(tmp_path, shared_data):
    data = shared_data("tabular", "thyroid.mat").parents[1]
    tabular = load_script("paper_tabular")
    assert tabular.main(["--quick", "--data", str(data), "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "tabular.csv")
    assert {r["method"] for r in rows} == {"OneFlow", "OneFlow-Gen", "LL-Flow", "IsolationForest", "OneClassSVM",
                                           "LOF"}
    for row in rows:
        assert row["dataset"] == "thyroid" and in_unit(row["f1"]) and in_unit(row["roc_auc"])
        assert 0.02 < float(row["test_anomaly_ratio"]) < 0.1  # 93 anomalies among ~1980 test rows
    summary = read_csv(tmp_path / "tabular_summary.csv")
    paper = {r["method"]: r["paper_f1"] for r in summary}
    assert float(paper["OneFlow"]) == 0.7634 and math.isnan(float(paper["LOF"]))
    assert (tmp_path / "tabular_alpha.png").stat().st_size > 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == len(rows)


def test_benchmark_scans_quick(tmp_path, shared_data):
    data = shared_data("meshes").parent
    pytest.importorskip("open3d")
    scans = load_script("benchmark_scans")
    assert scans.main(["--quick", "--data", str(data), "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "outliers.csv")
    expected = set(scans.FLOWS) | set(scans.PEERS)
    assert {r["method"] for r in rows} == expected and len(rows) == len(expected)
    for row in rows:
        assert in_unit(row["f1"]) and in_unit(row["precision"]) and in_unit(row["recall"])
        assert row["n_outliers"] == "100" and float(row["time_vs_o3d_statistical"]) > 0
    # the flows hold 1 - alpha of the points, so they flag about alpha of them
    for row in rows:
        if row["method"] in scans.FLOWS:
            assert abs(int(row["n_flagged"]) - 100) <= 5
    meshes = read_csv(tmp_path / "meshes.csv")
    assert {r["method"] for r in meshes} == set(scans.FLOWS) | set(scans.MESHERS)
    for row in meshes:
        assert 0 < float(row["cd_l1"]) < 0.5 and in_unit(row["fscore"])
        if row["method"] in scans.FLOWS:
            assert row["watertight"] == "True" and row["n_components"] == "1"
        if row["method"] == "OneFlow-Surface":
            assert in_unit(row["surface_gap"])
    poisson = next(r for r in meshes if r["method"] == "Poisson")
    assert float(poisson["time_vs_o3d_poisson"]) == 1.0
    real = read_csv(tmp_path / "real_scans.csv")
    assert len(real) == 1 and 0 < int(real[0]["oneflow_removed"]) < int(real[0]["n_points"])
    assert real[0]["mode"] in ("surface", "envelope")
    for name in ("f1_vs_ratio.png", "cd_l1_per_shape.png", "summary.md", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    text = (tmp_path / "summary.md").read_text()
    assert "| OneFlow |" in text and "CD-L1" in text


def test_compare_fits_quick(tmp_path):
    compare = load_script("compare_fits")
    assert compare.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "compare_fits.csv")
    assert [(r["shape"], r["setting"]) for r in rows] == [
        (shape, setting) for shape in ("gen-sphere", "gen-capsule") for setting in ("before", "after")]
    for row in rows:
        assert in_unit(row["outlier_f1"]) and in_unit(row["fscore"]) and float(row["cd_l1"]) > 0
        assert row["watertight"] == "True" and row["components"] == "1" and float(row["fit_s"]) > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "| gen-capsule |" in summary and "CD-L1 after / before: median" in summary


def test_compare_scores_quick(tmp_path):
    compare = load_script("compare_scores")
    assert compare.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "compare_scores.csv")
    assert [(r["shape"], float(r["ratio"]), r["setting"]) for r in rows] == [
        ("gen-capsule", ratio, setting) for ratio in (0.05, 0.01) for setting in ("before", "after")]
    for row in rows:
        assert in_unit(row["outlier_f1"]) and in_unit(row["best_peer_f1"])
    assert all(float(r["cd_l1"]) > 0 and r["valid"] == "True" for r in rows if float(r["ratio"]) == 0.05)
    summary = (tmp_path / "summary.md").read_text()
    assert "| gen-capsule 1% |" in summary and "F1 change: mean" in summary


def test_benchmark_scenes_quick(tmp_path, shared_data):
    data = shared_data("meshes", "sphere.ply").parents[1]
    shared_data("scans", "table_scene_mug_stereo_textured.pcd")
    pytest.importorskip("open3d")
    scenes = load_script("benchmark_scenes")
    assert scenes.main(["--quick", "--data", str(data), "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "scenes.csv")
    assert [r["method"] for r in rows] == list(scenes.METHODS)
    for row in rows:
        assert row["n_present"] == "2" and 0 <= int(row["n_found"]) <= 2
        assert in_unit(row["label_accuracy"]) and in_unit(row["outlier_f1"]) and float(row["time_vs_open3d"]) > 0
    recipe = rows[1]
    assert float(recipe["time_vs_open3d"]) == 1.0
    assert recipe["n_found"] == "2" and float(recipe["label_accuracy"]) > 0.9  # an easy scene for the recipe
    objects = read_csv(tmp_path / "objects.csv")
    assert [(r["method"], r["object"]) for r in objects] == [(m, k) for m in scenes.METHODS for k in "01"]
    for row in objects:
        if row["found"] == "True":
            assert 0 < float(row["cd_l1"]) < 0.05 and in_unit(row["fscore"]) and in_unit(row["iou"])
            if row["method"] == "pcflow":
                assert row["watertight"] == "True"  # one closed surface per object
    real = read_csv(tmp_path / "real_scans.csv")
    assert len(real) == 1 and real[0]["n_points"] == "5000" and int(real[0]["Open3D_planes"]) >= 1
    sweep = read_csv(tmp_path / "sweep.csv")
    assert [r["method"] for r in sweep] == list(scenes.METHODS) and all(in_unit(r["label_accuracy"]) for r in sweep)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["scenes"][0]["points_per_object"] == [int(r["n_points"]) for r in objects[:2]]
    text = (tmp_path / "summary.md").read_text()
    assert "| 2 all around | pcflow |" in text and "time / Open3D" in text


def test_genus_benchmark_quick_run_names_every_genus(capsys):
    assert load_script("benchmark_genus").main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| all around | inliers | 3 | 0 | 0 | 0 |" in lines and "| all around | all | 3 | 0 | 0 | 0 |" in lines
    assert "| torus | 1 | 1 1 |" in lines and "| implicit: 2 tori chained | 2 | 2 2 |" in lines
