"""Fitting OneFlow to a 3D cloud: the training subset, the fit, and ``auto`` mode's switch to the envelope."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from ..models import OneFlow
from ..distributed import group, shard
from ..errors import PcflowError
from .options import GENUS_NORMALIZE, OPEN_SCENE_GAP, FitOptions, genus_params
from .timing import Timer

_log = logging.getLogger(__name__)


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
    it spans empty space, checked after `pcflow.models.SURFACE_CHECK_STEPS` steps of the surface fit and at its
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
    with timer("fit"):
        if "auto" in (options.genus, options.latent) and model.objective == "surface":
            model.genus_estimate_ = choose_genus(model, train, options.seed, options)
        train = shard(train, group())  # under torchrun each rank trains on its share
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


def choose_genus(model, train: np.ndarray, seed: int, options: FitOptions | None = None):
    """Sets a surface model's genus to 1, 2 or 3 (with its normalisation, `genus_params`) where the training points
    enclose a volume with that many handles (`pcflow.meshing.estimate_genus` of a seeded subset of them, as
    `pcflow.meshing.topology` takes), and the model's latent surface to the shaped one (of that genus) where they
    enclose a volume (as `options` ask: their ``'auto'`` genus and latent; both by default); returns the estimate,
    which the report reuses."""
    genus_auto = options is None or options.genus == "auto"
    latent_auto = options is None or options.latent == "auto"
    from ..meshing.genus import estimate_genus, topology_points

    start = time.perf_counter()
    train = topology_points(train, seed)
    estimate = estimate_genus(train) if len(train) >= 10 else None
    _log.debug("genus estimate: %s, %.2f s", None if estimate is None else estimate.genus, time.perf_counter() - start)
    if genus_auto and estimate is not None and estimate.encloses and estimate.genus in GENUS_NORMALIZE \
            and estimate.genus > 0:
        _log.info("the points need a surface with %s: a genus-%d fit",
                  "one handle" if estimate.genus == 1 else f"{estimate.genus} handles", estimate.genus)
        model.set_params(**genus_params(estimate.genus))
    if latent_auto and estimate is not None and estimate.encloses:
        model.set_params(latent="shaped")
    return estimate


class _OpenScene(Exception):
    """A surface fit spans empty space (more than `OPEN_SCENE_GAP` of it): the cloud is an open scene."""

    def __init__(self, gap: float):
        super().__init__(f"surface gap {gap:.3f}")
        self.gap = gap


def _check_gap(model: OneFlow) -> float:
    """The surface gap of a surface fit; raises `_OpenScene` above `OPEN_SCENE_GAP`."""
    from ..meshing import surface_gap

    start = time.perf_counter()
    gap = surface_gap(model)
    _log.info("surface gap check: %.3f, %.2f s", gap, time.perf_counter() - start)
    if gap > OPEN_SCENE_GAP:
        raise _OpenScene(gap)
    return gap


def fitted_mode(model: OneFlow) -> str:
    """The mode (``surface`` or ``envelope``) a model from `fit_cloud` was fitted in."""
    return "surface" if model.objective == "surface" else "envelope"
