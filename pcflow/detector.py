"""The OneFlow estimator: a scikit-learn style one-class detector whose region is the preimage of a latent ball."""

from __future__ import annotations

import inspect
import logging
import math
import pickle
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.utils.validation import validate_data

from .errors import NotFittedError, PcflowError
from .flows import AdditiveCoupling, AffineCoupling, Flow, build_flow
from .distributed import SingleProcess, group
from .optim import CosineSchedule, adam
from .objectives import RADIAL_WEIGHT, Objective, log_unit_ball_volume, sample_unit_ball, spread_unit_sphere
from .quantile import check_alpha

#: Architectures of the paper: 2D experiments (4 couplings, hidden 16) and tabular experiments (hidden 256).
PAPER_2D = {"n_couplings": 4, "hidden_features": 16, "batch_size": 1000, "lr": 1e-3}
PAPER_TABULAR = {"n_couplings": 4, "hidden_features": 256, "batch_size": 1000, "lr": 1e-3}

FLOWS = {"nice": AdditiveCoupling, "general": AffineCoupling}
OBJECTIVES = ("volume", "likelihood", "surface")
NORMALIZATIONS = ("standard", "isotropic", "none")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

# what torch.load raises on a file that is not a torch archive of plain values
_UNREADABLE = (pickle.UnpicklingError, struct.error, RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError,
               TypeError)

_FORMAT = "pcflow.OneFlow"
_FORMAT_VERSION = 1
_CHUNK = 65_536  # rows per forward pass on an accelerator, and per k-d tree query
#: rows per forward pass on the CPU, where passes run side by side, one per thread (`_each_chunk`): about 5% more
#: points per second than 4,096-row passes for the surface model
_CPU_CHUNK = 8_192
_GRADIENT_CHUNK = 8_192  # rows per backward pass of the surface distance: its saved activations bound the memory
_COVERAGE_GRID = 10_001
_SURFACE_BLOCK = 50  # steps of the surface fit per entry of history_["surface_loss"] (and per patience count)
_SURFACE_COOLDOWN = 100  # steps that bring the learning rate down to its lowest once the surface loss stops falling
_STAGE_NAMES = {"volume": "envelope fit", "likelihood": "likelihood fit"}  # first fit stage, in progress and logs
_log = logging.getLogger(__name__)
#: The surface loss's radial term only steers, and it is the one term that needs the forward pass: one step of the
#: surface fit in this many takes it, at this many times its weight.
RADIAL_EVERY = 2
#: The first steps of the surface fit, this share of `surface_steps`, shape the surface coarsely: they map half of
#: `n_surface_samples` sphere points (a quarter less time per step), the finer steps after them all of them.
COARSE_SHARE = 0.6
_REFERENCE_POINTS = 20_000

#: `OneFlow`'s default `surface_weight`; models saved without one (older files) score with 1.
SURFACE_WEIGHT = 2.0

#: How the surface objective's outlyingness measures the distance to the data: ``'mean'`` of the distances to the
#: `n_neighbors` nearest other training points (`OneFlow`'s default), or the ``'kth'`` (models saved without one).
NEIGHBOR_STATISTICS = ("mean", "kth")

#: `OneFlow.fit` calls its `surface_check` after this many steps of the surface fit.
SURFACE_CHECK_STEPS = 100

_THREADS = threading.Lock()  # one chunk-parallel pass at a time changes torch's thread count


def _each_chunk(work, starts: range, cpu: bool) -> None:
    """Calls `work(start)` for every start of `starts`.

    On the CPU, with torch set to several threads, the calls run in that many Python threads while torch runs each
    operation on one thread (its count is restored afterwards): a pass of a few thousand rows is a chain of small
    operations that torch's own threads would split and then wait on, where whole chunks side by side keep every
    core busy (about 1.15 times the points per second on two cores). torch's thread count is process-wide: other
    threads running torch meanwhile run on one thread too. `work` must set its own grad mode, which is per thread.
    """
    n_threads = torch.get_num_threads()
    if not cpu or n_threads < 2 or len(starts) < 2:
        for start in starts:
            work(start)
        return
    with _THREADS:
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(n_threads) as pool:
                for _ in pool.map(work, starts):  # re-raises the first error of a worker
                    pass
        finally:
            torch.set_num_threads(n_threads)


def _equal(value, default) -> bool:
    """Whether a parameter's value equals its default (False where they do not compare to one truth value)."""
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


