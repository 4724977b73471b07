"""Genus benchmark: how often `pcflow.meshing.estimate_genus` names the right genus on scans of known shapes.

Scans follow docs/evaluation.md (20,000 points, noise 0.002 of the diagonal, 5% background outliers), all around and
from single viewpoints, several seeds. The estimate runs on the true inliers, and on every point (outliers
included), which brackets what the pipeline gives it (the model's inliers: most outliers removed). Shapes: the
procedural, held-out and hard shapes of `pcflow.synthetic`, the meshes of the shared data, and implicit surfaces of
genus 0 to 3 (chains of tori, a cup with and without a handle) that no setting of the estimator was chosen on.

Usage:
    python scripts/benchmark_genus.py                  # the full table (about 2 minutes)
    python scripts/benchmark_genus.py --seeds 1        # quicker
    python scripts/benchmark_genus.py --quick          # smoke run: three shapes scanned all around, one seed
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, markdown_table  # noqa: E402

from pcflow.meshing.genus import estimate_genus  # noqa: E402
from pcflow.synthetic import (  # noqa: E402
    BUILTIN_SHAPES, HARD_SHAPES, HELD_OUT_SHAPES, SHAPE_GENUS, builtin_shape, synthetic_scan,
)

#: Shared-data meshes and their genus.
MESHES = {"bob_tri.obj": 1, "nut.ply": 1, "spot.obj": 0}
VIEWS = {"all around": None, "view (1,1,1)": (1, 1, 1), "view (0,0,1)": (0, 0, 1)}


def _torus_sdf(p, centre, major, minor):
    q = p - centre
    return np.hypot(np.hypot(q[..., 0], q[..., 1]) - major, q[..., 2]) - minor


def _cup_sdf(p, handle: bool):
    radial = np.hypot(p[..., 0], p[..., 1])
    outer = np.maximum(radial - 0.5, np.abs(p[..., 2]) - 0.6)
    inner = np.maximum(radial - 0.4, np.abs(p[..., 2] - 0.2) - 0.5)  # open at the top, closed at the bottom
    cup = np.maximum(outer, -inner)
    if not handle:
        return cup
    q = p - np.array([0.62, 0.0, 0.0])
    ring = np.hypot(np.hypot(q[..., 0], q[..., 2]) - 0.25, q[..., 1]) - 0.06  # in the xz-plane, through the wall
    return np.minimum(cup, ring)


def implicit_shapes() -> dict[str, tuple[trimesh.Trimesh, int]]:
    """Watertight marching-cubes meshes of implicit surfaces, with their genus."""
    from skimage.measure import marching_cubes

    fields = {
        "implicit: 2 tori chained": (lambda p: np.minimum(_torus_sdf(p, np.array([-0.55, 0, 0]), 0.5, 0.16),
                                                         _torus_sdf(p, np.array([0.55, 0, 0]), 0.5, 0.16)), 2),
        "implicit: 3 tori chained": (lambda p: np.minimum.reduce([_torus_sdf(p, np.array([x, 0, 0]), 0.4, 0.12)
                                                                  for x in (-0.9, 0.0, 0.9)]), 3),
        "implicit: cup": (lambda p: _cup_sdf(p, handle=False), 0),
        "implicit: cup with handle": (lambda p: _cup_sdf(p, handle=True), 1),
    }
    axis = np.linspace(-1.5, 1.5, 151) + 0.0037  # off the shapes' round numbers: no grid value exactly 0
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    shapes = {}
    for name, (field, genus) in fields.items():
        vertices, faces, _, _ = marching_cubes(field(grid), level=0.0, spacing=(axis[1] - axis[0],) * 3)
        mesh = trimesh.Trimesh(vertices + axis[0], faces[:, ::-1], process=True)
        if not mesh.is_watertight or mesh.euler_number != 2 - 2 * genus:
            raise RuntimeError(f"{name}: marching cubes gave Euler number {mesh.euler_number}, "
                               f"expected {2 - 2 * genus}")
        shapes[name] = (mesh, genus)
    return shapes


def all_shapes(data: Path) -> dict[str, tuple[trimesh.Trimesh, int]]:
    shapes = {name: (builtin_shape(name), SHAPE_GENUS.get(name, 0))
              for name in BUILTIN_SHAPES + HELD_OUT_SHAPES + HARD_SHAPES}
    for name, genus in MESHES.items():
        path = data / "meshes" / name
        if path.exists():
            shapes[name] = (trimesh.load(path, force="mesh"), genus)
        else:
            print(f"skipping {path}: not found", file=sys.stderr)
    shapes.update(implicit_shapes())
    return shapes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="scans per shape and view (default 3)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="the sphere, the torus and two chained tori, scanned "
                                                             "all around, one seed")
    args = parser.parse_args(argv)

    shapes, views = all_shapes(args.data), VIEWS
    if args.quick:
        shapes = {name: shapes[name] for name in ("sphere", "torus", "implicit: 2 tori chained")}
        views, args.seeds = {"all around": None}, 1
    rows, tally, seconds = [], {}, []
    for name, (mesh, genus) in shapes.items():
        row = {"shape": name, "genus": genus}
        for view_name, view in views.items():
            found = []
            for seed in range(args.seeds):
                scan = synthetic_scan(mesh, seed=seed, view=view)
                for which, points in (("inliers", scan.points[scan.labels == 0]), ("all", scan.points)):
                    start = time.perf_counter()
                    estimate = estimate_genus(points)
                    seconds.append(time.perf_counter() - start)
                    found.append(f"{estimate.genus}{'' if estimate.encloses else 'o'}")
                    key = (view is None, which, estimate.encloses, estimate.genus == genus)
                    tally[key] = tally.get(key, 0) + 1
            row[view_name] = " ".join(found)
        rows.append(row)
    print(f"estimate_genus on {args.seeds} seed(s) per shape and view; each cell: the estimate per seed on the "
          "inliers, then on all points; 'o': the points enclose no volume at any scale (an open sheet)\n")
    print(markdown_table(rows, list(rows[0])))
    print()
    summary = []
    for around in (True, False) if not args.quick else (True,):
        for which in ("inliers", "all"):
            counts = {f"{'encloses' if encl else 'open'}, {'right' if right else 'wrong'}": tally.get(
                (around, which, encl, right), 0) for encl in (True, False) for right in (True, False)}
            summary.append({"scans": "all around" if around else "one view", "points": which, **counts})
    print(markdown_table(summary, list(summary[0])))
    print(f"\nestimate time: median {np.median(seconds):.2f} s, max {np.max(seconds):.2f} s; {platform.platform()}, "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
