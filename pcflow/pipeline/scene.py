"""The reconstruct job of a scene: outliers flagged over the whole scan, its supporting planes and objects apart, one
closed surface fitted per object (in parallel processes or on a Dask cluster), every part written on its own."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import PcflowError
from ..io import PointCloud, write_cloud
from ..scene import NONFINITE, OUTLIER, PLANE
from ..scene.segment import Segmentation, plane_mesh
from .fit import fit_cloud, fitted_mode
from .meshes import extract_mesh, write_mesh_files, write_meshes
from .options import FitOptions, MeshOptions
from .tasks import run_tasks
from .timing import Timer

#: Files a scene reconstruct writes into its output folder, beside the folders `OBJECTS` and `PLANES`.
SCENE_OUTPUTS = ("inliers.ply", "outliers.ply", "labels.npy", "scene_mesh.ply", "scene_mesh.obj", "report.json")
#: Sub-folders of a scene's output folder: OBJECTS/object_00/{mesh.ply,mesh.obj,cloud.ply,model.pt}, ... and
#: PLANES/plane_00/cloud.ply (and mesh.ply with `plane_meshes`), ...
OBJECTS, PLANES = "objects", "planes"
#: An object's point is an outlier farther than this many times its surface model's distance threshold (the
#: (1 - alpha) quantile of its training points' distances) from the surface: past the tail of the scan's noise.
#: On 3 spheres on a table (20,000 points, 5% outliers): outlier F1 0.785 at 1 (5% of each object's points
#: dropped), 0.937 at 1.5, 0.932 at 2, 0.912 with no outliers taken from the objects.
OUTLIER_FACTOR = 1.5
#: A trimmed mesh (`trim`) keeps the faces within this many point spacings of an object's points.
TRIM_SPACINGS = 3.0


def scene_names(mesh_options: MeshOptions) -> list[str]:
    """Every name a scene reconstruct may write at the top of its output folder with these settings."""
    return [*SCENE_OUTPUTS, *(f"scene_mesh.{fmt}" for fmt in mesh_options.formats), OBJECTS, PLANES, "preview.png"]


def reconstruct_scene(cloud: PointCloud, finite_rows, segmentation: Segmentation, outdir: Path,
                      fit_options: FitOptions, mesh_options: MeshOptions, *, trim: bool = False,
                      plane_meshes: bool = False, jobs: int | None = None, scheduler: str | None = None,
                      preview: bool = True, timer: Timer | None = None) -> dict:
    """Fits and writes a scene into `outdir` (already claimed by the caller); returns the facts for report.json.

    1. The planes and objects of `segmentation`; the points in neither (DBSCAN's noise, clusters too small to be
       an object) are outliers.
    2. One fit per object (``surface`` mode unless `fit_options.mode` names another), one task each through
       `run_tasks` (`jobs` local processes, None: one per CPU up to the number of objects; or the Dask cluster at
       `scheduler`), each writing its own folder `OBJECTS`/object_KK. The object's model flags the outliers among
       its points (`OUTLIER_FACTOR`).
    3. The labelled clouds, labels.npy, the planes, and the scene mesh of every object's mesh.

    Args:
        cloud: the finite points read.
        finite_rows: (n_points,) bool array, True for the input rows `cloud` holds (None: all of them).
        segmentation: the planes and objects of `cloud.points` (`pcflow.scene.segment.segment_scene`).
        outdir: the output folder.
        fit_options, mesh_options: settings of every fit and mesh.
        trim: write each object's mesh cut to the faces near its points (open, `pcflow.scene.trim.trim_mesh`), the
            closed one as mesh_closed.ply.
        plane_meshes: also write each plane's convex polygon, PLANES/plane_KK/mesh.ply.
        preview: also render preview.png.
        timer: collects the stage times.
    """
    timer = timer or Timer()
    points = cloud.points
    labels, n_objects = segmentation.labels.copy(), segmentation.n_objects
    if n_objects == 0:
        raise PcflowError(f"{cloud.source}: no object found in the scene (only planes and outliers); "
                          "--no-scene fits the whole cloud")
    object_options = fit_options if fit_options.mode != "auto" else replace(fit_options, mode="surface")
    members = [np.flatnonzero(labels == k) for k in range(n_objects)]
    # absolute folders: a cluster's workers may run elsewhere than here
    tasks = [(k, points[rows], str((outdir / OBJECTS / f"object_{k:02d}").absolute()), object_options, mesh_options,
              trim, TRIM_SPACINGS * segmentation.spacing, _threads(jobs, n_objects, scheduler))
             for k, rows in enumerate(members)]
    with timer("objects"):
        objects = run_tasks(object_task, tasks, jobs=_jobs(jobs, n_objects), scheduler=scheduler,
                            failed=lambda task, message: {"index": task[0], "error": message})
    failed = [entry for entry in objects if "error" in entry]
    if failed:
        raise PcflowError(f"object {failed[0]['index']}: {failed[0]['error']}")
    for rows, entry in zip(members, objects):  # each object's own model flags the outliers among its points
        labels[rows[entry.pop("outlying")]] = OUTLIER
    with timer("write_clouds"):
        labelled = cloud.with_fields({"label": labels})
        inside = labels != OUTLIER
        write_cloud(outdir / "inliers.ply", labelled.subset(inside))
        write_cloud(outdir / "outliers.ply", labelled.subset(~inside))
        _write_labels(outdir / "labels.npy", labels, finite_rows)
        planes = _write_planes(outdir, points, labels, segmentation, plane_meshes)
    with timer("write_mesh"):
        meshes = [_read_mesh(outdir / entry["mesh_file"]) for entry in objects]
        scene_files = _write_scene_mesh(outdir, meshes, mesh_options)
    planes_drawn = [_read_mesh(outdir / name) for plane in planes for name in plane["files"]
                    if name.endswith("mesh.ply")]
    preview_note = _preview(cloud, labels, meshes, planes_drawn, outdir, timer) if preview else "not asked for"
    files = ["inliers.ply", "outliers.ply", "labels.npy", *scene_files,
             *(["preview.png"] if preview_note is None else []),
             *(name for entry in objects for name in entry["files"]), *(name for plane in planes
                                                                       for name in plane["files"])]
    n_inliers = int(np.count_nonzero(inside))
    return {
        "n_inliers": n_inliers, "n_outliers": int(len(labels) - n_inliers),
        "n_segment_outliers": int(np.count_nonzero(segmentation.labels == OUTLIER)), "mode": "scene",
        "spacing": segmentation.spacing, "objects": objects, "planes": planes, "files": files,
        "preview": preview_note or "preview.png",
    }


def object_task(index: int, points: np.ndarray, folder: str, fit_options: FitOptions, mesh_options: MeshOptions,
                trim: bool, trim_distance: float, threads: int | None) -> dict:
    """One object of a scene (the task `run_tasks` runs): its fit, mesh and files in `folder`; report.json's entry
    of the object, or ``{"index", "error"}`` where a fit or mesh failed."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    folder = Path(folder)
    try:
        return _fit_object(index, points, folder, fit_options, mesh_options, trim, trim_distance)
    except Exception as error:  # noqa: BLE001 - returned, so that the job reports which object failed and why
        message = " ".join(str(error).split())
        return {"index": index, "error": message if isinstance(error, PcflowError)
                else f"{type(error).__name__}: {message}"}


