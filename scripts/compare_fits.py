"""Quality and fit time of two surface-fit settings on every shape of the scan benchmark, side by side.

Each shape of `scripts/benchmark_scans.py`'s sets (the shared meshes, the built-in shapes, the held-out, the
unseen and the hard ones) is scanned under docs/evaluation.md (20,000 points, 5% outliers, seed 0) and fitted as `pcflow
reconstruct` fits an object (`FitOptions`, alpha 0.05) with each setting; the surface mesh is snapped onto the
inliers with that setting's snap options. Per shape and setting: fit time, outlier F1, mesh CD-L1 and F-score@1%,
watertight, components and self-intersections; then the ratio of each after figure to its before figure.

The default settings compare the surface fit and snap of an earlier release (`BEFORE`) with today's defaults
(`AFTER`: `FitOptions()` and `snap_to_points`'s own defaults), so that a change of the defaults is read against
the quality it started from.

`--before` and `--after` set the two fits' SurfaceFlow settings instead (NAME=VALUE, the snap at its defaults): e.g.
`--before genus=0 --after genus=1` compares the genus-0 surface with the torus's on shapes with a handle.

Usage:
    python scripts/compare_fits.py [--shapes spot gen-torus ...] [--out results/compare_fits]
    python scripts/compare_fits.py --shapes bob_tri nut gen-torus --before genus=0 --after genus=1
    python scripts/compare_fits.py --quick --out /tmp/q      # smoke run: two shapes, tiny fits
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA, RESULTS, machine, markdown_table, outdir, set_threads, timed, write_csv, write_json,
)

from pcflow.io import read_mesh  # noqa: E402
from pcflow.meshing import boundary_mesh, snap_to_points, validity  # noqa: E402
from pcflow.metrics import chamfer_metrics, outlier_scores  # noqa: E402
from pcflow.pipeline import FitOptions  # noqa: E402
from pcflow.synthetic import BUILTIN_SHAPES, HARD_SHAPES, HELD_OUT_SHAPES, builtin_shape, synthetic_scan  # noqa: E402

#: The surface fit and snap of the release before the fit got cheaper: SurfaceFlow settings on top of FitOptions(),
#: and the keyword arguments of `snap_to_points` (max_offset as a share of the mesh's bounding-box diagonal).
BEFORE = {"fit": {"epochs": 40, "surface_steps": 1000},
          "snap": {"iterations": 3, "refine_iterations": 0, "max_offset_fraction": 0.02, "pool_points": 16.0}}
#: Today's defaults: nothing on top of FitOptions() and snap_to_points's defaults.
AFTER = {"fit": {}, "snap": {}}
QUICK_FIT = {"epochs": 2, "surface_steps": 5, "n_couplings": 2, "hidden_features": 16}


def shapes(data: Path, names: list[str] | None) -> dict:
    """Every shape of the scan benchmark's sets by name (the shared meshes by file stem, the rest 'gen-NAME')."""
    found = {path.stem: path for path in sorted((data / "meshes").glob("*"))
             if path.suffix.lower() in (".obj", ".ply", ".stl", ".off")}
    found.update({f"gen-{name}": name for name in (*BUILTIN_SHAPES, *HELD_OUT_SHAPES, *HARD_SHAPES)})
    if names:
        unknown = [name for name in names if name not in found]
        if unknown:
            raise SystemExit(f"unknown shape(s) {unknown}; available: {', '.join(found)}")
        found = {name: found[name] for name in names}
    return found


def load(source):
    return read_mesh(source) if isinstance(source, Path) else builtin_shape(source)


def fit_and_mesh(points, setting: dict, quick: bool):
    """The fitted model, its fit time and its snapped surface mesh under `setting`."""
    model = FitOptions(alpha=0.05, seed=0).estimator()
    model.set_params(**{**setting["fit"], **(QUICK_FIT if quick else {})})
    model, seconds = timed(model.fit, points)
    snap = dict(setting["snap"])
    raw = boundary_mesh(model, snap=False)
    if "max_offset_fraction" in snap:
        snap["max_offset"] = snap.pop("max_offset_fraction") * float(np.linalg.norm(np.ptp(raw.mesh.vertices, axis=0)))
    inliers = model.reference_points_ + model.center_
    inliers = inliers[model.predict(inliers) == 1]
    return model, seconds, snap_to_points(raw, inliers, **snap)


