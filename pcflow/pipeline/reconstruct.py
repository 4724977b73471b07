"""The reconstruct job: read a cloud, fit OneFlow, split it into inliers and outliers, mesh the region, report."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from ..models import OneFlow
from ..errors import PcflowError
from ..io import PointCloud, read_cloud
from . import stream
from .fit import fit_cloud, fitted_mode, points_3d
from .options import FitOptions, MeshOptions
from .outputs import claimed_outdir, prepare_outdir, versions, write_json
from .timing import Timer

#: Files `reconstruct` writes into its output folder (extra mesh formats, mesh_uv.obj and preview.png come on top).
RECONSTRUCT_OUTPUTS = ("inliers.ply", "outliers.ply", "mesh.ply", "mesh.obj", "model.pt", "report.json")
#: The file `reconstruct(..., classify=True)` adds: every point, outliers marked ASPRS class 7 (noise).
CLASSIFIED_OUTPUT = "classified.ply"
#: The entries of report.json that differ run by run (wall-clock seconds). Every other entry, and every file written
#: but preview.png (not compared), comes out byte for byte the same for the same command and seed on the same machine
#: and library versions, in a batch too, at any --jobs.
PER_RUN_REPORT_KEYS = ("timings",)


def extract_mesh(model: OneFlow, options: MeshOptions, timer: Timer | None = None):
    """The boundary mesh of a fitted 3D model and its validity checks: (BoundaryMesh, validity dict)."""
    from ..meshing import boundary_mesh, validity

    timer = timer or Timer()
    if model.n_features_in_ != 3:
        raise PcflowError(f"a mesh needs a 3-D model, this one has {model.n_features_in_} features")
    with timer("mesh"):
        boundary = boundary_mesh(
            model,
            coverage=options.coverage,
            subdivisions=options.subdivisions,
            tolerance=options.tolerance,
            max_faces=options.max_faces,
            snap=options.snap,
        )
    with timer("mesh_checks"):
        checks = validity(boundary.mesh, check_intersections=False)
    # boundary_mesh already counted the self-intersections of the final triangulation
    checks["self_intersections"] = boundary.info["self_intersections"]
    return boundary, checks


def write_meshes(boundary, outdir: Path, stem: str, formats, *, uv: bool = False) -> list[str]:
    """Writes the boundary mesh into `outdir`; returns the names written.

    `stem`.ply and `stem`.obj always, `stem`.<fmt> for each extra format, without texture coordinates, so that
    Open3D, trimesh and meshio open them watertight (see `pcflow.io.write_mesh` for each format's normals and
    readers). With `uv` also `stem`_uv.obj, the same vertices with the sphere chart's texture coordinates per face
    corner (`BoundaryMesh.face_uv`), for texturing: trimesh and Open3D split its vertices at the chart's seam, and
    meshio cannot read texture coordinates per corner.
    """
    from ..io import write_mesh

    names = []
    for suffix in dict.fromkeys(("ply", "obj", *formats)):
        path = outdir / f"{stem}.{suffix}"
        write_mesh(path, boundary.mesh)
        names.append(path.name)
    if uv:
        path = outdir / f"{stem}_uv.obj"
        write_mesh(path, boundary.mesh, uv=boundary.face_uv)
        names.append(path.name)
    return names


def reconstruct(input_path, outdir, fit_options: FitOptions, mesh_options: MeshOptions, *, overwrite: bool = False,
                preview: bool = True, chunk_size: int | None = None, classify: bool = False, scores: bool = False,
                clear: bool = False, timer: Timer | None = None) -> dict:
    """Reads a cloud, fits OneFlow, writes inliers, outliers, boundary meshes, the model and report.json.

    The job holds the lock of `outdir` from start to end (`pipeline.claimed_outdir`): a second job into the same
    folder fails at once. report.json is written last, so a folder holding it holds every output it lists.

    Args:
        input_path: point cloud or mesh file (any suffix `pcflow.io.read_cloud` knows).
        outdir: output folder, created if needed.
        fit_options: model settings.
        mesh_options: mesh settings.
        overwrite: replace outputs already in `outdir`.
        preview: also render preview.png when a headless renderer is available.
        chunk_size: read, score and write the cloud this many points at a time (bounded memory); None does so with
            `pcflow.pipeline.stream.DEFAULT_CHUNK_SIZE` where `pcflow.pipeline.stream.should_stream` says (clouds of
            `pcflow.pipeline.stream.STREAM_MIN_POINTS` or more points, or whose run in memory would need more than
            half the memory available) and reads other clouds whole. The files and report are the same either way
            (but for the report's ``streamed`` and ``timings``); a streamed preview shows the training subset.
        classify: also write classified.ply: every point, outliers marked as noise, ASPRS class 7
            (`pcflow.pipeline.stream.classified_cloud`).
        scores: add the float32 field `outlier_score` (minus the decision function, > 0 for outliers) to the
            point clouds written.
        clear: first remove what an earlier, unfinished run left in `outdir` (every file name this job may write);
            implies `overwrite`.
        timer: collects the stage times (`RECONSTRUCT_STAGES`) and shows their progress; None: a new `Timer`.

    Returns:
        The report written to report.json.

    Raises:
        PcflowError: a bad input or settings, an output folder that cannot be written, outputs already there
            (without `overwrite`), or another process writing into `outdir`.
    """
    names = _output_names(mesh_options, classify)
    with claimed_outdir(outdir, names, overwrite=overwrite or clear, inputs=(input_path,), clear=clear):
        return _reconstruct(input_path, outdir, fit_options, mesh_options, overwrite=overwrite or clear,
                            preview=preview, chunk_size=chunk_size, classify=classify, scores=scores, timer=timer)


def _reconstruct(input_path, outdir, fit_options: FitOptions, mesh_options: MeshOptions, *, overwrite: bool,
                 preview: bool, chunk_size: int | None, classify: bool, scores: bool, timer: Timer | None) -> dict:
    """`reconstruct` in its locked output folder."""
    timer = timer or Timer()
    start = time.perf_counter()
    input_path = Path(input_path)
    streamed = chunk_size is not None or stream.should_stream(input_path)
    chunk_size = chunk_size or stream.DEFAULT_CHUNK_SIZE
    outputs = partial(prepare_outdir, outdir, _output_names(mesh_options, classify), overwrite=overwrite,
                      inputs=(input_path,))
    model, cloud = _fit(input_path, fit_options, outputs, streamed=streamed, chunk_size=chunk_size, timer=timer)
    outdir = outputs()
    classified = outdir / CLASSIFIED_OUTPUT if classify else None
    if streamed:
        counts = stream.split_file(input_path, model, outdir / "inliers.ply", outdir / "outliers.ply",
                                   classified_path=classified, scores=scores, chunk_size=chunk_size, timer=timer)
        inside = None  # the preview shows the training subset, not scored with the rest: scored below
    else:
        counts, inside = stream.split_cloud(cloud, model, [outdir / "inliers.ply", outdir / "outliers.ply"],
                                            classified=classified, scores=scores, timer=timer)
    boundary, checks = extract_mesh(model, mesh_options, timer)
    with timer("genus"):
        if inside is None:  # streamed: the training subset, scored here for the genus estimate and the preview
            inside = model.predict(cloud.points) == 1
        topology = _topology(cloud.points[inside], boundary.mesh, fit_options.seed)
    with timer("write_mesh"):
        meshes = write_meshes(boundary, outdir, "mesh", mesh_options.formats, uv=mesh_options.uv)
        files = ["inliers.ply", "outliers.ply", *([CLASSIFIED_OUTPUT] if classify else []), *meshes]
        model.save(outdir / "model.pt")
        files.append("model.pt")
    preview_note = _preview(model, cloud, inside, boundary.mesh, outdir, timer) if preview else "not asked for"
    if preview_note is None:
        files.append("preview.png")
    report = _report(input_path, counts, model, boundary, checks, fit_options, mesh_options, streamed=streamed)
    report.update(topology)
    report["warnings"] = _warnings(report)
    report.update(files=files + ["report.json"], preview=preview_note or "preview.png", seed=fit_options.seed,
                  device=fit_options.device, versions=versions())
    report["timings"] = {k: round(v, 4) for k, v in timer.stages.items()}
    report["timings"]["total"] = round(time.perf_counter() - start, 4)
    write_json(outdir / "report.json", report)
    return report


def _output_names(mesh_options: MeshOptions, classify: bool) -> list[str]:
    """Every file name `reconstruct` may write into its output folder with these settings."""
    return [*RECONSTRUCT_OUTPUTS, *(f"mesh.{fmt}" for fmt in mesh_options.formats),
            *(["mesh_uv.obj"] if mesh_options.uv else []), *([CLASSIFIED_OUTPUT] if classify else []), "preview.png"]


def _fit(input_path: Path, options: FitOptions, outputs, *, streamed: bool, chunk_size: int, timer: Timer):
    """Reads (or streams) the cloud and fits it, checking the output folder (`outputs(create=False)`) before the
    fit: (model, the cloud read whole, or a streamed file's training subset)."""
    if streamed:
        outputs(create=False)
        fitted = stream.fit_file(input_path, options, chunk_size=chunk_size, timer=timer)
        return fitted.model, PointCloud(fitted.train, source=str(input_path))
    with timer("read"):
        cloud = read_cloud(input_path)
    points_3d(cloud)  # a bad cloud fails before the output folder is made
    outputs(create=False)
    return fit_cloud(cloud, options, timer), cloud


def _topology(inliers, mesh, seed: int) -> dict:
    """report.json's ``genus_estimate``, ``spanned_area`` and ``spanned_share`` (`pcflow.meshing.topology`); all
    None for fewer than 10 inliers."""
    from ..meshing import topology

    if len(inliers) < 10:
        return {"genus_estimate": None, "spanned_area": None, "spanned_share": None}
    return topology(inliers, mesh, seed=seed)


def _warnings(report: dict) -> list[str]:
    """report.json's ``warnings``: one line each, about results a user may not expect (a mesh of too low a genus)."""
    from ..meshing import needs_higher_genus

    return [warning for warning in (needs_higher_genus(report),) if warning]


def _preview(model: OneFlow, cloud, inside, mesh, outdir: Path, timer: Timer) -> str | None:
    """Renders preview.png (the stage ``preview``): `cloud` coloured by `inside`. As `_try_preview` returns."""
    with timer("preview"):
        return _try_preview(cloud, inside, mesh, outdir / "preview.png")


def _report(input_path: Path, counts: dict, model: OneFlow, boundary, checks: dict, fit_options: FitOptions,
            mesh_options: MeshOptions, *, streamed: bool) -> dict:
    """The facts of report.json about the cloud, the fit and the mesh (the files, versions and times come on top)."""
    return {
        "input": str(input_path),
        "n_points": int(counts["n_points"]),
        "n_dropped_nonfinite": int(counts["n_dropped_nonfinite"]),
        "n_finite": int(counts["n_finite"]),
        "n_train": int(model.n_samples_fit_),
        "n_inliers": int(counts["n_inliers"]),
        "n_outliers": int(counts["n_outliers"]),
        "streamed": streamed,
        "alpha": fit_options.alpha,
        "coverage": mesh_options.coverage if mesh_options.coverage is not None else 1.0 - fit_options.alpha,
        "distance_threshold": getattr(model, "distance_threshold_", None),
        "mode": fitted_mode(model),
        "requested_mode": fit_options.mode,
        "fast": fit_options.fast,
        "surface_gap": getattr(model, "surface_gap_", None),
        "flow": model.flow,
        "radius": model.radius_,
        "mesh_radius": boundary.radius,
        "volume": model.volume_,
        "volume_stderr": model.volume_stderr_,
        "mesh_volume": float(boundary.mesh.volume),
        "mesh": checks,
        "refinement": boundary.info,
        "training": {
            "epochs_run": model.n_iter_,
            "final_loss": model.history_["loss"][-1],
            "surface_steps": model.n_surface_steps_ if model.objective == "surface" else 0,
            "n_couplings": model.n_couplings,
            "hidden_features": model.hidden_features,
        },
    }


def _try_preview(cloud, inside, mesh, path: Path) -> str | None:
    """Renders preview.png; returns None on success or a one-line reason why no preview was made."""
    try:
        from ..viz import render_scene
    except ImportError as error:
        return f"no preview: {error}"
    try:
        render_scene(path, cloud=cloud, inside=inside, mesh=mesh)
    except PcflowError as error:
        return f"no preview: {error}"
    return None
