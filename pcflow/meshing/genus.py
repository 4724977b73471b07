"""The genus a cloud's surface needs: the Euler characteristic of the solid its points enclose, over three scales."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcflow.errors import PcflowError

#: The scales, in point spacings, at which the points are thickened into a shell: a handle counts only when it is
#: seen at every one of them, so a gap between samples (closed at the larger scales) does not count as a handle,
#: and a hole narrower than about twice the largest scale is closed and not seen.
SCALES = (4.0, 5.0, 6.0)
#: At most this many grid cells along the longest side of the cloud's bounding box.
MAX_CELLS = 96
#: Points whose 8th nearest neighbour lies farther than this many typical spacings are dropped first: isolated
#: points (outliers that scoring kept) would thicken into blobs that fuse with the shell.
ISOLATED_SPACINGS = 2.0


@dataclass(frozen=True)
class GenusEstimate:
    """What `estimate_genus` found.

    Attributes:
        genus: the number of handles of the surface the points sample (0 for a sphere-like object or a sheet, 1 for
            a torus or a mug): the smallest over the scales.
        encloses: whether the thickened points enclose a volume at some scale. Without that the points form an
            open sheet (one side of an object, a table top) or a thin solid, and `genus` counts the sheet's holes,
            occlusion shadows included, rather than the handles of a closed surface.
        per_scale: the genus measured at each of `SCALES`.
        spacing: the typical point spacing the scales are measured in (the median distance from a point to its 8th
            nearest neighbour).
    """

    genus: int
    encloses: bool
    per_scale: tuple[int, ...]
    spacing: float


def estimate_genus(points, *, scales=SCALES, max_cells: int = MAX_CELLS) -> GenusEstimate:
    """The genus of the closed surface a cloud samples, for telling a user that a genus-0 mesh cannot follow it.

    At each scale r the points are thickened into the set of grid cells within r spacings of a point; the cavity
    that a closed shell encloses is filled in, and the Euler characteristic chi of the largest connected solid gives
    its genus 1 - chi (a solid ball has chi 1, a solid torus 0). Cells are at least one spacing wide and at most
    `max_cells` along the longest side. The estimate is the smallest genus over the scales: a handle must persist
    across them. Measured on the benchmark shapes scanned all around (docs/benchmarks/genus.md): genus 0 and 1 right
    on every shape and seed; a scan from one side encloses nothing and gives None.

    Args:
        points: (N, 3) coordinates (the inliers), N >= 10.
        scales: thickening radii in point spacings.
        max_cells: grid cells along the longest side at most.

    Returns:
        A `GenusEstimate`.

    Raises:
        PcflowError: not an (N, 3) array of at least 10 finite points.

    Example:
        >>> import trimesh
        >>> torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
        >>> estimate_genus(torus.sample(20000, seed=0)).genus
        1
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree
    from skimage.measure import euler_number

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 10 or not np.all(np.isfinite(points)):
        raise PcflowError(f"estimate_genus needs at least 10 finite 3-D points, got an array of shape {points.shape}")
    nearest = _neighbor_distance(points)
    points = points[nearest <= ISOLATED_SPACINGS * np.median(nearest)]
    spacing = _spacing(points)
    if spacing <= 0.0:
        return GenusEstimate(0, False, tuple(0 for _ in scales), spacing)
    reach = max(scales) * spacing
    lo, hi = points.min(axis=0), points.max(axis=0)
    cell = max(spacing, float(np.max(hi - lo)) / max_cells)
    lo = lo - reach - 2.0 * cell
    shape = np.ceil((hi + reach + 2.0 * cell - lo) / cell).astype(int)
    # only cells within reach of a point's cell (in the max norm, which is at most the Euclidean distance) can lie
    # within reach of a point: the others stay at infinity, as the query would leave them
    occupied = np.zeros(shape, dtype=bool)
    occupied[tuple(np.floor((points - lo) / cell).astype(np.int64).T)] = True
    near = np.flatnonzero(ndimage.binary_dilation(occupied, np.ones((3, 3, 3)), int(np.ceil(reach / cell)) + 1))
    centres = lo + cell * (np.column_stack(np.unravel_index(near, shape)) + 0.5)
    distance = np.full(int(np.prod(shape)), np.inf)
    distance[near], _ = cKDTree(points).query(centres, distance_upper_bound=reach * (1.0 + 1e-6), workers=-1)
    distance = distance.reshape(shape)
    per_scale, encloses = [], False
    for scale in scales:
        shell = distance <= scale * spacing
        solid = ndimage.binary_fill_holes(shell)
        labels, _ = ndimage.label(solid, structure=np.ones((3, 3, 3)))
        largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
        encloses = encloses or bool(np.any(largest & ~shell))
        per_scale.append(max(0, 1 - int(euler_number(largest, connectivity=3))))
    genus = min(per_scale)
    return GenusEstimate(genus, encloses, tuple(per_scale), spacing)