def measure(name: str, source, settings: dict, args) -> list[dict]:
    mesh = load(source)
    scan = synthetic_scan(mesh, n_points=args.n, outlier_ratio=0.05, seed=args.seed)
    labels = scan.labels.astype(bool)
    rows = []
    for label, setting in settings.items():
        model, seconds, boundary = fit_and_mesh(scan.points, setting, args.quick)
        f1 = outlier_scores(labels, keep_mask=model.predict(scan.points) == 1)["f1"]
        metrics = chamfer_metrics(boundary.mesh, scan.mesh, n_samples=args.chamfer_samples)
        checks = validity(boundary.mesh, check_intersections=False)
        rows.append({"shape": name, "setting": label, "fit_s": seconds, "envelope_epochs": model.n_iter_,
                     "surface_steps": model.n_surface_steps_, "outlier_f1": f1, "cd_l1": metrics["cd_l1"],
                     "fscore": metrics["fscore"], "watertight": checks["watertight"],
                     "components": checks["n_components"],
                     "self_intersections": boundary.info.get("self_intersections")})
        print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """The before/after table: each figure of both settings per shape, and the after / before ratios."""
    table, fit_ratios, cd_ratios = [], [], []
    for name in dict.fromkeys(row["shape"] for row in rows):
        before, after = (next(r for r in rows if r["shape"] == name and r["setting"] == s) for s in ("before", "after"))
        valid = all(r["watertight"] and r["components"] == 1 and r["self_intersections"] == 0 for r in (before, after))
        fit_ratios.append(after["fit_s"] / before["fit_s"])
        cd_ratios.append(after["cd_l1"] / before["cd_l1"])
        table.append({"shape": name, "fit": f"{before['fit_s']:.1f} / {after['fit_s']:.1f}",
                      "fit_ratio": fit_ratios[-1], "cd": f"{before['cd_l1']:.5f} / {after['cd_l1']:.5f}",
                      "cd_ratio": cd_ratios[-1], "fscore": f"{before['fscore']:.4f} / {after['fscore']:.4f}",
                      "fscore_change": f"{after['fscore'] - before['fscore']:+.4f}",
                      "f1": f"{before['outlier_f1']:.4f} / {after['outlier_f1']:.4f}",
                      "f1_change": f"{after['outlier_f1'] - before['outlier_f1']:+.4f}",
                      "valid": "yes" if valid else "NO"})
    columns = ["shape", "fit", "fit_ratio", "cd", "cd_ratio", "fscore", "fscore_change", "f1", "f1_change", "valid"]
    headers = ["shape", "fit s (before / after)", "ratio", "CD-L1 (before / after)", "ratio", "F-score@1%", "change",
               "outlier F1", "change", "valid (both)"]
    return (markdown_table(table, columns, headers)
            + f"\n\nfit time after / before: median {np.median(fit_ratios):.2f}, range {min(fit_ratios):.2f}-"
            f"{max(fit_ratios):.2f}; CD-L1 after / before: median {np.median(cd_ratios):.3f}, "
            f"worst {max(cd_ratios):.3f}\n")


def settings(pairs: list[str]) -> dict:
    """NAME=VALUE pairs as SurfaceFlow settings, each value read as a Python literal where it is one."""
    import ast

    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "compare_fits", help="output folder")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with meshes/")
    parser.add_argument("--shapes", nargs="*", help="shapes (default: every shape of the scan benchmark's sets)")
    parser.add_argument("--n", type=int, default=20_000, help="points per scan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chamfer-samples", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as `pcflow` runs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: two shapes, tiny fits")
    parser.add_argument("--before", nargs="*", metavar="NAME=VALUE",
                        help="SurfaceFlow settings of the first fit (default: the earlier release's, BEFORE)")
    parser.add_argument("--after", nargs="*", metavar="NAME=VALUE",
                        help="SurfaceFlow settings of the second fit (default: today's, AFTER)")
    args = parser.parse_args(argv)
    before = BEFORE if args.before is None else {"fit": settings(args.before), "snap": {}}
    after = AFTER if args.after is None else {"fit": settings(args.after), "snap": {}}
    set_threads(args.threads)
    if args.quick:
        args.shapes, args.n, args.chamfer_samples = args.shapes or ["gen-sphere", "gen-capsule"], 2000, 5000
    out = outdir(args.out)
    rows = []
    for name, source in shapes(args.data, args.shapes).items():
        rows += measure(name, source, {"before": before, "after": after}, args)
    text = summary(rows)
    print(text)
    write_csv(out / "compare_fits.csv", rows)
    write_json(out / "compare_fits.json", {"machine": machine(), "before": before, "after": after, "rows": rows})
    (out / "summary.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
