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
from .meshes import extract_mesh, write_meshes
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


def reconstruct(input_path, outdir, fit_options: FitOptions, mesh_options: MeshOptions, *, overwrite: bool = False,
                preview: bool = True, chunk_size: int | None = None, classify: bool = False, scores: bool = False,
                clear: bool = False, scene: bool | None = None, trim: bool = False, plane_meshes: bool = False,
                jobs: int | None = None, scheduler: str | None = None, timer: Timer | None = None) -> dict:
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
        scene: True reconstructs the cloud as a scene (`pcflow.pipeline.scene.reconstruct_scene`: planes apart, one
            mesh per object), False as one object; None (the default) decides in ``auto`` mode without `classify`
            and `scores`: a cloud read whole in which `pcflow.scene.segment.segment_scene` finds objects apart from
            planes (`Segmentation.is_scene`) is a scene. A cloud of one object and no plane comes out exactly as
            with False.
        trim, plane_meshes, jobs, scheduler: a scene's trimmed object meshes, plane polygons, and where its objects
            are fitted (`pcflow.pipeline.scene.reconstruct_scene`).
        timer: collects the stage times (`RECONSTRUCT_STAGES`) and shows their progress; None: a new `Timer`.

    Returns:
        The report written to report.json.

    Raises:
        PcflowError: a bad input or settings, an output folder that cannot be written, outputs already there
            (without `overwrite`), or another process writing into `outdir`.
    """
    from .scene import scene_names

    if scene and chunk_size is not None:
        raise PcflowError("a scene is read whole: --scene takes no --chunk-size")
    if scene and (classify or scores):
        raise PcflowError("--classify and --scores are for one object; a scene's labels.npy labels every point")
    names = _output_names(mesh_options, classify)
    names += [name for name in scene_names(mesh_options) if name not in names]  # one kind of run replaces the other
    with claimed_outdir(outdir, names, overwrite=overwrite or clear, inputs=(input_path,), clear=clear):
        return _reconstruct(input_path, outdir, fit_options, mesh_options, names=names, overwrite=overwrite or clear,
                            preview=preview, chunk_size=chunk_size, classify=classify, scores=scores,
                            scene=dict(scene=scene, trim=trim, plane_meshes=plane_meshes, jobs=jobs,
                                       scheduler=scheduler), timer=timer)


def _reconstruct(input_path, outdir, fit_options: FitOptions, mesh_options: MeshOptions, *, names, overwrite: bool,
                 preview: bool, chunk_size: int | None, classify: bool, scores: bool, scene: dict,
                 timer: Timer | None) -> dict:
    """`reconstruct` in its locked output folder."""
    timer = timer or Timer()
    start = time.perf_counter()
    input_path = Path(input_path)
    streamed = not scene["scene"] and (chunk_size is not None or stream.should_stream(input_path))
    chunk_size = chunk_size or stream.DEFAULT_CHUNK_SIZE
    outputs = partial(prepare_outdir, outdir, names, overwrite=overwrite, inputs=(input_path,))
    cloud = None
    if not streamed:
        cloud = _read(input_path, outputs, timer)
        segmentation = _segment(cloud, fit_options, scene["scene"], classify or scores, timer)
        if segmentation is not None:
            return _scene(input_path, cloud, segmentation, outputs(), fit_options, mesh_options, names=names,
                          preview=preview, overwrite=overwrite, start=start, timer=timer, **scene)
    model, cloud = _fit(input_path, cloud, fit_options, outputs, streamed=streamed, chunk_size=chunk_size,
                        timer=timer)
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
        topology = _topology(cloud.points[inside], boundary.mesh, fit_options.seed,
                             getattr(model, "genus_estimate_", None))
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
    report.update(files=files, preview=preview_note or "preview.png")
    return _finish(report, outdir, fit_options, names=names, overwrite=overwrite, start=start, timer=timer)


def _finish(report: dict, outdir: Path, fit_options: FitOptions, *, names, overwrite: bool, start: float,
            timer: Timer) -> dict:
    """Completes report.json (files, seed, device, versions, timings), removes with `overwrite` what an earlier run
    of another kind left (`_remove_stale`), and writes report.json, last."""
    report.update(files=report["files"] + ["report.json"], seed=fit_options.seed, device=fit_options.device,
                  versions=versions())
    report["timings"] = {k: round(v, 4) for k, v in timer.stages.items()}
    report["timings"]["total"] = round(time.perf_counter() - start, 4)
    if overwrite:
        _remove_stale(outdir, names, report["files"])
    write_json(outdir / "report.json", report)
    return report


def _remove_stale(outdir: Path, names, files) -> None:
    """Removes what an earlier run of another kind left among `names` in `outdir` (a scene's `objects` folder
    before a one-object run, its mesh.ply before a scene, a preview not rendered this time): `outdir` then holds
    this run's outputs only (`files`) among the names a reconstruct writes."""
    import shutil

    kept = {name.split("/")[0] for name in files}
    for name in names:
        path = outdir / name
        if name in kept:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()


