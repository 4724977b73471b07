"""Speed of pcflow against Open3D measured in the same run: reconstruct wall time, scoring throughput, mesh time.

Prints ratios (machines are shared and noisy, so a lone absolute time means little):
- `pcflow reconstruct` on an N-point scan (default 100,000), at its default settings and with `--fast`, against the
  Open3D pipeline of docs/evaluation.md (statistical outlier removal, normals, consistent orientation, Poisson depth 8),
  each as a whole command in a fresh process (the installed `pcflow` command), median of --repeats runs; with the
  outlier F1 and the mesh CD-L1 / F-score of each, so that the speed is read beside the quality;
- scoring throughput (forward pass and latent radius) of the fitted model, in GFLOP/s, against the float32
  matrix-multiply rate measured on this machine, and the rate of the whole score (`score_samples`: for the default
  surface mode also the gradient and the neighbour distances);
- boundary-mesh extraction with adaptive refinement at the default tolerance.

With --device cuda the pcflow commands fit on the GPU, and the scoring, the mesh extraction and the matrix-multiply
rate are measured there (the Open3D pipeline runs on the CPU as always).

Usage:
    python scripts/benchmark_speed.py [--points 100000] [--repeats 3] [--out results/speed.json] [--quick]
    python scripts/benchmark_speed.py --pcflow-args "--mode envelope"     # the faster envelope mode
    python scripts/benchmark_speed.py --device cuda                       # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

REPO = Path(__file__).resolve().parent.parent
#: The `pcflow reconstruct` commands measured (extra flags each; --pcflow-args comes on top of both).
VARIANTS = {"pcflow": [], "fast": ["--fast"]}

OPEN3D_PIPELINE = """
import sys, time
import numpy as np
import open3d as o3d
start = time.perf_counter()
cloud = o3d.io.read_point_cloud(sys.argv[1])
diag = float(np.linalg.norm(cloud.get_max_bound() - cloud.get_min_bound()))
clean, kept = cloud.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
clean.estimate_normals()
clean.orient_normals_consistent_tangent_plane(15)
mesh, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(clean, depth=8)
o3d.io.write_triangle_mesh(sys.argv[2], mesh)
np.save(sys.argv[3], np.asarray(kept))
print(time.perf_counter() - start)
"""


def make_scan(n_points: int, folder: Path) -> tuple[Path, np.ndarray, trimesh.Trimesh]:
    """A synthetic scan of Spot under the docs/evaluation.md protocol (5% outliers), as a binary PLY."""
    from pcflow.io import PointCloud, read_mesh, write_cloud
    from pcflow.synthetic import synthetic_scan

    spot = read_mesh(REPO / "assets" / "spot_mesh.ply")
    scan = synthetic_scan(spot, n_points=n_points, seed=0)
    path = folder / "scan.ply"
    write_cloud(path, PointCloud(points=scan.points.astype(np.float32).astype(np.float64), source=str(path)))
    return path, scan.labels, scan.mesh


def pcflow_command() -> list[str]:
    """The `pcflow` command installed beside this Python, as a user runs it; else `python -m pcflow.cli`."""
    script = Path(sys.executable).with_name("pcflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pcflow.cli"]


def timed_run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def matmul_rate(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured float32 matrix-multiply rate of this machine (or of the GPU `device`) with torch, in GFLOP/s (best of
    `repeats`; a GPU's products are 4 times as large and 10 at a time, so that the launches do not count)."""
    size, batch = (size, 1) if torch.device(device).type == "cpu" else (4 * size, 10)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def products():
        for _ in range(batch):
            torch.mm(a, b)

    _seconds(products, device)
    best = min(_seconds(products, device) for _ in range(repeats))
    return 2 * size**3 * batch / best / 1e9


def _seconds(function, device: str = "cpu") -> float:
    """Wall time of `function()`, waiting for the GPU's queued work where `device` is one."""
    synchronize = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - start


