"""Training objectives: OneFlow's region volume (constant-Jacobian and general flows), LL-Flow's likelihood and the
surface fit that makes the preimage of a latent sphere follow the points."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .flows import Flow
from .quantile import bernstein_quantile, window_size

#: Rows of a surface-fit batch that the radial term of `surface_loss` is taken over (the batches are random draws).
RADIAL_POINTS = 256
#: Weight of the radial term of `surface_loss`.
RADIAL_WEIGHT = 0.1


def log_unit_ball_volume(dim: int) -> float:
    """log of the volume of the unit ball in R^dim: log(pi^(D/2) / Gamma(D/2 + 1))."""
    return 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1.0)


def sample_unit_sphere(n: int, dim: int, *, generator: torch.Generator | None = None, dtype=torch.float32,
                       device="cpu") -> torch.Tensor:
    """n points drawn uniformly on the unit sphere of R^dim: (n, dim) tensor."""
    direction = torch.randn(n, dim, generator=generator, dtype=dtype, device="cpu")
    return (direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-30)).to(device)


def spread_unit_sphere(n: int, dim: int, *, generator: torch.Generator | None = None, dtype=torch.float32,
                       device="cpu") -> torch.Tensor:
    """n points spread evenly over the unit sphere of R^dim, turned by a uniformly random rotation: (n, dim) tensor.

    In 3D a Fibonacci lattice, in 2D equally spaced angles; in other dimensions independent draws
    (`sample_unit_sphere`). The rotation makes every point uniform on the sphere, so that a mean over the points is an
    unbiased estimate of the mean over the sphere, and the even spread makes it a far steadier one than a mean over
    as many independent draws.
    """
    if dim not in (2, 3):
        return sample_unit_sphere(n, dim, generator=generator, dtype=dtype, device=device)
    index = torch.arange(n, dtype=torch.float64) + 0.5
    if dim == 2:
        angle = 2.0 * math.pi * index / n
        lattice = torch.stack([angle.cos(), angle.sin()], dim=1)
    else:
        height = 1.0 - 2.0 * index / n  # equal-area rings, each turned by the golden angle from the last
        ring = (1.0 - height**2).sqrt()
        angle = math.pi * (3.0 - math.sqrt(5.0)) * index
        lattice = torch.stack([ring * angle.cos(), ring * angle.sin(), height], dim=1)
    # a uniformly random orthogonal matrix: the Q of a Gaussian matrix's QR, its columns' signs fixed by R's diagonal
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    rotation = q * torch.sign(torch.diagonal(r))
    return (lattice @ rotation.T).to(dtype=dtype, device=device)


def sample_unit_ball(n: int, dim: int, *, generator: torch.Generator | None = None, dtype=torch.float32,
                     device="cpu") -> torch.Tensor:
    """n points drawn uniformly in the unit ball of R^dim: (n, dim) tensor."""
    direction = sample_unit_sphere(n, dim, generator=generator, dtype=dtype)
    radius = torch.rand(n, 1, generator=generator, dtype=dtype, device="cpu") ** (1.0 / dim)
    return (direction * radius).to(device)


def log_volume_constant(flow: Flow, radius: torch.Tensor, dim: int) -> torch.Tensor:
    """log vol f^-1(B(0, R)) = log vol(B(0, 1)) + D log R - log|det df| for a constant-Jacobian flow."""
    return log_unit_ball_volume(dim) + dim * torch.log(radius) - flow.log_det_constant()


def log_volume_monte_carlo(flow: Flow, radius: torch.Tensor, unit_ball: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo log vol f^-1(B(0, R)) = log[vol(B(0, 1)) R^D mean_k |det df^-1(R e_k)|], e_k in the unit ball.

    Differentiable in both R and the flow's parameters: the points R e_k are mapped back with the inverse, which also
    gives |det df^-1(z)| = 1 / |det df(f^-1(z))| (`Flow.inverse_and_log_det`). The mean is a log-mean-exp.

    Args:
        flow: any flow.
        radius: 0-dim tensor R.
        unit_ball: (m, D) samples uniform in the unit ball.
    """
    dim = unit_ball.shape[1]
    _, logdet_forward = flow.inverse_and_log_det(radius * unit_ball)
    log_mean_w = torch.logsumexp(-logdet_forward, dim=0) - math.log(unit_ball.shape[0])
    return log_unit_ball_volume(dim) + dim * torch.log(radius) + log_mean_w