class OneFlow(OutlierMixin, TransformerMixin, BaseEstimator):
    """One-class normalizing flow (OneFlow, Maziarka et al.): the smallest-volume region holding 1 - alpha of the data.

    A flow f is trained so that the latent ball B(0, R) holds a share 1 - alpha of the training points while the
    volume of its preimage f^-1(B(0, R)) is minimal. R is the Bernstein estimate of the (1 - alpha) quantile of
    ||f(x)|| over each batch. With ``objective='likelihood'`` the same flow is trained by maximum likelihood under a
    standard normal latent instead (the paper's LL-Flow baseline). After training, the region's radius is the
    (1 - alpha) quantile of the latent radii of the training set, and a point's score is minus its latent radius.

    With ``objective='surface'`` the flow is first trained as OneFlow (the envelope, which rejects the points far
    outside), then refined on the points the envelope keeps so that the preimage of the latent sphere of radius R (the
    median latent radius of those points) passes through them (`pcflow.objectives.surface_loss`). That sphere's
    preimage is then a surface hugging a scanned object rather than a solid region around it. A point's outlyingness is
    its distance to that surface, to first order ``| ||f(x)|| - R | / ||grad_x ||f(x)|| ||`` in input units, times
    `surface_weight`, or its mean distance to the `n_neighbors` nearest other training points where that is smaller;
    the points beyond the (1 - alpha) quantile of the training points' outlyingness are outliers, inside the object as
    well as outside.

    Args:
        alpha: share of the training data left outside the region, 0 < alpha < 1.
        flow: ``'nice'`` (additive couplings and a diagonal scaling: constant Jacobian, closed-form volume) or
            ``'general'`` (affine couplings: the paper's OneFlow-Gen, Monte-Carlo volume).
        objective: ``'volume'`` (OneFlow), ``'likelihood'`` (LL-Flow) or ``'surface'`` (OneFlow, then the surface fit).
        n_couplings: number of coupling layers.
        hidden_features: width of the hidden layers of each coupling network.
        n_hidden_layers: number of hidden layers of each coupling network.
        epochs: maximum number of passes over the training data.
        batch_size: points per optimisation step (the Bernstein estimate uses the whole batch).
        lr: Adam learning rate (cosine-annealed to a tenth over the epochs).
        patience: stop when the epoch loss has not improved by `tol` for this many epochs; None trains all epochs.
        tol: least improvement of the epoch loss that counts, in loss units (log volume or nats per point).
        n_volume_samples: Monte-Carlo samples per step for the volume of a general flow.
        surface_steps: optimisation steps of the surface fit (surface objective); the most it runs.
        surface_patience: once the mean loss of a block of 50 steps has not fallen below the best block's by the
            share `surface_tol` for this many blocks, the surface fit runs 100 more steps that bring its learning
            rate down to the lowest (a cosine from where it is) and ends; None runs all `surface_steps`.
        surface_tol: least relative improvement of a block's mean surface loss that counts.
        surface_lr: Adam learning rate of the surface fit (cosine-annealed to a twentieth).
        surface_batch_size: points per step of the surface fit.
        n_surface_samples: sphere points mapped back per step of the surface fit, spread evenly over the sphere
            in a random orientation (`pcflow.objectives.spread_unit_sphere`); the first `COARSE_SHARE` of
            `surface_steps` map half as many.
        n_neighbors: surface objective: a point also counts as near the data when its `n_neighbors` nearest other
            training points are closer than the threshold (0: the distance to the surface alone decides).
        neighbor_statistic: surface objective: that distance is the ``'mean'`` of the distances to those
            neighbours (steadier in a thin or one-sided scan), or the distance to the ``'kth'``.
        surface_weight: surface objective: the factor on the distance to the surface in the outlyingness. Above 1 a
            stray point close to the surface but away from the data counts as farther out, while points in a dense
            part the surface misses (a thin part, a handle) are still inliers by their neighbour distance.
        normalize: ``'standard'`` (per-feature mean and standard deviation), ``'isotropic'`` (mean and one common
            scale, which keeps shapes undistorted: the choice for 3D clouds) or ``'none'``.
        dtype: ``'float32'`` (fast) or ``'float64'``.
        device: torch device to train and score on, e.g. ``'cpu'``, ``'cuda'``; ``'auto'`` takes a GPU if present.
        random_state: seed for initialisation, shuffling and Monte-Carlo samples: an int, a numpy ``RandomState`` or
            ``Generator`` (a seed is drawn from it) or None (one is drawn); the seed used is kept in `seed_`.
        progress: show a progress bar (tqdm) over the epochs.

    Attributes:
        flow_: the trained `Flow`, acting on normalised inputs.
        center_, scale_: (D,) float64 arrays; normalised x = (x - center_) / scale_.
        radius_: latent radius of the region (surface objective: of the surface).
        offset_: threshold of `score_samples`, so that ``decision_function = score_samples - offset_``: -radius_, or
            minus the distance threshold of the surface objective.
        distance_threshold_: surface objective only: the (1 - alpha) quantile of the training points' outlyingness
            (see `score_samples`), in input units.
        reference_points_: surface objective only: up to 20,000 training points (a seeded subset), minus center_.
        volume_, volume_stderr_: region volume in input units and its Monte-Carlo standard error (0 when exact).
        constant_jacobian_: whether the region volume is in closed form.
        history_: dict of per-epoch lists ``loss``, ``radius`` (mean Bernstein radius, volume objective) and ``lr``;
            the surface objective adds ``surface_loss``, the mean loss of each block of 50 steps.
        n_iter_: epochs run. n_surface_steps_: surface objective only: steps of the surface fit run.
        n_features_in_: D. n_samples_fit_: N. seed_: the seed used. feature_names_in_: the column names, when fit
            was given a data frame with string column names (not kept by `save`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2))
        >>> model = OneFlow(alpha=0.1, epochs=5, random_state=0).fit(X)
        >>> labels = model.predict(X)
        >>> print(f"{(labels == 1).mean():.2f}")
        0.90
    """

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        flow: str = "nice",
        objective: str = "volume",
        n_couplings: int = 6,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        epochs: int = 100,
        batch_size: int = 1000,
        lr: float = 1e-3,
        patience: int | None = 10,
        tol: float = 1e-3,
        n_volume_samples: int = 256,
        surface_steps: int = 1000,
        surface_patience: int | None = 4,
        surface_tol: float = 5e-3,
        surface_lr: float = 2e-3,
        surface_batch_size: int = 2048,
        n_surface_samples: int = 1024,
        n_neighbors: int = 8,
        surface_weight: float = SURFACE_WEIGHT,
        neighbor_statistic: str = "mean",
        normalize: str = "standard",
        dtype: str = "float32",
        device: str = "cpu",
        random_state: int | None = None,
        progress: bool = False,
    ):
        self.alpha = alpha
        self.flow = flow
        self.objective = objective
        self.n_couplings = n_couplings
        self.hidden_features = hidden_features
        self.n_hidden_layers = n_hidden_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.tol = tol
        self.n_volume_samples = n_volume_samples
        self.surface_steps = surface_steps
        self.surface_patience = surface_patience
        self.surface_tol = surface_tol
        self.surface_lr = surface_lr
        self.surface_batch_size = surface_batch_size
        self.n_surface_samples = n_surface_samples
        self.n_neighbors = n_neighbors
        self.surface_weight = surface_weight
        self.neighbor_statistic = neighbor_statistic
        self.normalize = normalize
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # ----------------------------------------------------------------------------------------------------------
    # scikit-learn plumbing: get_params, the tags (an outlier detector, and a transformer to latent coordinates) and
    # fit_transform come from BaseEstimator, OutlierMixin and TransformerMixin

    def set_params(self, **params) -> "OneFlow":
        """Sets constructor parameters, as scikit-learn's `set_params`; an unknown name raises `PcflowError`."""
        names = self._get_param_names()
        for key in params:
            if key not in names:
                raise PcflowError(f"unknown parameter {key!r} for OneFlow; expected one of {', '.join(names)}")
        return super().set_params(**params)

    def __repr__(self) -> str:
        """The parameters that differ from their defaults, in the constructor's order."""
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        params = self.get_params(deep=False)
        changed = [f"{k}={params[k]!r}" for k in defaults if k in params and not _equal(params[k], defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ----------------------------------------------------------------------------------------------------------
    # checks

    def _check_params(self) -> None:
        check_alpha(self.alpha)
        choices = {"flow": tuple(FLOWS), "objective": OBJECTIVES, "normalize": NORMALIZATIONS, "dtype": tuple(DTYPES),
                   "neighbor_statistic": NEIGHBOR_STATISTICS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise PcflowError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "n_couplings", "hidden_features", "n_volume_samples", "surface_steps",
                     "surface_batch_size", "n_surface_samples"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise PcflowError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 0:
            raise PcflowError(f"n_neighbors must be a non-negative integer, got {self.n_neighbors!r}")
        for name in ("lr", "surface_lr", "surface_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise PcflowError(f"{name} must be a positive number, got {value!r}")
        for name in ("patience", "surface_patience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise PcflowError(f"{name} must be a positive integer or None, got {value!r}")
        for name in ("tol", "surface_tol"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise PcflowError(f"{name} must be a non-negative number, got {value!r}")

    def _draw_seed(self) -> int:
        state = self.random_state
        if state is None:
            return int(np.random.SeedSequence().entropy % 2**31)
        if isinstance(state, np.random.RandomState):
            return int(state.randint(2**31))
        if isinstance(state, np.random.Generator):
            return int(state.integers(2**31))
        if isinstance(state, (int, np.integer)):
            return int(state)
        raise PcflowError(f"random_state must be an int, a numpy RandomState or Generator, or None, got {state!r}")

    def min_samples(self) -> int:
        """Fewest training points this configuration accepts: enough for the (1 - alpha) quantile to be interior."""
        return max(10, math.ceil(2.0 / check_alpha(self.alpha)))

    def coarse_surface_samples(self) -> int:
        """Sphere points mapped per step in the surface fit's first `COARSE_SHARE` of steps: half of
        `n_surface_samples`."""
        return max(1, self.n_surface_samples // 2)

    def _check_X(self, X, *, fitting: bool) -> np.ndarray:
        """X as an (N, D) float64 array, checked as scikit-learn checks it (`validate_data`, which also sets or checks
        `n_features_in_` and `feature_names_in_`), with one-line messages. Point cloud and mesh objects and paths are
        taken first (`pcflow.interop.cloud_points`)."""
        from .interop import cloud_points

        points = cloud_points(X)
        if points is not None:
            X = points
        if isinstance(X, np.ndarray) and X.dtype.kind in "US":
            raise PcflowError(f"X must be a numeric array of shape (n_samples, n_features); it holds non-numeric "
                              f"values (dtype {X.dtype})")
        try:
            shape = np.shape(X)
        except (TypeError, ValueError):  # a ragged list, an array-like numpy cannot look into: validate_data tells
            shape = None
        if shape is not None and len(shape) != 2:
            raise PcflowError(
                f"X must be a 2-D array of shape (n_samples, n_features), got shape {shape}. Reshape your data with "
                "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
            )
        try:
            array = validate_data(self, X, reset=fitting, dtype=np.float64, ensure_all_finite=False)
        except ValueError as error:
            lines = str(error).splitlines()
            raise PcflowError(lines[0] if lines else f"X is not a valid input array: {error!r}") from None
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            raise PcflowError(f"X contains NaN or infinity in {int(bad.sum())} rows; drop or impute them first")
        if fitting:
            n, dim = array.shape
            if dim < 2:
                raise PcflowError(f"OneFlow needs at least 2 features, got {dim} feature(s)")
            if n < self.min_samples():
                got = "1 sample" if n == 1 else f"{n} samples"
                raise PcflowError(f"OneFlow with alpha={self.alpha} needs at least {self.min_samples()} samples, "
                                  f"got {got}")
        return array

    def _check_fitted(self) -> None:
        if not hasattr(self, "flow_"):
            raise NotFittedError("this OneFlow instance is not fitted yet; call fit(X) first")

    @property
    def _torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def _build_flow(self, dim: int) -> Flow:
        return build_flow(
            dim,
            coupling=FLOWS[self.flow],
            n_couplings=self.n_couplings,
            hidden_features=self.hidden_features,
            n_hidden_layers=self.n_hidden_layers,
        )

    def _resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise PcflowError(f"device must be a torch device such as 'cpu' or 'cuda', got {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise PcflowError("device 'cuda' was asked for, but torch sees no CUDA GPU on this machine")
        return device

    # ----------------------------------------------------------------------------------------------------------
    # fitting

    def _normalization(self, X: np.ndarray, parallel: SingleProcess) -> tuple[np.ndarray, np.ndarray]:
        n = parallel.sum(np.array([len(X)]))[0]
        center = parallel.sum(X.sum(axis=0)) / n
        std = np.sqrt(parallel.sum(((X - center) ** 2).sum(axis=0)) / n)
        if not np.any(std > 0):
            raise PcflowError("all points are identical: there is no spread to learn a region from")
        if self.normalize == "none":
            return np.zeros(X.shape[1]), np.ones(X.shape[1])
        if self.normalize == "isotropic":
            return center, np.full(X.shape[1], math.sqrt(float(np.mean(std**2))))
        constant = np.flatnonzero(std == 0)
        if constant.size:
            raise PcflowError(
                f"features {constant.tolist()} are constant (zero variance); drop them or use normalize='isotropic'"
            )
        return center, std

    def fit(self, X, y=None, *, surface_check=None) -> "OneFlow":
        """Trains the flow on X and sets the region. `y` is ignored. Returns self.

        X is an (N, D) array-like (scikit-learn's input checks apply; D >= 2), or a point cloud or mesh object or
        file that `pcflow.interop.cloud_points` takes (an Open3D or trimesh cloud, a pcflow `PointCloud`, a path);
        so is the X of the scoring and mapping methods.

        Inside an initialised torch.distributed process group with several ranks, each rank passes its own shard
        of the training data and training is data-parallel (see `pcflow.distributed`); every rank gets the same
        model. Pass the same `random_state` on every rank.

        `surface_check` (surface objective): a callable given the model once, after the first `SURFACE_CHECK_STEPS`
        steps of the surface fit, with `radius_`, `reference_points_` and `inverse_transform` usable; an exception it
        raises ends the fit (it propagates), so that a fit going nowhere costs no more steps.
        """
        self._check_params()
        X = self._check_X(X, fitting=True)
        parallel = group()
        seed = self._draw_seed()
        seed = int(parallel.sum(np.array([seed if parallel.rank == 0 else 0]))[0])  # rank 0's seed everywhere
        device = self._resolve_device()
        dtype = self._torch_dtype

        center, scale = self._normalization(X, parallel)
        data = torch.as_tensor((X - center) / scale, dtype=dtype, device=device)
        n, dim = data.shape

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            flow = self._build_flow(dim).to(device=device, dtype=dtype)

        self.flow_ = flow
        self.center_, self.scale_ = center, scale
        self.n_features_in_, self.seed_ = dim, seed
        self.constant_jacobian_ = flow.constant_jacobian
        self.history_ = {"loss": [], "radius": [], "lr": [], "time": []}
        generator = torch.Generator().manual_seed(seed + parallel.rank)
        alpha = check_alpha(self.alpha)
        self._train(data, generator, parallel)

        if self.objective == "surface":
            local = self._latent_radius_normalized(data)
            radii = parallel.gather(local)
            envelope = float(np.quantile(radii, 1.0 - alpha))
            self.radius_ = radius = float(np.median(radii[radii <= envelope]))
            reference = parallel.gather(X - center)
            if len(reference) > _REFERENCE_POINTS:
                rows = np.random.default_rng(seed).choice(len(reference), _REFERENCE_POINTS, replace=False)
                reference = reference[np.sort(rows)]
            self.reference_points_ = reference
            self._tree = None
            self.history_["surface_loss"] = []
            try:
                self._train_surface(data[torch.as_tensor(local <= envelope, device=data.device)], radius, generator,
                                    parallel, surface_check)
            except BaseException:
                del self.flow_  # a fit cut short leaves no half-trained model behind
                raise
            outlying = np.sort(parallel.gather(self._outlying(data, X - center)))
            self.distance_threshold_ = float(np.quantile(outlying, 1.0 - alpha))
            self.offset_ = -self.distance_threshold_
        radii = np.sort(parallel.gather(self._latent_radius_normalized(data)))
        n = self.n_samples_fit_ = len(radii)
        if self.objective != "surface":
            self.radius_ = float(np.quantile(radii, 1.0 - alpha))
            self.offset_ = -self.radius_
        grid = np.round(np.linspace(0, n - 1, min(n, _COVERAGE_GRID))).astype(np.int64)
        self._coverage_grid = grid / max(n - 1, 1)
        self._radius_grid = radii[grid]
        if self.objective == "surface":
            self._outlying_grid = outlying[grid]
        self.volume_, self.volume_stderr_ = self.region_volume()
        return self

    def _train(self, data: torch.Tensor, generator: torch.Generator, parallel: SingleProcess) -> None:
        from tqdm.auto import tqdm

        n, dim = data.shape
        n_batches = parallel.min(max(1, n // min(self.batch_size, n)))  # every rank takes the same number of steps
        first_stage = "volume" if self.objective == "surface" else self.objective
        objective = parallel.wrap(Objective(self.flow_, first_stage, check_alpha(self.alpha)))
        optimizer = adam(self.flow_.parameters(), lr=self.lr)
        scheduler = CosineSchedule(optimizer, self.epochs, eta_min=0.1 * self.lr)
        needs_ball = first_stage == "volume" and not self.flow_.constant_jacobian
        best, stale = math.inf, 0
        start = time.perf_counter()
        show = self.progress and parallel.rank == 0
        stage = _STAGE_NAMES[first_stage]
        epochs = tqdm(range(self.epochs), desc=stage, unit="epoch", disable=not show, leave=False)
        self.flow_.train()
        for epoch in epochs:
            order = torch.randperm(n, generator=generator).to(data.device)
            losses, radii = [], []
            for batch in torch.tensor_split(order, n_batches):
                ball = (
                    sample_unit_ball(self.n_volume_samples, dim, generator=generator, dtype=data.dtype,
                                     device=data.device)
                    if needs_ball
                    else None
                )
                loss, radius = objective(data[batch], ball)
                if not torch.isfinite(loss):
                    raise PcflowError(
                        f"training diverged at epoch {epoch + 1} (loss {loss.item()}); try a smaller lr or dtype='float64'"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                radii.append(radius.item())
            # the epoch's mean loss and radius over all ranks, so that every rank stops at the same epoch
            epoch_loss, epoch_radius = parallel.sum(np.array([np.mean(losses), np.mean(radii)])) / parallel.world_size
            self.history_["loss"].append(float(epoch_loss))
            self.history_["radius"].append(float(epoch_radius))
            self.history_["lr"].append(optimizer.param_groups[0]["lr"])
            self.history_["time"].append(time.perf_counter() - start)
            scheduler.step()
            epochs.set_postfix(loss=f"{epoch_loss:.4f}")
            self.n_iter_ = epoch + 1
            if epoch_loss < best - self.tol:
                best, stale = epoch_loss, 0
            else:
                stale += 1
                if self.patience is not None and stale >= self.patience:
                    break
        self.flow_.eval()
        _log.info("%s: %d epochs, %.2f s", stage, self.n_iter_, time.perf_counter() - start)

    def _train_surface(self, data: torch.Tensor, radius: float, generator: torch.Generator,
                       parallel: SingleProcess, check=None) -> None:
        """Refines the flow so that f^-1 of the sphere of `radius` passes through the (normalised) points `data`;
        calls `check(self)` after `SURFACE_CHECK_STEPS` steps."""
        from tqdm.auto import tqdm

        n, dim = data.shape
        batch = min(self.surface_batch_size, n)
        objective = parallel.wrap(Objective(self.flow_, "surface", check_alpha(self.alpha), radius=radius))
        optimizer = adam(self.flow_.parameters(), lr=self.surface_lr)
        lowest_lr = 0.05 * self.surface_lr
        scheduler = CosineSchedule(optimizer, self.surface_steps, eta_min=lowest_lr)
        show = self.progress and parallel.rank == 0
        start = time.perf_counter()
        steps = tqdm(range(self.surface_steps), desc="surface fit", unit="step", disable=not show, leave=False)
        coarse_steps = int(COARSE_SHARE * self.surface_steps)
        losses, best, stale = [], math.inf, 0
        cooling = None  # (first step, learning rate) of the last steps, once the loss has stopped falling
        self.flow_.train()
        for step in steps:
            rows = torch.randint(n, (batch,), generator=generator).to(data.device)
            n_sphere = self.coarse_surface_samples() if step < coarse_steps else self.n_surface_samples
            directions = spread_unit_sphere(n_sphere, dim, generator=generator, dtype=data.dtype, device=data.device)
            radial_weight = RADIAL_EVERY * RADIAL_WEIGHT if step % RADIAL_EVERY == 0 else 0.0
            loss, _ = objective(data[rows], directions, radial_weight=radial_weight)
            if not torch.isfinite(loss):
                raise PcflowError(f"the surface fit diverged at step {step + 1}; try a smaller surface_lr")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.flow_.parameters(), 1.0)
            optimizer.step()
            if cooling is None:
                scheduler.step()
            else:  # the rest of a cosine schedule, from this learning rate to the lowest, over the last steps
                done = min(1.0, (step + 1 - cooling[0]) / _SURFACE_COOLDOWN)
                for group in optimizer.param_groups:
                    group["lr"] = lowest_lr + (cooling[1] - lowest_lr) * 0.5 * (1.0 + math.cos(math.pi * done))
            losses.append(loss.item())
            if check is not None and step == SURFACE_CHECK_STEPS - 1:
                self.flow_.eval()
                check(self)
                self.flow_.train()
            if len(losses) == _SURFACE_BLOCK or step == self.surface_steps - 1:
                # the block's mean loss over all ranks, so that every rank stops at the same step
                block = float(parallel.sum(np.array([np.mean(losses)]))[0] / parallel.world_size)
                self.history_["surface_loss"].append(block)
                steps.set_postfix(loss=f"{block:.4f}")
                losses = []
                if block < best * (1.0 - self.surface_tol):
                    best, stale = block, 0
                else:
                    stale += 1
                    if cooling is None and self.surface_patience is not None and stale >= self.surface_patience:
                        cooling = (step + 1, optimizer.param_groups[0]["lr"])
            if cooling is not None and step + 1 - cooling[0] >= _SURFACE_COOLDOWN:
                break
        self.n_surface_steps_ = step + 1  # surface_steps >= 1, so the loop ran
        self.flow_.eval()
        _log.info("surface fit: %d steps, %.2f s", self.n_surface_steps_, time.perf_counter() - start)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fits on X and returns its labels: +1 inside the region, -1 outside (a file is read once)."""
        from .interop import cloud_points

        points = cloud_points(X)
        X = X if points is None else points
        return self.fit(X).predict(X)

    # ----------------------------------------------------------------------------------------------------------
    # mapping and scoring

    def _rows_per_pass(self) -> int:
        return _CPU_CHUNK if self._on_cpu() else _CHUNK

    def _on_cpu(self) -> bool:
        return next(self.flow_.parameters()).device.type == "cpu"

    def _map(self, data, function, shape: tuple | None = None) -> np.ndarray:
        """`function` of `data` ((N, D) array or tensor) without gradient, a pass per row chunk (side by side on the
        CPU, see `_each_chunk`), as a float64 array of `shape` (default: data's)."""
        param = next(self.flow_.parameters())
        out = np.empty(data.shape if shape is None else shape)
        rows = self._rows_per_pass()

        def work(start: int) -> None:
            with torch.no_grad():
                chunk = torch.as_tensor(data[start:start + rows], dtype=param.dtype, device=param.device)
                out[start:start + rows] = function(chunk).double().cpu().numpy()

        _each_chunk(work, range(0, data.shape[0], rows), self._on_cpu())
        return out

    def _latent_radius_normalized(self, data: torch.Tensor) -> np.ndarray:
        return self._map(data, lambda x: self.flow_(x)[0].norm(dim=1), shape=data.shape[:1])

    def _checked(self, X) -> np.ndarray:
        """X as a float64 array after the fitted-model and input checks."""
        self._check_fitted()
        return self._check_X(X, fitting=False)

    def _normalized_tensor(self, X: np.ndarray) -> torch.Tensor:
        """(X - center_) / scale_ as a tensor of the flow's dtype on its device."""
        param = next(self.flow_.parameters())
        return torch.as_tensor((X - self.center_) / self.scale_, dtype=param.dtype, device=param.device)

    def _distance_normalized(self, data: torch.Tensor) -> np.ndarray:
        """First-order distance | ||f(x)|| - R | / ||grad_x ||f(x)|| || to the surface, in input units."""
        scale = torch.as_tensor(self.scale_, dtype=data.dtype, device=data.device)
        out = []
        with torch.enable_grad():
            for start in range(0, data.shape[0], _GRADIENT_CHUNK):
                x = data[start:start + _GRADIENT_CHUNK].detach().requires_grad_(True)
                radius = self.flow_(x)[0].norm(dim=1)
                (gradient,) = torch.autograd.grad(radius.sum(), x)
                # d/d(input) = d/d(normalised) / scale, coordinate by coordinate
                slope = (gradient / scale).norm(dim=1).clamp_min(1e-30)
                out.append(((radius - self.radius_).abs() / slope).detach().double().cpu().numpy())
        return np.concatenate(out) if out else np.empty(0)

    def _neighbor_distance_centered(self, centered: np.ndarray, k: int | None = None,
                                    statistic: str | None = None) -> np.ndarray:
        """Distance from each row (input units, minus center_) to its k (default n_neighbors) nearest other reference
        points: the k-th's (``'kth'``) or their mean (``'mean'``; default the model's `neighbor_statistic`)."""
        from scipy.spatial import cKDTree

        if getattr(self, "_tree", None) is None:
            self._tree = cKDTree(self.reference_points_)
        k = min(self.n_neighbors if k is None else k, len(self.reference_points_) - 1)
        statistic = self.neighbor_statistic if statistic is None else statistic
        out = np.empty(len(centered))
        for start in range(0, len(centered), _CHUNK):  # chunks bound the (chunk, k + 1) answers
            distances, _ = self._tree.query(centered[start:start + _CHUNK], k + 1, workers=torch.get_num_threads())
            own = distances[:, 0] == 0  # the point is a reference point itself: skip it
            if statistic == "mean":
                total = distances[:, :k + 1].sum(axis=1)
                out[start:start + _CHUNK] = np.where(own, total, total - distances[:, k]) / k
            else:
                out[start:start + _CHUNK] = np.where(own, distances[:, k], distances[:, k - 1])
        return out

    def _outlying(self, data: torch.Tensor, centered: np.ndarray, neighbor: np.ndarray | None = None) -> np.ndarray:
        """The surface objective's outlyingness: `surface_weight` times the distance to the surface, or the distance to
        the data if that is smaller (`neighbor`: those distances, if already found)."""
        distance = self.surface_weight * self._distance_normalized(data)
        if self.n_neighbors > 0:
            if neighbor is None:
                neighbor = self._neighbor_distance_centered(centered)
            distance = np.minimum(distance, neighbor)
        return distance

    def neighbor_distance(self, X, k: int | None = None, statistic: str | None = None) -> np.ndarray:
        """Distance of each row of X to its k (default `n_neighbors`) nearest other training points (of a seeded
        subset of at most 20,000 kept by a surface fit), in input units: (N,) array. `statistic`: ``'mean'`` of their
        distances or the ``'kth'``'s; default the model's `neighbor_statistic`, as its score uses."""
        self._check_fitted()
        if not hasattr(self, "reference_points_"):
            raise PcflowError("neighbor_distance needs a model fitted with objective='surface'")
        if (self.n_neighbors if k is None else k) < 1:
            raise PcflowError("neighbor_distance needs n_neighbors >= 1" if k is None else f"k must be >= 1, got {k}")
        if statistic not in (None, *NEIGHBOR_STATISTICS):
            allowed = ", ".join(map(repr, NEIGHBOR_STATISTICS))
            raise PcflowError(f"statistic must be one of {allowed}, got {statistic!r}")
        X = self._check_X(X, fitting=False)
        return self._neighbor_distance_centered(X - self.center_, k, statistic)

    def surface_distance(self, X) -> np.ndarray:
        """Distance of each row of X to the surface f^-1(S(0, radius_)), to first order, in input units: (N,) array.

        The first-order distance | ||f(x)|| - R | / ||grad_x ||f(x)|| || is exact for points on the surface and close
        for points near it; for points far away it still grows with their distance. Meaningful for any model, it is
        the score of the surface objective.
        """
        X = self._checked(X)
        return self._distance_normalized(self._normalized_tensor(X))

    def transform(self, X) -> np.ndarray:
        """Latent coordinates f((x - center_) / scale_) of X: (N, D) array, as an (N, D) float64 array."""
        X = self._checked(X)
        return self._map((X - self.center_) / self.scale_, lambda x: self.flow_(x)[0])

    def inverse_transform(self, Z) -> np.ndarray:
        """Input-space points f^-1(z) * scale_ + center_ of latent Z: (N, D) array, as an (N, D) float64 array."""
        self._check_fitted()
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.n_features_in_:
            raise PcflowError(f"Z must have shape (n, {self.n_features_in_}), got {Z.shape}")
        return self._map(Z, self.flow_.inverse) * self.scale_ + self.center_

    def latent_radius(self, X) -> np.ndarray:
        """||f(x)|| for each row of X: (N,) float64 array."""
        return np.linalg.norm(self.transform(X), axis=1)

    def score_samples(self, X) -> np.ndarray:
        """Minus the outlyingness of each row of X: (N,) array, higher for more normal points.

        The outlyingness is the latent radius; for the surface objective it is `surface_weight` times the distance to
        the surface (`surface_distance`), or the distance to the data (`neighbor_distance`) where that is smaller, so
        that a point in a dense part of the cloud the surface does not reach (a handle, a thin part) is not called an
        outlier.
        """
        if self.objective == "surface":
            X = self._checked(X)
            return -self._outlying(self._normalized_tensor(X), X - self.center_)
        return -self.latent_radius(X)

    def decision_function(self, X) -> np.ndarray:
        """score_samples - offset_: (N,) array, positive for inliers (inside the region, or near the surface), negative
        for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers (decision_function >= 0), -1 for outliers: (N,) int array.

        For the surface objective the distance to the data is found first: where it alone puts a point inside, so does
        the smaller of it and the distance to the surface, whose gradient pass then runs only for the other points
        (about the share alpha of a scan).
        """
        if self.objective != "surface" or self.n_neighbors == 0:
            return np.where(self.decision_function(X) >= 0, 1, -1)
        X = self._checked(X)
        centered = X - self.center_
        neighbor = self._neighbor_distance_centered(centered)
        labels = np.ones(len(X), dtype=int)
        rest = np.flatnonzero(-neighbor - self.offset_ < 0)  # outlying <= neighbor: the others are inliers already
        if len(rest):
            outlying = self._outlying(self._normalized_tensor(X[rest]), centered[rest], neighbor[rest])
            labels[rest] = np.where(-outlying - self.offset_ >= 0, 1, -1)
        return labels

    # ----------------------------------------------------------------------------------------------------------
    # region

    def radius_at(self, coverage: float) -> float:
        """Latent radius of the ball that holds a share `coverage` of the training points (0 <= coverage <= 1)."""
        self._check_fitted()
        coverage = float(coverage)
        if not 0.0 <= coverage <= 1.0:
            raise PcflowError(f"coverage must lie in [0, 1], got {coverage}")
        return float(np.interp(coverage, self._coverage_grid, self._radius_grid))

    def threshold_at(self, coverage: float) -> float:
        """The outlyingness (minus `score_samples`) below which lie a share `coverage` of the training points: the
        latent radius `radius_at(coverage)`, or for the surface objective the distance that keeps that share."""
        if self.objective != "surface":
            return self.radius_at(coverage)
        self._check_fitted()
        coverage = float(coverage)
        if not 0.0 <= coverage <= 1.0:
            raise PcflowError(f"coverage must lie in [0, 1], got {coverage}")
        return float(np.interp(coverage, self._coverage_grid, self._outlying_grid))

    def region_volume(self, radius: float | None = None, *, n_samples: int = 20_000) -> tuple[float, float]:
        """Volume of f^-1(B(0, radius)) in input units, and its standard error.

        Closed form (standard error 0) for constant-Jacobian flows; otherwise the Monte-Carlo estimate
        vol(B(0, 1)) R^D mean_k |det df^-1(R e_k)| from `n_samples` seeded uniform samples e_k of the unit ball.

        Args:
            radius: latent radius; defaults to `radius_`.
            n_samples: Monte-Carlo sample count for general flows.
        """
        self._check_fitted()
        radius = self.radius_ if radius is None else float(radius)
        dim = self.n_features_in_
        log_input_scale = float(np.sum(np.log(self.scale_)))
        log_ball = log_unit_ball_volume(dim) + dim * math.log(radius) + log_input_scale
        if self.constant_jacobian_:
            with torch.no_grad():
                log_det = float(self.flow_.log_det_constant().double())
            return math.exp(log_ball - log_det), 0.0
        param = next(self.flow_.parameters())
        generator = torch.Generator().manual_seed(self.seed_)
        weights = []
        with torch.no_grad():
            for start in range(0, n_samples, _CHUNK):
                count = min(_CHUNK, n_samples - start)
                z = radius * sample_unit_ball(count, dim, generator=generator, dtype=param.dtype, device=param.device)
                _, log_det = self.flow_.inverse_and_log_det(z)
                weights.append(torch.exp(-log_det.double()).cpu().numpy())
        w = np.concatenate(weights)
        factor = math.exp(log_ball)
        return factor * float(w.mean()), factor * float(w.std(ddof=1)) / math.sqrt(w.size)

    # ----------------------------------------------------------------------------------------------------------
    # persistence

    def save(self, path) -> None:
        """Writes the fitted model to `path` (a torch file of tensors and plain values; atomic)."""
        self._check_fitted()
        from .io import atomic_output

        state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": self.get_params(),
            "flow_state": {k: v.detach().cpu() for k, v in self.flow_.state_dict().items()},
            "center": torch.as_tensor(self.center_),
            "scale": torch.as_tensor(self.scale_),
            "radius": self.radius_,
            "offset": self.offset_,
            **({"reference": torch.as_tensor(self.reference_points_),
                "outlying_grid": torch.as_tensor(self._outlying_grid)} if self.objective == "surface" else {}),
            "coverage_grid": torch.as_tensor(self._coverage_grid),
            "radius_grid": torch.as_tensor(self._radius_grid),
            "volume": self.volume_,
            "volume_stderr": self.volume_stderr_,
            "history": self.history_,
            "n_iter": self.n_iter_,
            **({"n_surface_steps": self.n_surface_steps_} if self.objective == "surface" else {}),
            "n_features_in": self.n_features_in_,
            "n_samples_fit": self.n_samples_fit_,
            "seed": self.seed_,
        }
        with atomic_output(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path, *, device: str = "cpu") -> "OneFlow":
        """Reads a model written by `save` (tensors and plain values only: torch's `weights_only` loading)."""
        path = Path(path)
        if not path.is_file():
            raise PcflowError(f"model file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except _UNREADABLE as error:
            raise PcflowError(f"{path} is not a readable pcflow model: {str(error).splitlines()[0]}") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise PcflowError(f"{path} is not a pcflow model file")
        if state["format_version"] > _FORMAT_VERSION:
            raise PcflowError(f"{path} was written by a newer pcflow (format {state['format_version']})")
        model = cls(**{"surface_weight": 1.0, "neighbor_statistic": "kth", **state["params"], "device": device})
        dim = int(state["n_features_in"])
        flow = model._build_flow(dim)
        flow.load_state_dict(state["flow_state"])
        model.flow_ = flow.to(device=model._resolve_device(), dtype=model._torch_dtype).eval()
        model.center_ = state["center"].numpy()
        model.scale_ = state["scale"].numpy()
        model.radius_ = float(state["radius"])
        model.offset_ = float(state.get("offset", -model.radius_))
        if model.objective == "surface":
            model.distance_threshold_ = -model.offset_
            model.reference_points_ = state["reference"].numpy()
            model._outlying_grid = state["outlying_grid"].numpy()
            model._tree = None
            model.n_surface_steps_ = int(state.get("n_surface_steps", model.surface_steps))  # older files ran them all
        model._coverage_grid = state["coverage_grid"].numpy()
        model._radius_grid = state["radius_grid"].numpy()
        model.volume_, model.volume_stderr_ = float(state["volume"]), float(state["volume_stderr"])
        model.history_ = state["history"]
        model.n_iter_ = int(state["n_iter"])
        model.n_features_in_ = dim
        model.n_samples_fit_ = int(state["n_samples_fit"])
        model.seed_ = int(state["seed"])
        model.constant_jacobian_ = flow.constant_jacobian
        return model


__all__ = ["OneFlow", "PAPER_2D", "PAPER_TABULAR", "Flow"]
