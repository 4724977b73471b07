"""SurfaceFlow: an envelope OneFlow refined into a surface through a scan, scored by the distance to it and the data."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from ..distributed import SingleProcess
from ..errors import PcflowError
from ..latent import fit_tori, fit_torus, template_from_array
from ..shaped import GRID_SIZE, SPACING_NEIGHBORS, LatentGrid, fit_grid
from ..objectives import RADIAL_WEIGHT, Objective, spread_unit_sphere
from ..optim import CosineSchedule, adam
from ..quantile import check_alpha
from .base import _CHUNK, check_choices, check_number, check_positive_int
from .oneflow import OneFlow

#: `SurfaceFlow`'s default `surface_weight`; models saved without one (older files) score with 1.
SURFACE_WEIGHT = 2.0

#: `SurfaceFlow`'s default `plane_weight` and `plane_neighbors`; models saved without them (older files) score with
#: weight 0, without the plane term.
PLANE_WEIGHT = 2.0
PLANE_NEIGHBORS = 12

#: How `SurfaceFlow`'s outlyingness measures the distance to the data: ``'mean'`` of the distances to the
#: `n_neighbors` nearest other training points (the default), or the ``'kth'`` (models saved without one).
NEIGHBOR_STATISTICS = ("mean", "kth")

#: The genera of the latent surfaces `SurfaceFlow` fits: the sphere (0), the torus (1, `pcflow.latent.LatentTorus`)
#: and two or three tori joined side by side (2 and 3, `pcflow.latent.LatentTori`).
GENERA = (0, 1, 2, 3)

#: The latent surfaces of a genus-0 fit: the sphere, or one shaped like the data (`pcflow.shaped.LatentGrid`,
#: `start_from_data`), where the surface fit starts from the object's shape instead of the envelope's.
LATENTS = ("sphere", "shaped")

#: `SurfaceFlow.fit` calls its `surface_check` after this many steps of the surface fit: a setting of the check (the
#: caller's), which leaves the model as it is unless the check ends the fit.
SURFACE_CHECK_STEPS = 100

_log = logging.getLogger(__name__)


def neighbor_distances(tree, centered: np.ndarray, k: int, statistic: str) -> np.ndarray:
    """Distance from each row of `centered` to its k nearest other points of the k-d tree `tree` (a row that is a
    point of the tree itself skips it): the k-th's (``'kth'``) or their mean (``'mean'``): (N,) array."""
    out = np.empty(len(centered))
    for start in range(0, len(centered), _CHUNK):  # chunks bound the (chunk, k + 1) answers
        distances, _ = tree.query(centered[start:start + _CHUNK], k + 1, workers=torch.get_num_threads())
        own = distances[:, 0] == 0  # the point is a reference point itself: skip it
        if statistic == "mean":
            total = distances[:, :k + 1].sum(axis=1)
            out[start:start + _CHUNK] = np.where(own, total, total - distances[:, k]) / k
        else:
            out[start:start + _CHUNK] = np.where(own, distances[:, k], distances[:, k - 1])
    return out


