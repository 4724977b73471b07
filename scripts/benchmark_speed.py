"""Speed of pcflow against Open3D measured in the same run: reconstruct wall time, peak memory, scoring, mesh time.

Prints ratios (machines are shared and noisy, so a lone absolute time means little):
- `pcflow reconstruct` at its default settings and with `--fast`, against the Open3D pipeline of docs/evaluation.md
  (statistical outlier removal, normals, consistent orientation, Poisson depth 8), on a scan of each of --shapes at
  --points (default Spot, bob and the nut at 20,000 points) and one more of the first shape at --large-points
  (default 100,000); each as a whole command in a fresh process (the installed `pcflow` command), the three commands
  in turn, median wall time of --repeats runs and the largest peak memory (of the command's processes together,
  `_common.run_watched`); with the outlier F1 and the mesh CD-L1 / F-score of each, so that the speed is read
  beside the quality;
- scoring throughput (forward pass and latent radius) of the first scan's fitted model, in GFLOP/s, against the
  float32 matrix-multiply rate measured on this machine, and the rate of the whole score (`score_samples`: for the
  default surface mode also the gradient and the neighbour distances);
- boundary-mesh extraction with adaptive refinement at the default tolerance;
- start-up: `pcflow --help` and `pcflow info` on the first scan, median of 3.

With --device cuda the pcflow commands fit on the GPU, and the scoring, the mesh extraction and the matrix-multiply
rate are measured there (the Open3D pipeline runs on the CPU as always).

Usage:
    python scripts/benchmark_speed.py [--shapes spot bob_tri nut] [--points 20000] [--large-points 100000]
                                      [--repeats 3] [--out results/speed.json] [--quick]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_watched  # noqa: E402

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


#: The shapes measured by default: Spot (in assets/), and bob and the nut (genus 1) from the shared meshes.
SHAPES = ("spot", "bob_tri", "nut")


def load_shape(name: str, data: Path) -> trimesh.Trimesh:
    """A closed mesh by name: 'spot' from assets/, 'gen-NAME' a built-in shape, else data/meshes/NAME.*."""
    from pcflow.io import read_mesh
    from pcflow.synthetic import builtin_shape

    if name == "spot":
        return read_mesh(REPO / "assets" / "spot_mesh.ply")
    if name.startswith("gen-"):
        return builtin_shape(name[4:])
    found = sorted((data / "meshes").glob(f"{name}.*"))
    if not found:
        raise SystemExit(f"no mesh named {name!r} in {data / 'meshes'}; give --data or other --shapes")
    return read_mesh(found[0])


def make_scan(mesh: trimesh.Trimesh, n_points: int, path: Path) -> tuple[Path, np.ndarray, trimesh.Trimesh]:
    """A synthetic scan of a mesh under the docs/evaluation.md protocol (5% outliers), as a binary PLY."""
    from pcflow.io import PointCloud, write_cloud
    from pcflow.synthetic import synthetic_scan

    scan = synthetic_scan(mesh, n_points=n_points, seed=0)
    write_cloud(path, PointCloud(points=scan.points.astype(np.float32).astype(np.float64), source=str(path)))
    return path, scan.labels, scan.mesh


def pcflow_command() -> list[str]:
    """The `pcflow` command installed beside this Python, as a user runs it; else `python -m pcflow.cli`."""
    script = Path(sys.executable).with_name("pcflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pcflow.cli"]


def timed_run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak memory in MiB of the command's processes together: `run_watched`) of a command run to its
    end in a child process."""
    with tempfile.TemporaryFile() as errors:
        code, seconds, mib = run_watched(command, stdout=subprocess.DEVNULL, stderr=errors)
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-500:]
            raise SystemExit(f"{' '.join(command)} failed ({code}): {message}")
    return seconds, mib


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


