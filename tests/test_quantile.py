"""Tests of the Bernstein quantile estimator."""

import math
from fractions import Fraction
from math import comb

import numpy as np
import pytest
import torch

from pcflow.errors import PcflowError
from pcflow.quantile import bernstein_quantile, bernstein_weights, window_size


def exact_weights(n, alpha):
    a = Fraction(alpha)
    return [comb(n - 1, k - 1) * a ** (k - 1) * (1 - a) ** (n - k) for k in range(1, n + 1)]


@pytest.mark.parametrize("n", [1, 2, 5, 17, 60])
@pytest.mark.parametrize("alpha", [0.05, 0.25, 0.5, 0.9])
def test_weights_equal_exact_rational_computation(n, alpha):
    expected = np.array([float(w) for w in exact_weights(n, alpha)])
    np.testing.assert_allclose(bernstein_weights(n, alpha), expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("n", [60, 1000, 4096, 100_000])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.3])
def test_weights_equal_those_from_math_lgamma_term_by_term(n, alpha):
    """scipy's gammaln against math.lgamma one term at a time: equal to the rounding of log-gamma terms of size
    n log n, which both share (relative 1e-12 up to n = 1000, about 4e-15 n beyond)."""
    i = np.arange(n)
    log_w = np.array([math.lgamma(n) - math.lgamma(j + 1.0) - math.lgamma(n - j) for j in i])
    log_w += i * math.log(alpha) + (n - 1 - i) * math.log1p(-alpha)
    expected = np.exp(log_w - log_w.max())
    expected /= expected.sum()
    weights = bernstein_weights(n, alpha)
    carried = expected >= 1e-12 * expected.max()
    np.testing.assert_allclose(weights[carried], expected[carried], rtol=max(1e-12, 1e-14 * n), atol=0)
    np.testing.assert_allclose(weights[~carried], expected[~carried], rtol=0, atol=1e-12 * expected.max())


@pytest.mark.parametrize("n", [1029, 1030, 4096, 65_536, 100_000])
def test_weights_finite_and_normalised_for_large_batches(n):
    w = bernstein_weights(n, 0.05)
    assert w.shape == (n,)
    assert np.isfinite(w).all() and (w >= 0).all()
    assert abs(w.sum() - 1.0) < 1e-12
    # the mass sits around k = n alpha, as the binomial says
    k = np.arange(1, n + 1)
    assert abs((w * (k - 1)).sum() - (n - 1) * 0.05) < 1e-6 * n


@pytest.mark.parametrize("n", [100, 1000, 65_536, 1_000_000])
def test_window_equals_full_sort(n):
    gen = torch.Generator().manual_seed(n)
    radii = torch.rand(n, generator=gen, dtype=torch.float64) ** 2
    full = bernstein_quantile(radii, 0.05, window=False)
    windowed = bernstein_quantile(radii, 0.05, window=True)
    assert window_size(n, 0.05) <= n
    assert abs(float(full - windowed)) <= 1e-6 * float(full)


def test_estimate_from_the_largest_radii_of_a_batch_equals_the_whole_batch_estimate():
    radii = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = bernstein_quantile(radii, 0.05)
    k = window_size(1000, 0.05)
    largest = torch.topk(radii, k + 7).values[torch.randperm(k + 7, generator=torch.Generator().manual_seed(1))]
    assert float(bernstein_quantile(largest, 0.05, batch_size=1000)) == pytest.approx(float(whole), rel=1e-12)
    with pytest.raises(PcflowError, match="cannot be the top"):
        bernstein_quantile(largest[: k - 1], 0.05, batch_size=1000)


def test_window_is_much_smaller_than_large_batches():
    assert window_size(1_000_000, 0.05) < 60_000


def test_estimate_close_to_true_quantile():
    # radii of a 3-D standard normal follow a chi distribution; its 0.95 quantile is sqrt(7.8147279)
    gen = torch.Generator().manual_seed(0)
    estimates = [bernstein_quantile(torch.randn(4000, 3, generator=gen).norm(dim=1), 0.05) for _ in range(20)]
    true = np.sqrt(7.814727903251178)
    mean = float(torch.stack(estimates).mean())
    spread = float(torch.stack(estimates).std()) / np.sqrt(len(estimates))
    assert abs(mean - true) < 4 * spread + 1e-3


def test_gradient_only_reaches_window():
    radii = torch.linspace(0, 1, 1000, dtype=torch.float64).requires_grad_()
    bernstein_quantile(radii, 0.05).backward()
    grad = radii.grad.numpy()
    assert abs(grad.sum() - 1.0) < 1e-9
    assert grad[:800].max() < 1e-12  # the smallest radii do not move R


def test_float32_input_keeps_dtype():
    radii = torch.rand(500)
    assert bernstein_quantile(radii, 0.1).dtype == torch.float32


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, "x", None])
def test_bad_alpha(alpha):
    with pytest.raises(PcflowError, match="alpha"):
        bernstein_weights(10, alpha)