def oneflow_loss(flow: Flow, x: torch.Tensor, alpha: float, *, unit_ball: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """OneFlow objective on a batch: log volume of the preimage of the ball holding 1 - alpha of the batch.

    Args:
        flow: the flow f.
        x: (n, D) batch.
        alpha: share of the batch left outside the ball.
        unit_ball: (m, D) uniform unit-ball samples; required when the flow's Jacobian is not constant.

    Returns:
        (loss, radius): the log volume and the Bernstein radius R, both 0-dim tensors.

    Only the largest `window_size(n, alpha)` radii carry Bernstein weight, so when the loss needs gradient the batch
    is mapped once without it, and again with it for the rows of those radii only (the same loss and gradient).
    """
    n, window = len(x), window_size(len(x), alpha)
    if torch.is_grad_enabled() and window < n:
        with torch.no_grad():
            z, _ = flow(x)
        x = x[torch.topk(z.norm(dim=1), window, sorted=False).indices]
    z, _ = flow(x)
    radius = bernstein_quantile(z.norm(dim=1), alpha, batch_size=n)
    if flow.constant_jacobian:
        return log_volume_constant(flow, radius, x.shape[1]), radius
    if unit_ball is None:
        raise ValueError("a general flow needs unit-ball samples for its Monte-Carlo volume")
    return log_volume_monte_carlo(flow, radius, unit_ball), radius


def likelihood_loss(flow: Flow, x: torch.Tensor) -> torch.Tensor:
    """LL-Flow objective: mean negative log-likelihood of x under f and a standard normal latent, per point."""
    z, logdet = flow(x)
    dim = x.shape[1]
    log_pz = -0.5 * (z * z).sum(dim=1) - 0.5 * dim * math.log(2.0 * math.pi)
    return -(log_pz + logdet).mean()


def trimmed_mean(values: torch.Tensor, trim: float) -> torch.Tensor:
    """Mean of the smallest ceil((1 - trim) n) of `values` (1-D): the largest share `trim` is left out."""
    keep = max(1, math.ceil((1.0 - trim) * values.numel()))
    if keep >= values.numel():
        return values.mean()
    return torch.topk(values, keep, largest=False, sorted=False).values.mean()


def nearest(queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Index into `points` (m, D) of the nearest point to each row of `queries` (n, D): (n,) long tensor, no gradient.

    A k-d tree (scipy) on the CPU; a brute-force distance matrix on other devices.
    """
    with torch.no_grad():
        if queries.device.type == "cpu":
            from scipy.spatial import cKDTree

            _, index = cKDTree(points.double().numpy()).query(queries.double().numpy())
            return torch.as_tensor(index, dtype=torch.long)
        return torch.cdist(queries, points).argmin(dim=1)


def surface_loss(flow: Flow, x: torch.Tensor, latent_surface: torch.Tensor, radius: float, *, trim: float = 0.02,
                 radial_weight: float = RADIAL_WEIGHT, radial_points: int | None = None,
                 level: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Surface objective on a batch: the surface f^-1(S(0, R)) should pass through the points and nowhere else.

    The loss is a two-way Chamfer distance between the batch and the surface samples f^-1(z_k), z_k = R u_k on the
    latent sphere (or on another latent surface, the level set `level` = R), plus a radial term that pulls each
    ||f(x)|| (each level) towards R:

        trimmed_mean_i min_k |x_i - f^-1(z_k)| + mean_k min_i |x_i - f^-1(z_k)|
        + radial_weight * trimmed_mean_i | ||f(x_i)|| - R | / R.

    The first term lets no point lie far from the surface, the second lets no part of the surface wander away from
    the points (without it the points crowd onto a patch of the sphere and the rest of it maps anywhere), and the
    radial term keeps the points on the sphere's side of the map, so that the latent radius stays a distance to the
    surface. The point terms leave out the share `trim` of the batch that lies farthest (outliers the envelope kept).
    Distances are Euclidean, not squared, so a stray point pulls no harder than a point on the surface.

    Args:
        flow: the flow f.
        x: (n, D) batch.
        latent_surface: (m, D) samples z_k of the latent surface: R times unit-sphere samples, or points where
            `level` is R.
        radius: latent radius R of the surface (its level).
        trim: share of the batch left out of the point terms.
        radial_weight: weight of the radial term; 0 leaves it out, and the forward pass with it.
        radial_points: the radial term is taken over the first `radial_points` rows of x only (None: all of them).
            It only steers, and it is the one term that needs the forward pass, so a random batch's first few
            hundred rows serve it as well as all of them, at a fraction of the cost.
        level: the latent surface's level function, (n, D) -> (n,) (`pcflow.latent.LatentTorus.level`); None: the
            norm, whose level set is the sphere.
    """
    surface = flow.inverse(latent_surface)
    # the nearest partners are found without gradient; the distances to them carry it (the gradient of a minimum)
    to_surface = trimmed_mean((x - surface[nearest(x, surface)]).norm(dim=1), trim)
    to_points = (surface - x[nearest(surface, x)]).norm(dim=1).mean()
    if radial_weight == 0:
        return to_surface + to_points
    z, _ = flow(x if radial_points is None else x[:radial_points])
    levels = z.norm(dim=1) if level is None else level(z)
    radial = trimmed_mean((levels - radius).abs() / radius, trim)
    return to_surface + to_points + radial_weight * radial


class Objective(nn.Module):
    """A flow's training loss as a module, so that DistributedDataParallel can wrap it.

    Args:
        flow: the flow being trained (a submodule: its parameters are this module's).
        objective: ``'volume'`` (OneFlow), ``'likelihood'`` (LL-Flow) or ``'surface'`` (`surface_loss`).
        alpha: share of each batch left outside the ball (volume objective).
        radius: latent radius of the surface (surface objective).
        radial_points: rows of each batch in the surface objective's radial term (see `surface_loss`).
        level: the surface objective's latent level function (see `surface_loss`; None: the sphere's).
    """

    def __init__(self, flow: Flow, objective: str, alpha: float, radius: float | None = None,
                 radial_points: int | None = RADIAL_POINTS, level: Callable | None = None):
        super().__init__()
        self.flow = flow
        self.objective = objective
        self.alpha = alpha
        self.radius = radius
        self.radial_points = radial_points
        self.level = level

    def forward(self, x: torch.Tensor, samples: torch.Tensor | None = None, *,
                radial_weight: float = RADIAL_WEIGHT) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, radius) on a batch x: (n, D).

        `samples` are the unit-ball samples of a general flow's volume, or the latent surface samples of the surface
        objective (on the sphere of radius `radius`, or on the level set of `level`); `radial_weight` weighs the
        surface objective's radial term (see `surface_loss`). The radius is the Bernstein radius of the volume
        objective, the fixed surface radius of the surface objective and NaN for the likelihood objective.
        """
        if self.objective == "likelihood":
            return likelihood_loss(self.flow, x), torch.full((), float("nan"), dtype=x.dtype, device=x.device)
        if self.objective == "surface":
            loss = surface_loss(self.flow, x, samples, self.radius, radial_weight=radial_weight,
                                radial_points=self.radial_points, level=self.level)
            return loss, torch.full((), self.radius, dtype=x.dtype, device=x.device)
        return oneflow_loss(self.flow, x, self.alpha, unit_ball=samples)
