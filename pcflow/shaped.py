"""A latent surface shaped like the data: the template that lets a surface fit start from the object's shape.

The flow's inverse maps any closed latent surface onto the scan without self-intersections, and keeps its genus. A
sphere (or a torus) leaves the flow to grow every leg, spike, thin part and handle out of a ball (or a ring); a
latent surface that already has the object's shape and handles (`LatentGrid`, from the points by `fit_grid`) leaves
it small corrections, fitted in a few dozen steps without the envelope stage.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .latent import ImplicitSurface

#: The size of a `fit_grid` surface: it is where the level is 1 (levels are signed distances plus 1).
GRID_SIZE = 1.0
#: `fit_grid`'s cells: the grid spacing is the larger of the points' extent over `GRID_CELLS` and the median, over
#: the points, of the mean distance to their `SPACING_NEIGHBORS` nearest others (so that the occupied cells of a
#: surface join up); where the cells do not close around one volume with a genus-0 boundary, the spacing grows by
#: `GROWTH` up to `TRIES` times.
GRID_CELLS = 96
SPACING_NEIGHBORS = 8
GROWTH = 1.5
TRIES = 3
#: Dilations (6-neighbour) that close the occupied cells' gaps before the inside is filled; as many erosions follow.
CLOSING = 2
#: The dilations of a last try at the first spacing, where `CLOSING` found no inside at any spacing: a solid only a
#: few cells thick (a flat cut-out, 3 cells at the first spacing) is filled whole by `CLOSING` dilations from both
#: its sides, and one leaves its inside.
THIN_CLOSING = 1
#: Standard deviation, in cells, of the Gaussian that smooths the signed distances.
SMOOTHING = 1.0


@dataclass(frozen=True, eq=False)
class LatentGrid(ImplicitSurface):
    """A closed latent surface of genus `genus` given by a level function sampled on a regular grid, trilinearly
    interpolated,

        level(z) = trilinear(values)(clamp(z)) + |z - clamp(z)|,

    clamp(z) the nearest point of the grid's box; the surface of size b is where the level is b. `fit_grid`'s values
    are signed distances (negative inside) plus `GRID_SIZE`.

    Attributes:
        values: (X, Y, Z) levels at the grid's nodes.
        origin: (3,) position of node (0, 0, 0).
        spacing: distance between neighbouring nodes, > 0.
        genus: the genus of the surface of size `GRID_SIZE` (`fit_grid` checks it).

    Example:
        >>> axes = np.arange(-3, 4) * 0.5
        >>> nodes = np.stack(np.meshgrid(axes, axes, axes, indexing="ij"), axis=-1)
        >>> ball = LatentGrid(np.linalg.norm(nodes, axis=-1), (-1.5, -1.5, -1.5), 0.5)
        >>> round(float(ball.level(torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))[0]), 6)
        1.0
    """

    values: np.ndarray
    origin: tuple
    spacing: float
    genus: int = 0

    kind = "shaped"

    @functools.cached_property
    def _grid(self) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.values, dtype=np.float64))[None, None]

    def _extent(self) -> np.ndarray:
        return (np.array(self.values.shape) - 1) * self.spacing

    def level(self, z: torch.Tensor) -> torch.Tensor:
        """The level of each row of z: (N, 3) -> (N,), differentiable (piecewise trilinear)."""
        low = torch.as_tensor(self.origin, dtype=z.dtype, device=z.device)
        extent = torch.as_tensor(self._extent(), dtype=z.dtype, device=z.device)
        inside = torch.minimum(torch.maximum(z, low), low + extent)
        beyond = (z - inside).norm(dim=1)
        # grid_sample reads (x, y, z) as the last, middle and first axis of the values, on [-1, 1] across the box
        where = ((inside - low) / extent * 2.0 - 1.0).flip(1)[None, None, None]
        grid = self._grid.to(dtype=z.dtype, device=z.device)
        value = torch.nn.functional.grid_sample(grid, where, mode="bilinear", align_corners=True).reshape(-1)
        return value + beyond

    def bounds(self, size: float) -> np.ndarray:
        """(2, 3) low and high corners of a box holding the surface of size `size`: the grid's box, widened where
        the size passes the least level on its border (beyond the box the level grows as the distance to it)."""
        values = np.asarray(self.values)
        border = min(float(values[index].min()) for index in
                     [(0,), (-1,), (slice(None), 0), (slice(None), -1), (Ellipsis, 0), (Ellipsis, -1)])
        margin = max(0.0, size - border) + self.spacing if size > border else 0.0
        low = np.asarray(self.origin, dtype=np.float64) - margin
        return np.stack([low, low + self._extent() + 2.0 * margin])

    def centre(self) -> np.ndarray:
        """(3,) centre of the grid's box."""
        low, high = self.bounds(GRID_SIZE)
        return 0.5 * (low + high)

    def _sampling_spacing(self, size: float) -> float:
        return float(self.spacing)

    def surface_mesh(self, size: float) -> tuple[np.ndarray, np.ndarray]:
        """The surface of size `size` meshed at the grid's spacing (cached, shared with `points`)."""
        from .latent import _sampling_mesh

        vertices, faces, _ = _sampling_mesh(self, float(size))
        return vertices, faces

    def to_array(self) -> np.ndarray:
        """(7 + X Y Z,) array: the grid's shape, origin and spacing, then the values (what a model file keeps)."""
        return np.concatenate([np.array(self.values.shape, dtype=np.float64), np.asarray(self.origin, np.float64),
                               [self.spacing], np.asarray(self.values, dtype=np.float64).ravel()])

    @classmethod
    def from_array(cls, values, genus: int = 0) -> "LatentGrid":
        values = np.asarray(values, dtype=np.float64).ravel()
        shape = tuple(int(n) for n in values[:3])
        return cls(values[7:].reshape(shape), tuple(float(v) for v in values[3:6]), float(values[6]), int(genus))


