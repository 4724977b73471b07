"""Write the bundled demo sample: a labelled synthetic scan of Keenan Crane's Spot cow (pcflow/assets/) and its mesh
(assets/)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import trimesh
from plyfile import PlyData, PlyElement

from pcflow.synthetic import synthetic_scan, winding_number

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MESH = REPO.parent / "shared" / "data" / "meshes" / "spot.obj"
N_POINTS, NOISE, OUTLIER_RATIO, SEED = 20_000, 0.002, 0.05, 0
UP_AXIS = 1  # Spot stands along +y
LOW_COLOUR, HIGH_COLOUR = np.array([60.0, 110.0, 190.0]), np.array([240.0, 190.0, 90.0])

README = """\
# Bundled assets

The demo scan and its labels ship inside the package, in `pcflow/assets/` (package data, found through
`importlib.resources`, so `pcflow demo` works after any install); the ground-truth mesh, for benchmarks run from a
clone, stays here in `assets/`. Both folders hold a copy of the licence.

| file | what | licence / credit |
|---|---|---|
| `../pcflow/assets/spot_scan.ply` | demo input: unlabelled synthetic scan of the "Spot" cow, {n_points:,} points, binary little-endian PLY with float32 `x y z` and uchar `red green blue` (colour by height only, so it says nothing about the labels). Normalised frame: bounding-box centre of the cow at the origin, bounding-box diagonal 1 | derived from Spot by Keenan Crane, public domain (`LICENSE-spot.txt`) |
| `../pcflow/assets/spot_scan_labels.npy` | int8 labels of `spot_scan.ply` in the same order, 1 = background outlier ({n_outliers:,} outliers, {n_inside} of them inside the cow) | as above |
| `spot_mesh.ply` | the ground-truth surface in the same normalised frame ({n_vertices:,} vertices, {n_faces:,} faces, watertight, genus 0), binary PLY with float32 vertices, for scoring reconstructions | as above |
| `LICENSE-spot.txt`, `../pcflow/assets/LICENSE-spot.txt` | Keenan Crane's README for Spot, copied byte for byte, which releases it into the public domain | - |

## How they were made

```
{command}
```

(from the repository root, with pcflow installed, e.g. `pip install -e .`). The script calls `pcflow.synthetic.synthetic_scan(spot, n_points={n_points}, noise={noise}, outlier_ratio={ratio},
seed={seed})`, which follows the "Synthetic scans" protocol of docs/evaluation.md: the mesh is normalised, {n_points:,}
points are sampled uniformly by area, Gaussian noise with sigma {noise} (of the diagonal) is added, and
{ratio:.0%} of the points, chosen at random, are replaced by outliers uniform in the bounding box enlarged 1.5x.
Outliers that landed inside the cow keep label 1.

Source mesh: `spot.obj` ("Spot" by Keenan Crane, https://www.cs.cmu.edu/~kmcrane/Projects/ModelRepository/),
public domain.
"""


def height_colours(points: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours from a blue-to-amber ramp over the height of each point."""
    height = points[:, UP_AXIS]
    t = (height - height.min()) / max(float(np.ptp(height)), 1e-12)
    return np.round(LOW_COLOUR + t[:, None] * (HIGH_COLOUR - LOW_COLOUR)).astype(np.uint8)


def write_cloud(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Binary PLY with float32 x, y, z and uchar red, green, blue."""
    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                          ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = colours[:, i]
    comments = ["pcflow demo scan of Spot by Keenan Crane (public domain); see assets/README.md"]
    PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<",
            comments=comments).write(str(path))


def write_mesh(path: Path, mesh: trimesh.Trimesh) -> None:
    """Binary PLY with float32 vertices and int32 triangle faces."""
    vertex = np.empty(len(mesh.vertices), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = mesh.vertices[:, i]
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = mesh.faces
    comments = ["Spot by Keenan Crane (public domain), normalised: bbox centre 0, bbox diagonal 1"]
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")],
            text=False, byte_order="<", comments=comments).write(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mesh", nargs="?", type=Path, default=DEFAULT_MESH, help="path to spot.obj")
    parser.add_argument("--out", type=Path, default=REPO / "assets",
                        help="folder of the mesh, README.md and licence (default: assets/)")
    parser.add_argument("--scan-out", type=Path, default=REPO / "pcflow" / "assets",
                        help="folder of the scan, its labels and licence, shipped with the package "
                             "(default: pcflow/assets/)")
    args = parser.parse_args(argv)

    spot = trimesh.load(args.mesh, force="mesh")
    scan = synthetic_scan(spot, n_points=N_POINTS, noise=NOISE, outlier_ratio=OUTLIER_RATIO, seed=SEED)
    # cross-check the inside count with the generalised winding number, independent of ray casting
    n_inside_winding = int(np.count_nonzero(winding_number(scan.mesh, scan.points[scan.labels == 1]) > 0.5))
    if n_inside_winding != scan.n_outliers_inside:
        raise SystemExit(f"inside counts disagree: contains {scan.n_outliers_inside}, "
                         f"winding number {n_inside_winding}")

    for folder in (args.out, args.scan_out):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.mesh.with_name("spot_README.txt"), folder / "LICENSE-spot.txt")
    write_cloud(args.scan_out / "spot_scan.ply", scan.points, height_colours(scan.points))
    np.save(args.scan_out / "spot_scan_labels.npy", scan.labels.astype(np.int8))
    write_mesh(args.out / "spot_mesh.ply", scan.mesh)
    command = "python scripts/make_demo_asset.py" + ("" if args.mesh == DEFAULT_MESH else f" {args.mesh}")
    (args.out / "README.md").write_text(README.format(
        n_points=N_POINTS, n_outliers=int(scan.labels.sum()), n_inside=scan.n_outliers_inside,
        n_vertices=len(scan.mesh.vertices), n_faces=len(scan.mesh.faces), noise=NOISE,
        ratio=OUTLIER_RATIO, seed=SEED, command=command))
    print(f"wrote {args.scan_out} and {args.out}: {N_POINTS} points, {int(scan.labels.sum())} outliers, "
          f"{scan.n_outliers_inside} inside the cow")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
