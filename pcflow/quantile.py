"""Bernstein-polynomial estimate of the upper (1 - alpha) quantile of a batch of radii."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import gammaln

from .errors import PcflowError

#: Half-width of the window kept around k = n * alpha, in standard deviations of Binomial(n - 1, alpha).
#: Beyond 12 standard deviations the neglected weights sum to far less than 1e-12 (Chernoff bound).
WINDOW_SIGMAS = 12.0


def check_alpha(alpha: float) -> float:
    """Returns `alpha` as a float after checking that 0 < alpha < 1.

    Raises:
        PcflowError: if alpha is not a number strictly between 0 and 1.
    """
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise PcflowError(f"alpha must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < value < 1.0:
        raise PcflowError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    return value


def window_size(n: int, alpha: float) -> int:
    """Number of largest radii that carry all but a negligible share of the Bernstein weight.

    The weight of the k-th largest radius is the Binomial(n - 1, alpha) probability of k - 1, so it is
    concentrated around k = (n - 1) alpha (the paper's Remark 1). Returns min(n, upper window edge).
    """
    mean = (n - 1) * alpha
    sd = math.sqrt(max((n - 1) * alpha * (1.0 - alpha), 0.0))
    return int(min(n, math.ceil(mean + WINDOW_SIGMAS * sd + 10)))


@lru_cache(maxsize=64)
def _log_weights(n: int, alpha: float, k: int) -> np.ndarray:
    i = np.arange(k, dtype=np.float64)  # i = k - 1 in the paper's 1-based notation
    log_w = (
        gammaln(n)
        - gammaln(i + 1.0)
        - gammaln(n - i)
        + i * math.log(alpha)
        + (n - 1 - i) * math.log1p(-alpha)
    )
    return log_w


def bernstein_weights(n: int, alpha: float, *, window: bool = False) -> np.ndarray:
    """Bernstein weights for the radii sorted in descending order.

    w_k = C(n - 1, k - 1) alpha^(k - 1) (1 - alpha)^(n - k), k = 1..n, computed from log-gamma so that any n works,
    then normalised to sum to one. Cached per (n, alpha).

    Args:
        n: batch size, at least 1.
        alpha: share of points left outside, 0 < alpha < 1.
        window: return only the first `window_size(n, alpha)` weights (renormalised).

    Returns:
        (n,) or (window_size,) float64 array, non-negative, summing to 1.
    """
    alpha = check_alpha(alpha)
    if n < 1:
        raise PcflowError(f"the Bernstein estimate needs at least one radius, got n={n}")
    k = window_size(n, alpha) if window else n
    log_w = _log_weights(int(n), alpha, k)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


_TORCH_WEIGHTS: dict[tuple, torch.Tensor] = {}


def _torch_weights(n: int, alpha: float, window: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (n, alpha, window, dtype, str(device))
    weights = _TORCH_WEIGHTS.get(key)
    if weights is None:
        if len(_TORCH_WEIGHTS) > 256:
            _TORCH_WEIGHTS.clear()
        weights = torch.as_tensor(bernstein_weights(n, alpha, window=window), dtype=dtype, device=device)
        _TORCH_WEIGHTS[key] = weights
    return weights


def bernstein_quantile(radii: torch.Tensor, alpha: float, *, window: bool | None = None,
                       batch_size: int | None = None) -> torch.Tensor:
    """Differentiable Bernstein estimate of the upper (1 - alpha) quantile of `radii`.

    R = sum_k w_k r_(k) with r_(1) >= ... >= r_(n). Only the radii inside the weight window receive gradient.

    Args:
        radii: (n,) tensor of non-negative radii.
        alpha: share of points the quantile leaves above it.
        window: take only the top `window_size(n, alpha)` radii with `torch.topk` instead of a full sort.
            None picks the window whenever it is smaller than the batch. Both agree within 1e-12 relative.
        batch_size: `radii` are the largest radii of a batch of this size (at least `window_size(batch_size,
            alpha)` of them): the windowed estimate of that batch. None: `radii` are the whole batch.

    Returns:
        0-dim tensor with the estimate, same dtype and device as `radii`.
    """
    alpha = check_alpha(alpha)
    if radii.ndim != 1:
        raise PcflowError(f"radii must be a 1-D tensor, got shape {tuple(radii.shape)}")
    n = radii.shape[0] if batch_size is None else int(batch_size)
    k = window_size(n, alpha)
    if batch_size is not None:
        if k > radii.shape[0] or n < radii.shape[0]:
            raise PcflowError(f"{radii.shape[0]} radii cannot be the top {k} of a batch of {n}")
        window = True
    elif window is None:
        window = k < n
    if window:
        top = torch.topk(radii, k, sorted=True).values
    else:
        top = torch.sort(radii, descending=True).values
    weights = _torch_weights(n, alpha, bool(window), radii.dtype, radii.device)
    return torch.dot(weights, top)
