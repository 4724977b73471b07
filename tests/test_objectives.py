"""Tests of the OneFlow volume and LL-Flow likelihood objectives."""

import math

import pytest
import torch

from pcflow.flows import AdditiveCoupling, AffineCoupling, DiagonalScaling, Flow, build_flow, coupling_masks
from pcflow.objectives import (
    likelihood_loss,
    log_unit_ball_volume,
    log_volume_constant,
    log_volume_monte_carlo,
    oneflow_loss,
    sample_unit_ball,
)
from pcflow.quantile import bernstein_quantile


def randomise(flow, seed=0, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("dim,expected", [(1, 2.0), (2, math.pi), (3, 4 * math.pi / 3), (4, math.pi**2 / 2)])
def test_unit_ball_volume(dim, expected):
    assert math.isclose(math.exp(log_unit_ball_volume(dim)), expected, rel_tol=1e-12)


def test_unit_ball_samples_are_uniform():
    gen = torch.Generator().manual_seed(0)
    pts = sample_unit_ball(200_000, 3, generator=gen, dtype=torch.float64)
    r = pts.norm(dim=1)
    assert r.max() <= 1.0
    # P(|e| <= 1/2) = 1/8 in 3-D; the mean of each coordinate is 0
    assert abs(float((r <= 0.5).double().mean()) - 0.125) < 0.005
    assert pts.mean(dim=0).abs().max() < 0.01


@pytest.mark.parametrize("dim", [2, 3])
def test_monte_carlo_volume_agrees_with_closed_form_for_constant_jacobian(dim):
    flow = randomise(build_flow(dim, coupling=AdditiveCoupling, n_couplings=4, hidden_features=8).double())
    radius = torch.tensor(1.7, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    ball = sample_unit_ball(2000, dim, generator=gen, dtype=torch.float64)
    closed = log_volume_constant(flow, radius, dim)
    monte_carlo = log_volume_monte_carlo(flow, radius, ball)
    # the Jacobian is constant, so every Monte-Carlo weight is the same and the estimate is exact
    torch.testing.assert_close(monte_carlo, closed, atol=1e-10, rtol=0)


def test_monte_carlo_volume_of_affine_flow_matches_dense_estimate():
    torch.manual_seed(0)
    flow = randomise(build_flow(2, coupling=AffineCoupling, n_couplings=3, hidden_features=8).double(), scale=0.2)
    radius = torch.tensor(1.0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        ball = sample_unit_ball(100_000, 2, generator=gen, dtype=torch.float64)
        estimate = math.exp(float(log_volume_monte_carlo(flow, radius, ball)))
    # reference: fraction of a fine grid in x space that f maps into the unit ball
    lim = 6.0
    axis = torch.linspace(-lim, lim, 1201, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        inside = (flow(grid)[0].norm(dim=1) <= 1.0).double().mean() * (2 * lim) ** 2
    assert abs(estimate - float(inside)) < 0.02 * float(inside)


def test_general_volume_has_gradient_through_radius_and_flow():
    torch.manual_seed(0)
    flow = randomise(build_flow(3, coupling=AffineCoupling, n_couplings=2, hidden_features=8).double(), scale=0.1)
    x = torch.randn(300, 3, dtype=torch.float64)
    ball = sample_unit_ball(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss, radius = oneflow_loss(flow, x, 0.05, unit_ball=ball)
    loss.backward()
    # the volume term's own gradient reaches the coupling networks (not only through the radius)
    flow.zero_grad()
    log_volume_monte_carlo(flow, radius.detach(), ball).backward()
    grads = [p.grad.abs().sum() for p in flow.layers[0].parameters() if p.grad is not None]
    assert grads and sum(grads) > 0


def test_constant_loss_is_log_volume_of_bernstein_ball():
    flow = randomise(build_flow(3, coupling=AdditiveCoupling, n_couplings=2, hidden_features=4).double())
    x = torch.randn(500, 3, dtype=torch.float64)
    loss, radius = oneflow_loss(flow, x, 0.1)
    z, logdet = flow(x)
    expected_radius = bernstein_quantile(z.norm(dim=1), 0.1)
    torch.testing.assert_close(radius, expected_radius)
    torch.testing.assert_close(loss, log_unit_ball_volume(3) + 3 * torch.log(expected_radius) - logdet[0])


def test_general_loss_requires_ball_samples():
    flow = build_flow(2, coupling=AffineCoupling)
    with pytest.raises(ValueError, match="unit-ball"):
        oneflow_loss(flow, torch.randn(100, 2), 0.05)


def test_likelihood_of_identity_flow_is_gaussian_nll():
    flow = Flow([DiagonalScaling(2)]).double()
    x = torch.randn(1000, 2, dtype=torch.float64)
    expected = (0.5 * (x**2).sum(dim=1) + math.log(2 * math.pi)).mean()
    torch.testing.assert_close(likelihood_loss(flow, x), expected)


def test_likelihood_includes_logdet():
    flow = Flow([DiagonalScaling(2)]).double()
    with torch.no_grad():
        flow.layers[0].log_scale.fill_(math.log(2.0))
    x = torch.zeros(4, 2, dtype=torch.float64)
    torch.testing.assert_close(likelihood_loss(flow, x), torch.tensor(math.log(2 * math.pi) - 2 * math.log(2.0),
                                                                       dtype=torch.float64))


def test_masks_registered_as_boolean_buffers():
    layer = AdditiveCoupling(coupling_masks(3, 1)[0])
    assert "mask" in dict(layer.named_buffers())
    assert layer.mask.dtype == torch.bool
