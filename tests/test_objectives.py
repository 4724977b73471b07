"""Tests of the OneFlow volume, LL-Flow likelihood and surface objectives."""

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
    sample_unit_sphere,
    spread_unit_sphere,
    surface_loss,
    trimmed_mean,
)
from pcflow.quantile import bernstein_quantile, window_size


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


@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
def test_loss_maps_only_the_window_rows_with_gradient(coupling):
    flow = randomise(build_flow(3, coupling=coupling, n_couplings=3, hidden_features=8).double(), scale=0.2)
    x = torch.randn(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ball = sample_unit_ball(64, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    unit_ball = None if coupling is AdditiveCoupling else ball
    # reference: every row mapped with gradient, the Monte-Carlo volume by a forward pass from the preimages
    z, _ = flow(x)
    radius = bernstein_quantile(z.norm(dim=1), 0.05)
    if unit_ball is None:
        expected = log_volume_constant(flow, radius, 3)
    else:
        _, logdet = flow(flow.inverse(radius * ball))
        expected = log_unit_ball_volume(3) + 3 * torch.log(radius) + torch.logsumexp(-logdet, 0) - math.log(64)
    expected_grads = torch.autograd.grad(expected, list(flow.parameters()), allow_unused=True)
    rows = []
    hook = flow.register_forward_hook(lambda module, args, out: rows.append((len(args[0]), torch.is_grad_enabled())))
    loss, got_radius = oneflow_loss(flow, x, 0.05, unit_ball=unit_ball)
    hook.remove()
    grads = torch.autograd.grad(loss, list(flow.parameters()), allow_unused=True)
    torch.testing.assert_close(loss, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(got_radius, radius, atol=1e-12, rtol=0)
    for got, want in zip(grads, expected_grads):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
    assert rows == [(1000, False), (window_size(1000, 0.05), True)]


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


def test_unit_sphere_samples_are_uniform():
    pts = sample_unit_sphere(100_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(pts.norm(dim=1), torch.ones(100_000, dtype=torch.float64))
    assert pts.mean(dim=0).abs().max() < 0.01
    assert abs(float((pts[:, 2] > 0.5).double().mean()) - 0.25) < 0.005  # Archimedes: the cap z > 1/2 is a quarter


@pytest.mark.parametrize("dim", [2, 3])
def test_spread_sphere_points_are_each_uniform(dim):
    """Over many draws, one point of the spread set is uniform on the sphere: mean 0, and in 3D a quarter of the
    draws in the cap z > 1/2 (Archimedes), in 2D a third within 60 degrees of the first axis."""
    gen = torch.Generator().manual_seed(5)
    first = torch.stack([spread_unit_sphere(3, dim, generator=gen, dtype=torch.float64)[0] for _ in range(4000)])
    torch.testing.assert_close(first.norm(dim=1), torch.ones(4000, dtype=torch.float64))
    assert first.mean(dim=0).abs().max() < 0.04  # standard error 0.009 (3D), 0.011 (2D)
    share = float((first[:, -1] > 0.5).double().mean())
    assert abs(share - (0.25 if dim == 3 else 1 / 3)) < 0.03  # standard error 0.007


@pytest.mark.parametrize("dim", [2, 3])
def test_spread_sphere_means_are_unbiased_and_steadier_than_independent_draws(dim):
    """The mean of exp(a . u) over 256 spread points against the exact sphere mean (sinh|a| / |a| in 3D, I0(|a|) in
    2D): unbiased over 300 draws, with a fifth of the spread of the mean over 256 independent draws, or less."""
    gen = torch.Generator().manual_seed(6)
    a = torch.tensor([0.6, -1.1, 0.8][:dim], dtype=torch.float64)
    norm = a.norm()
    exact = float(torch.sinh(norm) / norm if dim == 3 else torch.special.i0(norm))

    def estimates(sampler):
        return torch.stack([torch.exp(sampler(256, dim, generator=gen, dtype=torch.float64) @ a).mean()
                            for _ in range(300)])

    spread, independent = estimates(spread_unit_sphere), estimates(sample_unit_sphere)
    assert abs(float(spread.mean()) - exact) < 3 * float(spread.std()) / math.sqrt(300) + 1e-12
    assert abs(float(independent.mean()) - exact) < 4 * float(independent.std()) / math.sqrt(300)
    assert float(spread.std()) < 0.2 * float(independent.std())


def test_spread_sphere_is_seeded_and_falls_back_to_independent_draws_in_other_dimensions():
    def draw(n, dim, sampler=spread_unit_sphere):
        return sampler(n, dim, generator=torch.Generator().manual_seed(7), dtype=torch.float64)

    torch.testing.assert_close(draw(100, 3), draw(100, 3))
    assert not torch.equal(draw(100, 3), spread_unit_sphere(100, 3, generator=torch.Generator().manual_seed(8)).double())
    torch.testing.assert_close(draw(50, 4), draw(50, 4, sample_unit_sphere))
    assert draw(1, 3).shape == (1, 3) and draw(10, 2).dtype == torch.float64


@pytest.mark.parametrize("trim", [0.0, 0.02, 0.25, 0.999])
def test_trimmed_mean_against_sorting(trim):
    values = torch.randn(1001, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    keep = math.ceil((1 - trim) * 1001)
    torch.testing.assert_close(trimmed_mean(values, trim), values.sort().values[:keep].mean())


@pytest.mark.parametrize("radial_points", [None, 50])
def test_surface_loss_against_brute_force_reference(radial_points):
    """For a random flow the loss equals the Chamfer and radial terms computed point by point; the radial term over
    the first `radial_points` rows only when given."""
    flow = randomise(build_flow(3, coupling=AffineCoupling, n_couplings=3, hidden_features=8).double(), scale=0.2)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(200, 3, generator=gen, dtype=torch.float64)
    directions = sample_unit_sphere(150, 3, generator=gen, dtype=torch.float64)
    radius, trim, weight = 1.3, 0.1, 0.25
    loss = surface_loss(flow, x, radius * directions, radius, trim=trim, radial_weight=weight,
                        radial_points=radial_points)

    with torch.no_grad():
        surface = flow.inverse(radius * directions)
        latent_radius = flow(x[:radial_points])[0].norm(dim=1)
    to_surface = [min(float((xi - s).norm()) for s in surface) for xi in x]
    to_points = [min(float((s - xi).norm()) for xi in x) for s in surface]
    radial = [abs(float(r) - radius) / radius for r in latent_radius]
    keep = math.ceil((1 - trim) * len(x))
    keep_radial = math.ceil((1 - trim) * len(radial))
    assert len(radial) == (radial_points or len(x))
    expected = (sum(sorted(to_surface)[:keep]) / keep + sum(to_points) / len(to_points)
                + weight * sum(sorted(radial)[:keep_radial]) / keep_radial)
    assert math.isclose(loss.item(), expected, rel_tol=1e-10)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in flow.parameters())


def test_surface_loss_without_its_radial_term_is_the_chamfer_terms_and_skips_the_forward_pass(monkeypatch):
    flow = randomise(build_flow(3, coupling=AffineCoupling, n_couplings=3, hidden_features=8).double(), scale=0.2)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(120, 3, generator=gen, dtype=torch.float64)
    directions = sample_unit_sphere(90, 3, generator=gen, dtype=torch.float64)
    radius, weight = 1.3, 0.25
    with torch.no_grad():
        latent_radius = flow(x)[0].norm(dim=1)
        full = surface_loss(flow, x, radius * directions, radius, radial_weight=weight).item()
    radial = trimmed_mean((latent_radius - radius).abs() / radius, 0.02).item()
    monkeypatch.setattr(flow, "forward", lambda *args: pytest.fail("the forward pass ran"))
    loss = surface_loss(flow, x, radius * directions, radius, radial_weight=0.0)
    assert math.isclose(loss.item(), full - weight * radial, rel_tol=1e-10)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in flow.parameters())


def test_surface_loss_is_small_on_the_surface_and_grows_off_it():
    """Identity flow: points on the sphere of radius R give only the sampling gap; points off it add their offset."""
    flow = build_flow(3, coupling=AffineCoupling, n_couplings=2).double()  # a fresh flow is the identity
    gen = torch.Generator().manual_seed(3)
    directions = sample_unit_sphere(4000, 3, generator=gen, dtype=torch.float64)
    on = 2.0 * sample_unit_sphere(4000, 3, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        on_loss = surface_loss(flow, on, 2.0 * directions, 2.0, trim=0.0).item()
        off_loss = surface_loss(flow, 1.1 * on, 2.0 * directions, 2.0, trim=0.0).item()
    # 4000 points on a sphere of area 16 pi: each Chamfer term is about half their spacing, 0.5 / sqrt(80) = 0.056
    assert on_loss < 0.15
    assert off_loss > 2 * 0.2 > on_loss  # off the sphere by 0.2, each Chamfer term is at least 0.2
