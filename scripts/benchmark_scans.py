"""Scan benchmark: OneFlow against Open3D and scikit-learn on labelled synthetic scans, plus the real scans.

Follows docs/evaluation.md: synthetic scans of closed meshes with uniform background outliers; outlier F1,
ROC-AUC and AP for every method; CD-L1, F-score and validity of every mesh; times as ratios to Open3D measured
in the same run. Writes CSV, JSON, a markdown summary and PNG plots into --out.

Usage:
    python scripts/benchmark_scans.py                 # full run (about 20 minutes on 2 shared CPU cores)
    python scripts/benchmark_scans.py --quick --out /tmp/q   # smoke run (under a minute)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA, RESULTS, machine, markdown_table, outdir, set_threads, timed, write_csv, write_json,
)

from pcflow.models import LLFlow  # noqa: E402
from pcflow.errors import PcflowError  # noqa: E402
from pcflow.io import read_cloud, read_mesh  # noqa: E402
from pcflow.meshing import boundary_mesh, surface_gap, validity  # noqa: E402
from pcflow.metrics import chamfer_metrics, outlier_scores  # noqa: E402
from pcflow.objectives import RADIAL_POINTS  # noqa: E402
from pcflow.pipeline import MODES, FitOptions, choose_genus, fit_cloud, fitted_mode, training_rows  # noqa: E402
from pcflow.synthetic import (  # noqa: E402
    BUILTIN_SHAPES, HARD_SHAPES, HELD_OUT_SHAPES, builtin_shape, points_inside, synthetic_scan,
)

RATIOS = (0.01, 0.05, 0.10, 0.20)
FLOWS = {  # method name -> the CLI's mode and keyword arguments on top of its 3D defaults (FitOptions; `estimator`:
    # another class taking them)
    "OneFlow": ("envelope", {"flow": "nice"}),
    "OneFlow-Gen": ("envelope", {"flow": "general"}),
    "OneFlow-Surface": ("surface", {}),
    "LL-Flow": ("envelope", {"flow": "nice", "estimator": LLFlow}),
}
PEERS = ("O3D-statistical", "O3D-radius", "IsolationForest", "LOF", "kNN-distance")
MESHERS = ("Poisson", "BallPivoting", "AlphaShape")
QUICK_SETTINGS = {"n_couplings": 2, "hidden_features": 16, "surface_steps": 5}  # --quick: a smoke run
ALPHA_SHAPE = 0.03  # alpha of the alpha shape, in units of the bounding-box diagonal (1 after normalisation)
RADIUS_FRACTION = 0.02  # radius outlier removal: 2% of the diagonal, 8 points (docs/evaluation.md)


# ------------------------------------------------------------------------------------------------------------------
# data


def load_shapes(data: Path, names: list[str] | None) -> dict:
    """Closed meshes by name: every mesh file in data/meshes plus the built-in shapes (prefix 'gen-')."""
    shapes = {}
    for path in sorted((data / "meshes").glob("*")):
        if path.suffix.lower() in (".obj", ".ply", ".stl", ".off"):
            shapes[path.stem] = lambda p=path: read_mesh(p)
    for name in BUILTIN_SHAPES:
        shapes[f"gen-{name}"] = lambda n=name: builtin_shape(n)
    if names:  # held-out and hard shapes only when named
        for name in HELD_OUT_SHAPES + HARD_SHAPES:
            shapes[f"gen-{name}"] = lambda n=name: builtin_shape(n)
        unknown = [n for n in names if n not in shapes]
        if unknown:
            raise SystemExit(f"unknown shape(s) {unknown}; available: {', '.join(shapes)}")
        shapes = {n: shapes[n] for n in names}
    return {name: make() for name, make in shapes.items()}


def o3d_cloud(points: np.ndarray):
    import open3d as o3d

    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))


def keep_from_index(n: int, index) -> np.ndarray:
    keep = np.zeros(n, dtype=bool)
    keep[np.asarray(index, dtype=np.int64)] = True
    return keep


# ------------------------------------------------------------------------------------------------------------------
# outlier removal methods: each returns (keep mask, outlier score or None)


def run_statistical(points, ratio, seed):
    _, index = o3d_cloud(points).remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
    return keep_from_index(len(points), index), None


def run_radius(points, ratio, seed):
    diagonal = float(np.linalg.norm(np.ptp(points, axis=0)))
    _, index = o3d_cloud(points).remove_radius_outlier(nb_points=8, radius=RADIUS_FRACTION * diagonal)
    return keep_from_index(len(points), index), None


def run_iforest(points, ratio, seed):
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(contamination=ratio, random_state=seed).fit(points)
    return model.predict(points) == 1, -model.score_samples(points)


def run_lof(points, ratio, seed):
    from sklearn.neighbors import LocalOutlierFactor

    model = LocalOutlierFactor(contamination=ratio)
    keep = model.fit_predict(points) == 1
    return keep, -model.negative_outlier_factor_


def run_knn(points, ratio, seed):
    """Distance to the 8th nearest other point (Ramaswamy et al.; PyOD's KNN), the top `ratio` flagged."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=9).fit(points).kneighbors(points)
    score = distances[:, -1]
    return score <= np.quantile(score, 1.0 - ratio), score


PEER_FUNCTIONS = dict(zip(PEERS, (run_statistical, run_radius, run_iforest, run_lof, run_knn)))


def subsample(points: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """The seeded random subset of at most `limit` rows that the CLI trains on (`pipeline.training_rows`)."""
    return points[training_rows(len(points), FitOptions(max_train_points=limit, seed=seed))]


def epochs_text(epochs: int | None) -> str:
    """How many epochs the flows ran at most, for the report."""
    if epochs:
        return f"{epochs} epochs"
    return (f"the CLI's epochs ({MODES['surface']['epochs']} for a surface fit's envelope stage, "
            f"{MODES['envelope']['epochs']} for an envelope fit)")


def fit_flow(points, ratio, seed, epochs, quick, mode="surface", estimator=None, **kwargs):
    """The CLI's estimator and 3D settings (FitOptions) of a mode, with alpha = the outlier ratio and, for a surface,
    the CLI's genus choice; `estimator`: another class (LLFlow) taking those settings."""
    options = FitOptions(alpha=ratio, mode=mode, epochs=epochs, seed=seed)
    model = options.estimator()
    if estimator is not None:
        model = estimator(**{k: v for k, v in model.get_params().items() if k in estimator._get_param_names()})
    elif model.objective == "surface":
        choose_genus(model, points, seed)
    model.set_params(**kwargs)
    if quick:  # the quick settings the model takes (an envelope fit has no surface steps)
        model.set_params(**{k: v for k, v in QUICK_SETTINGS.items() if k in model.get_params()})
    return model.fit(points)


# ------------------------------------------------------------------------------------------------------------------
# meshes


def to_trimesh(o3d_mesh):
    import trimesh

    return trimesh.Trimesh(np.asarray(o3d_mesh.vertices), np.asarray(o3d_mesh.triangles), process=True)


def peer_meshes(points) -> dict:
    """Open3D meshes of the cloud after statistical outlier removal: {name: (trimesh or None, seconds, note)}."""
    import open3d as o3d

    (cleaned, _), t_sor = timed(o3d_cloud(points).remove_statistical_outlier, nb_neighbors=20, std_ratio=2.0)

    def normals():
        cleaned.estimate_normals()
        cleaned.orient_normals_consistent_tangent_plane(15)

    _, t_normals = timed(normals)
    out = {}
    (poisson, _), t = timed(o3d.geometry.TriangleMesh.create_from_point_cloud_poisson, cleaned, depth=8)
    out["Poisson"] = (to_trimesh(poisson), t_sor + t_normals + t, "depth 8")
    spacing = float(np.mean(cleaned.compute_nearest_neighbor_distance()))
    radii = o3d.utility.DoubleVector([spacing * k for k in (1.0, 2.0, 4.0)])
    bpa, t = timed(o3d.geometry.TriangleMesh.create_from_point_cloud_ball_pivoting, cleaned, radii)
    out["BallPivoting"] = (to_trimesh(bpa), t_sor + t_normals + t, "radii 1, 2, 4 x mean spacing")
    alpha, t = timed(o3d.geometry.TriangleMesh.create_from_point_cloud_alpha_shape, cleaned, ALPHA_SHAPE)
    out["AlphaShape"] = (to_trimesh(alpha), t_sor + t, f"alpha {ALPHA_SHAPE}")
    return out


def mesh_row(mesh, gt, n_samples, self_intersections=None) -> dict:
    checks = validity(mesh, check_intersections=self_intersections is None)
    if self_intersections is not None:
        checks["self_intersections"] = self_intersections
    if len(mesh.faces) == 0 or not mesh.area > 0:
        return {**{k: float("nan") for k in ("cd_l1", "cd_l2", "fscore", "normal_consistency", "hausdorff")},
                **checks}
    metrics = chamfer_metrics(mesh, gt, n_samples=n_samples)
    keys = ("accuracy", "completeness", "cd_l1", "cd_l2", "fscore", "normal_consistency", "hausdorff")
    return {**{k: metrics[k] for k in keys}, **checks}


# ------------------------------------------------------------------------------------------------------------------
# the synthetic benchmark


def benchmark_cloud(shape, mesh, ratio, args, with_meshes: bool):
    """All outlier methods (and, if asked, all meshers) on one synthetic scan; returns (rows, mesh rows, meshes)."""
    scan = synthetic_scan(mesh, n_points=args.n, outlier_ratio=ratio, seed=args.seed, view=args.view)
    points, labels = scan.points, scan.labels.astype(bool)
    outside = ~points_inside(scan.mesh, points) | ~labels  # inliers, and outliers outside the closed surface
    base = {"shape": shape, "ratio": ratio, "n_points": len(points), "n_outliers": int(labels.sum()),
            "n_outliers_inside": scan.n_outliers_inside}
    rows, models, fit_times = [], {}, {}
    for name, function in PEER_FUNCTIONS.items():
        (keep, score), seconds = timed(function, points, ratio, args.seed)
        rows.append({**base, "method": name, "time_s": seconds, **metric_fields(labels, keep, score, outside)})
    train = subsample(points, args.max_train, args.seed)
    for name, (mode, kwargs) in FLOWS.items():
        model, t_fit = timed(fit_flow, train, ratio, args.seed, args.epochs, args.quick, mode, **kwargs)
        keep_score, t_score = timed(lambda m=model: (m.predict(points) == 1, -m.score_samples(points)))
        keep, score = keep_score
        models[name], fit_times[name] = model, t_fit
        rows.append({**base, "method": name, "time_s": t_fit + t_score, "epochs_run": model.n_iter_,
                     **metric_fields(labels, keep, score, outside)})
    reference = next(r["time_s"] for r in rows if r["method"] == "O3D-statistical")
    for row in rows:
        row["time_vs_o3d_statistical"] = row["time_s"] / reference

    mesh_rows, meshes = [], {"ground truth": scan.mesh}
    if with_meshes:
        for name, model in models.items():
            boundary, t_mesh = timed(boundary_mesh, model)
            meshes[name] = boundary.mesh
            gap = surface_gap(model) if model.objective == "surface" else None
            mesh_rows.append({**base, "method": name, "time_s": fit_times[name] + t_mesh, "surface_gap": gap,
                              **mesh_row(boundary.mesh, scan.mesh, args.chamfer_samples,
                                         boundary.info["self_intersections"])})
        for name, (peer, seconds, note) in peer_meshes(points).items():
            meshes[name] = peer
            mesh_rows.append({**base, "method": name, "time_s": seconds, "settings": note,
                              **mesh_row(peer, scan.mesh, args.chamfer_samples)})
        reference = next(r["time_s"] for r in mesh_rows if r["method"] == "Poisson")
        for row in mesh_rows:
            row["time_vs_o3d_poisson"] = row["time_s"] / reference
    return rows, mesh_rows, meshes


def metric_fields(labels, keep, score, outside) -> dict:
    result = outlier_scores(labels, keep_mask=keep, scores=score)
    fields = {k: result.get(k, float("nan")) for k in
              ("precision", "recall", "f1", "roc_auc", "average_precision", "inlier_retention", "n_flagged")}
    reachable = labels & outside
    fields["recall_outside"] = float((~keep & reachable).sum() / reachable.sum()) if reachable.any() else float("nan")
    return fields


# ------------------------------------------------------------------------------------------------------------------
# real scans


def real_scans(data: Path, args, out: Path) -> list[dict]:
    """pcflow and Open3D's statistical removal on the unlabelled real scans: counts, times, pictures."""
    paths = sorted((data / "scans").glob("*.pcd")) + sorted((data / "scans").glob("*.las"))
    if args.quick:
        paths = [p for p in paths if p.suffix == ".las"][:1] or paths[:1]
    rows = []
    for path in paths:
        cloud = read_cloud(path)
        points = cloud.points
        (_, index), t_sor = timed(o3d_cloud(points).remove_statistical_outlier, nb_neighbors=20, std_ratio=2.0)
        options = FitOptions(alpha=0.05, epochs=args.epochs, seed=args.seed, max_train_points=args.max_train,
                             **(QUICK_SETTINGS if args.quick else {}))
        model, t_fit = timed(fit_cloud, cloud, options)  # auto mode on a subset, as the CLI
        inside, t_score = timed(lambda: model.predict(points) == 1)
        boundary, t_mesh = timed(boundary_mesh, model)
        checks = validity(boundary.mesh, check_intersections=False)
        picture = out / f"real_{path.stem}.png"
        note = render_real(picture, cloud, inside, boundary.mesh)
        sor_keep = keep_from_index(len(points), index)
        rows.append({
            "scan": path.name, "n_points": len(points), "n_train": model.n_samples_fit_, "mode": fitted_mode(model),
            "surface_gap": model.surface_gap_ if model.objective == "surface" else None,  # as fit_cloud measured it
            "oneflow_removed": int((~inside).sum()), "o3d_statistical_removed": int((~sor_keep).sum()),
            "both_removed": int((~inside & ~sor_keep).sum()),
            "fit_s": t_fit, "score_s": t_score, "mesh_s": t_mesh, "o3d_statistical_s": t_sor,
            "time_vs_o3d_statistical": (t_fit + t_score) / t_sor,
            "mesh_watertight": checks["watertight"], "mesh_genus": checks["genus"],
            "self_intersections": boundary.info["self_intersections"], "mesh_faces": checks["n_faces"],
            "picture": picture.name if note is None else note, "epochs_run": model.n_iter_,
        })
    return rows


def render_real(path: Path, cloud, inside, mesh) -> str | None:
    """Renders a real scan with pcflow.viz; returns None on success or why there is no picture."""
    try:
        from pcflow.viz import render_scene

        render_scene(path, cloud=cloud, inside=inside, mesh=mesh, size=(1200, 400))
    except (ImportError, PcflowError) as error:
        return f"no picture: {error}"
    return None


# ------------------------------------------------------------------------------------------------------------------
# plots


def plot_f1(rows, shapes, ratios, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method in list(FLOWS) + list(PEERS):
        means = [np.mean([r["f1"] for r in rows if r["method"] == method and r["ratio"] == ratio
                          and r["shape"] in shapes]) for ratio in ratios]
        style = "-o" if method in FLOWS else "--s"
        ax.plot([100 * r for r in ratios], means, style, label=method, markersize=4)
    ax.set_xlabel("outlier ratio (%)")
    ax.set_ylabel(f"outlier F1 (mean over {', '.join(shapes)})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cd(mesh_rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in mesh_rows))
    methods = list(dict.fromkeys(r["method"] for r in mesh_rows))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(shapes)), 4.2))
    for i, method in enumerate(methods):
        values = [next((r["cd_l1"] for r in mesh_rows if r["shape"] == s and r["method"] == method), np.nan)
                  for s in shapes]
        ax.bar(np.arange(len(shapes)) + i * width, values, width, label=method)
    ax.set_xticks(np.arange(len(shapes)) + 0.4 - width / 2)
    ax.set_xticklabels(shapes, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("CD-L1 (diagonal = 1, log scale)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_grid(all_meshes: dict, path: Path, panel: int = 200) -> str | None:
    """Picture grid, one row per shape and one column per method, rendered off-screen with pyvista."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import pyvista as pv
    except ImportError as error:
        return f"no picture grid: {error}"
    shapes = list(all_meshes)
    methods = list(dict.fromkeys(m for meshes in all_meshes.values() for m in meshes))
    plotter = pv.Plotter(off_screen=True, shape=(len(shapes), len(methods)),
                         window_size=(panel * len(methods), panel * len(shapes)), border=False)
    plotter.set_background("white")
    for i, shape in enumerate(shapes):
        for j, method in enumerate(methods):
            plotter.subplot(i, j)
            mesh = all_meshes[shape].get(method)
            if mesh is not None and len(mesh.faces):
                faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
                color = "lightsteelblue" if method == "ground truth" else (
                    "sandybrown" if method in FLOWS else "lightgreen")
                plotter.add_mesh(pv.PolyData(np.asarray(mesh.vertices), faces), color=color, smooth_shading=True)
            label = method if i == 0 else ""
            plotter.add_text(f"{label}\n{shape}" if j == 0 else label, font_size=7, color="black")
            plotter.view_isometric()
            plotter.camera.zoom(1.1)
    try:
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    import matplotlib.pyplot as plt

    plt.imsave(path, image)
    return None


# ------------------------------------------------------------------------------------------------------------------
# report


def nanmean(values) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def per_shape_markdown(rows, mesh_shapes, flows_and_peers, mesh_ratio) -> list[str]:
    """The outlier-removal section at the mesh ratio: F1 per shape, then means over the shapes."""
    lines = [f"## Outlier removal per shape at {100 * mesh_ratio:g}%", ""]
    per_shape = [r for r in rows if r["ratio"] == mesh_ratio]
    table = []
    for shape in mesh_shapes:
        row = {"shape": shape}
        for method in flows_and_peers:
            row[method] = next(r["f1"] for r in per_shape if r["shape"] == shape and r["method"] == method)
        row["outliers inside"] = next(r["n_outliers_inside"] for r in per_shape if r["shape"] == shape)
        table.append(row)
    lines += ["F1 per shape (outliers inside: background outliers that fell inside the closed surface).", "",
              markdown_table(table, ["shape"] + flows_and_peers + ["outliers inside"]), ""]
    recall_rows = []
    for method in flows_and_peers:
        sel = [r for r in per_shape if r["method"] == method]
        recall_rows.append({"method": method, **{k: nanmean([r[k] for r in sel]) for k in
                            ("precision", "recall", "recall_outside", "inlier_retention", "roc_auc",
                             "average_precision")}})
    lines += ["Means over the shapes (recall outside: recall on the outliers outside the closed surface).", "",
              markdown_table(recall_rows, ["method", "precision", "recall", "recall_outside", "inlier_retention",
                                           "roc_auc", "average_precision"]), ""]
    return lines


def summary_markdown(rows, mesh_rows, real_rows, args, sweep_shapes, mesh_shapes, notes) -> str:
    flows_and_peers = list(FLOWS) + list(PEERS)
    envelope, surface = (FitOptions(mode=mode).estimator() for mode in ("envelope", "surface"))
    lines = [
        "# Scan benchmark",
        "",
        f"Protocol: docs/evaluation.md synthetic scans, n = {args.n} points, noise sigma 0.002, seed {args.seed}.",
        (f"Outlier-ratio sweep {', '.join(f'{100 * r:g}%' for r in args.ratios)} on {', '.join(sweep_shapes)}; "
         if sweep_shapes else "")
        + f"all shapes at {100 * args.mesh_ratio:g}% ({', '.join(mesh_shapes)})"
        + (", where the meshes are also built." if args.view is None else "."),
        f"Flows: the CLI's 3D settings ({envelope.n_couplings} couplings, hidden {envelope.hidden_features}, "
        f"isotropic normalisation, batch {envelope.batch_size}, lr {envelope.lr:g}) "
        f"with alpha = the outlier ratio and at most {epochs_text(args.epochs)} (patience {envelope.patience}), "
        "trained on a seeded "
        f"subset of at most {args.max_train} points of each scan and applied to all of them; torch threads "
        f"{args.threads}"
        + (" -- quick mode: 2 couplings, hidden 16." if args.quick else "."),
        "OneFlow-Surface: the surface objective (what `pcflow reconstruct`'s auto mode keeps for an object): a "
        f"general flow of {surface.n_couplings} couplings, hidden {surface.hidden_features}; where the training points "
        "enclose a volume (the genus estimate, as in the CLI), from the identity and a latent surface shaped like the "
        f"points, of the genus the estimate finds (0 to 3), in at most {surface.shaped_steps} surface-fit steps with "
        "no envelope stage (fitted tori where no grid of that genus closes, "
        f"{surface.torus_steps} steps); else trained as OneFlow-Gen "
        f"but in steps of {surface.batch_size} points at lr {surface.lr:g}, then at most {surface.surface_steps} "
        f"surface-fit steps (batch {surface.surface_batch_size}, {surface.n_surface_samples} sphere points spread "
        f"evenly, {surface.coarse_surface_samples()} in the first {surface.coarse_share:.0%} of the steps, "
        f"lr {surface.surface_lr:g}) "
        f"on the points the envelope keeps (radial term over {RADIAL_POINTS} of each batch, on one step in "
        f"{surface.radial_every} at {surface.radial_every} times its weight); its score is "
        f"{surface.surface_weight:g} times the distance to the surface or, where smaller, the mean distance to the "
        f"{surface.n_neighbors} nearest other training points, combined (root of the sum of squares) with "
        f"{surface.plane_weight:g} times the distance to the plane through the {surface.plane_neighbors} nearest; "
        "its mesh is the surface, snapped onto its training inliers "
        "(`pcflow.meshing.snap_to_points`).",
        "IsolationForest and LOF get contamination = the outlier ratio, kNN-distance (distance to the 8th nearest "
        "other point) flags the same share; Open3D statistical (20 neighbours, std 2) "
        "and radius (2% of the diagonal, 8 points) removal get nothing.",
        f"Meshes: Open3D statistical removal, normals, orientation (15), then Poisson depth 8, ball pivoting, or an "
        f"alpha shape (alpha {ALPHA_SHAPE}); chamfer with {args.chamfer_samples} samples per surface.",
        "Times are ratios to Open3D measured on the same cloud in the same run: outlier methods against "
        "statistical removal, meshes against the Poisson pipeline (removal + normals + Poisson); "
        "pcflow's times include training.",
        "",
    ] if mesh_shapes else ["# Scan benchmark: real scans", ""]
    if args.view is not None:
        lines[2:2] = [f"Single-view scans: of the {args.n} points sampled, only those a camera in direction "
                      f"{tuple(args.view)} (2 diagonals from the centre) sees are kept, then the outliers replace "
                      "the ratio's share of them; outlier removal only (no meshes)."]
    sweep = []
    for method in flows_and_peers if sweep_shapes else []:
        row = {"method": method}
        for ratio in args.ratios:
            sel = [r for r in rows if r["method"] == method and r["ratio"] == ratio and r["shape"] in sweep_shapes]
            row[f"{100 * ratio:g}%"] = np.mean([r["f1"] for r in sel])
        sel = [r for r in rows if r["method"] == method and r["shape"] in sweep_shapes]
        row["ROC-AUC"] = nanmean([r["roc_auc"] for r in sel])
        row["time / O3D stat."] = np.median([r["time_vs_o3d_statistical"] for r in sel])
        sweep.append(row)
    columns = ["method"] + [f"{100 * r:g}%" for r in args.ratios] + ["ROC-AUC", "time / O3D stat."]
    if sweep_shapes:
        lines += ["## Outlier F1 against the outlier ratio (mean over the sweep shapes)", "",
                  markdown_table(sweep, columns), "", "![F1 against outlier ratio](f1_vs_ratio.png)", ""]

    if mesh_shapes:
        lines += per_shape_markdown(rows, mesh_shapes, flows_and_peers, args.mesh_ratio)

    if mesh_rows:
        lines += [f"## Meshes at {100 * args.mesh_ratio:g}% outliers", "",
                  "CD-L1 per shape (lower is better).", ""]
        methods = list(dict.fromkeys(r["method"] for r in mesh_rows))
        table = []
        for shape in mesh_shapes:
            row = {"shape": shape}
            for method in methods:
                row[method] = next(r["cd_l1"] for r in mesh_rows if r["shape"] == shape and r["method"] == method)
            table.append(row)
        lines += [markdown_table(table, ["shape"] + methods, digits=4), "",
                  "Means over the shapes.", ""]
        means = []
        for method in methods:
            sel = [r for r in mesh_rows if r["method"] == method]
            means.append({
                "method": method,
                "CD-L1": np.nanmean([r["cd_l1"] for r in sel]),
                "F-score@0.01": np.nanmean([r["fscore"] for r in sel]),
                "normal cons.": np.nanmean([r["normal_consistency"] for r in sel]),
                "watertight": f"{sum(bool(r['watertight']) for r in sel)}/{len(sel)}",
                "1 component": f"{sum(r['n_components'] == 1 for r in sel)}/{len(sel)}",
                "self-int. pairs": int(np.sum([r["self_intersections"] or 0 for r in sel])),
                "time / O3D Poisson": np.median([r["time_vs_o3d_poisson"] for r in sel]),
            })
        lines += [markdown_table(means, list(means[0]), digits=4), "",
                  "![CD-L1 per shape](cd_l1_per_shape.png)", "", "![meshes side by side](mesh_grid.png)", ""]

    if real_rows:
        lines += ["## Real scans (no labels)", "",
                  f"pcflow's default auto mode (alpha 0.05, CLI settings, at most {epochs_text(args.epochs)}) trained "
                  f"on a seeded subset of at most {args.max_train} points, then applied to every point; mode: the fit "
                  "auto mode kept (the surface, or the envelope where the surface spanned empty space); Open3D "
                  "statistical removal on all points.", "",
                  markdown_table(real_rows, ["scan", "n_points", "n_train", "mode", "oneflow_removed",
                                             "o3d_statistical_removed", "both_removed", "fit_s",
                                             "time_vs_o3d_statistical", "mesh_s", "mesh_watertight",
                                             "self_intersections"], digits=2), ""]
        lines += [f"![{r['scan']}]({r['picture']})" for r in real_rows if r["picture"].endswith(".png")] + [""]
    lines += notes
    return "\n".join(lines) + "\n"


def warm_up(args) -> None:
    """Runs every method once on a tiny cloud, so that imports and first-call setup stay out of the timings."""
    scan = synthetic_scan(builtin_shape("sphere"), n_points=500, outlier_ratio=0.05, seed=args.seed)
    for function in PEER_FUNCTIONS.values():
        function(scan.points, 0.05, args.seed)
    model = fit_flow(scan.points, 0.05, args.seed, 1, True)
    model.predict(scan.points)
    peer_meshes(scan.points)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "scans", help="output folder")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with meshes/ and scans/")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: one shape, one ratio, 2 epochs")
    parser.add_argument("--n", type=int, default=20_000, help="points per synthetic scan")
    parser.add_argument("--epochs", type=int, default=None,
                        help="most epochs per flow (default: the CLI's, 40 for a surface fit's envelope stage and "
                             "100 for an envelope fit)")
    parser.add_argument("--max-train", type=int, default=20_000,
                        help="flows train on a seeded subset of at most this many points and score every point")
    parser.add_argument("--shapes", nargs="*", help="shapes at the mesh ratio (default: all)")
    parser.add_argument("--sweep-shapes", nargs="*", default=["spot", "gen-capsule"],
                        help="shapes swept over every outlier ratio")
    parser.add_argument("--ratios", type=float, nargs="*", default=list(RATIOS))
    parser.add_argument("--mesh-ratio", type=float, default=0.05)
    parser.add_argument("--chamfer-samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--view", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                        help="single-view scans: keep what a camera in this direction from the shape sees (outlier "
                             "removal only: no meshes, as the ground truth is the whole surface)")
    real = parser.add_mutually_exclusive_group()
    real.add_argument("--no-real", action="store_true", help="skip the real scans")
    real.add_argument("--real-only", action="store_true", help="only the real scans, no synthetic ones")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the small flows here are fastest single-threaded)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.n, args.epochs, args.chamfer_samples, args.max_train = 2000, 2, 10_000, 2000
        args.shapes = args.shapes or ["gen-sphere"]
        args.sweep_shapes, args.ratios = args.shapes[:1], [args.mesh_ratio]
    out = outdir(args.out)
    warnings.filterwarnings("ignore", category=UserWarning)

    shapes = load_shapes(args.data, sorted(set((args.shapes or []) + args.sweep_shapes)) if args.shapes else None)
    mesh_shapes = [] if args.real_only else args.shapes or list(shapes)
    sweep_shapes = [] if args.real_only else [s for s in args.sweep_shapes if s in shapes]
    jobs = [(s, args.mesh_ratio) for s in mesh_shapes]
    jobs += [(s, r) for s in sweep_shapes for r in args.ratios if r != args.mesh_ratio]

    warm_up(args)
    rows, mesh_rows, grid = [], [], {}
    for shape, ratio in jobs:
        with_meshes = ratio == args.mesh_ratio and args.view is None
        cloud_rows, cloud_mesh_rows, meshes = benchmark_cloud(shape, shapes[shape], ratio, args, with_meshes)
        rows += cloud_rows
        mesh_rows += cloud_mesh_rows
        if with_meshes:
            grid[shape] = meshes
        write_csv(out / "outliers.csv", rows)
        if mesh_rows:
            write_csv(out / "meshes.csv", mesh_rows)
        print(f"{shape} {100 * ratio:g}%: " + ", ".join(f"{r['method']} F1 {r['f1']:.3f}" for r in cloud_rows)
              + "".join(f"; {r['method']} CD-L1 {r['cd_l1']:.4f}" for r in cloud_mesh_rows), flush=True)

    real_rows = [] if args.no_real else real_scans(args.data, args, out)
    for row in real_rows:
        print(f"{row['scan']}: OneFlow removed {row['oneflow_removed']}, Open3D {row['o3d_statistical_removed']} "
              f"of {row['n_points']}", flush=True)

    notes = []
    if rows:
        write_csv(out / "outliers.csv", rows)
    if mesh_rows:
        write_csv(out / "meshes.csv", mesh_rows)
    if real_rows:
        write_csv(out / "real_scans.csv", real_rows)
    if sweep_shapes:
        plot_f1(rows, sweep_shapes, args.ratios, out / "f1_vs_ratio.png")
    if mesh_rows:
        plot_cd(mesh_rows, out / "cd_l1_per_shape.png")
        note = render_grid(grid, out / "mesh_grid.png")
        if note:
            notes.append(note)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_json(out / "results.json", {"config": config, "machine": machine(), "outliers": rows,
                                      "meshes": mesh_rows, "real_scans": real_rows})
    (out / "summary.md").write_text(summary_markdown(rows, mesh_rows, real_rows, args, sweep_shapes, mesh_shapes,
                                                     notes))
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
