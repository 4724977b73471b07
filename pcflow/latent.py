"""The latent torus: the genus-1 surface a flow's inverse maps onto a scanned object with a handle.

A flow is a diffeomorphism, so the preimage of a latent torus is a genus-1 surface without self-intersections, as
the preimage of the sphere is a genus-0 one. The torus's level function plays the part of the latent radius ||z||:
its surface of size b is where the level is b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import PcflowError
from .optim import adam

#: The golden ratio's fractional part: the second coordinate of the lattice that spreads points over the torus.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: Points of the table that inverts the torus's area along its tube angle.
_TABLE = 513


def _frame(axis: np.ndarray) -> np.ndarray:
    """(3, 3) rows e1, e2, axis: an orthonormal frame whose last row is the unit `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    first = np.cross(axis, helper)
    first /= np.linalg.norm(first)
    return np.stack([first, np.cross(axis, first), axis])


@dataclass(frozen=True)
class LatentTorus:
    """A torus in latent space, its tube stretched along its axis: the level sets of

        level(z) = sqrt((rho - major)^2 + (h / stretch)^2),

    rho the distance of z from the axis through `center`, h its height along the axis. The surface of size b
    (level b, b < major) is a torus of ring radius `major` whose tube is an ellipse, b across and `stretch` * b along
    the axis.

    Attributes:
        center: (3,) centre.
        axis: (3,) unit axis.
        major: ring radius, > 0.
        stretch: the tube's axial half-height over its radial half-width, > 0.

    Example:
        >>> torus = LatentTorus((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 2.0, 1.0)
        >>> float(torus.level(torch.tensor([[2.5, 0.0, 0.0]], dtype=torch.float64))[0])
        0.5
    """

    center: tuple
    axis: tuple
    major: float
    stretch: float = 1.0

    genus = 1

    def _tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        center = torch.as_tensor(self.center, dtype=like.dtype, device=like.device)
        return center, torch.as_tensor(self.axis, dtype=like.dtype, device=like.device)

    def level(self, z: torch.Tensor) -> torch.Tensor:
        """The level of each row of z: (N, 3) -> (N,), differentiable (smooth away from the ring and the axis)."""
        center, axis = self._tensors(z)
        w = z - center
        height = w @ axis
        rho = (w - height[:, None] * axis).norm(dim=1)
        return torch.sqrt((rho - self.major) ** 2 + (height / self.stretch) ** 2 + 1e-30)

    def point(self, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
        """(M, 3) points of the surface of size `size` at ring angles `u` and tube angles `v` (radians)."""
        first, second, axis = _frame(self.axis)
        ring = self.major + size * np.cos(v)
        around = np.cos(u)[:, None] * first + np.sin(u)[:, None] * second
        return np.asarray(self.center) + ring[:, None] * around + (self.stretch * size * np.sin(v))[:, None] * axis

    def angles(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ring and tube angles (u, v) in (-pi, pi] of (M, 3) latent points."""
        first, second, axis = _frame(self.axis)
        w = np.asarray(z, dtype=np.float64) - np.asarray(self.center)
        across, along = w @ first, w @ second
        u = np.arctan2(along, across)
        v = np.arctan2((w @ axis) / self.stretch, np.hypot(across, along) - self.major)
        return u, v

    def points(self, n: int, size: float, *, generator: torch.Generator | None = None, dtype=torch.float32,
               device="cpu") -> torch.Tensor:
        """n points spread evenly by area over the surface of size `size`, shifted by random angles: (n, 3).

        A lattice (k / n, k times the golden ratio) over (tube angle share, ring angle share), the tube angle taken
        through the inverse of the area's distribution along it, both shifted by a uniform draw: every point is
        uniform on the surface, and the spread is even.
        """
        if not 0 < size < self.major:
            raise PcflowError(f"a torus surface needs 0 < size < major ({self.major:.4g}), got {size!r}")
        shift = torch.rand(2, generator=generator, dtype=torch.float64).numpy()
        index = np.arange(n) + 0.5
        share = np.mod(index / n + shift[0], 1.0)
        u = 2.0 * np.pi * np.mod(index * _GOLDEN + shift[1], 1.0)
        grid = np.linspace(0.0, 2.0 * np.pi, _TABLE)
        # area per tube angle: ring length times the tube's arc length
        density = (self.major + size * np.cos(grid)) * np.hypot(np.sin(grid), self.stretch * np.cos(grid))
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
        v = np.interp(share * cumulative[-1], cumulative, grid)
        return torch.as_tensor(self.point(u, v, size), dtype=dtype, device=device)

    def solid_points(self, n: int, size: float, *, generator: torch.Generator | None = None, dtype=torch.float32,
                     device="cpu") -> torch.Tensor:
        """n points drawn uniformly in the solid torus of size `size` (level <= size): (n, 3), by rejection from
        its bounding box."""
        first, second, axis = _frame(self.axis)
        reach, height = self.major + size, self.stretch * size
        kept, found = [], 0
        while found < n:
            box = torch.rand(2 * n, 3, generator=generator, dtype=torch.float64) * 2.0 - 1.0
            local = box * torch.tensor([reach, reach, height], dtype=torch.float64)
            rho = local[:, :2].norm(dim=1)
            inside = local[((rho - self.major) ** 2 + (local[:, 2] / self.stretch) ** 2 <= size**2)]
            kept.append(inside)
            found += len(inside)
        local = torch.cat(kept)[:n].numpy()
        world = np.asarray(self.center) + local @ np.stack([first, second, axis])
        return torch.as_tensor(world, dtype=dtype, device=device)

    def log_solid_volume(self, size: float) -> float:
        """log of the solid torus's volume, 2 pi^2 major size^2 stretch."""
        return math.log(2.0 * math.pi**2 * self.major * size**2 * self.stretch)

    def to_array(self) -> np.ndarray:
        """(8,) array: center, axis, major, stretch (what a model file keeps)."""
        return np.array([*self.center, *self.axis, self.major, self.stretch], dtype=np.float64)

    @classmethod
    def from_array(cls, values) -> "LatentTorus":
        values = [float(value) for value in np.asarray(values, dtype=np.float64)]
        return cls(tuple(values[:3]), tuple(values[3:6]), values[6], values[7])


#: `fit_torus` fits at most this many of the points (a seeded subset), for this many steps.
FIT_POINTS = 4_000
FIT_STEPS = 300
#: `fit_torus` starts from the principal axes and this many more directions spread over a hemisphere, fits each
#: for `SCREEN_STEPS` steps, and fits the `KEPT_STARTS` with the least residual for `FIT_STEPS`.
SPREAD_STARTS = 10
SCREEN_STEPS = 60
KEPT_STARTS = 2


def _spread_axes(n: int) -> torch.Tensor:
    """(n, 3) unit directions spread evenly over the upper hemisphere (a Fibonacci lattice)."""
    index = np.arange(n) + 0.5
    height = index / n
    angle = np.pi * (1.0 + math.sqrt(5.0)) * index
    across = np.sqrt(1.0 - height**2)
    return torch.as_tensor(np.stack([across * np.cos(angle), across * np.sin(angle), height], axis=1))


def _fit_from(p: torch.Tensor, center0: torch.Tensor, axis0: torch.Tensor, steps: int):
    """The torus fitted to points p from a start (centre, unit axis) for `steps` Adam steps:
    (residual, leaves a hole, torus, size)."""
    w = p - center0
    height = w @ axis0
    rho = (w - height[:, None] * axis0).norm(dim=1)
    major0 = rho.mean()
    half_width = (rho - major0).abs().max().clamp_min(1e-6)
    stretch0 = (height.abs().max() / half_width).clamp(0.2, 5.0)
    size0 = torch.sqrt((rho - major0) ** 2 + (height / stretch0) ** 2).median()
    center = center0.clone().requires_grad_(True)
    axis = axis0.clone().requires_grad_(True)
    logs = torch.stack([major0.log(), size0.log(), stretch0.log()]).requires_grad_(True)
    optimizer = adam([center, axis, logs], lr=0.01)
    for _ in range(steps):
        major, size, stretch = logs.exp()
        unit = axis / axis.norm()
        w = p - center
        height = w @ unit
        rho = (w - height[:, None] * unit).norm(dim=1)
        level = torch.sqrt((rho - major) ** 2 + (height / stretch) ** 2 + 1e-30)
        loss = (level - size).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        major, size, stretch = (float(value) for value in logs.exp())
        unit = (axis / axis.norm()).numpy()
        torus = LatentTorus(tuple(center.detach().numpy()), tuple(unit), major, stretch)
        return float(loss) / size, size < major, torus, size


def fit_torus(points: np.ndarray, *, seed: int = 0) -> tuple[LatentTorus, float, float] | None:
    """The stretched torus nearest to points that sample a genus-1 surface: (torus, size, residual) or None.

    The centre, axis, ring radius, size and stretch are fitted to minimise the mean |level - size| (Adam on at most
    `FIT_POINTS` points) from the points' mean and each of several axes: the principal axes (which may be any
    directions for an object about as tall as it is wide) and `SPREAD_STARTS` spread directions, screened for
    `SCREEN_STEPS` steps; the `KEPT_STARTS` best are fitted for `FIT_STEPS`, and the one with the smallest residual
    (that mean over the size) whose tube leaves a hole (size < major) is kept. None when none does.
    """
    data = np.asarray(points, dtype=np.float64)
    if len(data) > FIT_POINTS:
        data = data[np.sort(np.random.default_rng(seed).choice(len(data), FIT_POINTS, replace=False))]
    p = torch.as_tensor(data)
    center0 = p.mean(dim=0)
    _, vectors = torch.linalg.eigh(torch.cov((p - center0).T))
    starts = [*vectors.T, *_spread_axes(SPREAD_STARTS)]
    screened = sorted(range(len(starts)), key=lambda k: _fit_from(p, center0, starts[k], SCREEN_STEPS)[0])
    best = None
    for k in screened[:KEPT_STARTS]:
        residual, hole, torus, size = _fit_from(p, center0, starts[k], FIT_STEPS)
        if hole and (best is None or residual < best[2]):
            best = (torus, size, residual)
    return best
