"""Scene benchmark: `pcflow reconstruct --scene` against an Open3D recipe on labelled synthetic table-top scenes.

Follows docs/evaluation.md where it applies to scenes (docs/benchmarks/scenes.md states the protocol): synthetic
scenes of closed meshes standing on a table (`pcflow.synthetic.synthetic_scene`), with and without a wall, scanned all
around and from one view, noise 0.002 and 5% outliers. Both methods label every point (outlier, plane, object) and
mesh every object; objects are matched to the true ones by majority of labels (`pcflow.metrics.scene_scores`). Per
object: CD-L1, F-score at tau 0.01 and watertightness; per scene: objects found / present, point-label accuracy,
outlier F1 and wall time, also as a ratio to the Open3D recipe in the same run. Then the real table-top scans: objects
found and wall time. Writes summary.md, results.json and CSV files into --out.

Usage:
    python scripts/benchmark_scenes.py                        # full run (about 12 minutes on 2 shared CPU cores)
    python scripts/benchmark_scenes.py --quick --out /tmp/q   # smoke run (well under a minute)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA, RESULTS, cpu_timed, machine, markdown_table, outdir, set_threads, write_csv, write_json,
)

from pcflow.io import PointCloud, read_cloud, read_mesh, write_cloud  # noqa: E402
from pcflow.meshing import validity  # noqa: E402
from pcflow.metrics import chamfer_metrics, point_chamfer, scene_scores  # noqa: E402
from pcflow.pipeline import FitOptions, MeshOptions, reconstruct  # noqa: E402
from pcflow.scene import OUTLIER, PLANE, is_object, is_plane  # noqa: E402
from pcflow.synthetic import builtin_shape, synthetic_scene  # noqa: E402

#: The scenes of a full run: name -> (shapes, wall, view). 'gen-' names are `builtin_shape`s, the others files of
#: data/meshes (turned from y up to z up). A view is the direction from the scene's centre to the camera.
SCENES = {
    "3 all around": (("spot", "sphere", "gen-capsule"), False, None),
    "4 all around, wall": (("bob_tri", "nut", "gen-rounded_box", "gen-sphere"), True, None),
    "2 one view, wall": (("spot", "gen-capsule"), True, (0.3, -1.0, 0.8)),
    "5 one view": (("sphere", "nut", "bob_tri", "gen-rounded_box", "gen-capsule"), False, (-0.2, -1.0, 0.9)),
}
QUICK_SCENES = {"2 all around": (("sphere", "gen-capsule"), False, None)}
#: Each object's bounding-box diagonal, in scene diagonals: `synthetic_scene`'s default, which fits five objects.
SIZE = 0.2
#: Object sizes of the segmentation sweep (the sizes at which a scene's objects fit on the table).
SWEEP_SIZES = (0.15, 0.18, 0.2, 0.22, 0.25)
QUICK_FIT = {"epochs": 2, "surface_steps": 5, "n_couplings": 2, "hidden_features": 16}  # --quick: a smoke run
METHODS = ("pcflow", "Open3D")
REAL_SCANS = ("table_scene_mug_stereo_textured.pcd", "milk_cartoon_all_small_clorox.pcd")
# The Open3D recipe's settings, in units of the mean nearest-neighbour distance of the cleaned cloud.
PLANE_DISTANCE = 2.0  # segment_plane's distance threshold
PLANE_SHARE = 0.10  # planes are taken off while one holds at least this share of the cleaned points
CLUSTER_EPS = 4.0  # cluster_dbscan's eps; min_points 10
MIN_CLUSTER = (0.01, 100)  # a cluster under 1% of the points or under 100 points is outliers


# ------------------------------------------------------------------------------------------------------------------
# data


def load_meshes(data: Path, names) -> dict:
    """Closed meshes by name: 'gen-<shape>' is a `builtin_shape`, any other name a file of data/meshes, turned from
    the y-up convention of OBJ files to z up (a file's meshes stand as the file shows them)."""
    import trimesh

    up = trimesh.transformations.rotation_matrix(np.pi / 2, [1.0, 0.0, 0.0])  # y -> z
    meshes = {}
    for name in names:
        if name.startswith("gen-"):
            meshes[name] = builtin_shape(name[4:])
            continue
        paths = sorted(p for p in (data / "meshes").glob(f"{name}.*") if p.suffix in (".obj", ".ply", ".stl", ".off"))
        if not paths:
            raise SystemExit(f"no mesh {name!r} in {data / 'meshes'}")
        meshes[name] = read_mesh(paths[0]).apply_transform(up)
    return meshes


# ------------------------------------------------------------------------------------------------------------------
# the two methods


def o3d_cloud(points: np.ndarray):
    import open3d as o3d

    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))