def _fit_object(index, points, folder: Path, fit_options, mesh_options, trim: bool, trim_distance: float) -> dict:
    from ..meshing import surface_gap

    cloud = PointCloud(points, source=f"object {index}")
    model = fit_cloud(cloud, fit_options)
    inside = _inside(model, points)
    boundary, checks = extract_mesh(model, mesh_options)
    gap = surface_gap(model) if model.objective == "surface" else None
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"index": index, "n_points": int(np.count_nonzero(inside)), "n_outliers": int(np.count_nonzero(~inside)),
             "bounds": [points[inside].min(axis=0).tolist(), points[inside].max(axis=0).tolist()],
             "mode": fitted_mode(model), "surface_gap": gap, "mesh": checks,
             "mesh_volume": float(boundary.mesh.volume)}
    relative = Path(OBJECTS) / folder.name
    if trim:
        from ..meshing import validity
        from ..scene.trim import trim_mesh

        trimmed = trim_mesh(boundary.mesh, points, trim_distance)
        names = write_meshes(boundary, folder, "mesh_closed", ())
        names += write_mesh_files(trimmed.mesh, folder, "mesh", mesh_options.formats)
        entry["trimmed"] = {"boundary_loops": trimmed.boundary_loops, "n_faces_removed": trimmed.n_faces_removed,
                            "area_share": float(trimmed.area_share),
                            "mesh": validity(trimmed.mesh, check_intersections=False)}
        entry["mesh_closed_file"] = str(relative / "mesh_closed.ply")
    else:
        names = write_meshes(boundary, folder, "mesh", mesh_options.formats)
    write_cloud(folder / "cloud.ply", cloud.subset(inside))
    model.save(folder / "model.pt")
    names += ["cloud.ply", "model.pt"]
    entry["mesh_file"] = str(relative / "mesh.ply")
    entry["files"] = [str(relative / name) for name in names]
    entry["outlying"] = np.flatnonzero(~inside)  # taken out by the caller
    return entry