def measure_scan(name: str, mesh: trimesh.Trimesh, n_points: int, folder: Path, args) -> dict:
    """Wall time and peak memory of each `pcflow reconstruct` variant and of the Open3D pipeline on one scan (run in
    turn, `args.repeats` times, so that a busy spell slows all of them), with each one's quality from its first run."""
    from pcflow.io import read_cloud, read_mesh
    from pcflow.metrics import chamfer_metrics, outlier_scores
    from pcflow.models import OneFlow

    tag = f"{name}_{n_points}"
    scan_path, labels, truth = make_scan(mesh, n_points, folder / f"{tag}.ply")
    times: dict[str, list[float]] = {variant: [] for variant in (*VARIANTS, "open3d")}
    memory: dict[str, list[float]] = {variant: [] for variant in times}
    for repeat in range(args.repeats):
        for variant, flags in VARIANTS.items():
            out = folder / f"{tag}_{variant}_{repeat}"
            command = [*pcflow_command(), "reconstruct", str(scan_path), "-o", str(out), "-q", "--device", args.device,
                       *flags, *args.pcflow_args.split()]
            seconds, mib = timed_run(command)
            times[variant].append(seconds)
            memory[variant].append(mib)
        seconds, mib = timed_run([sys.executable, "-c", OPEN3D_PIPELINE, str(scan_path),
                                  str(folder / f"{tag}_open3d_{repeat}.ply"), str(folder / f"{tag}_kept_{repeat}.npy")])
        times["open3d"].append(seconds)
        memory["open3d"].append(mib)

    points = read_cloud(scan_path).points
    n_samples = 20_000 if args.quick else 100_000
    result = {"shape": name, "points": n_points}
    for variant in times:
        result[f"{variant}_runs_s"] = times[variant]
        result[f"{variant}_s"] = statistics.median(times[variant])
        result[f"{variant}_peak_mib"] = max(memory[variant])
        if variant == "open3d":
            keep = np.zeros(len(points), dtype=bool)
            keep[np.load(folder / f"{tag}_kept_0.npy")] = True
            mesh_path = folder / f"{tag}_open3d_0.ply"
        else:
            out = folder / f"{tag}_{variant}_0"
            keep = OneFlow.load(out / "model.pt").predict(points) == 1
            mesh_path = out / "mesh.ply"
            result[f"{variant}_stage_s"] = json.loads((out / "report.json").read_text())["timings"]
        result[f"{variant}_outlier_f1"] = outlier_scores(labels, keep_mask=keep)["f1"]
        metrics = chamfer_metrics(read_mesh(mesh_path), truth, n_samples=n_samples)
        result[f"{variant}_cd_l1"], result[f"{variant}_fscore"] = metrics["cd_l1"], metrics["fscore"]
    for variant in VARIANTS:
        result[f"{variant}_ratio"] = result[f"{variant}_s"] / result["open3d_s"]
        result[f"{variant}_memory_ratio"] = result[f"{variant}_peak_mib"] / result["open3d_peak_mib"]
    return result