def model_flops_per_point(model) -> int:
    """Multiply-add FLOPs of one forward pass per point: 2 per weight of every linear layer."""
    return sum(2 * m.weight.numel() for m in model.flow_.modules() if isinstance(m, torch.nn.Linear))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--score-points", type=int, default=1_000_000)
    parser.add_argument("--out", default="results/speed.json")
    parser.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    parser.add_argument("--pcflow-args", default="",
                        help="extra options for both pcflow reconstruct commands, as one string")
    parser.add_argument("--device", default="cpu",
                        help="torch device of pcflow's fits, scoring, meshing and matmul rate: cpu (default) or cuda")
    args = parser.parse_args()
    try:
        device = torch.device(args.device)
    except (RuntimeError, TypeError):
        parser.error(f"--device {args.device!r} is not a torch device; expected cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch sees no CUDA GPU on this machine")
    if args.quick:
        args.points, args.repeats, args.score_points = 4000, 1, 50_000
        args.pcflow_args = (args.pcflow_args + " --epochs 5 --surface-steps 5 --couplings 2 --hidden 16").strip()

    from pcflow.models import OneFlow
    from pcflow.io import read_cloud, read_mesh
    from pcflow.meshing import boundary_mesh
    from pcflow.metrics import chamfer_metrics, outlier_scores

    results: dict = {"points": args.points, "repeats": args.repeats, "pcflow_args": args.pcflow_args,
                     "threads": torch.get_num_threads(), "device": args.device,
                     "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scan_path, labels, truth = make_scan(args.points, folder)

        times: dict[str, list[float]] = {name: [] for name in (*VARIANTS, "open3d")}
        for repeat in range(args.repeats):  # the three commands in turn, so that a busy spell slows all of them
            for name, flags in VARIANTS.items():
                command = [*pcflow_command(), "reconstruct", str(scan_path), "-o", str(folder / f"{name}_{repeat}"),
                           "-q", "--device", args.device, *flags, *args.pcflow_args.split()]
                times[name].append(timed_run(command))
            o3d_mesh, o3d_kept = folder / f"open3d_{repeat}.ply", folder / f"kept_{repeat}.npy"
            times["open3d"].append(timed_run([sys.executable, "-c", OPEN3D_PIPELINE, str(scan_path), str(o3d_mesh),
                                              str(o3d_kept)]))
        results["open3d_runs_s"] = times["open3d"]
        results["open3d_pipeline_s"] = statistics.median(times["open3d"])

        # quality of each, from the first run
        points = read_cloud(scan_path).points
        n_samples = 20_000 if args.quick else 100_000
        o3d_keep = np.zeros(len(points), dtype=bool)
        o3d_keep[np.load(folder / "kept_0.npy")] = True
        results["open3d_outlier_f1"] = outlier_scores(labels, keep_mask=o3d_keep)["f1"]
        metrics = chamfer_metrics(read_mesh(folder / "open3d_0.ply"), truth, n_samples=n_samples)
        results["open3d_cd_l1"], results["open3d_fscore"] = metrics["cd_l1"], metrics["fscore"]
        for name in VARIANTS:
            results[f"{name}_runs_s"] = times[name]
            results[f"{name}_reconstruct_s"] = statistics.median(times[name])
            results[f"{name}_reconstruct_ratio"] = results[f"{name}_reconstruct_s"] / results["open3d_pipeline_s"]
            results[f"{name}_stage_s"] = json.loads((folder / f"{name}_0" / "report.json").read_text())["timings"]
            keep = OneFlow.load(folder / f"{name}_0" / "model.pt").predict(points) == 1
            results[f"{name}_outlier_f1"] = outlier_scores(labels, keep_mask=keep)["f1"]
            metrics = chamfer_metrics(read_mesh(folder / f"{name}_0" / "mesh.ply"), truth, n_samples=n_samples)
            results[f"{name}_cd_l1"], results[f"{name}_fscore"] = metrics["cd_l1"], metrics["fscore"]

        # scoring throughput of the default fit against the machine's matmul rate
        model = OneFlow.load(folder / "pcflow_0" / "model.pt", device=args.device)
        rng = np.random.default_rng(0)
        many = points[rng.integers(0, len(points), args.score_points)]
        model.latent_radius(many[:1000])
        seconds = min(_seconds(lambda: model.latent_radius(many), args.device) for _ in range(3))
        flops = model_flops_per_point(model)
        results["score_points_per_s"] = args.score_points / seconds
        results["score_gflops"] = flops * args.score_points / seconds / 1e9
        results["matmul_gflops"] = matmul_rate(device=args.device)
        results["score_to_matmul"] = results["score_gflops"] / results["matmul_gflops"]
        # the whole score: for a surface model also the gradient and the neighbour distances
        results["score_samples_points_per_s"] = args.score_points / min(
            _seconds(lambda: model.score_samples(many), args.device)
            for _ in range(1 if model.objective == "surface" else 3))
        results["objective"] = model.objective

        # mesh extraction at the default tolerance
        mesh_times = [_seconds(lambda: boundary_mesh(model), args.device) for _ in range(3)]
        results["mesh_s"] = statistics.median(mesh_times)

    on_gpu = f"; pcflow on {results['device_name']}" if device.type != "cpu" else ""
    print(f"scan: {args.points} points (Spot, 5% outliers); medians of {args.repeats} runs; "
          f"torch threads {results['threads']}{on_gpu}")
    print("| measure | pcflow | pcflow --fast | Open3D | ratio pcflow / Open3D | ratio pcflow --fast / Open3D |")
    print("|---|---|---|---|---|---|")
    rows = (("reconstruct wall time (s)", "reconstruct_s", "open3d_pipeline_s", ".2f", True),
            ("outlier F1", "outlier_f1", "open3d_outlier_f1", ".3f", False),
            ("mesh CD-L1", "cd_l1", "open3d_cd_l1", ".4f", True),
            ("mesh F-score@1%", "fscore", "open3d_fscore", ".3f", False))
    for label, key, peer, form, ratio in rows:
        ours = [results[f"{name}_{key}"] for name in VARIANTS]
        ratios = [f"{value / results[peer]:.2f}" if ratio else "" for value in ours]
        print(f"| {label} | " + " | ".join(f"{value:{form}}" for value in (*ours, results[peer])) + " | "
              + " | ".join(ratios) + " |")
    print(f"scoring: {results['score_points_per_s'] / 1e6:.2f} M points/s = {results['score_gflops']:.1f} GFLOP/s "
          f"({model_flops_per_point(model)} FLOP/point); float32 matmul {results['matmul_gflops']:.1f} GFLOP/s; "
          f"ratio {results['score_to_matmul']:.2f}")
    print(f"whole score ({results['objective']} objective, score_samples): "
          f"{results['score_samples_points_per_s'] / 1e6:.3f} M points/s")
    print(f"mesh extraction at default tolerance: {results['mesh_s']:.2f} s")
    for name, flags in VARIANTS.items():
        print(f"{' '.join(['pcflow', *flags])} stages (s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in results[f"{name}_stage_s"].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