def _inside(model, points: np.ndarray) -> np.ndarray:
    """Which of an object's points are no outliers: within `OUTLIER_FACTOR` times a surface model's distance
    threshold of its surface, or inside an envelope model's region."""
    if model.objective != "surface":
        return model.predict(points) == 1
    return -model.score_samples(points) <= OUTLIER_FACTOR * model.distance_threshold_


def _write_labels(path: Path, labels: np.ndarray, finite_rows) -> None:
    """labels.npy: one int32 label per input row, `NONFINITE` for the rows dropped on reading."""
    from ..io.atomic import atomic_output

    if finite_rows is not None:
        full = np.full(len(finite_rows), NONFINITE, dtype=np.int32)
        full[finite_rows] = labels
        labels = full
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as file:
            np.save(file, labels.astype(np.int32))


def _write_planes(outdir: Path, points, labels, segmentation: Segmentation, meshes: bool) -> list[dict]:
    """PLANES/plane_KK/cloud.ply (and mesh.ply) of every plane; report.json's entries of the planes."""
    from ..io import write_mesh

    entries = []
    for k, plane in enumerate(segmentation.planes):
        folder = outdir / PLANES / f"plane_{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        members = points[labels == PLANE + k]
        write_cloud(folder / "cloud.ply", PointCloud(members, source=f"plane {k}"))
        files = [f"{PLANES}/{folder.name}/cloud.ply"]
        if meshes and len(members) >= 3:
            write_mesh(folder / "mesh.ply", plane_mesh(members, plane))
            files.append(f"{PLANES}/{folder.name}/mesh.ply")
        entries.append({"index": k, **plane.to_dict(), "n_points": int(len(members)), "files": files,
                        "bounds": [members.min(axis=0).tolist(), members.max(axis=0).tolist()]})
    return entries


def _read_mesh(path: Path):
    import trimesh

    return trimesh.load(path, force="mesh", process=False)


def _write_scene_mesh(outdir: Path, meshes: list, mesh_options: MeshOptions) -> list[str]:
    """scene_mesh.ply and .obj (and each extra format): every object's mesh in one file."""
    import trimesh

    return write_mesh_files(trimesh.util.concatenate(meshes), outdir, "scene_mesh", mesh_options.formats)


def _jobs(jobs: int | None, n_objects: int) -> int:
    if jobs is None or jobs == 0:
        jobs = os.cpu_count() or 1
    return max(1, min(jobs, n_objects))


def _threads(jobs: int | None, n_objects: int, scheduler) -> int | None:
    workers = _jobs(jobs, n_objects)
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 and scheduler is None else None


def _preview(cloud, labels, meshes, plane_meshes, outdir: Path, timer: Timer) -> str | None:
    """preview.png of the scene: the points coloured by label, the object meshes and the plane polygons written;
    None when rendered, else why not."""
    with timer("preview"):
        try:
            from ..viz import render_scene
        except ImportError as error:
            return f"no preview: {error}"
        try:
            render_scene(outdir / "preview.png", cloud=cloud, labels=labels, object_meshes=meshes,
                         plane_meshes=plane_meshes)
        except PcflowError as error:
            return f"no preview: {error}"
    return None