def open3d_scene(points: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The Open3D recipe: `open3d_segment`, then one Poisson surface per object cropped to its box. Returns ((N,)
    labels, {object label: trimesh})."""
    import open3d as o3d
    import trimesh

    labels = open3d_segment(points, seed)
    cloud, meshes = o3d_cloud(points), {}
    for label in range(int(labels[is_object(labels)].max(initial=-1)) + 1):
        part = cloud.select_by_index(np.flatnonzero(labels == label))
        part.estimate_normals()
        part.orient_normals_consistent_tangent_plane(15)
        surface, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(part, depth=8)
        surface = surface.crop(part.get_axis_aligned_bounding_box())
        meshes[label] = trimesh.Trimesh(np.asarray(surface.vertices), np.asarray(surface.triangles))
    return labels, meshes


def open3d_segment(points: np.ndarray, seed: int) -> np.ndarray:
    """The Open3D recipe's labels: statistical outlier removal, planes by RANSAC while one holds 10% of the points,
    DBSCAN clusters of the rest, clusters under 1% of the points or 100 points outliers. (N,) int32 labels."""
    import open3d as o3d

    o3d.utility.random.seed(seed)
    cloud = o3d_cloud(points)
    labels = np.full(len(points), OUTLIER, dtype=np.int32)
    cleaned, kept = cloud.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
    kept = np.asarray(kept, dtype=np.int64)
    spacing = float(np.mean(cleaned.compute_nearest_neighbor_distance()))
    rest, n_planes = kept, 0
    while len(rest) >= 3:
        _, inliers = cloud.select_by_index(rest).segment_plane(distance_threshold=PLANE_DISTANCE * spacing,
                                                                ransac_n=3, num_iterations=1000)
        if len(inliers) < PLANE_SHARE * len(kept):
            break
        labels[rest[inliers]] = PLANE + n_planes
        rest, n_planes = np.delete(rest, inliers), n_planes + 1
    clusters = np.asarray(cloud.select_by_index(rest).cluster_dbscan(eps=CLUSTER_EPS * spacing, min_points=10))
    n_objects = 0
    for c in range(int(clusters.max(initial=-1)) + 1):
        members = rest[clusters == c]
        if len(members) >= max(MIN_CLUSTER[0] * len(points), MIN_CLUSTER[1]):
            labels[members] = n_objects
            n_objects += 1
    return labels


def pcflow_scene(path: Path, out: Path, fit: FitOptions) -> tuple[np.ndarray, dict, dict]:
    """`pcflow.pipeline.reconstruct(..., scene=True)` on a cloud file. Returns ((N,) labels, {object label: trimesh},
    the report); the report's object entry with index k is label k."""
    report = reconstruct(path, out, fit, MeshOptions(), scene=True, preview=False)
    labels = np.load(out / "labels.npy")
    meshes = {entry.get("index", k): read_mesh(out / entry["mesh_file"]) if entry.get("mesh_file") else None
              for k, entry in enumerate(report["objects"])}
    return labels, meshes, report


# ------------------------------------------------------------------------------------------------------------------
# measures


def object_row(scene, k: int, mesh, n_samples: int) -> dict:
    """CD-L1, F-score (tau 0.01) and validity of a mesh of object k, in the scene's frame: against the whole true
    mesh for a scan from all around; for a one-view scan, what the camera would see of the mesh against what it saw
    of the object (`SyntheticScene.visible_samples`)."""
    nan = float("nan")
    if mesh is None or len(mesh.faces) == 0 or not mesh.area > 0:
        return {"found": False, "cd_l1": nan, "fscore": nan, "watertight": False}
    checks = validity(mesh, check_intersections=False)
    if scene.camera is None:
        metrics = chamfer_metrics(mesh, scene.meshes[k], n_samples=n_samples)
    else:
        seen = scene.visible_samples(mesh, k, n_samples=n_samples)
        truth = scene.visible_truth(k, n_samples=n_samples)
        metrics = point_chamfer(seen, truth) if len(seen) and len(truth) else {"cd_l1": nan, "fscore": nan}
    return {"found": True, "cd_l1": metrics["cd_l1"], "fscore": metrics["fscore"],
            "accuracy": metrics.get("accuracy", nan), "completeness": metrics.get("completeness", nan),
            "watertight": bool(checks["watertight"]), "n_components": checks["n_components"]}


def benchmark_scene(name: str, meshes: dict, spec, args, work: Path) -> tuple[dict, list[dict], list[dict]]:
    """Both methods on one synthetic scene. Returns (the scene's description, scene rows, object rows)."""
    shapes, wall, view = spec
    size = args.size
    scene = synthetic_scene([meshes[s] for s in shapes], n_points=args.n, size=size, wall=wall, view=view,
                            noise=args.noise, outlier_ratio=args.outliers, seed=args.seed)
    path = work / f"{slug(name)}.ply"
    write_cloud(path, PointCloud(scene.points))
    described = {"scene": name, "shapes": list(shapes), "wall": wall, "view": view, "size": size,
                 "n_points": len(scene.points),
                 "n_outliers": int(np.count_nonzero(scene.labels == OUTLIER)),
                 "points_per_object": [int(np.count_nonzero(scene.labels == k)) for k in range(len(shapes))],
                 "spacing": scene.spacing}
    predictions, seconds, cpu = {}, {}, {}
    predictions["Open3D"], seconds["Open3D"], cpu["Open3D"] = cpu_timed(open3d_scene, scene.points, args.seed)
    (labels, flow_meshes, report), seconds["pcflow"], cpu["pcflow"] = cpu_timed(pcflow_scene, path,
                                                                               work / slug(name), args.fit)
    predictions["pcflow"] = (labels, flow_meshes)

    scene_rows, object_rows = [], []
    for method in METHODS:
        labels, predicted = predictions[method]
        scores = scene_scores(scene.labels, labels)
        matched = {k: j for j, k in scores["matches"].items()}
        rows = []
        for k, shape in enumerate(shapes):
            mesh = predicted.get(matched[k]) if k in matched else None
            rows.append({"scene": name, "method": method, "object": k, "shape": shape,
                         "n_points": described["points_per_object"][k], "iou": scores["object_iou"].get(k, 0.0),
                         **object_row(scene, k, mesh, args.chamfer_samples)})
        found = [r for r in rows if r["found"]]
        scene_rows.append({
            "scene": name, "method": method, "n_present": scores["n_present"], "n_found": scores["n_found"],
            "n_predicted": scores["n_predicted"],
            "n_planes": int(len(np.unique(labels[is_plane(labels)]))),
            "label_accuracy": scores["label_accuracy"], "outlier_f1": scores["outlier_f1"],
            "cd_l1": mean([r["cd_l1"] for r in found]), "fscore": mean([r["fscore"] for r in found]),
            "watertight": f"{sum(r['watertight'] for r in found)}/{len(found)}", "time_s": seconds[method],
            "cpu_s": cpu[method],
        })
        object_rows += rows
    reference = next(r for r in scene_rows if r["method"] == "Open3D")
    for row in scene_rows:
        row["time_vs_open3d"] = row["time_s"] / reference["time_s"]
        row["cpu_vs_open3d"] = row["cpu_s"] / reference["cpu_s"]
        row["cd_vs_open3d"] = row["cd_l1"] / reference["cd_l1"] if reference["cd_l1"] > 0 else float("nan")
    described["surface_gaps"] = [entry.get("surface_gap") for entry in report.get("objects", [])]
    return described, scene_rows, object_rows


def segmentation_sweep(meshes: dict, scenes: dict, args) -> list[dict]:
    """The segmentation stage alone (no fit, no mesh) of every scene at every object size of `args.sweep`:
    `pcflow.scene.segment.segment_scene` against the Open3D recipe's `open3d_segment`."""
    from pcflow.errors import PcflowError
    from pcflow.scene.segment import segment_scene

    rows = []
    for name, (shapes, wall, view) in scenes.items():
        for size in args.sweep:
            try:
                scene = synthetic_scene([meshes[s] for s in shapes], n_points=args.n, size=size, wall=wall,
                                        view=view, noise=args.noise, outlier_ratio=args.outliers, seed=args.seed)
            except PcflowError:  # the objects do not fit on a table at this size
                continue
            for method, labels in (("pcflow", segment_scene(scene.points, seed=args.seed).labels),
                                   ("Open3D", open3d_segment(scene.points, args.seed))):
                scores = scene_scores(scene.labels, labels)
                rows.append({"scene": name, "size": size, "method": method, "n_found": scores["n_found"],
                             "n_present": scores["n_present"], "n_predicted": scores["n_predicted"],
                             "n_planes": int(len(np.unique(labels[is_plane(labels)]))),
                             "label_accuracy": scores["label_accuracy"]})
    return rows


def real_scans(data: Path, args, work: Path) -> list[dict]:
    """Both methods on the real table-top scans: planes and objects found, wall time."""
    rows = []
    names = REAL_SCANS[:1] if args.quick else REAL_SCANS
    for name in names:
        source = data / "scans" / name
        if not source.exists():
            print(f"skipped {name}: not in {data / 'scans'}", flush=True)
            continue
        cloud = read_cloud(source)
        path = source
        if args.real_points and args.real_points < len(cloud.points):  # a seeded subset, for the smoke run
            keep = np.random.default_rng(args.seed).choice(len(cloud.points), args.real_points, replace=False)
            cloud = PointCloud(cloud.points[np.sort(keep)])
            path = work / f"{Path(name).stem}_subset.ply"
            write_cloud(path, cloud)
        (labels, meshes), t_o3d, cpu_o3d = cpu_timed(open3d_scene, cloud.points, args.seed)
        (flow_labels, flow_meshes, report), t_flow, cpu_flow = cpu_timed(pcflow_scene, path, work / Path(name).stem,
                                                                         args.fit)
        row = {"scan": name, "n_points": len(cloud.points)}
        for method, lab, by_label, seconds, cpu in (("pcflow", flow_labels, flow_meshes, t_flow, cpu_flow),
                                                    ("Open3D", labels, meshes, t_o3d, cpu_o3d)):
            closed = [validity(m, check_intersections=False)["watertight"] for m in by_label.values() if m is not None]
            row.update({f"{method}_objects": int(len(np.unique(lab[is_object(lab)]))),
                        f"{method}_planes": int(len(np.unique(lab[is_plane(lab)]))),
                        f"{method}_outliers": int(np.count_nonzero(lab < 0)),
                        f"{method}_watertight": f"{sum(closed)}/{len(closed)}", f"{method}_time_s": seconds,
                        f"{method}_cpu_s": cpu})
        row["time_vs_open3d"], row["cpu_vs_open3d"] = t_flow / t_o3d, cpu_flow / cpu_o3d
        row["pcflow_object_points"] = [entry.get("n_points") for entry in report.get("objects", [])]
        rows.append(row)
    return rows


def mean(values) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


# ------------------------------------------------------------------------------------------------------------------
# output


SCENE_COLUMNS = ["scene", "method", "n_found", "n_present", "n_predicted", "n_planes", "label_accuracy",
                 "outlier_f1", "cd_l1", "fscore", "watertight", "time_s", "time_vs_open3d", "cpu_s", "cpu_vs_open3d"]
SCENE_HEADERS = ["scene", "method", "found", "present", "objects", "planes", "label acc.", "outlier F1", "CD-L1",
                 "F@1%", "watertight", "time (s)", "time / Open3D", "CPU (s)", "CPU / Open3D"]
OBJECT_COLUMNS = ["scene", "shape", "n_points", "method", "iou", "cd_l1", "fscore", "watertight"]
REAL_COLUMNS = ["scan", "n_points", "pcflow_planes", "pcflow_objects", "Open3D_planes", "Open3D_objects",
                "pcflow_watertight", "Open3D_watertight", "pcflow_time_s", "Open3D_time_s", "time_vs_open3d",
                "pcflow_cpu_s", "Open3D_cpu_s", "cpu_vs_open3d"]


def summary_markdown(scenes, scene_rows, object_rows, real_rows, sweep_rows, args) -> str:
    lines = ["# Scene benchmark", "",
             f"Synthetic scenes of {args.n} points, noise {args.noise}, "
             f"{100 * args.outliers:g}% outliers, seed {args.seed}; CD-L1 and F-score (tau 0.01) in the scene's "
             f"frame (diagonal 1), {args.chamfer_samples} samples a surface; fit settings {fit_text(args.fit)}.", "",
             "## Scenes", "", markdown_table(scene_rows, SCENE_COLUMNS, SCENE_HEADERS, digits=4), ""]
    if scene_rows:
        lines += ["Medians over the scenes, pcflow / Open3D: " + ", ".join(
            f"{label} {np.nanmedian([r[key] for r in scene_rows if r['method'] == 'pcflow']):.2f}"
            for label, key in (("time", "time_vs_open3d"), ("CPU time", "cpu_vs_open3d"),
                               ("CD-L1", "cd_vs_open3d"))), ""]
    lines += ["## Objects", "", markdown_table(object_rows, OBJECT_COLUMNS,
                                                ["scene", "shape", "points", "method", "point IoU", "CD-L1", "F@1%",
                                                 "watertight"], digits=4), ""]
    if real_rows:
        lines += ["## Real scans", "", markdown_table(real_rows, REAL_COLUMNS,
                                                      ["scan", "points", "pcflow planes", "pcflow objects",
                                                       "Open3D planes", "Open3D objects", "pcflow watertight",
                                                       "Open3D watertight", "pcflow (s)", "Open3D (s)",
                                                       "time / Open3D", "pcflow CPU (s)", "Open3D CPU (s)",
                                                       "CPU / Open3D"]), ""]
    if sweep_rows:
        lines += ["## Segmentation against object size", "",
                  "The segmentation stage alone (pcflow: `segment_scene`; Open3D: the recipe up to its clusters) of "
                  "each scene with its objects at other sizes (in scene diagonals); each cell: objects found / "
                  "present, planes, point-label accuracy.", "", sweep_markdown(sweep_rows), ""]
    lines += ["## Scenes measured", "", markdown_table(
        [{**s, "shapes": ", ".join(s["shapes"]), "view": "all around" if s["view"] is None else str(s["view"]),
          "points_per_object": " ".join(map(str, s["points_per_object"]))} for s in scenes],
        ["scene", "shapes", "wall", "view", "size", "n_points", "n_outliers", "points_per_object"],
        ["scene", "shapes", "wall", "view", "object size", "points", "outliers", "points per object"]), ""]
    return "\n".join(lines)


def sweep_markdown(rows) -> str:
    sizes = sorted({r["size"] for r in rows})
    lines = ["| scene | method | " + " | ".join(f"size {s:g}" for s in sizes) + " |", "|---|---|" + "---|" * len(sizes)]
    for name in dict.fromkeys(r["scene"] for r in rows):
        for method in METHODS:
            cells = []
            for size in sizes:
                row = next((r for r in rows if (r["scene"], r["method"], r["size"]) == (name, method, size)), None)
                cells.append("-" if row is None else f"{row['n_found']}/{row['n_present']}, {row['n_planes']}, "
                                                     f"{row['label_accuracy']:.3f}")
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fit_text(fit: FitOptions) -> str:
    changed = {k: v for k, v in vars(fit).items() if v != getattr(FitOptions(), k)}
    return "FitOptions(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "scenes", help="output folder")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with meshes/ and scans/")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one small scene, a 5,000-point subset of one real scan, a tiny fit")
    parser.add_argument("--scenes", nargs="*", help=f"scenes to run (default all: {', '.join(SCENES)})")
    parser.add_argument("--n", type=int, default=20_000, help="points sampled per synthetic scene")
    parser.add_argument("--noise", type=float, default=0.002)
    parser.add_argument("--outliers", type=float, default=0.05)
    parser.add_argument("--size", type=float, default=SIZE, help="each object's diagonal, in scene diagonals")
    parser.add_argument("--sweep", type=float, nargs="*", default=list(SWEEP_SIZES),
                        help="object sizes of the segmentation sweep (none: no sweep)")
    parser.add_argument("--chamfer-samples", type=int, default=100_000)
    parser.add_argument("--real-points", type=int, default=None,
                        help="run the real scans on a seeded subset of this many points (default: every point)")
    parser.add_argument("--no-real", action="store_true", help="skip the real scans")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep pcflow's output folders here (default: a temporary folder, removed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    scenes = QUICK_SCENES if args.quick else SCENES
    if args.scenes:
        unknown = [s for s in args.scenes if s not in SCENES]
        if unknown:
            raise SystemExit(f"unknown scene(s) {unknown}; available: {', '.join(SCENES)}")
        scenes = {s: SCENES[s] for s in args.scenes}
    args.fit = FitOptions(seed=args.seed, **(QUICK_FIT if args.quick else {}))
    if args.quick:
        args.n, args.chamfer_samples, args.real_points = 3000, 5000, args.real_points or 5000
        args.size, args.sweep = 0.3, [0.3]
    out = outdir(args.out)
    warnings.filterwarnings("ignore", category=UserWarning)
    meshes = load_meshes(args.data, sorted({s for spec in scenes.values() for s in spec[0]}))
    open3d_scene(synthetic_scene([builtin_shape("sphere")], n_points=500, seed=args.seed).points, args.seed)  # warm

    sweep_rows = segmentation_sweep(meshes, scenes, args)
    for row in sweep_rows:
        print(f"segmentation, {row['scene']}, size {row['size']}: {row['method']} found {row['n_found']}/"
              f"{row['n_present']}, {row['n_planes']} planes, label acc. {row['label_accuracy']:.3f}", flush=True)
    write_csv(out / "sweep.csv", sweep_rows)
    described, scene_rows, object_rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="pcflow_scenes_") as tmp:
        work = outdir(args.work) if args.work else Path(tmp)
        for name, spec in scenes.items():
            scene, rows, objects = benchmark_scene(name, meshes, spec, args, work)
            described.append(scene)
            scene_rows += rows
            object_rows += objects
            print(f"{name}: " + "; ".join(f"{r['method']} found {r['n_found']}/{r['n_present']}, label acc. "
                                         f"{r['label_accuracy']:.3f}, CD-L1 {r['cd_l1']:.4f}, {r['time_s']:.1f} s "
                                         f"({r['time_vs_open3d']:.2f} x Open3D), CPU {r['cpu_s']:.1f} s "
                                         f"({r['cpu_vs_open3d']:.2f} x)" for r in rows), flush=True)
        real_rows = [] if args.no_real else real_scans(args.data, args, work)
    for row in real_rows:
        print(f"{row['scan']}: pcflow {row['pcflow_objects']} objects in {row['pcflow_time_s']:.1f} s, Open3D "
              f"{row['Open3D_objects']} in {row['Open3D_time_s']:.1f} s ({row['time_vs_open3d']:.2f} x)", flush=True)

    write_csv(out / "scenes.csv", scene_rows)
    write_csv(out / "objects.csv", object_rows)
    if real_rows:
        write_csv(out / "real_scans.csv", real_rows)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "fit"}
    config["fit"] = vars(args.fit)
    write_json(out / "results.json", {"config": config, "machine": machine(), "scenes": described,
                                      "scene_rows": scene_rows, "objects": object_rows, "real_scans": real_rows,
                                      "sweep": sweep_rows})
    (out / "summary.md").write_text(summary_markdown(described, scene_rows, object_rows, real_rows, sweep_rows,
                                                     args))
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