def _closed_solid(points: np.ndarray, spacing: float, closing: int = CLOSING) -> tuple[np.ndarray, np.ndarray] | None:
    """The cells of a grid of `spacing` that the points close around: the occupied cells, their gaps closed
    (`closing` dilations), the inside filled, the largest piece kept, eroded back (the occupied cells stay). (cells,
    origin of cell (0, 0, 0)'s centre), or None where the cells enclose nothing."""
    from scipy import ndimage

    pad = closing + 3
    low = points.min(axis=0) - pad * spacing
    shape = np.ceil(np.ptp(points, axis=0) / spacing).astype(int) + 2 * pad + 1
    occupied = np.zeros(shape, dtype=bool)
    occupied[tuple(np.floor((points - low) / spacing).astype(int).T)] = True
    cross = ndimage.generate_binary_structure(3, 1)
    closed = ndimage.binary_dilation(occupied, cross, iterations=closing)
    filled = ndimage.binary_fill_holes(closed)
    if np.count_nonzero(filled) == np.count_nonzero(closed):
        return None
    pieces, count = ndimage.label(filled)
    largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:])) if count > 1 else 1
    solid = ndimage.binary_erosion(pieces == largest, cross, iterations=closing, border_value=0)
    return solid | (occupied & (pieces == largest)), low + 0.5 * spacing


def _grid_at(points: np.ndarray, spacing: float, genus: int = 0, closing: int = CLOSING) -> LatentGrid | None:
    """The `LatentGrid` of the points' closed solid at `spacing` (`closing` dilations): its smoothed signed distance,
    offset so that the points' median level is `GRID_SIZE`; None where the points enclose nothing."""
    from scipy import ndimage

    found = _closed_solid(points, spacing, closing)
    if found is None:
        return None
    solid, origin = found
    distance = ndimage.distance_transform_edt(~solid) - ndimage.distance_transform_edt(solid)
    distance = ndimage.gaussian_filter(distance.astype(np.float64), SMOOTHING)
    at_points = ndimage.map_coordinates(distance, ((points - origin) / spacing).T, order=1)
    values = (distance - float(np.median(at_points))) * spacing + GRID_SIZE
    # float32 numbers throughout, so that a model file keeps the grid exactly in half the bytes
    return LatentGrid(values.astype(np.float32).astype(np.float64), tuple(float(np.float32(v)) for v in origin),
                      float(np.float32(spacing)), genus)


def _bounds_its_genus(grid: LatentGrid) -> bool:
    """Whether the grid's surface of size `GRID_SIZE` is one closed surface of the grid's genus (its mesh's bodies and
    Euler characteristic)."""
    from .meshing.checks import bounds_one_surface

    return bounds_one_surface(*grid.surface_mesh(GRID_SIZE), grid.genus)


def fit_grid(points: np.ndarray, genus: int = 0) -> LatentGrid | None:
    """A `LatentGrid` of size `GRID_SIZE` and genus `genus` through the (M, 3) points (inliers of a closed scan), or
    None where they do not enclose a volume bounded by one surface of that genus at any of the spacings tried (see
    `GRID_CELLS`), nor with `THIN_CLOSING` dilations at the first."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    k = min(SPACING_NEIGHBORS, len(points) - 1)
    if k < 1:
        return None
    distances, _ = cKDTree(points).query(points, k + 1)
    spacing = max(float(np.ptp(points, axis=0).max()) / GRID_CELLS, float(np.median(distances[:, 1:].mean(axis=1))))
    tries = []
    for _ in range(TRIES):
        tries.append((spacing, CLOSING))
        spacing *= GROWTH
    tries.append((tries[0][0], THIN_CLOSING))  # a thin solid, which `CLOSING` fills whole at every spacing
    for spacing, closing in tries:
        grid = _grid_at(points, spacing, genus, closing)
        if grid is not None and _bounds_its_genus(grid):
            return grid
    return None
