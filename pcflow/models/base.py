"""The shared base of the flow detectors: flow, normalisation, training loop, scoring, region, save and load."""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.utils.validation import validate_data

from ..distributed import SingleProcess, group
from ..errors import NotFittedError, PcflowError
from ..flows import AdditiveCoupling, AffineCoupling, Flow, build_flow
from ..objectives import Objective, log_unit_ball_volume, sample_unit_ball
from ..optim import CosineSchedule, adam
from ..quantile import check_alpha
from . import persist

FLOWS = {"nice": AdditiveCoupling, "general": AffineCoupling}
NORMALIZATIONS = ("standard", "isotropic", "none")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

_CHUNK = 65_536  # rows per forward pass on an accelerator, and per k-d tree query: bounds memory, not the result
#: rows per forward pass on the CPU, where passes run side by side, one per thread (`_each_chunk`): about 5% more
#: points per second than 4,096-row passes for the surface model
_CPU_CHUNK = 8_192
_GRADIENT_CHUNK = 8_192  # rows per backward pass of the surface distance: its saved activations bound the memory
_COVERAGE_GRID = 10_001  # entries of the coverage -> radius table behind radius_at: the table is saved with the model
_log = logging.getLogger(__name__)

_THREADS = threading.Lock()  # one chunk-parallel pass at a time changes torch's thread count