def spanned_area(mesh, points, distance: float, *, n_samples: int = 20_000, seed: int = 0) -> float:
    """Area of a mesh farther than `distance` from every one of `points`: the membrane a closed surface stretches
    over a hole or an unseen side (`unsupported_share` times the mesh's area), in the points' units squared."""
    from .gap import unsupported_share

    return float(unsupported_share(mesh, points, distance, n_samples=n_samples, seed=seed) * mesh.area)


def _neighbor_distance(points: np.ndarray, k: int = 8) -> np.ndarray:
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    distance, _ = cKDTree(points).query(points, k=k + 1)
    return distance[:, k]


def _spacing(points: np.ndarray) -> float:
    return float(np.median(_neighbor_distance(points))) if len(points) > 1 else 0.0


#: `topology` estimates the genus from at most this many of the points (a seeded subset): the grid is capped at
#: `MAX_CELLS`, so more points would only shrink the spacing below a cell.
TOPOLOGY_POINTS = 20_000
#: `topology` counts the mesh's area farther than this many point spacings from every point as spanned, the
#: distance `surface_gap` uses.
SPANNED_SPACINGS = 3.0


def topology_points(points, seed: int = 0) -> np.ndarray:
    """The points `topology` estimates the genus from: all of them, or a seeded subset of `TOPOLOGY_POINTS`."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) > TOPOLOGY_POINTS:
        rng = np.random.default_rng(seed)
        points = points[np.sort(rng.choice(len(points), TOPOLOGY_POINTS, replace=False))]
    return points


def topology(points, mesh, *, seed: int = 0, estimate: GenusEstimate | None = None) -> dict:
    """How a mesh's topology compares with what its points need: the facts report.json holds. `estimate`: the
    points' `estimate_genus` where already found (that of the points a fit trained on), else it is found here.

    Returns:
        ``genus_estimate``: `estimate_genus` of the points (of a seeded subset of `TOPOLOGY_POINTS`), or None when
        they enclose no volume (an open scan); ``spanned_area``: the mesh's area farther than `SPANNED_SPACINGS`
        point spacings from every point (`spanned_area`), in the points' units squared; ``spanned_share``: that
        area's share of the mesh's.
    """
    points = topology_points(points, seed)
    estimate = estimate_genus(points) if estimate is None else estimate
    spanned = spanned_area(mesh, points, SPANNED_SPACINGS * estimate.spacing, seed=seed)
    return {
        "genus_estimate": estimate.genus if estimate.encloses else None,
        "spanned_area": spanned,
        "spanned_share": spanned / float(mesh.area) if mesh.area > 0 else 0.0,
    }


def needs_higher_genus(report: dict) -> str | None:
    """The warning for a user whose surface mesh cannot follow the handles of the object, or None.

    `report` holds report.json's ``mode``, ``genus_estimate``, ``spanned_area``, ``spanned_share`` and ``mesh``
    (the mesh checks, with ``genus``). Only a surface fit (auto mode kept it: the object was scanned all around)
    is judged: an envelope is not meant to follow the surface.
    """
    estimate = report.get("genus_estimate")
    mesh_genus = report.get("mesh", {}).get("genus") or 0
    if report.get("mode") != "surface" or estimate is None or estimate <= mesh_genus:
        return None
    handles = "1 handle" if estimate == 1 else f"{estimate} handles"
    return (f"the object looks like it has {handles} (genus {estimate}) but the mesh has genus {mesh_genus}: it "
            f"closes the holes with membranes, and {report['spanned_share']:.0%} of its area "
            f"({report['spanned_area']:.3g} square units) lies far from every point")