def print_scans(scans: list[dict]) -> None:
    """The table of every scan: wall times and their ratios to Open3D, peak memory, and the quality of each."""
    variants = (*VARIANTS, "open3d")

    def each(scan: dict, measure: str, form: str) -> str:
        return " / ".join(f"{scan[f'{variant}_{measure}']:{form}}" for variant in variants)

    print("| scan | pcflow (s) | --fast (s) | Open3D (s) | ratio pcflow / Open3D | ratio --fast / Open3D "
          "| peak MiB pcflow / Open3D | CD-L1 pcflow / --fast / Open3D | F-score@1% | outlier F1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scan in scans:
        print(f"| {scan['shape']}, {scan['points']:,} points | {scan['pcflow_s']:.2f} | {scan['fast_s']:.2f} "
              f"| {scan['open3d_s']:.2f} | **{scan['pcflow_ratio']:.2f}** | {scan['fast_ratio']:.2f} "
              f"| {scan['pcflow_peak_mib']:.0f} / {scan['open3d_peak_mib']:.0f} ({scan['pcflow_memory_ratio']:.2f}) "
              f"| {each(scan, 'cd_l1', '.4f')} | {each(scan, 'fscore', '.3f')} | {each(scan, 'outlier_f1', '.3f')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES),
                        help="shapes scanned at --points: spot, gen-NAME (built in) or a mesh of DATA/meshes")
    parser.add_argument("--points", type=int, default=20_000, help="points per scan of every shape")
    parser.add_argument("--large-points", type=int, default=100_000,
                        help="points of one more scan, of the first shape (0: none)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="folder with meshes/")
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
        args.shapes, args.points, args.large_points, args.repeats, args.score_points = ["spot"], 4000, 0, 1, 50_000
        args.pcflow_args = (args.pcflow_args + " --epochs 5 --surface-steps 5 --couplings 2 --hidden 16").strip()

    from pcflow.meshing import boundary_mesh
    from pcflow.models import OneFlow

    results: dict = {"repeats": args.repeats, "pcflow_args": args.pcflow_args, "threads": torch.get_num_threads(),
                     "device": args.device,
                     "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        meshes = {name: load_shape(name, args.data) for name in args.shapes}
        plan = [(name, args.points) for name in args.shapes]
        if args.large_points:
            plan.append((args.shapes[0], args.large_points))
        scans = [measure_scan(name, meshes[name], n_points, folder, args) for name, n_points in plan]
        results["scans"] = scans
        # start-up: the commands that should answer at once
        scan_path = folder / f"{scans[0]['shape']}_{scans[0]['points']}.ply"
        for label, command in (("help", ["--help"]), ("info", ["info", str(scan_path)])):
            results[f"{label}_s"] = statistics.median(timed_run([*pcflow_command(), *command])[0] for _ in range(3))

        # scoring throughput of the first scan's default fit against the machine's matmul rate
        first = scans[0]
        model = OneFlow.load(folder / f"{first['shape']}_{first['points']}_pcflow_0" / "model.pt", device=args.device)
        rng = np.random.default_rng(0)
        base = model.reference_points_ + model.center_ if hasattr(model, "reference_points_") else None
        many = base[rng.integers(0, len(base), args.score_points)] if base is not None else rng.normal(
            size=(args.score_points, 3))
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
        mesh_times = [_seconds(lambda: boundary_mesh(model), args.device) for _ in range(3)]
        results["mesh_s"] = statistics.median(mesh_times)

    on_gpu = f"; pcflow on {results['device_name']}" if device.type != "cpu" else ""
    print(f"scans with 5% outliers; medians of {args.repeats} runs of each command in turn; torch threads "
          f"{results['threads']}{on_gpu}")
    print_scans(scans)
    at_points = [scan["pcflow_ratio"] for scan in scans if scan["points"] == args.points]
    print(f"pcflow / Open3D at {args.points:,} points: median {statistics.median(at_points):.2f}, "
          f"range {min(at_points):.2f}-{max(at_points):.2f}")
    print(f"start-up (median of 3): pcflow --help {results['help_s']:.2f} s, pcflow info on the first scan "
          f"{results['info_s']:.2f} s")
    print(f"scoring: {results['score_points_per_s'] / 1e6:.2f} M points/s = {results['score_gflops']:.1f} GFLOP/s "
          f"({model_flops_per_point(model)} FLOP/point); float32 matmul {results['matmul_gflops']:.1f} GFLOP/s; "
          f"ratio {results['score_to_matmul']:.2f}")
    print(f"whole score ({results['objective']} objective, score_samples): "
          f"{results['score_samples_points_per_s'] / 1e6:.3f} M points/s")
    print(f"mesh extraction at default tolerance: {results['mesh_s']:.2f} s")
    for scan in scans:
        for name, flags in VARIANTS.items():
            print(f"{scan['shape']}, {scan['points']:,} points, {' '.join(['pcflow', *flags])} stages (s): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in scan[f"{name}_stage_s"].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
