"""Scale benchmark: chunked `pcflow denoise` on 1M, 3M and 10M points, its time and peak memory growth.

Generates seeded binary PLY clouds (float32 xyz + uchar rgb: a noisy ellipsoid surface plus 5% uniform outliers) in
a temporary folder, runs each job in its own subprocess and measures its wall time and peak resident memory
(`_common.run_watched`: its processes' resident memory, polled). Runs: the streaming denoise
(`pcflow.pipeline.stream.denoise_file`, what `pcflow denoise` runs) at every size, the whole-file path (read_cloud,
fit_cloud, predict, write_cloud) at the smallest size, and Open3D's
`remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)` at the smallest size as the peer of the same run.
Prints a table with time per million points and growth ratios, writes JSON to --out and, with --markdown, the table
to a new markdown file (docs/benchmarks/scale.md keeps the recorded runs, added by hand).

Usage:
    python scripts/benchmark_scale.py            # 1M, 3M, 10M points (about 10 minutes on 2 CPU cores)
    python scripts/benchmark_scale.py --quick --out /tmp/scale.json   # 20k, 40k, 80k points (under a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_watched  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FULL = {"sizes": (1_000_000, 3_000_000, 10_000_000), "chunk_size": 1_000_000, "epochs": 20, "surface_steps": 300,
        "couplings": None, "hidden": None}  # None: the mode's own default
QUICK = {"sizes": (20_000, 40_000, 80_000), "chunk_size": 16_384, "epochs": 2, "surface_steps": 5, "couplings": 2,
         "hidden": 16}
OUTLIER_SHARE = 0.05


# ------------------------------------------------------------------------------------------------------------------
# data


def write_cloud_file(path: Path, n: int, *, seed: int = 0, chunk: int = 1_000_000) -> None:
    """Writes a binary PLY of n points (float32 xyz, uchar rgb), chunk by chunk, seeded per chunk."""
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {'float' if dtype[name].kind == 'f' else 'uchar'} {name}" for name in dtype.names]
    with open(path, "wb") as f:
        f.write(("\n".join(header + ["end_header"]) + "\n").encode("ascii"))
        for index, start in enumerate(range(0, n, chunk)):
            rng = np.random.default_rng([seed, index])
            m = min(chunk, n - start)
            direction = rng.normal(size=(m, 3))
            points = direction / np.linalg.norm(direction, axis=1, keepdims=True) * [1.0, 0.7, 0.5]
            points += rng.normal(scale=0.005, size=(m, 3))
            outlier = rng.random(m) < OUTLIER_SHARE
            points[outlier] = rng.uniform(-1.5, 1.5, size=(int(outlier.sum()), 3))
            records = np.empty(m, dtype=dtype)
            for k, axis in enumerate("xyz"):
                records[axis] = points[:, k]
            for name in ("red", "green", "blue"):
                records[name] = rng.integers(0, 256, m)
            f.write(records.tobytes())


# ------------------------------------------------------------------------------------------------------------------
# the jobs, each run in a child process


def child(kind: str, source: str, outdir: str, settings: dict) -> dict:
    """One job; returns its counts and stage times (printed as JSON by the child)."""
    outdir = Path(outdir)
    if kind == "open3d":
        import open3d as o3d

        start = time.perf_counter()
        cloud = o3d.io.read_point_cloud(source)
        read = time.perf_counter() - start
        _, kept = cloud.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
        score = time.perf_counter() - start - read
        o3d.io.write_point_cloud(str(outdir / "inliers.ply"), cloud.select_by_index(kept))
        n = len(cloud.points)
        return {"n_points": n, "n_inliers": len(kept), "n_outliers": n - len(kept),
                "timings": {"read": read, "score": score, "total": time.perf_counter() - start}}

    from pcflow.pipeline import FitOptions, Timer, fit_cloud

    options = FitOptions(mode=settings["mode"], epochs=settings["epochs"], surface_steps=settings["surface_steps"],
                         n_couplings=settings["couplings"], hidden_features=settings["hidden"], seed=0)
    if kind == "stream":
        from pcflow.pipeline.stream import denoise_file

        result = denoise_file(source, outdir / "inliers.ply", outdir / "outliers.ply", fit_options=options,
                              chunk_size=settings["chunk_size"])
        result.pop("model")
        return result
    from pcflow.io import read_cloud, write_cloud  # the whole-file path of `pcflow denoise` before streaming

    start, timer = time.perf_counter(), Timer()
    with timer("read"):
        cloud = read_cloud(source)
    model = fit_cloud(cloud, options, timer)
    with timer("score"):
        inside = model.predict(cloud.points) == 1
    with timer("write_clouds"):
        write_cloud(outdir / "inliers.ply", cloud.subset(inside))
        write_cloud(outdir / "outliers.ply", cloud.subset(~inside))
    timings = dict(timer.stages, total=time.perf_counter() - start)
    return {"n_points": len(cloud), "n_inliers": int(inside.sum()), "n_outliers": int((~inside).sum()),
            "timings": timings}


def measure(kind: str, source: Path, workdir: Path, settings: dict) -> dict:
    """Runs one job in a subprocess; adds its wall time and peak resident memory (MiB) to its result."""
    outdir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{kind}-"))
    log = outdir / "child.json"
    command = [sys.executable, __file__, "--child", kind, str(source), str(outdir), json.dumps(settings)]
    with open(log, "w") as stdout, open(outdir / "child.err", "w") as stderr:
        code, seconds, mib = run_watched(command, stdout=stdout, stderr=stderr, cwd=REPO)
    result = {"ok": code == 0, "seconds": seconds, "peak_rss_mib": mib}
    if result["ok"]:
        result.update(json.loads(log.read_text().strip().splitlines()[-1]))
    else:
        result["error"] = (outdir / "child.err").read_text()[-2000:]
    shutil.rmtree(outdir, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------------------------------------------
# report


def table(rows: list[dict]) -> str:
    head = ["run", "points", "seconds", "peak RSS MiB", "time / M points", "fit s", "read s", "score s",
            "write s", "inliers"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        t = row.get("timings", {})
        cells = [row["name"], f"{row['n_points']:,}", f"{row['seconds']:.1f}", f"{row['peak_rss_mib']:.0f}",
                 f"{row['seconds'] / row['n_points'] * 1e6:.1f} s",
                 *(f"{t[k]:.2f}" if k in t else "-" for k in ("fit", "read", "score", "write_clouds")),
                 f"{row.get('n_inliers', 0):,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth(rows: list[dict]) -> dict:
    """Ratios of each size to the smallest: points, wall time, streamed work (read+score+write), peak memory."""
    first = rows[0]

    def work(row):
        return sum(row["timings"].get(k, 0.0) for k in ("read", "score", "write_clouds"))

    return {
        "points": [row["n_points"] / first["n_points"] for row in rows],
        "time": [row["seconds"] / first["seconds"] for row in rows],
        "streamed_work": [work(row) / work(first) for row in rows],
        "memory": [row["peak_rss_mib"] / first["peak_rss_mib"] for row in rows],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k/40k/80k points and a tiny model (smoke run)")
    parser.add_argument("--mode", choices=("surface", "envelope"), default="surface",
                        help="fitting mode of pcflow's runs (default surface, which the CLI's auto mode keeps "
                             "for a scanned object)")
    parser.add_argument("--out", default=str(REPO / "results" / "scale.json"), help="JSON results file")
    parser.add_argument("--markdown", default=None,
                        help="also write the table to this markdown file (refused if it exists)")
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, source, outdir, settings = args.child
        print(json.dumps(child(kind, source, outdir, json.loads(settings)), default=float))
        return 0

    if args.markdown and Path(args.markdown).exists():
        parser.error(f"--markdown {args.markdown} exists; give a new file (recorded runs are added by hand)")
    settings = dict(QUICK if args.quick else FULL, mode=args.mode)
    sizes = settings.pop("sizes")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pcflow-scale-") as folder:
        workdir = Path(folder)
        for n in sizes:
            source = workdir / f"cloud_{n}.ply"
            write_cloud_file(source, n)
            jobs = ["stream"] + (["in-memory", "open3d"] if n == sizes[0] else [])
            for kind in jobs:
                result = measure(kind if kind != "in-memory" else "memory", source, workdir, settings)
                name = f"{'pcflow ' if kind != 'open3d' else ''}{kind} {n}"
                result.update(name=name, kind=kind)
                result.setdefault("n_points", n)
                rows.append(result)
                print(f"{name}: {'ok' if result['ok'] else 'FAILED'} in {result['seconds']:.1f} s, "
                      f"peak {result['peak_rss_mib']:.0f} MiB", flush=True)
                if not result["ok"]:
                    print(result["error"], file=sys.stderr)
                    return 1
            source.unlink()

    streamed = [row for row in rows if row["kind"] == "stream"]
    by_name = {row["name"]: row for row in rows}
    peer, memory, first = by_name[f"open3d {sizes[0]}"], by_name[f"pcflow in-memory {sizes[0]}"], streamed[0]
    result = {
        "sizes": list(sizes),
        "settings": settings,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": rows,
        "growth": growth(streamed),
        "ratios": {
            "stream_over_open3d_time": first["seconds"] / peer["seconds"],
            "stream_over_open3d_memory": first["peak_rss_mib"] / peer["peak_rss_mib"],
            "stream_over_in_memory_time": first["seconds"] / memory["seconds"],
            "stream_over_in_memory_memory": first["peak_rss_mib"] / memory["peak_rss_mib"],
        },
    }
    g = result["growth"]
    labels = [f"{n / sizes[0]:g}x" for n in sizes]
    text = "\n".join([
        table(rows),
        "",
        "growth against the smallest size (" + ", ".join(labels) + " points):",
        "  wall time:      " + ", ".join(f"{v:.2f}" for v in g["time"]),
        "  streamed work:  " + ", ".join(f"{v:.2f}" for v in g["streamed_work"]) + "  (read + score + write)",
        "  peak memory:    " + ", ".join(f"{v:.2f}" for v in g["memory"]),
        f"at {sizes[0]:,} points: pcflow stream / Open3D statistical outlier removal: time "
        f"{result['ratios']['stream_over_open3d_time']:.2f}x, memory {result['ratios']['stream_over_open3d_memory']:.2f}x;"
        f" stream / in-memory: time {result['ratios']['stream_over_in_memory_time']:.2f}x, memory "
        f"{result['ratios']['stream_over_in_memory_memory']:.2f}x",
        f"model: {settings['mode']} mode, {settings['epochs']} epochs"
        + (f" + {settings['surface_steps']} surface steps" if settings["mode"] == "surface" else "")
        + f", {settings['couplings'] or 'default'} couplings, {settings['hidden'] or 'default'} hidden, "
        f"20,000 training points; chunks of {settings['chunk_size']:,} rows; {os.cpu_count()} CPUs",
    ])
    print(text)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(
            "# Scale benchmark\n\n`python scripts/benchmark_scale.py` (chunked `pcflow denoise`, binary PLY, float32 "
            "xyz + uchar rgb, 5% uniform outliers); each run in its own process, peak memory is the largest "
            "resident memory of its processes.\n\n```\n" + text + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
