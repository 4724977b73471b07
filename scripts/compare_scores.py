"""Outlier F1 and meshes of two settings of the surface model's score, on the same fits, beside the best peer.

The score's settings (`SurfaceFlow`'s `plane_weight`, `plane_neighbors`, `surface_weight`, `n_neighbors`,
`neighbor_statistic`) do not change the fit, so each scan is fitted once (`FitOptions`, as `pcflow reconstruct` fits
an object, alpha = the outlier ratio) and scored under each setting, its threshold the (1 - alpha) quantile of that
setting's outlyingness over the training points, as `fit` sets it. Scans: every shape of the scan benchmark's sets
(`compare_fits.shapes`) at 5% outliers, and the sweep shapes at the other outlier ratios of
`scripts/benchmark_scans.py`, under docs/evaluation.md (20,000 points, seed 0). Per scan and setting: outlier F1 and
the snapped mesh's CD-L1 (the snap takes the setting's inliers); per scan, the best peer's F1.

The default settings compare the score before the plane term (`BEFORE`) with today's (`AFTER`).

Usage:
    python scripts/compare_scores.py [--shapes spot gen-flat_animal ...] [--out results/compare_scores]
    python scripts/compare_scores.py --quick --out /tmp/q      # smoke run: one shape, tiny fits
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, machine, markdown_table, outdir, set_threads, write_csv, write_json  # noqa: E402
from benchmark_scans import PEER_FUNCTIONS, RATIOS  # noqa: E402
from compare_fits import QUICK_FIT, load, shapes  # noqa: E402

from pcflow.meshing import boundary_mesh, validity  # noqa: E402
from pcflow.metrics import chamfer_metrics, outlier_scores  # noqa: E402
from pcflow.pipeline import FitOptions  # noqa: E402
from pcflow.synthetic import synthetic_scan  # noqa: E402

#: The score before the distance to the local plane joined it, and today's (the model's defaults).
BEFORE = {"plane_weight": 0.0}
AFTER = {}


def rescored(model, points: np.ndarray, setting: dict):
    """A copy of the fitted `model` with the score `setting` and the threshold that `fit` would give it on `points`
    (the training points)."""
    model = copy.deepcopy(model)
    model.set_params(**setting)
    threshold = float(np.quantile(-model.score_samples(points), 1.0 - model.alpha))
    model.distance_threshold_, model.offset_ = threshold, -threshold
    return model


def measure(name: str, mesh, ratio: float, args) -> list[dict]:
    scan = synthetic_scan(mesh, n_points=args.n, outlier_ratio=ratio, seed=args.seed)
    labels = scan.labels.astype(bool)
    peers = {peer: outlier_scores(labels, keep_mask=run(scan.points, ratio, args.seed)[0])["f1"]
             for peer, run in PEER_FUNCTIONS.items()}
    best = max(peers, key=peers.get)
    fitted = FitOptions(alpha=ratio, seed=args.seed).estimator().set_params(**(QUICK_FIT if args.quick else {}))
    fitted.fit(scan.points)
    rows = []
    for label, setting in {"before": BEFORE, "after": AFTER}.items():
        model = rescored(fitted, scan.points, setting)
        row = {"shape": name, "ratio": ratio, "setting": label,
               "outlier_f1": outlier_scores(labels, keep_mask=model.predict(scan.points) == 1)["f1"],
               "best_peer": best, "best_peer_f1": peers[best]}
        if ratio == args.mesh_ratio:
            boundary = boundary_mesh(model)
            checks = validity(boundary.mesh, check_intersections=False)
            row.update(cd_l1=chamfer_metrics(boundary.mesh, scan.mesh, n_samples=args.chamfer_samples)["cd_l1"],
                       valid=checks["watertight"] and checks["n_components"] == 1
                       and boundary.info.get("self_intersections") == 0)
        rows.append(row)
        print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """Per scan: F1 before / after, its change, the best peer's F1, CD-L1 before / after; then the extremes."""
    table, changes, margins, cd_ratios = [], [], [], []
    for name, ratio in dict.fromkeys((row["shape"], row["ratio"]) for row in rows):
        before, after = (next(r for r in rows if (r["shape"], r["ratio"], r["setting"]) == (name, ratio, s))
                         for s in ("before", "after"))
        changes.append(after["outlier_f1"] - before["outlier_f1"])
        margins.append(after["outlier_f1"] - after["best_peer_f1"])
        entry = {"scan": f"{name} {100 * ratio:g}%", "f1": f"{before['outlier_f1']:.3f} / {after['outlier_f1']:.3f}",
                 "change": f"{changes[-1]:+.3f}", "peer": f"{after['best_peer_f1']:.3f} ({after['best_peer']})",
                 "margin": f"{margins[-1]:+.3f}", "cd": "", "valid": ""}
        if "cd_l1" in after:
            cd_ratios.append(after["cd_l1"] / before["cd_l1"])
            entry["cd"] = f"{before['cd_l1']:.5f} / {after['cd_l1']:.5f}"
            entry["valid"] = "yes" if before["valid"] and after["valid"] else "NO"
        table.append(entry)
    headers = ["scan", "outlier F1 (before / after)", "change", "best peer F1", "after - peer",
               "CD-L1 (before / after)", "valid (both)"]
    text = markdown_table(table, list(table[0]), headers)
    text += (f"\n\nF1 change: mean {np.mean(changes):+.4f}, least {min(changes):+.4f}; after minus the best peer: "
             f"least {min(margins):+.4f}")
    if cd_ratios:
        text += f"; CD-L1 after / before: median {np.median(cd_ratios):.4f}, worst {max(cd_ratios):.4f}"
    return text + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "compare_scores", help="output folder")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with meshes/")
    parser.add_argument("--shapes", nargs="*", help="shapes at the mesh ratio (default: every shape of the sets)")
    parser.add_argument("--sweep-shapes", nargs="*", default=["spot", "gen-capsule"],
                        help="shapes also scanned at the other outlier ratios")
    parser.add_argument("--mesh-ratio", type=float, default=0.05)
    parser.add_argument("--n", type=int, default=20_000, help="points per scan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chamfer-samples", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as `pcflow` runs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one shape at two ratios, tiny fits")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.shapes, args.n, args.chamfer_samples = args.shapes or ["gen-capsule"], 2000, 5000
        args.sweep_shapes = args.shapes[:1]
    out = outdir(args.out)
    found = shapes(args.data, args.shapes)
    jobs = [(name, args.mesh_ratio) for name in found]
    ratios = RATIOS[:1] if args.quick else RATIOS
    jobs += [(name, ratio) for name in args.sweep_shapes if name in found
             for ratio in ratios if ratio != args.mesh_ratio]
    meshes = {name: load(source) for name, source in found.items()}
    rows = []
    for name, ratio in jobs:
        rows += measure(name, meshes[name], ratio, args)
    text = summary(rows)
    print(text)
    write_csv(out / "compare_scores.csv", rows)
    write_json(out / "compare_scores.json", {"machine": machine(), "before": BEFORE, "after": AFTER, "rows": rows})
    (out / "summary.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