def _output_names(mesh_options: MeshOptions, classify: bool) -> list[str]:
    """Every file name `reconstruct` may write into its output folder with these settings."""
    return [*RECONSTRUCT_OUTPUTS, *(f"mesh.{fmt}" for fmt in mesh_options.formats),
            *(["mesh_uv.obj"] if mesh_options.uv else []), *([CLASSIFIED_OUTPUT] if classify else []), "preview.png"]


def _read(input_path: Path, outputs, timer: Timer) -> PointCloud:
    """Reads the cloud whole, checking it and the output folder (`outputs(create=False)`) before any fit."""
    with timer("read"):
        cloud = read_cloud(input_path)
    points_3d(cloud)  # a bad cloud fails before the output folder is made
    outputs(create=False)
    return cloud


def _fit(input_path: Path, cloud, options: FitOptions, outputs, *, streamed: bool, chunk_size: int, timer: Timer):
    """Fits the cloud read whole (`cloud`) or streams the file and fits it, checking the output folder
    (`outputs(create=False)`) before the fit: (model, the cloud read whole, or a streamed file's training subset)."""
    if streamed:
        outputs(create=False)
        fitted = stream.fit_file(input_path, options, chunk_size=chunk_size, timer=timer)
        return fitted.model, PointCloud(fitted.train, source=str(input_path))
    return fit_cloud(cloud, options, timer), cloud


def _segment(cloud: PointCloud, options: FitOptions, scene: bool | None, one_object: bool, timer: Timer):
    """The cloud's planes and objects where it is to be reconstructed as a scene, else None (see `reconstruct`);
    `one_object` (outputs of one object asked for: --classify, --scores) keeps ``auto`` from looking for a scene."""
    from ..scene.segment import OBJECT_MIN_POINTS, segment_scene

    if scene is None:
        scene = None if options.mode == "auto" and not one_object and len(cloud) >= OBJECT_MIN_POINTS else False
    if scene is False:
        return None
    with timer("segment"):
        try:
            segmentation = segment_scene(cloud.points, seed=options.seed)
        except PcflowError:
            if scene:
                raise
            return None  # no scene in a degenerate cloud: the fit names what is wrong with it
    return segmentation if scene or segmentation.is_scene else None


def _scene(input_path: Path, cloud, segmentation, outdir: Path, fit_options: FitOptions, mesh_options: MeshOptions,
           *, names, preview: bool, overwrite: bool, start: float, timer: Timer, scene, **options) -> dict:
    """The scene job (`pcflow.pipeline.scene.reconstruct_scene`) and its report.json."""
    import shutil

    from .scene import OBJECTS, PLANES, reconstruct_scene
    from .timing import SCENE_STAGES

    timer.plan = tuple(stage for stage in SCENE_STAGES if preview or stage != "preview")
    if overwrite:  # an earlier scene's object and plane folders go: the new scene may have fewer
        for name in (OBJECTS, PLANES):
            if (outdir / name).is_dir():
                shutil.rmtree(outdir / name)
    facts = reconstruct_scene(cloud, _finite_rows(input_path, cloud), segmentation, outdir, fit_options,
                              mesh_options, preview=preview, timer=timer, **options)
    report = {
        "input": str(input_path), "n_points": len(cloud) + cloud.n_dropped_nonfinite,
        "n_dropped_nonfinite": cloud.n_dropped_nonfinite, "n_finite": len(cloud), "streamed": False,
        "alpha": fit_options.alpha, "requested_mode": fit_options.mode, "fast": fit_options.fast, **facts,
        "n_objects": len(facts["objects"]), "n_planes": len(facts["planes"]), "warnings": [],
    }
    return _finish(report, outdir, fit_options, names=names, overwrite=overwrite, start=start, timer=timer)


def _finite_rows(input_path: Path, cloud):
    """Which rows of the input file the cloud holds (None: all), for a label per input row."""
    if cloud.n_dropped_nonfinite == 0:
        return None
    import numpy as np

    from ..io.records import coordinates
    from ..io.registry import read_records

    records, _ = read_records(input_path)
    return np.isfinite(coordinates(records, input_path)[1]).all(axis=1)


def _topology(inliers, mesh, seed: int, estimate=None) -> dict:
    """report.json's ``genus_estimate``, ``spanned_area`` and ``spanned_share`` (`pcflow.meshing.topology`, with the
    genus `estimate` of the training points where the fit found one); all None for fewer than 10 inliers."""
    from ..meshing import topology

    if len(inliers) < 10:
        return {"genus_estimate": None, "spanned_area": None, "spanned_share": None}
    return topology(inliers, mesh, seed=seed, estimate=estimate)


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
            "final_loss": model.history_["loss"][-1] if model.history_["loss"] else None,
            "surface_steps": model.n_surface_steps_ if model.objective == "surface" else 0,
            "genus": getattr(getattr(model, "template_", None), "genus", 0),  # the latent tori's, or 0 (fallback too)
            "latent": latent_kind(model),
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


def latent_kind(model) -> str:
    """The latent surface a fitted model's mesh is the preimage of: ``'sphere'``, ``'shaped'`` (like the data, of
    any genus), ``'torus'`` or ``'tori'``."""
    template = getattr(model, "template_", None)
    return "sphere" if template is None else template.kind
