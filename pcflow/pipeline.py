"""The 3D jobs behind the command line: fit a cloud, split it into inliers and outliers, mesh the region, report."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .detector import OneFlow, SurfaceFlow
from .distributed import group, shard
from .errors import PcflowError

#: Files `reconstruct` writes into its output folder (extra mesh formats, mesh_uv.obj and preview.png come on top).
RECONSTRUCT_OUTPUTS = ("inliers.ply", "outliers.ply", "mesh.ply", "mesh.obj", "model.pt", "report.json")
#: The file `reconstruct(..., classify=True)` adds: every point, outliers marked ASPRS class 7 (noise).
CLASSIFIED_OUTPUT = "classified.ply"
#: The `Timer` stages of `reconstruct`, in order (``preview`` only when asked for).
RECONSTRUCT_STAGES = ("read", "fit", "score", "write_clouds", "mesh", "mesh_checks", "write_mesh", "preview")
#: What a progress line calls each stage.
STAGE_LABELS = {"read": "reading", "fit": "fitting", "score": "scoring", "write_clouds": "writing the clouds",
                "mesh": "meshing", "mesh_checks": "checking the mesh", "write_mesh": "writing the meshes and model",
                "preview": "rendering the preview"}

_log = logging.getLogger(__name__)


#: What each fitting mode trains: ``surface`` fits the scanned surface, ``envelope`` the paper's smallest solid
#: region holding 1 - alpha of the points (the bounding region), ``auto`` (the default) fits the surface and falls
#: back to the envelope when the cloud is an open scene (see `OPEN_SCENE_GAP`).
MODES = {
    # a surface fit's envelope stage only has to start the surface fit: 40 epochs (its cosine schedule over them) of
    # half as many, twice as large steps as an envelope fit's
    "surface": {"objective": "surface", "flow": "general", "n_couplings": 10, "hidden_features": 96, "epochs": 40,
                "batch_size": 2000, "lr": 2e-3},
    "envelope": {"objective": "volume", "flow": "nice", "n_couplings": 6, "hidden_features": 64, "epochs": 100,
                 "batch_size": 1000, "lr": 1e-3},
}
MODES["auto"] = MODES["surface"]

#: What a fast fit (``--fast``, `FitOptions.fast`) takes instead of a mode's defaults, where no setting is given: half
#: the envelope epochs and, in a surface fit, at most 400 surface steps; a coarser surface in about half the fit time
#: (docs/benchmarks/speed.md).
FAST = {"surface": {"epochs": 20, "surface_steps": 400}, "envelope": {"epochs": 50}}
FAST["auto"] = FAST["surface"]
#: The most steps of a surface fit where neither `FitOptions.surface_steps` nor `FitOptions.fast` says otherwise:
#: SurfaceFlow's own default.
SURFACE_STEPS = SurfaceFlow().surface_steps

#: ``auto`` mode takes a cloud for an open scene, and fits the envelope instead, when more than this share of the
#: fitted surface spans empty space (`pcflow.mesh.surface_gap`): at most 0.076 did on the scanned objects measured
#: (the torus's membrane), 0.21 to 0.91 on the two table-top scans.
OPEN_SCENE_GAP = 0.15


@dataclass
class FitOptions:
    """Settings of a 3D fit, as the command line exposes them; None takes the mode's default (`MODES`)."""

    alpha: float = 0.05
    mode: str = "auto"
    flow: str | None = None
    epochs: int | None = None
    surface_steps: int | None = None
    seed: int = 0
    device: str = "cpu"
    max_train_points: int | None = 20_000
    n_couplings: int | None = None
    hidden_features: int | None = None
    progress: bool = False
    fast: bool = False  # a shorter fit where epochs and surface_steps are None (`FAST`)

    def resolved(self, name: str):
        """The setting `name`, taking the mode's default where it is None or not a field (``objective``, ``batch_size``,
        ``lr``): its `FAST` setting in a fast fit, else `MODES`'s (`SURFACE_STEPS` for ``surface_steps``)."""
        if self.mode not in MODES:
            raise PcflowError(f"mode must be one of {', '.join(map(repr, MODES))}, got {self.mode!r}")
        value = getattr(self, name, None)
        if value is not None:
            return value
        if self.fast and name in FAST[self.mode]:
            return FAST[self.mode][name]
        return SURFACE_STEPS if name == "surface_steps" else MODES[self.mode][name]

    def estimator(self) -> OneFlow:
        """An unfitted estimator with these settings and the isotropic normalisation that keeps shapes undistorted:
        a SurfaceFlow for the surface objective, else a OneFlow."""
        surface = self.resolved("objective") == "surface"
        return (SurfaceFlow if surface else OneFlow)(
            alpha=self.alpha,
            flow=self.resolved("flow"),
            epochs=self.resolved("epochs"),
            batch_size=self.resolved("batch_size"),
            lr=self.resolved("lr"),
            **({"surface_steps": self.resolved("surface_steps")} if surface else {}),
            n_couplings=self.resolved("n_couplings"),
            hidden_features=self.resolved("hidden_features"),
            normalize="isotropic",
            device=self.device,
            random_state=self.seed,
            progress=self.progress,
        )


