"""Latent tori: the surfaces of genus 1 and more a flow's inverse maps onto a scanned object with handles.

A flow is a diffeomorphism, so the preimage of a latent torus is a genus-1 surface without self-intersections, as
the preimage of the sphere is a genus-0 one; solid tori joined side by side, each overlapping the next, are bounded by
a surface with one handle per torus (`LatentTori`). The level function plays the part of the latent radius ||z||:
the surface of size b is where the level is b.
"""

from __future__ import annotations

import functools
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
    kind = "torus"  # `pcflow.pipeline.reconstruct.latent_kind`'s name, `pcflow.meshing.model_template`'s key

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
        grid, density = self._tube_density(size)
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

    def _tube_density(self, size: float) -> tuple[np.ndarray, np.ndarray]:
        """`_TABLE` tube angles over [0, 2 pi] and the area per tube angle there of the surface of size `size`, over
        2 pi size: the ring's length times the tube's arc length."""
        grid = np.linspace(0.0, 2.0 * np.pi, _TABLE)
        return grid, (self.major + size * np.cos(grid)) * np.hypot(np.sin(grid), self.stretch * np.cos(grid))

    def area(self, size: float) -> float:
        """Area of the surface of size `size`: the ring's length times the tube's arc length, integrated over the
        tube angle."""
        grid, density = self._tube_density(size)
        return float(2.0 * np.pi * size * np.sum(0.5 * (density[1:] + density[:-1]) * np.diff(grid)))

    def bounds(self, size: float) -> np.ndarray:
        """(2, 3) low and high corners of a box holding the surface of size `size`."""
        _, _, axis = _frame(self.axis)
        # the ring's circle reaches major * sqrt(1 - a_i^2) along axis i, the tube adds at most its own half-extent
        reach = self.major * np.sqrt(np.clip(1.0 - axis**2, 0.0, 1.0)) + size * max(1.0, self.stretch)
        return np.stack([np.asarray(self.center) - reach, np.asarray(self.center) + reach])

    def to_array(self) -> np.ndarray:
        """(8,) array: center, axis, major, stretch (what a model file keeps)."""
        return np.array([*self.center, *self.axis, self.major, self.stretch], dtype=np.float64)

    @classmethod
    def from_array(cls, values) -> "LatentTorus":
        values = [float(value) for value in np.asarray(values, dtype=np.float64)]
        return cls(tuple(values[:3]), tuple(values[3:6]), values[6], values[7])


#: Draws of the seeded Monte-Carlo estimate of `LatentTori.log_solid_volume`.
_VOLUME_DRAWS = 400_000
#: The width of the seam where joined tori meet, as a share of the surface's size (`fit_tori`'s `LatentTori.blend`).
BLEND = 0.5
#: `LatentTori.points` draws from a mesh of the surface whose grid spacing is this share of the tube's least
#: half-extent, and moves the points from its faces onto the surface in this many Newton steps (they start within
#: about 1% of the size of it).
_SAMPLING_SPACING = 0.35
_SAMPLING_NEWTON_STEPS = 2


def smooth_min(levels: torch.Tensor, blend: float) -> torch.Tensor:
    """The least of each column of `levels` (K, N), with a seam `blend` wide (the polynomial smooth minimum, taken
    pairwise in turn): differentiable everywhere, below the least by at most blend / 4."""
    out = levels[0]
    for other in levels[1:]:
        h = (0.5 + 0.5 * (other - out) / blend).clamp(0.0, 1.0)
        out = other * (1.0 - h) + out * h - blend * h * (1.0 - h)
    return out


