"""SIGKILL in the middle of a streamed `pcflow denoise` of a large cloud, then a clean run into the same folder.

Each kill lands at a seeded random point of the stream (once the temporary output holds that share of the final
size); after it the script checks that no final output exists (none is partial), that the input is byte-identical,
and that the temporary files left are recognisable (`.NAME.XXXXXXXX.tmp`). A last run must then finish, remove
them, and write complete outputs (inliers and outliers add up to the input, as the model says). Prints a table and
writes kill_denoise.json into the work folder; exits 1 if any check failed.

    python scripts/kill_denoise.py                   # 3,000,000 points, 3 kills
    python scripts/kill_denoise.py --quick           # 20,000 points, 1 kill (what the tests run)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pcflow.io import PointCloud, read_cloud, temporary_name, write_cloud  # noqa: E402
from pcflow.models import OneFlow, load  # noqa: E402


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def size_of(path: Path) -> int:
    """The size of a file that may vanish meanwhile (moved into place), 0 then."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def command(src: Path, out: Path, model: Path, chunk: int) -> list[str]:
    return [sys.executable, "-m", "pcflow.cli", "denoise", str(src), "-o", str(out / "clean.ply"), "--outliers",
            str(out / "removed.ply"), "--model", str(model), "--chunk-size", str(chunk), "-q"]


def kill_once(src: Path, out: Path, model: Path, chunk: int, share: float, expected: int) -> dict:
    """One denoise, killed once its temporary cleaned cloud holds `share` of `expected` bytes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    temporary = temporary_name("clean.ply")
    earlier = set(os.listdir(out))  # what earlier kills left: the new run removes it, and it is not this run's
    process = subprocess.Popen(command(src, out, model, chunk), env=env)
    start, size = time.monotonic(), 0
    try:
        while process.poll() is None:
            sizes = [size_of(p) for p in out.iterdir() if temporary.fullmatch(p.name) and p.name not in earlier]
            size = max(sizes, default=0)
            if sizes and size >= share * expected:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        process.wait(timeout=600)
    left = sorted(p.name for p in out.iterdir())
    return {"share": round(share, 3), "killed": process.returncode == -signal.SIGKILL,
            "seconds": round(time.monotonic() - start, 2), "temporary_bytes": size,
            "no_final_output": "clean.ply" not in left and "removed.ply" not in left,
            "temporaries_recognisable": all(name.endswith((".tmp", ".lock")) for name in left)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=3_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--quick", action="store_true", help="20,000 points in chunks of 500, one kill")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.chunk_size, args.kills = 20_000, 500, 1
    work = Path(args.work or tempfile.mkdtemp(prefix="pcflow-kill-"))
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    points = rng.normal(size=(args.points, 3))
    src, model_path = work / "big.ply", work / "model.pt"
    write_cloud(src, PointCloud(points))
    model = OneFlow(epochs=2, n_couplings=2, hidden_features=8, random_state=args.seed).fit(points[:5000])
    model.save(model_path)
    before = digest(src)
    inside = load(model_path).predict(points) == 1
    expected = int(inside.sum()) * 24  # binary float64 x, y, z rows of the cleaned cloud
    rows = []
    for share in rng.uniform(0.05, 0.95, size=args.kills):
        row = kill_once(src, out, model_path, args.chunk_size, float(share), expected)
        row["input_unchanged"] = digest(src) == before
        rows.append(row)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(command(src, out, model_path, args.chunk_size), env=env, capture_output=True, text=True)
    final = {"exit_code": done.returncode, "seconds": round(time.monotonic() - start, 2),
             "folder": sorted(os.listdir(out)), "input_unchanged": digest(src) == before}
    if done.returncode == 0:
        kept, removed = read_cloud(out / "clean.ply"), read_cloud(out / "removed.ply")
        final["complete"] = bool(len(kept) + len(removed) == args.points and
                                 np.array_equal(kept.points, points[inside]))
    checks = [row[key] for row in rows for key in ("killed", "no_final_output", "temporaries_recognisable",
                                                     "input_unchanged")]
    checks += [done.returncode == 0, final["folder"] == ["clean.ply", "removed.ply"], final["input_unchanged"],
               final.get("complete", False)]
    result = {"points": args.points, "chunk_size": args.chunk_size, "kills": rows, "final_run": final,
              "ok": all(checks)}
    (work / "kill_denoise.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| kill at | killed | no final output | temporaries recognisable | input unchanged | seconds |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['share']:.0%} | {row['killed']} | {row['no_final_output']} | "
              f"{row['temporaries_recognisable']} | {row['input_unchanged']} | {row['seconds']} |")
    print(f"final run: exit {final['exit_code']}, folder {final['folder']}, complete {final.get('complete')}, "
          f"{final['seconds']} s; {'ok' if result['ok'] else 'FAILED'} ({work / 'kill_denoise.json'})")
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