@dataclass
class MeshOptions:
    """Settings of the boundary mesh extraction."""

    subdivisions: int = 3
    tolerance: float | None = None
    max_faces: int = 200_000
    coverage: float | None = None
    formats: tuple[str, ...] = ()
    snap: bool = True  # a surface fit's own mesh moved onto its training inliers (`pcflow.mesh.boundary_mesh`)
    uv: bool = False  # also write mesh_uv.obj, the mesh with the sphere chart's texture coordinates


@dataclass
class Timer:
    """Wall time per named stage, in seconds; `with timer("fit"): ...` times one stage.

    Each stage that ends without an error is logged with its time (logger ``pcflow.pipeline``, level INFO; the
    command line shows these with ``--verbose``). With `progress`, a line on stderr (tqdm) names the running stage,
    numbered by its place in `plan`; it is cleared by `close`, or at the end of a ``with Timer(...) as timer:``.
    """

    stages: dict = field(default_factory=dict)
    plan: tuple[str, ...] = ()
    progress: bool = False
    _bar: object = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                timer._show(name)
                self.start = time.perf_counter()

            def __exit__(self, kind, *exc):
                seconds = time.perf_counter() - self.start
                timer.stages[name] = timer.stages.get(name, 0.0) + seconds
                if kind is None:
                    _log.info("%s: %.2f s", name, seconds)

        return _Stage()

    def _show(self, name: str) -> None:
        if not self.progress:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(bar_format="{desc} [{elapsed}]", leave=False, file=sys.stderr)
        number = f"stage {self.plan.index(name) + 1}/{len(self.plan)}: " if name in self.plan else ""
        self._bar.set_description_str(f"pcflow: {number}{STAGE_LABELS.get(name, name)}")

    def close(self) -> None:
        """Clears the progress line, if one is shown."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Timer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def points_3d(cloud) -> np.ndarray:
    """The (N, 3) coordinates of a cloud, or a PcflowError naming what is wrong with them."""
    points = cloud.points
    if points.ndim != 2 or points.shape[1] != 3:
        raise PcflowError(f"{cloud.source}: expected 3-D points, got {points.shape[1]} coordinates per point")
    if len(points) == 0:
        raise PcflowError(f"{cloud.source}: no points to work with")
    return points


def training_rows(n_points: int, options: FitOptions) -> np.ndarray:
    """Sorted indices of the seeded random subset of at most `options.max_train_points` rows that a fit trains on."""
    if options.max_train_points is None or n_points <= options.max_train_points:
        return np.arange(n_points)
    rng = np.random.default_rng(options.seed)
    return np.sort(rng.choice(n_points, options.max_train_points, replace=False))


def fit_cloud(cloud, options: FitOptions, timer: Timer | None = None) -> OneFlow:
    """Fits OneFlow to a cloud, on a seeded random subset of at most `options.max_train_points` points.

    In ``auto`` mode the surface is fitted first and replaced by an envelope fit when more than `OPEN_SCENE_GAP` of
    it spans empty space, checked after `pcflow.detector.SURFACE_CHECK_STEPS` steps of the surface fit and at its
    end; `fitted_mode` tells which was kept, and the model's `surface_gap_` the gap measured last (of the surface
    kept, or of the surface given up). In a torch.distributed process group of several ranks, every rank draws the
    same subset and trains data-parallel on its share of it (and every rank measures the same gap).
    """
    timer = timer or Timer()
    points = points_3d(cloud)
    model = options.estimator()
    if len(points) < model.min_samples():
        raise PcflowError(
            f"{cloud.source}: {len(points)} points is too few to fit (alpha={options.alpha} needs {model.min_samples()})"
        )
    train = points[training_rows(len(points), options)]
    train = shard(train, group())  # under torchrun each rank trains on its share
    with timer("fit"):
        if options.mode != "auto":
            return model.fit(train)
        try:  # the gap is checked early in the surface fit, and again at its end
            model.fit(train, surface_check=_check_gap)
            gap = _check_gap(model)
        except _OpenScene as scene:
            _log.info("surface gap %.3f above %.2f: an open scene, fitting the envelope instead", scene.gap,
                      OPEN_SCENE_GAP)
            model, gap = replace(options, mode="envelope").estimator().fit(train), scene.gap
        model.surface_gap_ = gap
    return model


class _OpenScene(Exception):
    """A surface fit spans empty space (more than `OPEN_SCENE_GAP` of it): the cloud is an open scene."""

    def __init__(self, gap: float):
        super().__init__(f"surface gap {gap:.3f}")
        self.gap = gap


def _check_gap(model: OneFlow) -> float:
    """The surface gap of a surface fit; raises `_OpenScene` above `OPEN_SCENE_GAP`."""
    from .mesh import surface_gap

    start = time.perf_counter()
    gap = surface_gap(model)
    _log.info("surface gap check: %.3f, %.2f s", gap, time.perf_counter() - start)
    if gap > OPEN_SCENE_GAP:
        raise _OpenScene(gap)
    return gap


def fitted_mode(model: OneFlow) -> str:
    """The mode (``surface`` or ``envelope``) a model from `fit_cloud` was fitted in."""
    return "surface" if model.objective == "surface" else "envelope"


def extract_mesh(model: OneFlow, options: MeshOptions, timer: Timer | None = None):
    """The boundary mesh of a fitted 3D model and its validity checks: (BoundaryMesh, validity dict)."""
    from .mesh import boundary_mesh, validity

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
    from .io import write_mesh

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


def versions() -> dict:
    """Versions of pcflow and the libraries that shape its results."""
    import torch
    import trimesh

    from . import __version__

    return {
        "pcflow": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "trimesh": trimesh.__version__,
    }


def write_json(path: Path, data: dict) -> None:
    """Writes `data` as indented JSON, atomically."""
    from .io import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=json_value) + "\n")


def json_value(value):
    """A JSON-writable stand-in for a numpy scalar or array or a path (the `default` of `json.dumps`)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def prepare_outdir(outdir, names, *, overwrite: bool, inputs=(), create: bool = True) -> Path:
    """Checks that `names` can be written into `outdir` and creates the folder if `create`.

    Refuses to replace existing outputs unless `overwrite`, and inputs ever. With `create=False` it only checks
    that the folder, or the nearest existing folder above it, is writable, so a long job can fail early without
    leaving an empty folder behind.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise PcflowError(f"output folder {outdir} exists and is not a folder")
    for source in inputs:
        for name in names:
            if (outdir / name).resolve() == Path(source).resolve():
                raise PcflowError(f"output {outdir / name} would overwrite the input {source}")
    existing = [name for name in names if (outdir / name).exists()]
    if existing and not overwrite:
        raise PcflowError(f"{outdir} already holds {', '.join(existing)}; pass --overwrite or choose another folder")
    if not create:
        ancestor = outdir.absolute()
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise PcflowError(f"cannot create output folder {outdir}: {ancestor} is not a writable folder")
        return outdir
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PcflowError(f"cannot create output folder {outdir}: {error.strerror}") from None
    return outdir


def reconstruct(
    input_path,
    outdir,
    fit_options: FitOptions,
    mesh_options: MeshOptions,
    *,
    overwrite: bool = False,
    preview: bool = True,
    chunk_size: int | None = None,
    classify: bool = False,
    scores: bool = False,
    timer: Timer | None = None,
) -> dict:
    """Reads a cloud, fits OneFlow, writes inliers, outliers, boundary meshes, the model and report.json.

    Args:
        input_path: point cloud or mesh file (any suffix `pcflow.io.read_cloud` knows).
        outdir: output folder, created if needed.
        fit_options: model settings.
        mesh_options: mesh settings.
        overwrite: replace outputs already in `outdir`.
        preview: also render preview.png when a headless renderer is available.
        chunk_size: read, score and write the cloud this many points at a time (bounded memory); None does so with
            `pcflow.stream.DEFAULT_CHUNK_SIZE` for clouds of `pcflow.stream.STREAM_MIN_POINTS` or more points and
            reads smaller clouds whole. The results are the same either way; a streamed preview shows the
            training subset.
        classify: also write classified.ply: every point, outliers marked as noise, ASPRS class 7
            (`pcflow.stream.classified_cloud`).
        scores: add the float32 field `outlier_score` (minus the decision function, > 0 for outliers) to the
            point clouds written.
        timer: collects the stage times (`RECONSTRUCT_STAGES`) and shows their progress; None: a new `Timer`.

    Returns:
        The report written to report.json.
    """
    from . import stream
    from .io import PointCloud, read_cloud

    timer = timer or Timer()
    start = time.perf_counter()
    input_path = Path(input_path)
    names = [*RECONSTRUCT_OUTPUTS, *(f"mesh.{fmt}" for fmt in mesh_options.formats),
             *(["mesh_uv.obj"] if mesh_options.uv else []), *([CLASSIFIED_OUTPUT] if classify else []), "preview.png"]
    streamed = chunk_size is not None or stream.should_stream(input_path)
    if streamed:
        prepare_outdir(outdir, names, overwrite=overwrite, inputs=(input_path,), create=False)
        fitted = stream.fit_file(input_path, fit_options, chunk_size=chunk_size or stream.DEFAULT_CHUNK_SIZE,
                                 timer=timer)
        model = fitted.model
    else:
        with timer("read"):
            cloud = read_cloud(input_path)
        points_3d(cloud)  # a bad cloud fails before the output folder is made
        prepare_outdir(outdir, names, overwrite=overwrite, inputs=(input_path,), create=False)
        model = fit_cloud(cloud, fit_options, timer)
    outdir = prepare_outdir(outdir, names, overwrite=overwrite, inputs=(input_path,))
    classified = outdir / CLASSIFIED_OUTPUT if classify else None
    if streamed:
        counts = stream.split_file(input_path, model, outdir / "inliers.ply", outdir / "outliers.ply",
                                   classified_path=classified, scores=scores,
                                   chunk_size=chunk_size or stream.DEFAULT_CHUNK_SIZE, timer=timer)
        cloud, inside = PointCloud(fitted.train, source=str(input_path)), None  # the preview shows the training subset
    else:
        counts, inside = stream.split_cloud(cloud, model, [outdir / "inliers.ply", outdir / "outliers.ply"],
                                            classified=classified, scores=scores, timer=timer)
    boundary, checks = extract_mesh(model, mesh_options, timer)
    with timer("write_mesh"):
        meshes = write_meshes(boundary, outdir, "mesh", mesh_options.formats, uv=mesh_options.uv)
        files = ["inliers.ply", "outliers.ply", *([CLASSIFIED_OUTPUT] if classify else []), *meshes]
        model.save(outdir / "model.pt")
        files.append("model.pt")
    preview_note = "not asked for"
    if preview:
        with timer("preview"):
            if inside is None:  # streamed: the training subset was not scored with the rest
                inside = model.predict(cloud.points) == 1
            preview_note = _try_preview(cloud, inside, boundary.mesh, outdir / "preview.png")
        if preview_note is None:
            files.append("preview.png")

    report = {
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
        "files": files + ["report.json"],
        "preview": preview_note or "preview.png",
        "seed": fit_options.seed,
        "device": fit_options.device,
        "versions": versions(),
    }
    report["timings"] = {k: round(v, 4) for k, v in timer.stages.items()}
    report["timings"]["total"] = round(time.perf_counter() - start, 4)
    write_json(outdir / "report.json", report)
    return report


def _try_preview(cloud, inside, mesh, path: Path) -> str | None:
    """Renders preview.png; returns None on success or a one-line reason why no preview was made."""
    try:
        from .viz import render_scene
    except ImportError as error:
        return f"no preview: {error}"
    try:
        render_scene(path, cloud=cloud, inside=inside, mesh=mesh)
    except PcflowError as error:
        return f"no preview: {error}"
    return None