class ImplicitSurface:
    """What a latent surface given by a level function (`level`, the surface of size b where it is b) gets from it:
    projections onto the surface, meshes, and points spread over it and drawn inside it. A subclass gives `level`,
    `bounds(size)` (a box holding the surface of size `size`) and `_sampling_spacing(size)` (the grid spacing of the
    mesh `points` draws from)."""

    def project(self, z: np.ndarray, size: float, steps: int | None = None) -> np.ndarray:
        """(M, 3) latent points moved onto the surface of size `size` (`pcflow.meshing.implicit.project_onto`;
        `steps` Newton steps, default its own)."""
        from .meshing.implicit import NEWTON_STEPS, project_onto

        return project_onto(self.level, z, size, NEWTON_STEPS if steps is None else steps)

    def mesh(self, size: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
        """The surface of size `size` meshed on a grid of `spacing` (`pcflow.meshing.implicit.level_set_mesh`)."""
        from .meshing.implicit import level_set_mesh

        return level_set_mesh(self.level, self.bounds(size), size, spacing)

    def points(self, n: int, size: float, *, generator: torch.Generator | None = None, dtype=torch.float32,
               device="cpu") -> torch.Tensor:
        """n points spread by area over the surface of size `size`: (n, 3).

        Faces of a fine mesh of the surface (`mesh`, cached per size) are drawn in proportion to their area at
        evenly spaced steps from a uniform start, a uniform point of each is taken, and the points are moved onto
        the surface (`project`, `_SAMPLING_NEWTON_STEPS` steps: to about 1e-7 of the size).
        """
        vertices, faces, cumulative = _sampling_mesh(self, float(size))
        draws = torch.rand(n + 1, 2, generator=generator, dtype=torch.float64).numpy()
        steps = (np.arange(n) + draws[0, 0]) / n * cumulative[-1]
        chosen = faces[np.minimum(np.searchsorted(cumulative, steps, side="right"), len(faces) - 1)]
        a, b = draws[1:, 0], draws[1:, 1]
        fold = a + b > 1.0  # a uniform point of the triangle: the unit square's far half folded back
        a, b = np.where(fold, 1.0 - a, a), np.where(fold, 1.0 - b, b)
        corners = vertices[chosen]
        z = corners[:, 0] + a[:, None] * (corners[:, 1] - corners[:, 0]) + b[:, None] * (corners[:, 2] - corners[:, 0])
        return torch.as_tensor(self.project(z, size, _SAMPLING_NEWTON_STEPS), dtype=dtype, device=device)

    def solid_points(self, n: int, size: float, *, generator: torch.Generator | None = None, dtype=torch.float32,
                     device="cpu") -> torch.Tensor:
        """n points drawn uniformly in the solid of size `size` (level <= size): (n, 3), by rejection from a box
        holding it."""
        low, high = (torch.as_tensor(corner) for corner in self.bounds(size))
        kept, found = [], 0
        while found < n:
            box = low + (high - low) * torch.rand(4 * n, 3, generator=generator, dtype=torch.float64)
            kept.append(box[self.level(box) <= size])
            found += len(kept[-1])
        return torch.cat(kept)[:n].to(dtype=dtype, device=device)

    def log_solid_volume(self, size: float) -> float:
        """log of the solid's volume: the box's, times the share of `_VOLUME_DRAWS` seeded uniform draws in it that
        the solid holds (about 0.5% standard error)."""
        low, high = self.bounds(size)
        box = torch.as_tensor(low + (high - low) * np.random.default_rng(0).random((_VOLUME_DRAWS, 3)))
        share = float((self.level(box) <= size).double().mean())
        return math.log(float(np.prod(high - low)) * share)


@dataclass(frozen=True)
class LatentTori(ImplicitSurface):
    """Tori joined side by side: the union of their solid tori with a rounded seam, whose level function is the
    smooth minimum of theirs (`smooth_min`),

        level(z) = smin_j level_j(z),

    so that the surface of size b bounds the solid tori of size b, joined where they meet by a seam about `blend`
    wide. Where each torus's solid overlaps the next one's in one piece and leaves its hole open, the surface has
    one handle per torus (`genus`).

    Attributes:
        tori: the `LatentTorus` pieces, two or more.
        blend: the seam's width, > 0.

    Example:
        >>> left = LatentTorus((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.8)
        >>> right = LatentTorus((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.8)
        >>> round(float(LatentTori((left, right), 0.1).level(torch.tensor([[0.0, 0.0, 0.0]]).double())[0]), 6)
        0.175
    """

    tori: tuple
    blend: float

    kind = "tori"

    @property
    def genus(self) -> int:
        return len(self.tori)

    def level(self, z: torch.Tensor) -> torch.Tensor:
        """The level of each row of z: (N, 3) -> (N,), differentiable (smooth away from the rings and axes)."""
        return smooth_min(torch.stack([torus.level(z) for torus in self.tori]), self.blend)

    def nearest_torus(self, z: np.ndarray) -> np.ndarray:
        """(M,) index of the torus of least level at each of the (M, 3) latent points: the piece a point is on."""
        z = torch.as_tensor(np.array(z, dtype=np.float64))
        return torch.stack([torus.level(z) for torus in self.tori]).argmin(dim=0).numpy()

    def thinnest(self, size: float) -> float:
        """The least half-extent of the tubes of the surface of size `size`."""
        return size * min(1.0, *(torus.stretch for torus in self.tori))

    def _sampling_spacing(self, size: float) -> float:
        return _SAMPLING_SPACING * self.thinnest(size)

    def bounds(self, size: float) -> np.ndarray:
        """(2, 3) low and high corners of a box holding the surface of size `size`."""
        boxes = np.stack([torus.bounds(size + self.blend) for torus in self.tori])
        return np.stack([boxes[:, 0].min(axis=0), boxes[:, 1].max(axis=0)])

    def to_array(self) -> np.ndarray:
        """(8 genus + 1,) array: each torus's `LatentTorus.to_array` in turn, then the blend (a model file's)."""
        return np.concatenate([*(torus.to_array() for torus in self.tori), [self.blend]])

    @classmethod
    def from_array(cls, values) -> "LatentTori":
        values = np.asarray(values, dtype=np.float64).ravel()
        return cls(tuple(LatentTorus.from_array(row) for row in values[:-1].reshape(-1, 8)), float(values[-1]))


@functools.lru_cache(maxsize=8)
def _sampling_mesh(surface: ImplicitSurface, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fine mesh of the surface of size `size` (`ImplicitSurface.mesh` at its `_sampling_spacing`) and its faces'
    cumulative areas."""
    vertices, faces = surface.mesh(size, surface._sampling_spacing(size))
    corners = vertices[faces]
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return vertices, faces, np.cumsum(areas)


def template_from_array(values):
    """The latent template a model file keeps as an array (`to_array`): a `LatentTorus` (8 values) or
    `LatentTori` (8 per torus and the blend)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 8:
        return LatentTorus.from_array(values)
    if values.size % 8 != 1 or values.size < 17:
        raise PcflowError(f"a latent template is 8 values per torus (and a blend for several), got {values.size}")
    return LatentTori.from_array(values)


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


def _heights_and_radii(p: torch.Tensor, center: torch.Tensor, unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Height along each of S axes (unit vectors through centres: (S, 3) each) of the points p (N, 3), and distance
    from the axis: two (S, N) tensors."""
    w = p[None] - center[:, None, :]
    height = (w * unit[:, None, :]).sum(dim=2)
    return height, (w - height[..., None] * unit[:, None, :]).norm(dim=2)


def _torus_levels(p: torch.Tensor, center: torch.Tensor, axis: torch.Tensor, major: torch.Tensor,
                  stretch: torch.Tensor) -> torch.Tensor:
    """`LatentTorus.level` of the points p (N, 3) for S tori given as tensors (centres and axes (S, 3), the axes of
    any length; ring radii and stretches (S,)): (S, N)."""
    height, rho = _heights_and_radii(p, center, axis / axis.norm(dim=1, keepdim=True))
    return torch.sqrt((rho - major[:, None]) ** 2 + (height / stretch[:, None]) ** 2 + 1e-30)


def _seeded_subset(points: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """The rows of `points` as float64, or a seeded random subset of `limit` of them (in their order)."""
    data = np.asarray(points, dtype=np.float64)
    if len(data) > limit:
        data = data[np.sort(np.random.default_rng(seed).choice(len(data), limit, replace=False))]
    return data


def _fit_from(p: torch.Tensor, center0: torch.Tensor, axes0: torch.Tensor, steps: int) -> list:
    """Tori fitted to points p from starts (one centre, S unit axes: (S, 3)) for `steps` Adam steps, all starts at
    once (each start's loss and Adam update are its own): a list of (residual, leaves a hole, torus, size), one per
    start."""
    centers = center0.expand(len(axes0), 3)
    height, rho = _heights_and_radii(p, centers, axes0)
    major0 = rho.mean(dim=1)
    half_width = (rho - major0[:, None]).abs().amax(dim=1).clamp_min(1e-6)
    stretch0 = (height.abs().amax(dim=1) / half_width).clamp(0.2, 5.0)
    size0 = torch.sqrt((rho - major0[:, None]) ** 2 + (height / stretch0[:, None]) ** 2).median(dim=1).values
    center = centers.clone().requires_grad_(True)
    axis = axes0.clone().requires_grad_(True)
    logs = torch.stack([major0.log(), size0.log(), stretch0.log()], dim=1).requires_grad_(True)
    optimizer = adam([center, axis, logs], lr=0.01)
    for _ in range(steps):
        major, size, stretch = logs.exp().unbind(dim=1)
        losses = (_torus_levels(p, center, axis, major, stretch) - size[:, None]).abs().mean(dim=1)
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
    out = []
    with torch.no_grad():
        for k in range(len(axes0)):
            major, size, stretch = (float(value) for value in logs[k].exp())
            unit = (axis[k] / axis[k].norm()).numpy()
            torus = LatentTorus(tuple(center[k].numpy()), tuple(unit), major, stretch)
            out.append((float(losses[k]) / size, size < major, torus, size))
    return out


def fit_torus(points: np.ndarray, *, seed: int = 0) -> tuple[LatentTorus, float, float] | None:
    """The stretched torus nearest to points that sample a genus-1 surface: (torus, size, residual) or None.

    The centre, axis, ring radius, size and stretch are fitted to minimise the mean |level - size| (Adam on at most
    `FIT_POINTS` points) from the points' mean and each of several axes: the principal axes (which may be any
    directions for an object about as tall as it is wide) and `SPREAD_STARTS` spread directions, screened for
    `SCREEN_STEPS` steps; the `KEPT_STARTS` best are fitted for `FIT_STEPS`, and the one with the smallest residual
    (that mean over the size) whose tube leaves a hole (size < major) is kept. None when none does.
    """
    p = torch.as_tensor(_seeded_subset(points, FIT_POINTS, seed))
    center0 = p.mean(dim=0)
    _, vectors = torch.linalg.eigh(torch.cov((p - center0).T))
    starts = [*vectors.T, *_spread_axes(SPREAD_STARTS)]
    screening = _fit_from(p, center0, torch.stack(starts), SCREEN_STEPS)
    kept = sorted(range(len(starts)), key=lambda k: screening[k][0])[:KEPT_STARTS]
    best = None
    for residual, hole, torus, size in _fit_from(p, center0, torch.stack([starts[k] for k in kept]), FIT_STEPS):
        if hole and (best is None or residual < best[2]):
            best = (torus, size, residual)
    return best


#: `fit_tori`'s rounds of giving each point to its nearest torus and fitting the tori again, and the most points of
#: a cluster each torus is fitted to.
REASSIGN_ROUNDS = 1
CLUSTER_POINTS = 1_000
#: A torus is fitted again only where more than this share of its cluster's points changed.
REFIT_SHARE = 0.02
#: The joint fit of all the tori: at most this many of the points, this many steps.
JOINT_POINTS = 2_000
JOINT_STEPS = 150


def _kmeans(points: np.ndarray, k: int, seed: int, iterations: int = 30) -> np.ndarray:
    """(N,) cluster labels of k-means (Lloyd's iterations from a seeded k-means++ start) on the rows of `points`."""
    rng = np.random.default_rng(seed)
    centers = points[[rng.integers(len(points))]]
    for _ in range(1, k):  # each next start drawn in proportion to the squared distance from the nearest so far
        nearest = ((points[:, None, :] - centers[None]) ** 2).sum(axis=2).min(axis=1)
        centers = np.vstack([centers, points[rng.choice(len(points), p=nearest / nearest.sum())]])
    labels = np.zeros(len(points), dtype=int)
    for _ in range(iterations):
        labels = ((points[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array([points[labels == j].mean(axis=0) if np.any(labels == j) else centers[j] for j in range(k)])
        if np.allclose(moved, centers):
            break
        centers = moved
    return labels


def _spread_subset(points: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of the rows of `points`, every k-th (the rows are a seeded random subset already)."""
    return points[::max(1, -(-len(points) // limit))]


def fit_tori(points: np.ndarray, genus: int, *, seed: int = 0) -> tuple[LatentTori, float, float] | None:
    """The `genus` tori, joined side by side, nearest to points that sample a surface with `genus` handles:
    (tori, size, residual) or None.

    The points are split into `genus` clusters (k-means, seeded) and a torus is fitted to each (`fit_torus`: a
    cluster holds one hole's ring, open where it meets the next); then, `REASSIGN_ROUNDS` times, each point goes to
    the torus whose surface it lies closest to and the tori are fitted again (k-means cuts a small ring's cluster
    into a larger neighbour); and then all of them are fitted together with one shared size, to
    minimise the mean |smin_j level_j - size| (seam `BLEND` times the size; Adam on at most `JOINT_POINTS` points,
    `JOINT_STEPS` steps). None where a cluster's torus or the joint fit leaves no hole.
    """
    if genus < 2:
        raise PcflowError(f"fit_tori joins two or more tori, got genus {genus}")
    data = _seeded_subset(points, FIT_POINTS, seed)
    labels = _kmeans(data, genus, seed)
    p = torch.as_tensor(data)
    pieces, fitted_on = [None] * genus, [None] * genus
    for round_ in range(1 + REASSIGN_ROUNDS):
        for j in range(genus):
            members = labels == j
            if fitted_on[j] is not None and np.sum(members != fitted_on[j]) <= REFIT_SHARE * np.sum(members):
                continue  # the cluster barely changed: its torus stands
            pieces[j] = fit_torus(_spread_subset(data[members], CLUSTER_POINTS), seed=seed) \
                if np.sum(members) >= 10 else None
            fitted_on[j] = members
        if any(piece is None for piece in pieces):
            return None
        if round_ == REASSIGN_ROUNDS:
            break
        with torch.no_grad():  # each point to the torus it lies closest to the surface of
            offsets = torch.stack([(torus.level(p) - size).abs() for torus, size, _ in pieces])
        closest = offsets.argmin(dim=0).numpy()
        if np.array_equal(closest, labels):
            break
        labels = closest
    p = torch.as_tensor(_spread_subset(data, JOINT_POINTS))
    centers = torch.tensor(np.array([piece[0].center for piece in pieces])).requires_grad_(True)
    axes = torch.tensor(np.array([piece[0].axis for piece in pieces])).requires_grad_(True)
    logs = torch.tensor(np.log([[piece[0].major, piece[0].stretch] for piece in pieces])).requires_grad_(True)
    log_size = torch.tensor(math.log(float(np.median([piece[1] for piece in pieces])))).requires_grad_(True)
    optimizer = adam([centers, axes, logs, log_size], lr=0.01)
    for _ in range(JOINT_STEPS):
        size = log_size.exp()
        levels = _torus_levels(p, centers, axes, *logs.exp().unbind(dim=1))
        loss = (smooth_min(levels, BLEND * size) - size).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        size = float(log_size.exp())
        tori = tuple(LatentTorus(tuple(centers[j].numpy()), tuple((axes[j] / axes[j].norm()).numpy()),
                                 float(logs[j, 0].exp()), float(logs[j, 1].exp())) for j in range(genus))
    if any(size >= torus.major for torus in tori):
        return None
    return LatentTori(tori, BLEND * size), size, float(loss.detach()) / size