def _each_chunk(work, starts: range, cpu: bool) -> None:
    """Calls `work(start)` for every start of `starts`.

    On the CPU, with torch set to several threads, the calls run in that many Python threads while torch runs each
    operation on one thread (its count is restored afterwards): a pass of a few thousand rows is a chain of small
    operations that torch's own threads would split and then wait on, where whole chunks side by side keep every
    core busy (measured: 200,000 points through a general flow of 10 couplings, hidden 96, two torch threads, one
    process on a shared 2-core machine: 65,000-76,000 points/s side by side, 10,000-14,000 with torch's own threads;
    the same radii bit for bit, tests/models/test_base.py). torch's thread count is process-wide: other
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


def check_positive_int(estimator, names, *, allow_none: bool = False, allow_zero: bool = False) -> None:
    """Raises `PcflowError` naming the first of `names` whose value is not a positive (or non-negative) integer."""
    for name in names:
        value = getattr(estimator, name)
        if allow_none and value is None:
            continue
        if not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
            kind = "non-negative integer" if allow_zero else "positive integer" + (" or None" if allow_none else "")
            raise PcflowError(f"{name} must be a {kind}, got {value!r}")


def check_number(estimator, names, *, allow_zero: bool = False) -> None:
    """Raises `PcflowError` naming the first of `names` whose value is not a positive (or non-negative) number."""
    for name in names:
        value = getattr(estimator, name)
        if not (isinstance(value, (int, float)) and (value >= 0 if allow_zero else value > 0)):
            raise PcflowError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")


def check_choices(estimator, choices: dict) -> None:
    """Raises `PcflowError` naming the first parameter whose value is not one of its `choices[name]`."""
    for name, allowed in choices.items():
        if getattr(estimator, name) not in allowed:
            value = getattr(estimator, name)
            raise PcflowError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def draw_seed(state) -> int:
    """The seed a `random_state` stands for: the int itself, one drawn from a numpy generator, or a fresh one."""
    if state is None:
        return int(np.random.SeedSequence().entropy % 2**31)
    if isinstance(state, np.random.RandomState):
        return int(state.randint(2**31))
    if isinstance(state, np.random.Generator):
        return int(state.integers(2**31))
    if isinstance(state, (int, np.integer)):
        return int(state)
    raise PcflowError(f"random_state must be an int, a numpy RandomState or Generator, or None, got {state!r}")


def resolve_device(name: str) -> torch.device:
    """The torch device `name` stands for (``'auto'``: a CUDA GPU if torch sees one, else the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise PcflowError(f"device must be a torch device such as 'cpu' or 'cuda', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PcflowError("device 'cuda' was asked for, but torch sees no CUDA GPU on this machine")
    return device


def normalization(X: np.ndarray, normalize: str, parallel: SingleProcess) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) of the training data over all ranks, as `normalize` asks: (D,) float64 arrays each."""
    n = parallel.sum(np.array([len(X)]))[0]
    center = parallel.sum(X.sum(axis=0)) / n
    std = np.sqrt(parallel.sum(((X - center) ** 2).sum(axis=0)) / n)
    if not np.any(std > 0):
        raise PcflowError("all points are identical: there is no spread to learn a region from")
    if normalize == "none":
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    if normalize == "isotropic":
        return center, np.full(X.shape[1], math.sqrt(float(np.mean(std**2))))
    constant = np.flatnonzero(std == 0)
    if constant.size:
        raise PcflowError(
            f"features {constant.tolist()} are constant (zero variance); drop them or use normalize='isotropic'"
        )
    return center, std


def check_input(estimator, X, *, fitting: bool) -> np.ndarray:
    """X as an (N, D) float64 array, checked as scikit-learn checks it (`validate_data`, which also sets or checks
    `n_features_in_` and `feature_names_in_`), with one-line messages. Point cloud and mesh objects and paths are
    taken first (`pcflow.interop.cloud_points`)."""
    from ..interop import cloud_points

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
        array = validate_data(estimator, X, reset=fitting, dtype=np.float64, ensure_all_finite=False)
    except ValueError as error:
        lines = str(error).splitlines()
        raise PcflowError(lines[0] if lines else f"X is not a valid input array: {error!r}") from None
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise PcflowError(f"X contains NaN or infinity in {int(bad.sum())} rows; drop or impute them first")
    if fitting:
        n, dim = array.shape
        name = type(estimator).__name__
        if dim < 2:
            raise PcflowError(f"{name} needs at least 2 features, got {dim} feature(s)")
        if n < estimator.min_samples():
            got = "1 sample" if n == 1 else f"{n} samples"
            raise PcflowError(f"{name} with alpha={estimator.alpha} needs at least {estimator.min_samples()} samples, "
                              f"got {got}")
    return array


def train_epochs(model, data: torch.Tensor, generator: torch.Generator, parallel: SingleProcess) -> None:
    """The flow fit of `model`: epochs of its `_fit_loss` over shuffled batches, Adam on a cosine schedule to a
    tenth of `lr`, early stopping by `patience` and `tol`; fills `history_` and sets `n_iter_`."""
    from tqdm.auto import tqdm

    n, dim = data.shape
    n_batches = parallel.min(max(1, n // min(model.batch_size, n)))  # every rank takes the same number of steps
    objective = parallel.wrap(Objective(model.flow_, model._fit_loss, check_alpha(model.alpha)))
    optimizer = adam(model.flow_.parameters(), lr=model.lr)
    scheduler = CosineSchedule(optimizer, model.epochs, eta_min=0.1 * model.lr)
    needs_ball = model._fit_loss == "volume" and not model.flow_.constant_jacobian
    best, stale = math.inf, 0
    start = time.perf_counter()
    show = model.progress and parallel.rank == 0
    epochs = tqdm(range(model.epochs), desc=model._stage, unit="epoch", disable=not show, leave=False)
    model.flow_.train()
    for epoch in epochs:
        order = torch.randperm(n, generator=generator).to(data.device)
        losses, radii = [], []
        for batch in torch.tensor_split(order, n_batches):
            ball = (sample_unit_ball(model.n_volume_samples, dim, generator=generator, dtype=data.dtype,
                                     device=data.device) if needs_ball else None)
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
        model.history_["loss"].append(float(epoch_loss))
        model.history_["radius"].append(float(epoch_radius))
        model.history_["lr"].append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        epochs.set_postfix(loss=f"{epoch_loss:.4f}")
        model.n_iter_ = epoch + 1
        if epoch_loss < best - model.tol:
            best, stale = epoch_loss, 0
        else:
            stale += 1
            if model.patience is not None and stale >= model.patience:
                break
    model.flow_.eval()
    _log.info("%s: %d epochs, %.2f s", model._stage, model.n_iter_, time.perf_counter() - start)


def preimage_volume(flow: Flow, scale: np.ndarray, radius: float, *, seed: int, n_samples: int,
                    template=None) -> tuple[float, float]:
    """Volume of f^-1(B(0, radius)) in input units (normalised by `scale`: (D,) array), and its standard error:
    closed form for a constant-Jacobian flow, else from `n_samples` uniform samples of the ball seeded by `seed`.
    With a latent `template` (`pcflow.latent.LatentTorus` or `LatentTori`), the region inside its surface of size
    `radius` instead of the ball."""
    dim = len(scale)
    log_input_scale = float(np.sum(np.log(scale)))
    if template is None:
        log_ball = log_unit_ball_volume(dim) + dim * math.log(radius) + log_input_scale
    else:
        log_ball = template.log_solid_volume(radius) + log_input_scale
    if flow.constant_jacobian:
        with torch.no_grad():
            log_det = float(flow.log_det_constant().double())
        return math.exp(log_ball - log_det), 0.0
    param = next(flow.parameters())
    generator = torch.Generator().manual_seed(seed)
    weights = []
    with torch.no_grad():
        for start in range(0, n_samples, _CHUNK):
            count = min(_CHUNK, n_samples - start)
            if template is None:
                z = radius * sample_unit_ball(count, dim, generator=generator, dtype=param.dtype, device=param.device)
            else:
                z = template.solid_points(count, radius, generator=generator, dtype=param.dtype, device=param.device)
            _, log_det = flow.inverse_and_log_det(z)
            weights.append(torch.exp(-log_det.double()).cpu().numpy())
    w = np.concatenate(weights)
    factor = math.exp(log_ball)
    return factor * float(w.mean()), factor * float(w.std(ddof=1)) / math.sqrt(w.size)


def first_order_distance(flow: Flow, level, data: torch.Tensor, scale: np.ndarray, radius: float) -> np.ndarray:
    """First-order distance | level(f(x)) - R | / ||grad_x level(f(x))|| of normalised rows `data` to the surface
    level(f(x)) = R (`level`: the latent radius, or another latent level function), in input units (`scale`)."""
    scale = torch.as_tensor(scale, dtype=data.dtype, device=data.device)
    out = []
    with torch.enable_grad():
        for start in range(0, data.shape[0], _GRADIENT_CHUNK):
            x = data[start:start + _GRADIENT_CHUNK].detach().requires_grad_(True)
            levels = level(flow(x)[0])
            (gradient,) = torch.autograd.grad(levels.sum(), x)
            # d/d(input) = d/d(normalised) / scale, coordinate by coordinate
            slope = (gradient / scale).norm(dim=1).clamp_min(1e-30)
            out.append(((levels - radius).abs() / slope).detach().double().cpu().numpy())
    return np.concatenate(out) if out else np.empty(0)


class FlowDetector(OutlierMixin, TransformerMixin, BaseEstimator):
    """Base of the flow detectors (`OneFlow`, `LLFlow`, `SurfaceFlow`): a flow f trained on normalised inputs whose
    latent radius ||f(x)|| measures how far out a point lies.

    A subclass defines `__init__` (its parameters: at least those `_check_params` reads), `_fit_loss` (the
    `pcflow.objectives.Objective` of the flow fit) and `_stage` (that fit's name in progress bars and logs). The
    region is the preimage of the latent ball holding 1 - alpha of the training points; a point's score is minus its
    latent radius. Every subclass is registered by its class name, which `save` writes and `load` dispatches on.
    """

    _fit_loss = "volume"
    _stage = "envelope fit"
    _kinds: dict[str, type] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        FlowDetector._kinds[cls.__name__] = cls

    @property
    def objective(self) -> str:
        """What the model fits, read-only: ``'volume'`` (OneFlow), ``'likelihood'`` (LLFlow) or ``'surface'``."""
        return self._fit_loss

    # ----------------------------------------------------------------------------------------------------------
    # scikit-learn plumbing: get_params, the tags (an outlier detector, and a transformer to latent coordinates) and
    # fit_transform come from BaseEstimator, OutlierMixin and TransformerMixin

    def set_params(self, **params) -> "FlowDetector":
        """Sets constructor parameters, as scikit-learn's `set_params`; an unknown name raises `PcflowError`."""
        names = self._get_param_names()
        for key in params:
            if key not in names:
                raise PcflowError(f"unknown parameter {key!r} for {type(self).__name__}; expected one of "
                                  f"{', '.join(names)}")
        return super().set_params(**params)

    def __repr__(self) -> str:
        """The parameters that differ from their defaults, in the constructor's order."""
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        params = self.get_params(deep=False)
        changed = [f"{k}={params[k]!r}" for k in defaults if k in params and not _equal(params[k], defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_params(self) -> None:
        check_alpha(self.alpha)
        check_choices(self, {"flow": tuple(FLOWS), "normalize": NORMALIZATIONS, "dtype": tuple(DTYPES)})
        check_positive_int(self, ("epochs", "batch_size", "n_couplings", "hidden_features"))
        check_number(self, ("lr",))
        check_positive_int(self, ("patience",), allow_none=True)
        check_number(self, ("tol",), allow_zero=True)

    def min_samples(self) -> int:
        """Fewest training points this configuration accepts: enough for the (1 - alpha) quantile to be interior."""
        return max(10, math.ceil(2.0 / check_alpha(self.alpha)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "flow_"):
            raise NotFittedError(f"this {type(self).__name__} instance is not fitted yet; call fit(X) first")

    @property
    def _torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def _build_flow(self, dim: int) -> Flow:
        return build_flow(dim, coupling=FLOWS[self.flow], n_couplings=self.n_couplings,
                          hidden_features=self.hidden_features, n_hidden_layers=self.n_hidden_layers)

    # ----------------------------------------------------------------------------------------------------------
    # fitting

    def fit(self, X, y=None) -> "FlowDetector":
        """Trains the flow on X and sets the region. `y` is ignored. Returns self.

        X is an (N, D) array-like (scikit-learn's input checks apply; D >= 2), or a point cloud or mesh object or
        file that `pcflow.interop.cloud_points` takes (an Open3D or trimesh cloud, a pcflow `PointCloud`, a path);
        so is the X of the scoring and mapping methods.

        Inside an initialised torch.distributed process group with several ranks, each rank passes its own shard
        of the training data and training is data-parallel (see `pcflow.distributed`); every rank gets the same
        model. Pass the same `random_state` on every rank.
        """
        X, data, parallel, _ = self._fit_flow(X)
        self._set_region(data, parallel)
        return self

    def _fit_flow(self, X):
        """Checks, normalises and trains the flow: (X as float64, normalised data tensor, process group, generator)."""
        self._check_params()
        X = check_input(self, X, fitting=True)
        parallel = group()
        seed = draw_seed(self.random_state)
        seed = int(parallel.sum(np.array([seed if parallel.rank == 0 else 0]))[0])  # rank 0's seed everywhere
        device = resolve_device(self.device)
        dtype = self._torch_dtype
        center, scale = normalization(X, self.normalize, parallel)
        data = torch.as_tensor((X - center) / scale, dtype=dtype, device=device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            flow = self._build_flow(data.shape[1]).to(device=device, dtype=dtype)
        self.flow_ = flow
        self.center_, self.scale_ = center, scale
        self.n_features_in_, self.seed_ = data.shape[1], seed
        self.constant_jacobian_ = flow.constant_jacobian
        self.history_ = {"loss": [], "radius": [], "lr": []}  # no wall-clock times: the same seed, the same model
        generator = torch.Generator().manual_seed(seed + parallel.rank)
        self._train(data, generator, parallel)
        return X, data, parallel, generator

    def _set_region(self, data: torch.Tensor, parallel: SingleProcess) -> np.ndarray:
        """The coverage table, the threshold (`_set_threshold`) and the volume, from the training radii; returns the
        rows of the sorted training points the table keeps."""
        radii = np.sort(parallel.gather(self._latent_radius_normalized(data)))
        n = self.n_samples_fit_ = len(radii)
        grid = np.round(np.linspace(0, n - 1, min(n, _COVERAGE_GRID))).astype(np.int64)
        self._set_threshold(radii)
        self._coverage_grid = grid / max(n - 1, 1)
        self._radius_grid = radii[grid]
        self.volume_, self.volume_stderr_ = self.region_volume()
        return grid

    def _set_threshold(self, radii: np.ndarray) -> None:
        """radius_ and offset_ from the sorted training radii: the (1 - alpha) quantile."""
        self.radius_ = float(np.quantile(radii, 1.0 - check_alpha(self.alpha)))
        self.offset_ = -self.radius_

    def _train(self, data: torch.Tensor, generator: torch.Generator, parallel: SingleProcess) -> None:
        train_epochs(self, data, generator, parallel)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fits on X and returns its labels: +1 inside the region, -1 outside (a file is read once)."""
        from ..interop import cloud_points

        points = cloud_points(X)
        X = X if points is None else points
        return self.fit(X).predict(X)

    # ----------------------------------------------------------------------------------------------------------
    # mapping and scoring

    def _on_cpu(self) -> bool:
        return next(self.flow_.parameters()).device.type == "cpu"

    def _map(self, data, function, shape: tuple | None = None) -> np.ndarray:
        """`function` of `data` ((N, D) array or tensor) without gradient, a pass per row chunk (side by side on the
        CPU, see `_each_chunk`), as a float64 array of `shape` (default: data's)."""
        param = next(self.flow_.parameters())
        out = np.empty(data.shape if shape is None else shape)
        rows = _CPU_CHUNK if self._on_cpu() else _CHUNK

        def work(start: int) -> None:
            with torch.no_grad():
                chunk = torch.as_tensor(data[start:start + rows], dtype=param.dtype, device=param.device)
                out[start:start + rows] = function(chunk).double().cpu().numpy()

        _each_chunk(work, range(0, data.shape[0], rows), self._on_cpu())
        return out

    def _level(self, z: torch.Tensor) -> torch.Tensor:
        """The latent level of each row of z, whose level sets are the region's boundaries: the radius ||z||."""
        return z.norm(dim=1)

    def _latent_radius_normalized(self, data) -> np.ndarray:
        return self._map(data, lambda x: self._level(self.flow_(x)[0]), shape=data.shape[:1])

    def _checked(self, X) -> np.ndarray:
        """X as a float64 array after the fitted-model and input checks."""
        self._check_fitted()
        return check_input(self, X, fitting=False)

    def _normalized_tensor(self, X: np.ndarray) -> torch.Tensor:
        """(X - center_) / scale_ as a tensor of the flow's dtype on its device."""
        param = next(self.flow_.parameters())
        return torch.as_tensor((X - self.center_) / self.scale_, dtype=param.dtype, device=param.device)

    def _distance_normalized(self, data: torch.Tensor) -> np.ndarray:
        """`first_order_distance` of normalised rows to the surface of level radius_, in input units."""
        return first_order_distance(self.flow_, self._level, data, self.scale_, self.radius_)

    def surface_distance(self, X) -> np.ndarray:
        """Distance of each row of X to the surface f^-1(S(0, radius_)), to first order, in input units: (N,) array.

        The first-order distance | ||f(x)|| - R | / ||grad_x ||f(x)|| || is exact for points on the surface and close
        for points near it; for points far away it still grows with their distance. Meaningful for any model, it is
        the score of `SurfaceFlow`.
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
        """||f(x)|| for each row of X (the latent level, `_level`): (N,) float64 array."""
        return self._level(torch.as_tensor(self.transform(X), dtype=torch.float64)).numpy()

    def score_samples(self, X) -> np.ndarray:
        """Minus the latent radius of each row of X: (N,) array, higher for more normal points."""
        return -self.latent_radius(X)

    def decision_function(self, X) -> np.ndarray:
        """score_samples - offset_: (N,) array, positive for inliers, negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers (decision_function >= 0), -1 for outliers: (N,) int array."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    # ----------------------------------------------------------------------------------------------------------
    # region

    def _coverage(self, coverage: float) -> float:
        self._check_fitted()
        coverage = float(coverage)
        if not 0.0 <= coverage <= 1.0:
            raise PcflowError(f"coverage must lie in [0, 1], got {coverage}")
        return coverage

    def radius_at(self, coverage: float) -> float:
        """Latent radius of the ball that holds a share `coverage` of the training points (0 <= coverage <= 1)."""
        return float(np.interp(self._coverage(coverage), self._coverage_grid, self._radius_grid))

    def threshold_at(self, coverage: float) -> float:
        """The outlyingness (minus `score_samples`) below which lie a share `coverage` of the training points: here
        the latent radius `radius_at(coverage)`."""
        return self.radius_at(coverage)

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
        return preimage_volume(self.flow_, self.scale_, radius, seed=self.seed_, n_samples=n_samples,
                               template=getattr(self, "template_", None))

    # ----------------------------------------------------------------------------------------------------------
    # persistence

    def save(self, path) -> None:
        """Writes the fitted model to `path` (a torch file of tensors and plain values; atomic)."""
        self._check_fitted()
        persist.write_state(path, {"model": type(self).__name__, **persist.fitted_state(self), **self._extra_state()})

    def _extra_state(self) -> dict:
        """What a subclass saves beyond the shared state."""
        return {}

    @classmethod
    def load(cls, path, *, device: str = "cpu") -> "FlowDetector":
        """Reads a model written by `save` (tensors and plain values only: torch's `weights_only` loading).

        The model comes back as the class that saved it, which must be this class or a subclass of it (a
        `FlowDetector.load`, or `pcflow.models.load`, takes any); `OneFlow.load` also takes every file of format 1,
        where one OneFlow class held the three models.
        """
        state = persist.read_state(path)
        name = persist.kind(state)
        target = FlowDetector._kinds.get(name)
        if target is None:
            raise PcflowError(f"{path} holds a model of class {name}, which this version of pcflow does not know")
        legacy = state["format_version"] < 2 and cls.__name__ == "OneFlow"
        if not (issubclass(target, cls) or legacy):
            raise PcflowError(f"{path} holds a model of class {name}, not {cls.__name__}; load it with {name}.load or "
                              "pcflow.models.load")
        params = state["params"]
        if state["format_version"] < 2:  # format 1 saved every parameter of the one class: keep the target's
            params = {k: v for k, v in params.items() if k in target._get_param_names()}
        params = target._legacy_params(params)
        return persist.rebuilt(target, params, state, device, resolve_device(device), path)

    @classmethod
    def _legacy_params(cls, params: dict) -> dict:
        """A file's parameters of this class, with the values where it predates one of them (files keep the scores
        they were thresholded with)."""
        return params

    def _load_extra(self, state: dict) -> None:
        """Sets what `_extra_state` saved."""


def load(path, *, device: str = "cpu") -> FlowDetector:
    """Reads any model file `save` wrote (of any pcflow version so far) as the estimator that wrote it."""
    return FlowDetector.load(path, device=device)
