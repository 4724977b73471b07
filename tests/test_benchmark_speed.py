"""The speed benchmark's quick mode runs end to end and reports sane figures (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_speed_benchmark_quick(tmp_path):
    pytest.importorskip("open3d")
    out = tmp_path / "speed.json"
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark_speed.py"), "--quick", "--out", str(out),
                          "--pcflow-args=--no-preview"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    for key in ("pcflow_reconstruct_s", "fast_reconstruct_s", "open3d_pipeline_s", "pcflow_reconstruct_ratio",
                "fast_reconstruct_ratio", "score_gflops", "matmul_gflops", "mesh_s"):
        assert results[key] > 0, key
    for key in ("pcflow_outlier_f1", "fast_outlier_f1", "open3d_outlier_f1", "pcflow_fscore", "fast_fscore",
                "open3d_fscore"):
        assert 0 <= results[key] <= 1, key
    assert results["points"] == 4000 and results["pcflow_stage_s"]["fit"] > 0 and results["fast_stage_s"]["fit"] > 0
    assert results["fast_reconstruct_ratio"] == pytest.approx(
        results["fast_reconstruct_s"] / results["open3d_pipeline_s"])
    assert "ratio pcflow / Open3D" in run.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_speed_benchmark_refuses_a_gpu_this_machine_lacks(tmp_path):
    out = tmp_path / "speed.json"
    for device, message in (("cuda", "torch sees no CUDA GPU"), ("quantum", "is not a torch device")):
        run = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark_speed.py"), "--quick", "--device", device,
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
        assert not out.exists()