def plane_distances(tree, reference: np.ndarray, centered: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of `centered` to the least-squares hyperplane (the centroid and the direction of least
    variance) through its k nearest other points of `reference`, indexed by the k-d tree `tree` (a row that is a
    point of the tree itself skips it): (N,) array."""
    out = np.empty(len(centered))
    for start in range(0, len(centered), _CHUNK):
        rows = centered[start:start + _CHUNK]
        distances, index = tree.query(rows, k + 1, workers=torch.get_num_threads())
        own = distances[:, :1] == 0
        neighbours = reference[np.where(own, index[:, 1:], index[:, :k])]  # (chunk, k, D)
        centroid = neighbours.mean(axis=1)
        spread = neighbours - centroid[:, None, :]
        _, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", spread, spread))
        out[start:start + _CHUNK] = np.abs(np.einsum("ni,ni->n", rows - centroid, vectors[:, :, 0]))
    return out


def train_surface(model: "SurfaceFlow", data: torch.Tensor, radius: float, generator: torch.Generator,
                  parallel: SingleProcess, check=None) -> None:
    """Refines `model`'s flow so that f^-1 of the sphere of `radius` passes through the (normalised) points `data`;
    calls `check(model)` after `SURFACE_CHECK_STEPS` steps. Sets `n_surface_steps_`, fills
    ``history_["surface_loss"]``."""
    from tqdm.auto import tqdm

    n, dim = data.shape
    batch = min(model.surface_batch_size, n)
    template = model.template_
    total = (model.surface_steps if template is None else model.shaped_steps if isinstance(template, LatentGrid)
             else model.torus_steps)
    objective = parallel.wrap(Objective(model.flow_, "surface", check_alpha(model.alpha), radius=radius,
                                        level=None if template is None else template.level))
    optimizer = adam(model.flow_.parameters(), lr=model.surface_lr)
    lowest_lr = 0.05 * model.surface_lr
    scheduler = CosineSchedule(optimizer, total, eta_min=lowest_lr)
    show = model.progress and parallel.rank == 0
    start = time.perf_counter()
    steps = tqdm(range(total), desc="surface fit", unit="step", disable=not show, leave=False)
    coarse_steps = int(model.coarse_share * total)
    every, block_steps, cooldown = model.radial_every, model.surface_block, model.surface_cooldown
    losses, best, stale = [], math.inf, 0
    cooling = None  # (first step, learning rate) of the last steps, once the loss has stopped falling
    model.flow_.train()
    for step in steps:
        rows = torch.randint(n, (batch,), generator=generator).to(data.device)
        n_sphere = model.coarse_surface_samples() if step < coarse_steps else model.n_surface_samples
        if template is None:
            latent = radius * spread_unit_sphere(n_sphere, dim, generator=generator, dtype=data.dtype,
                                                 device=data.device)
        else:
            latent = template.points(n_sphere, radius, generator=generator, dtype=data.dtype, device=data.device)
        radial_weight = every * RADIAL_WEIGHT if step % every == 0 else 0.0
        loss, _ = objective(data[rows], latent, radial_weight=radial_weight)
        if not torch.isfinite(loss):
            raise PcflowError(f"the surface fit diverged at step {step + 1}; try a smaller surface_lr")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.flow_.parameters(), 1.0)
        optimizer.step()
        if cooling is None:
            scheduler.step()
        else:  # the rest of a cosine schedule, from this learning rate to the lowest, over the last steps
            done = min(1.0, (step + 1 - cooling[0]) / cooldown)
            for group in optimizer.param_groups:
                group["lr"] = lowest_lr + (cooling[1] - lowest_lr) * 0.5 * (1.0 + math.cos(math.pi * done))
        losses.append(loss.item())
        if check is not None and step == SURFACE_CHECK_STEPS - 1:
            model.flow_.eval()
            check(model)
            model.flow_.train()
        if len(losses) == block_steps or step == total - 1:
            # the block's mean loss over all ranks, so that every rank stops at the same step
            block = float(parallel.sum(np.array([np.mean(losses)]))[0] / parallel.world_size)
            model.history_["surface_loss"].append(block)
            steps.set_postfix(loss=f"{block:.4f}")
            losses = []
            if block < best * (1.0 - model.surface_tol):
                best, stale = block, 0
            else:
                stale += 1
                if cooling is None and model.surface_patience is not None and stale >= model.surface_patience:
                    cooling = (step + 1, optimizer.param_groups[0]["lr"])
        if cooling is not None and step + 1 - cooling[0] >= cooldown:
            break
    model.n_surface_steps_ = step + 1  # total >= 1, so the loop ran
    model.flow_.eval()
    _log.info("surface fit: %d steps, %.2f s", model.n_surface_steps_, time.perf_counter() - start)


def start_torus(model: "SurfaceFlow", inliers: torch.Tensor, parallel: SingleProcess) -> float | None:
    """Sets up a surface fit of genus 1 to 3: the torus `fit_torus` finds through the envelope's (normalised)
    `inliers` of every rank, or the `genus` joined tori of `fit_tori`, becomes `model.template_`, and a fresh flow
    (the identity, seeded) replaces the envelope's, since the tori lie in the input's coordinates. Returns the
    surface's size, or None (the model untouched) where none fits, as for a cloud without a hole, or where the tori
    fitted do not bound a surface of that genus (two miss each other, one covers another's hole, or three close a
    loop around a further hole)."""
    points = parallel.gather(inliers.detach().double().cpu().numpy())
    found = fit_torus(points, seed=model.seed_) if model.genus == 1 else fit_tori(points, model.genus, seed=model.seed_)
    if found is not None and model.genus > 1 and not _bounds_genus(found[0], found[1]):
        found = None
    if found is None:
        _log.warning("no %s the points; fitting a genus-0 surface", "torus fits" if model.genus == 1 else
                     f"{model.genus} joined tori fit")
        return None
    model.template_, size, residual = found
    for torus in getattr(model.template_, "tori", (model.template_,)):
        _log.info("torus: ring %.3f, tube %.3f, stretch %.2f, residual %.3f", torus.major, size, torus.stretch,
                  residual)
    param = next(model.flow_.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model.seed_)
        model.flow_ = model._build_flow(inliers.shape[1]).to(device=param.device, dtype=param.dtype)
    return size


def start_from_data(model: "SurfaceFlow", data: torch.Tensor, parallel: SingleProcess) -> bool:
    """Sets up a surface fit that needs no envelope stage: one from a latent surface shaped like the data (`latent`
    ``'shaped'``) of the model's genus, or one of genus 1 to 3 whose tori `start_torus` fits to the inliers later
    (where no shaped surface of that genus was asked for or found). The inliers are the points whose mean distance
    to their `SPACING_NEIGHBORS` nearest others (over every rank's points) is within the (1 - alpha) quantile; this
    rank's mask becomes `_start_inliers`, a shaped surface around them (`fit_grid`) `template_`, and n_iter_ is 0
    (no envelope epochs). Returns whether it did; not for a genus-0 fit whose inliers enclose no volume with a
    genus-0 boundary (an open scan: the fit then starts from the sphere, after the envelope stage)."""
    from scipy.spatial import cKDTree

    if data.shape[1] != 3:
        needs = "latent 'shaped'" if model.genus == 0 else f"genus {model.genus}"
        raise PcflowError(f"{needs} needs 3-D points, got {data.shape[1]} features")
    local = data.detach().double().cpu().numpy()
    points = parallel.gather(local)
    k = min(SPACING_NEIGHBORS, len(points) - 1)
    tree = cKDTree(points)
    spread = neighbor_distances(tree, points, k, "mean")
    threshold = float(np.quantile(spread, 1.0 - check_alpha(model.alpha)))
    if model.latent == "shaped":
        start = time.perf_counter()
        grid = fit_grid(points[spread <= threshold], model.genus)
        if grid is None and model.genus == 0:
            _log.info("the points enclose no genus-0 volume: the surface fit starts from the sphere")
            return False
        if grid is None:
            _log.info("the points enclose no volume of genus %d on a grid: the surface fit starts from tori",
                      model.genus)
        else:
            _log.info("shaped latent surface: genus %d, grid %s, spacing %.4f, %.2f s", grid.genus,
                      grid.values.shape, grid.spacing, time.perf_counter() - start)
            model.template_ = grid
    model.n_iter_ = 0
    own = spread if parallel.world_size == 1 else neighbor_distances(tree, local, k, "mean")  # this rank's points
    model._start_inliers = torch.as_tensor(own <= threshold, device=data.device)
    return True


def envelope_inliers(model: "SurfaceFlow", data: torch.Tensor, parallel: SingleProcess) -> tuple[torch.Tensor, float]:
    """The envelope's inliers (this rank's mask: latent radius within the (1 - alpha) quantile of every rank's) and
    the median latent radius of every rank's inliers."""
    local = model._latent_radius_normalized(data)
    radii = parallel.gather(local)
    envelope = float(np.quantile(radii, 1.0 - check_alpha(model.alpha)))
    return torch.as_tensor(local <= envelope, device=data.device), float(np.median(radii[radii <= envelope]))


def _bounds_genus(tori, size: float) -> bool:
    """Whether joined tori's surface of size `size` is one closed surface of their genus (its template mesh's
    Euler characteristic and components)."""
    from ..meshing.checks import bounds_one_surface
    from ..meshing.template import Tori

    return bounds_one_surface(*Tori(tori).start(0, size), tori.genus)


class ReferencePoints:
    """The distances from points to a fitted model's `reference_points_` (training points minus center_), to the
    nearest of them and to the plane through the nearest: the data terms of `SurfaceFlow`'s score."""

    def _reference_tree(self):
        """The k-d tree of `reference_points_`, built on first use."""
        from scipy.spatial import cKDTree

        if getattr(self, "_tree", None) is None:
            self._tree = cKDTree(self.reference_points_)
        return self._tree

    def _neighbor_distance_centered(self, centered: np.ndarray, k: int | None = None,
                                    statistic: str | None = None) -> np.ndarray:
        """`neighbor_distances` of rows in input units minus center_ to the reference points (default k:
        `n_neighbors`; default statistic: `neighbor_statistic`)."""
        k = min(self.n_neighbors if k is None else k, len(self.reference_points_) - 1)
        statistic = self.neighbor_statistic if statistic is None else statistic
        return neighbor_distances(self._reference_tree(), centered, k, statistic)

    def _plane_distance_centered(self, centered: np.ndarray) -> np.ndarray:
        """`plane_distances` of rows in input units minus center_ to the reference points."""
        k = min(self.plane_neighbors, len(self.reference_points_) - 1)
        return plane_distances(self._reference_tree(), self.reference_points_, centered, k)

    def _plane_term(self, centered: np.ndarray) -> np.ndarray:
        """`plane_weight` times `_plane_distance_centered` (zeros, found without a query, at weight 0)."""
        if self.plane_weight == 0:
            return np.zeros(len(centered))
        return self.plane_weight * self._plane_distance_centered(centered)

    def neighbor_distance(self, X, k: int | None = None, statistic: str | None = None) -> np.ndarray:
        """Distance of each row of X to its k (default `n_neighbors`) nearest other training points (of the seeded
        subset `reference_points_`), in input units: (N,) array. `statistic`: ``'mean'`` of their distances or the
        ``'kth'``'s; default the model's `neighbor_statistic`, as its score uses."""
        self._check_fitted()
        if (self.n_neighbors if k is None else k) < 1:
            raise PcflowError("neighbor_distance needs n_neighbors >= 1" if k is None else f"k must be >= 1, got {k}")
        if statistic not in (None, *NEIGHBOR_STATISTICS):
            allowed = ", ".join(map(repr, NEIGHBOR_STATISTICS))
            raise PcflowError(f"statistic must be one of {allowed}, got {statistic!r}")
        X = self._checked(X)
        return self._neighbor_distance_centered(X - self.center_, k, statistic)

    def plane_distance(self, X) -> np.ndarray:
        """Distance of each row of X to the least-squares plane through its `plane_neighbors` nearest other training
        points (of the seeded subset `reference_points_`), in input units: (N,) array. The score weighs it by
        `plane_weight`."""
        self._check_fitted()
        X = self._checked(X)
        return self._plane_distance_centered(X - self.center_)


class SurfaceFlow(ReferencePoints, OneFlow):
    """A surface through a 3D scan: an envelope `OneFlow` fit, then a surface fit of the same flow.

    The flow is first trained as OneFlow (the envelope, which rejects the points far outside), then refined on the
    points the envelope keeps so that the preimage of the latent sphere of radius R (the median latent radius of
    those points) passes through them (`pcflow.objectives.surface_loss`). That sphere's preimage is then a surface
    hugging a scanned object rather than a solid region around it. A point's outlyingness is its distance to that
    surface, to first order ``| ||f(x)|| - R | / ||grad_x ||f(x)|| ||`` in input units, times `surface_weight`, or
    its mean distance to the `n_neighbors` nearest other training points where that is smaller, combined (root of
    the sum of squares) with `plane_weight` times its distance to the plane through its `plane_neighbors` nearest
    other training points; the points beyond the (1 - alpha) quantile of the training points' outlyingness are
    outliers, inside the object as well as outside. Fits of genus 1 to 3 and from a shaped latent surface (`latent`)
    have no envelope stage: the latent surface is fitted to the points near their neighbours (`start_from_data`), the
    flow starts from the identity. The fit works in any dimension D >= 2 (the meshing, not the estimator, is 3D only).

    Args:
        alpha, flow, n_couplings, hidden_features, n_hidden_layers, epochs, batch_size, lr, patience, tol,
            n_volume_samples, normalize, dtype, device, random_state, progress: the envelope fit's, as `OneFlow`'s
            (`normalize`, `dtype`, `device`, `random_state` and `progress` hold for both stages).
        surface_steps: optimisation steps of the surface fit from the sphere; the most it runs.
        surface_patience: once the mean loss of a block of `surface_block` steps has not fallen below the best
            block's by the share `surface_tol` for this many blocks, the surface fit runs `surface_cooldown` more
            steps that bring its learning rate down to the lowest (a cosine from where it is) and ends; None runs all
            `surface_steps`.
        surface_tol: least relative improvement of a block's mean surface loss that counts.
        surface_lr: Adam learning rate of the surface fit (cosine-annealed to a twentieth).
        surface_batch_size: points per step of the surface fit.
        n_surface_samples: sphere points mapped back per step of the surface fit, spread evenly over the sphere in
            a random orientation (`pcflow.objectives.spread_unit_sphere`); the first `coarse_share` of
            `surface_steps` map half as many.
        n_neighbors: a point also counts as near the data when its `n_neighbors` nearest other training points are
            closer than the threshold (0: the distance to the surface alone decides).
        surface_weight: the factor on the distance to the surface in the outlyingness. Above 1 a stray point close
            to the surface but away from the data counts as farther out, while points in a dense part the surface
            misses (a thin part, a handle) are still inliers by their neighbour distance.
        neighbor_statistic: that distance is the ``'mean'`` of the distances to those neighbours (steadier in a
            thin or one-sided scan), or the distance to the ``'kth'``.
        plane_weight: the factor on the distance to the local plane of the data in the outlyingness: a stray point
            hovering near a surface, closer to the data than their spacing but off its plane (near a flat or thin
            part, where the surface fit passes close by), counts as farther out. 0: no plane term (for data that
            do not lie on a surface: in D dimensions the plane is a hyperplane, fitted through `plane_neighbors`
            points).
        plane_neighbors: nearest other training points the local plane is fitted through (at least 3).
        coarse_share: the share of `surface_steps` that shape the surface coarsely, with half of
            `n_surface_samples` (a quarter less time per step).
        radial_every: the surface loss's radial term only steers, and it is the one term that needs the forward
            pass: one step in this many takes it, at this many times its weight.
        surface_block: steps per entry of ``history_["surface_loss"]`` (and per `surface_patience` count).
        surface_cooldown: steps that bring the learning rate down to its lowest once the loss stops falling.
        n_reference_points: most training points kept for the neighbour distances (a seeded subset).
        genus: the genus of the surface, 0 to 3 (for an object with that many handles): the preimage of a shaped
            latent surface of that genus (`latent`), else of a torus or joined tori (`start_torus`); 3D only. Where
            neither fits, the surface is of genus 0.
        torus_steps: the most steps of a surface fit from fitted tori (genus 1 to 3), as `surface_steps`.
        latent: ``'sphere'`` (the tori for genus 1 to 3) or ``'shaped'`` (3D only; `start_from_data`): a closed
            surface of the fit's genus around the points, refined from the identity with no envelope stage in at
            most `shaped_steps` steps (the sphere or the tori where the points bound no such volume).

    Attributes:
        As `OneFlow`'s, with radius_ the latent radius of the surface, and offset_ = -distance_threshold_, plus:
        distance_threshold_: the (1 - alpha) quantile of the training points' outlyingness, in input units.
        reference_points_: up to `n_reference_points` training points (a seeded subset), minus center_.
        n_surface_steps_: steps of the surface fit run. history_ also holds ``surface_loss``, the mean loss of
            each block of `surface_block` steps.
        template_: the latent torus (`pcflow.latent.LatentTorus`), joined tori (`pcflow.latent.LatentTori`) or
            shaped surface (`pcflow.shaped.LatentGrid`) whose surface of size radius_ the surface is the preimage
            of, or None for the sphere; the latent radius is then their level. A shaped start runs no envelope
            epochs (n_iter_ 0).
    """

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        flow: str = "nice",
        n_couplings: int = 6,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        epochs: int = 100,
        batch_size: int = 1000,
        lr: float = 1e-3,
        patience: int | None = 10,
        tol: float = 1e-3,
        n_volume_samples: int = 256,
        surface_steps: int = 600,
        surface_patience: int | None = 4,
        surface_tol: float = 5e-3,
        surface_lr: float = 2e-3,
        surface_batch_size: int = 2048,
        n_surface_samples: int = 1024,
        n_neighbors: int = 8,
        surface_weight: float = SURFACE_WEIGHT,
        neighbor_statistic: str = "mean",
        plane_weight: float = PLANE_WEIGHT,
        plane_neighbors: int = PLANE_NEIGHBORS,
        coarse_share: float = 0.6,
        radial_every: int = 2,
        surface_block: int = 50,
        surface_cooldown: int = 100,
        n_reference_points: int = 20_000,
        genus: int = 0,
        latent: str = "sphere",
        torus_steps: int = 300,
        shaped_steps: int = 25,
        normalize: str = "standard",
        dtype: str = "float32",
        device: str = "cpu",
        random_state: int | None = None,
        progress: bool = False,
    ):
        super().__init__(alpha, flow=flow, n_couplings=n_couplings, hidden_features=hidden_features,
                         n_hidden_layers=n_hidden_layers, epochs=epochs, batch_size=batch_size, lr=lr,
                         patience=patience, tol=tol, n_volume_samples=n_volume_samples, normalize=normalize,
                         dtype=dtype, device=device, random_state=random_state, progress=progress)
        self.surface_steps = surface_steps
        self.surface_patience = surface_patience
        self.surface_tol = surface_tol
        self.surface_lr = surface_lr
        self.surface_batch_size = surface_batch_size
        self.n_surface_samples = n_surface_samples
        self.n_neighbors = n_neighbors
        self.surface_weight = surface_weight
        self.neighbor_statistic = neighbor_statistic
        self.plane_weight = plane_weight
        self.plane_neighbors = plane_neighbors
        self.coarse_share = coarse_share
        self.radial_every = radial_every
        self.surface_block = surface_block
        self.surface_cooldown = surface_cooldown
        self.n_reference_points = n_reference_points
        self.genus = genus
        self.latent = latent
        self.torus_steps = torus_steps
        self.shaped_steps = shaped_steps

    @property
    def objective(self) -> str:
        """``'surface'``, read-only."""
        return "surface"

    def _check_params(self) -> None:
        super()._check_params()
        check_choices(self, {"neighbor_statistic": NEIGHBOR_STATISTICS, "genus": GENERA, "latent": LATENTS})
        check_positive_int(self, ("surface_steps", "torus_steps", "shaped_steps", "surface_batch_size",
                                  "n_surface_samples", "radial_every", "surface_block", "surface_cooldown",
                                  "n_reference_points"))
        check_positive_int(self, ("n_neighbors",), allow_zero=True)
        check_number(self, ("surface_lr", "surface_weight"))
        check_number(self, ("plane_weight",), allow_zero=True)
        if not (isinstance(self.plane_neighbors, int) and not isinstance(self.plane_neighbors, bool)
                and self.plane_neighbors >= 3):
            raise PcflowError(f"plane_neighbors must be an integer >= 3, got {self.plane_neighbors!r}")
        check_positive_int(self, ("surface_patience",), allow_none=True)
        check_number(self, ("surface_tol",), allow_zero=True)
        if not (isinstance(self.coarse_share, (int, float)) and 0 <= self.coarse_share <= 1):
            raise PcflowError(f"coarse_share must be a number in [0, 1], got {self.coarse_share!r}")

    def coarse_surface_samples(self) -> int:
        """Sphere points mapped per step in the surface fit's first `coarse_share` of steps: half of
        `n_surface_samples`."""
        return max(1, self.n_surface_samples // 2)

    def fit(self, X, y=None, *, surface_check=None) -> "SurfaceFlow":
        """Trains the envelope, then the surface, on X; sets the distance threshold. `y` is ignored. Returns self.

        X and the data-parallel training are as for `OneFlow.fit`. `surface_check`: a callable given the model once,
        after the first `SURFACE_CHECK_STEPS` steps of the surface fit, with `radius_`, `reference_points_` and
        `inverse_transform` usable; an exception it raises ends the fit (it propagates, and the model is left
        unfitted), so that a fit going nowhere costs no more steps.
        """
        self.template_ = None
        X, data, parallel, generator = self._fit_flow(X)  # a fit of genus > 0 checks for 3-D points there
        alpha = check_alpha(self.alpha)
        inliers = self.__dict__.pop("_start_inliers", None)  # where `_train` skipped the envelope stage
        radius = GRID_SIZE if isinstance(self.template_, LatentGrid) else None
        if self.genus > 0 and radius is None:
            radius = start_torus(self, data[inliers], parallel)
            if radius is None:  # no torus fits: the sphere, which starts from the envelope
                super()._train(data, generator, parallel)
                inliers = None
        if inliers is None:
            inliers, radius = envelope_inliers(self, data, parallel)
        self.radius_ = radius
        reference = parallel.gather(X - self.center_)
        if len(reference) > self.n_reference_points:
            rows = np.random.default_rng(self.seed_).choice(len(reference), self.n_reference_points, replace=False)
            reference = reference[np.sort(rows)]
        self.reference_points_ = reference
        self._tree = None
        self.history_["surface_loss"] = []
        fitted = False
        try:
            train_surface(self, data[inliers], radius, generator, parallel, surface_check)
            fitted = True
        finally:
            if not fitted:
                del self.flow_  # a fit cut short leaves no half-trained model behind
        outlying = np.sort(parallel.gather(self._outlying(data, X - self.center_)))
        self.distance_threshold_ = float(np.quantile(outlying, 1.0 - alpha))
        self.offset_ = -self.distance_threshold_
        self._outlying_grid = outlying[self._set_region(data, parallel)]
        return self

    def _train(self, data: torch.Tensor, generator: torch.Generator, parallel: SingleProcess) -> None:
        """The envelope stage, or none where the surface fit starts from the data (`start_from_data`)."""
        if not ((self.genus > 0 or self.latent == "shaped") and start_from_data(self, data, parallel)):
            super()._train(data, generator, parallel)

    def _set_threshold(self, radii: np.ndarray) -> None:
        """Nothing: the surface's radius and distance threshold are set by `fit`."""

    def _level(self, z: torch.Tensor) -> torch.Tensor:
        """The latent radius, or the level of the latent tori (`template_`)."""
        return z.norm(dim=1) if self.template_ is None else self.template_.level(z)

    # ----------------------------------------------------------------------------------------------------------
    # scoring

    def _outlying(self, data: torch.Tensor, centered: np.ndarray, neighbor: np.ndarray | None = None,
                  plane: np.ndarray | None = None) -> np.ndarray:
        """The outlyingness: `surface_weight` times the distance to the surface, or the distance to the data if that
        is smaller, combined with the weighted distance to the local plane (`neighbor`, `plane`: those distances, if
        already found)."""
        distance = self.surface_weight * self._distance_normalized(data)
        if self.n_neighbors > 0:
            if neighbor is None:
                neighbor = self._neighbor_distance_centered(centered)
            distance = np.minimum(distance, neighbor)
        return np.hypot(distance, self._plane_term(centered) if plane is None else plane)

    def score_samples(self, X) -> np.ndarray:
        """Minus the outlyingness of each row of X: (N,) array, higher for more normal points.

        The outlyingness is `surface_weight` times the distance to the surface (`surface_distance`), or the distance
        to the data (`neighbor_distance`) where that is smaller, so that a point in a dense part of the cloud the
        surface does not reach (a handle, a thin part) is not called an outlier; combined, as the root of the sum of
        squares, with `plane_weight` times the distance to the plane through the `plane_neighbors` nearest
        training points.
        """
        X = self._checked(X)
        return -self._outlying(self._normalized_tensor(X), X - self.center_)

    def predict(self, X) -> np.ndarray:
        """+1 for inliers (decision_function >= 0), -1 for outliers: (N,) int array.

        The distances to the data and to its local plane are found first: where they alone put a point inside, so
        does the smaller of the first and the distance to the surface, whose gradient pass then runs only for the
        other points (about the share alpha of a scan).
        """
        if self.n_neighbors == 0:
            return super().predict(X)
        X = self._checked(X)
        centered = X - self.center_
        neighbor = self._neighbor_distance_centered(centered)
        plane = self._plane_term(centered)
        labels = np.ones(len(X), dtype=int)
        # outlying <= hypot(neighbor, plane): the points that bound puts inside are inliers already
        rest = np.flatnonzero(-np.hypot(neighbor, plane) - self.offset_ < 0)
        if len(rest):
            outlying = self._outlying(self._normalized_tensor(X[rest]), centered[rest], neighbor[rest], plane[rest])
            labels[rest] = np.where(-outlying - self.offset_ >= 0, 1, -1)
        return labels

    def threshold_at(self, coverage: float) -> float:
        """The outlyingness (minus `score_samples`) below which lie a share `coverage` of the training points."""
        return float(np.interp(self._coverage(coverage), self._coverage_grid, self._outlying_grid))

    # ----------------------------------------------------------------------------------------------------------
    # persistence

    def _extra_state(self) -> dict:
        state = {"reference": torch.as_tensor(self.reference_points_),
                 "outlying_grid": torch.as_tensor(self._outlying_grid), "n_surface_steps": self.n_surface_steps_}
        if self.template_ is not None:
            state["template"] = torch.as_tensor(self.template_.to_array())
            if isinstance(self.template_, LatentGrid):  # float32 numbers (`fit_grid`'s): kept exactly
                state.update(template=state["template"].float(), template_kind="grid",
                             template_genus=self.template_.genus)
        return state

    @classmethod
    def _legacy_params(cls, params: dict) -> dict:
        # files from before surface_weight, neighbor_statistic and plane_weight keep the score they were thresholded
        # with (a format-1 file holds none of them)
        return {"surface_weight": 1.0, "neighbor_statistic": "kth", "plane_weight": 0.0, "genus": 0, "latent": "sphere",
                **params}

    def _load_extra(self, state: dict) -> None:
        self.distance_threshold_ = -self.offset_
        self.reference_points_ = state["reference"].numpy()
        self._outlying_grid = state["outlying_grid"].numpy()
        self._tree = None
        self.n_surface_steps_ = int(state.get("n_surface_steps", self.surface_steps))  # older files ran them all
        template = state.get("template")
        if template is None:
            self.template_ = None
        elif state.get("template_kind") == "grid":
            self.template_ = LatentGrid.from_array(template.double().numpy(), state.get("template_genus", 0))
        else:
            self.template_ = template_from_array(template.numpy())
