"""A scene's supporting planes (seeded RANSAC) and its objects (DBSCAN on scipy's k-d tree), with every scale taken
from the point spacing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PcflowError
from . import OUTLIER, PLANE

#: A plane's inliers lie within this many point spacings of it (RANSAC's distance threshold).
PLANE_DISTANCE = 1.5
#: RANSAC draws this many planes, each through three points of a subset of `RANSAC_SAMPLE` points.
RANSAC_ITERATIONS = 500
RANSAC_SAMPLE = 20_000
#: A plane's slab is doubled in thickness (up to `SLAB_MAX` times the threshold) while the band beyond it holds
#: `SLAB_DENSITY` or more of the slab's point density, if that share falls to `SLAB_FALL` of itself or less at each
#: doubling (`_widening`).
SLAB_DENSITY, SLAB_FALL, SLAB_MAX = 0.1, 0.75, 8
#: A plane holds at least this share of the scene's points ...
PLANE_MIN_SHARE = 0.10
#: ... covers at least this many cells of `PLANE_CELL` spacings square ...
PLANE_MIN_CELLS = 50
#: ... and at least this many times the area that the points standing on it cover on it (a table holds a mug's
#: footprint many times over; the flat face of a box covers no more than the box itself).
PLANE_MIN_SUPPORT = 2.0
#: The side of a plane's occupancy cells, in point spacings.
PLANE_CELL = 4.0
#: A second RANSAC plane this close to an earlier one (normals within `PLANE_MERGE_ANGLE` degrees, offsets within
#: `PLANE_MERGE_DISTANCE` spacings) is the same plane, thicker than the threshold (a stereo scan's table).
PLANE_MERGE_ANGLE = 5.0
PLANE_MERGE_DISTANCE = 3 * PLANE_DISTANCE
#: A cluster with 99% of its points this many spacings or closer to a plane is part of the plane.
FLAT_DISTANCE = 2 * PLANE_MERGE_DISTANCE
#: A cluster of `PLANE_MIN_SHARE` of the points whose thinnest principal spread is under this share of the next
#: one is a plane (a wall too far and noisy for RANSAC's threshold), not an object.
FLAT_RATIO = 0.05
#: Points in no plane and no object within `FRINGE` times a plane's slab thickness of it, and within `FRINGE_REACH`
#: times the local spacing of its points (`_rejoin_fringes`), are the tail of its noise: the plane's.
FRINGE, FRINGE_REACH = 8.0, 2.0
#: ... where the local spacing counts as between 1 and this many times the median spacing (a plane point alone in
#: its slab, a background point RANSAC caught, reaches no farther).
FRINGE_SPARSE = 3.0
#: At most this many planes are taken out of one scene.
MAX_PLANES = 4
#: Objects are the clusters of points closer than this many spacings (DBSCAN's eps) ...
CLUSTER_DISTANCE = 5.0
#: ... with at least this many neighbours within eps for a core point ...
CLUSTER_MIN_NEIGHBOURS = 10
#: ... and at least this share of the points and `OBJECT_MIN_POINTS` points; smaller clusters are outliers.
OBJECT_MIN_SHARE = 0.01
OBJECT_MIN_POINTS = 100


@dataclass
class Plane:
    """A supporting plane: unit normal, offset (``normal . x + offset = 0``, the normal towards what stands on it)
    and the indices of its points."""

    normal: np.ndarray
    offset: float
    indices: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"normal": [round(float(v), 6) for v in self.normal], "offset": round(float(self.offset), 6),
                "n_points": int(len(self.indices))}


@dataclass
class Segmentation:
    """The planes and objects of a cloud: one label per point (`pcflow.scene` convention), the planes, the number of
    objects and the point spacing every scale came from."""

    labels: np.ndarray
    planes: list[Plane]
    n_objects: int
    spacing: float

    @property
    def is_scene(self) -> bool:
        """Objects apart from planes: an object and a plane, or several objects (planes alone are an open surface,
        one object alone is no scene)."""
        return self.n_objects > 1 or (self.n_objects == 1 and bool(self.planes))

    def object_indices(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.labels == k)


def point_spacing(points: np.ndarray, *, sample: int = 20_000, seed: int = 0) -> float:
    """The median distance from a point to its nearest neighbour (over a seeded sample of at most `sample` points).

    Raises:
        PcflowError: fewer than two distinct points.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    rows = np.arange(len(points))
    if len(points) > sample:
        rows = np.random.default_rng(seed).choice(len(points), sample, replace=False)
    distances, _ = cKDTree(points).query(points[rows], k=2)
    positive = distances[:, 1][distances[:, 1] > 0]
    if len(positive) == 0:
        raise PcflowError("the cloud has fewer than two distinct points; a scene needs more")
    return float(np.median(positive))


def segment_scene(points: np.ndarray, *, spacing: float | None = None, seed: int = 0) -> Segmentation:
    """Splits a cloud into supporting planes (`find_planes`) and objects (`find_objects`).

    Args:
        points: (N, 3) finite coordinates (outliers may be among them: they end up in no plane and no object).
        spacing: the point spacing every scale is a multiple of; None measures it (`point_spacing`).
        seed: seed of RANSAC's draws.

    Returns:
        The labels (`OUTLIER`, object k, ``PLANE + k``), planes and spacing.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < OBJECT_MIN_POINTS:
        raise PcflowError(f"a scene needs at least {OBJECT_MIN_POINTS} 3-D points, got {len(points)}")
    spacing = point_spacing(points, seed=seed) if spacing is None else float(spacing)
    if not (np.isfinite(spacing) and spacing > 0):
        raise PcflowError(f"point spacing is {spacing!r}; expected a positive number")
    labels = np.full(len(points), OUTLIER, dtype=np.int32)
    planes = find_planes(points, spacing, seed=seed)
    for k, plane in enumerate(planes):
        labels[plane.indices] = PLANE + k
    rest = np.flatnonzero(labels == OUTLIER)
    objects = find_objects(points[rest], spacing, n_total=len(points))
    _rejoin_fringes(points, labels, rest[objects == OUTLIER], planes, spacing)
    n_objects = int(objects.max(initial=-1)) + 1
    kept = 0
    centre = points.mean(axis=0)
    for k in range(n_objects):
        members = rest[objects == k]
        plane = _flat_on(planes, points[members], spacing)  # no thicker than a plane's slices, lying in one
        if plane is None and len(members) >= PLANE_MIN_SHARE * len(points):
            wall = _flat_cluster(points[members], members, centre)  # a plane too noisy for RANSAC's threshold
            if wall is not None:
                planes.append(wall)
                plane = len(planes) - 1
        if plane is not None:
            labels[members] = PLANE + plane
        else:
            labels[members] = kept
            kept += 1
    return Segmentation(labels=labels, planes=planes, n_objects=kept, spacing=spacing)


def _rejoin_fringes(points: np.ndarray, labels: np.ndarray, loose: np.ndarray, planes: list[Plane],
                    spacing: float) -> None:
    """Gives the `loose` points (in no plane and no object) that are the tail of a plane's noise to the plane (in
    `labels` and in `Plane.indices`): grown out from the plane's slab, a loose point joins where its nearest point
    of the plane is within `FRINGE_REACH` times that point's own spacing (the distance to its nearest neighbour in
    the plane), up to `FRINGE` times the slab's thickness from the plane. A far, sparse, noisy part of a stereo
    scan's floor is taken whole; a background point off the plane, or a chair leg on it, is not."""
    from scipy.spatial import cKDTree

    for k, plane in enumerate(planes):
        heights = np.abs(points[loose] @ plane.normal + plane.offset)
        thickness = np.abs(points[plane.indices] @ plane.normal + plane.offset).max()
        candidates = loose[heights <= FRINGE * thickness]
        grown = plane.indices
        own = cKDTree(points[grown]).query(points[grown], k=2)[0][:, 1]
        while len(candidates):
            distances, nearest = cKDTree(points[grown]).query(points[candidates])
            near = distances <= FRINGE_REACH * np.clip(own[nearest], spacing, FRINGE_SPARSE * spacing)
            if not near.any():
                break
            order = np.argsort(np.concatenate([grown, candidates[near]]), kind="stable")
            grown = np.concatenate([grown, candidates[near]])[order]
            own = np.concatenate([own, own[nearest[near]]])[order]  # the spacing where they join
            candidates = candidates[~near]
        labels[grown] = PLANE + k
        loose = np.setdiff1d(loose, grown, assume_unique=True)
        plane.indices = grown


def _flat_cluster(points: np.ndarray, indices: np.ndarray, centre: np.ndarray) -> Plane | None:
    """A cluster as a `Plane` where it is flat (its thinnest principal spread under `FLAT_RATIO` of the next),
    the normal towards `centre`; else None."""
    mean = points.mean(axis=0)
    variances, axes = np.linalg.eigh(np.cov((points - mean).T))
    spreads = np.sqrt(np.clip(variances, 0, None))
    if spreads[0] >= FLAT_RATIO * spreads[1]:
        return None
    normal = axes[:, 0] if (centre - mean) @ axes[:, 0] >= 0 else -axes[:, 0]
    return Plane(normal=normal, offset=float(-normal @ mean), indices=np.sort(indices))


def _flat_on(planes: list[Plane], points: np.ndarray, spacing: float) -> int | None:
    """The index of the plane that holds 99% of `points` within `FLAT_DISTANCE` spacings, or None."""
    for k, plane in enumerate(planes):
        if np.quantile(np.abs(points @ plane.normal + plane.offset), 0.99) <= FLAT_DISTANCE * spacing:
            return k
    return None


def find_planes(points: np.ndarray, spacing: float, *, seed: int = 0, max_planes: int = MAX_PLANES) -> list[Plane]:
    """The supporting planes of a scene, largest first: RANSAC planes (`ransac_plane`, threshold `PLANE_DISTANCE`
    spacings, widened to the plane's own noise) taken out one by one while each holds `PLANE_MIN_SHARE` of the
    points, covers `PLANE_MIN_CELLS` cells and `PLANE_MIN_SUPPORT` times the area of what stands on it (on either
    side). A plane found again a little off an earlier one (`PLANE_MERGE_ANGLE`, `PLANE_MERGE_DISTANCE`) adds its
    points to it."""
    rng = np.random.default_rng(seed)
    remaining = np.arange(len(points))
    planes: list[Plane] = []
    for _ in range(max_planes):
        if len(remaining) < max(PLANE_MIN_SHARE * len(points), 3):
            break
        equation, inliers = ransac_plane(points[remaining], PLANE_DISTANCE * spacing, rng)
        inliers = remaining[inliers]
        if len(inliers) < PLANE_MIN_SHARE * len(points):
            break
        same = _same_plane(planes, equation, spacing)
        if same is not None:
            same.indices = np.union1d(same.indices, inliers)
        else:
            plane = _supporting_plane(points, equation, inliers, remaining, spacing)
            if plane is None:
                break
            planes.append(plane)
        remaining = np.setdiff1d(remaining, inliers, assume_unique=True)
    return planes


def ransac_plane(points: np.ndarray, threshold: float, rng: np.random.Generator, *,
                 iterations: int = RANSAC_ITERATIONS, sample: int = RANSAC_SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """The plane through most of `points`: (a, b, c, d) with unit normal (a, b, c), and the indices of its points.

    Seeded RANSAC (the same plane for the same `rng` state, at any thread count): `iterations` planes through three
    points drawn from a subset of `sample` points, the one with most of the subset within `threshold` refined by
    least squares on them. Its points are then those of the whole cloud within the slab's thickness: `threshold`,
    widened where the points around it thin out as noise does (`_widening`: a plane noisier than the threshold, a
    stereo scan's far wall, is taken whole; a slice through objects is not widened).
    """
    subset = points if len(points) <= sample else points[rng.choice(len(points), sample, replace=False)]
    triples = subset[rng.integers(0, len(subset), (iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    good = lengths > 0
    normals, triples = normals[good] / lengths[good, None], triples[good]
    offsets = -np.einsum("ij,ij->i", normals, triples[:, 0])
    counts = np.concatenate([(np.abs(subset @ normals[k:k + 64].T + offsets[k:k + 64]) <= threshold).sum(axis=0)
                             for k in range(0, len(normals), 64)])
    best = int(np.argmax(counts))
    normal, offset = _refined(subset[np.abs(subset @ normals[best] + offsets[best]) <= threshold])
    distances = np.abs(points @ normal + offset)
    normal, offset = _refined(points[distances <= threshold])
    distances = np.abs(points @ normal + offset)
    return np.append(normal, offset), np.flatnonzero(distances <= threshold * _widening(distances, threshold))


def _widening(distances: np.ndarray, threshold: float) -> int:
    """How many times `threshold` a plane's slab is thick: 1, 2, 4, ... up to `SLAB_MAX`.

    The band beyond a slab, as thick as the slab, holds ``band / inner`` of its point density. Around a plane with
    Gaussian noise that density falls fast as the slab doubles (0.4, then 0.05 where the threshold is one noise
    deviation), so the slab is doubled until it falls under `SLAB_DENSITY`, if it falls to `SLAB_FALL` of itself at
    every doubling; a slice through objects, whose density falls slowly or not at all, keeps `threshold`.
    """
    ratios, factor = [], 1
    while factor <= SLAB_MAX:
        inner = np.count_nonzero(distances <= factor * threshold)
        band = np.count_nonzero((distances > factor * threshold) & (distances <= 2 * factor * threshold))
        ratios.append(band / max(inner, 1))
        if ratios[-1] < SLAB_DENSITY:
            break
        if len(ratios) > 1 and ratios[-1] > SLAB_FALL * ratios[-2]:
            return 1
        factor *= 2
    return factor if factor <= SLAB_MAX else 1


def _refined(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The least-squares plane of `points`: (unit normal, offset)."""
    mean = points.mean(axis=0)
    normal = np.linalg.svd(points - mean, full_matrices=False)[2][-1]
    return normal, float(-normal @ mean)


def _same_plane(planes: list[Plane], equation: np.ndarray, spacing: float) -> Plane | None:
    """The plane of `planes` that `equation` is a second slice of, or None."""
    normal, offset = equation[:3] / np.linalg.norm(equation[:3]), equation[3] / np.linalg.norm(equation[:3])
    for plane in planes:
        cosine = float(normal @ plane.normal)
        if abs(cosine) >= np.cos(np.radians(PLANE_MERGE_ANGLE)) and \
                abs(np.sign(cosine) * offset - plane.offset) <= PLANE_MERGE_DISTANCE * spacing:
            return plane
    return None


def _supporting_plane(points, equation, inliers, remaining, spacing) -> Plane | None:
    """The RANSAC plane `equation` as a `Plane` oriented towards what stands on it, or None where it is no support:
    too small, cut through a shape, or not much larger than the shape on it."""
    normal, offset = equation[:3], float(equation[3])
    scale = float(np.linalg.norm(normal))
    normal, offset = normal / scale, offset / scale
    plane_cells = _cells(points[inliers], normal, spacing)
    if len(plane_cells) < PLANE_MIN_CELLS:
        return None
    rest = np.setdiff1d(remaining, inliers, assume_unique=True)
    heights = points[rest] @ normal + offset
    off = np.abs(heights) > PLANE_MERGE_DISTANCE * spacing
    above = _cells(points[rest[off & (heights > 0)]], normal, spacing) & plane_cells
    below = _cells(points[rest[off & (heights < 0)]], normal, spacing) & plane_cells
    if len(plane_cells) < PLANE_MIN_SUPPORT * len(above | below):
        return None
    if len(below) > len(above):  # the normal points to the side things stand on
        normal, offset = -normal, -offset
    return Plane(normal=normal, offset=offset, indices=np.sort(inliers))


def _cells(points: np.ndarray, normal: np.ndarray, spacing: float) -> set:
    """The cells of `PLANE_CELL` spacings that `points` cover, projected onto the plane of `normal`."""
    return set(_cell_keys(points, normal, spacing))


def _cell_keys(points: np.ndarray, normal: np.ndarray, spacing: float) -> list[tuple]:
    """The cell of `PLANE_CELL` spacings of each point, projected onto the plane of `normal`."""
    if len(points) == 0:
        return []
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    cells = np.floor(np.column_stack([points @ u, points @ v]) / (PLANE_CELL * spacing)).astype(np.int64)
    return list(map(tuple, cells))


def find_objects(points: np.ndarray, spacing: float, *, n_total: int | None = None) -> np.ndarray:
    """DBSCAN clusters of `points` (eps `CLUSTER_DISTANCE` spacings): labels 0, 1, ... by decreasing size, and
    `OUTLIER` for noise and for clusters under `OBJECT_MIN_SHARE` of `n_total` (default: of `points`) or under
    `OBJECT_MIN_POINTS` points."""
    labels = np.full(len(points), OUTLIER, dtype=np.int32)
    if len(points) < OBJECT_MIN_POINTS:
        return labels
    clusters = dbscan(points, CLUSTER_DISTANCE * spacing, CLUSTER_MIN_NEIGHBOURS)
    found = clusters[clusters >= 0]
    if len(found) == 0:
        return labels
    sizes = np.bincount(found)
    smallest = max(OBJECT_MIN_POINTS, OBJECT_MIN_SHARE * (n_total or len(points)))
    # by decreasing size, ties by the cluster's first point: the same objects in the same order on every run
    first = np.full(len(sizes), len(points))
    np.minimum.at(first, clusters[clusters >= 0], np.flatnonzero(clusters >= 0))
    order = [c for c in np.lexsort((first, -sizes)) if sizes[c] >= smallest]
    for k, cluster in enumerate(order):
        labels[clusters == cluster] = k
    return labels


def dbscan(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    """DBSCAN labels of `points` (N, 3): a cluster number per point, -1 for noise.

    A point with at least `min_points` points within `eps` (itself included) is a core point; core points within
    `eps` of each other share a cluster, and every other point within `eps` of a core point joins the cluster of
    the nearest one (so the labels do not depend on the order of the points). The clusters are those of Open3D's
    `cluster_dbscan` with the same settings, but for points within reach of two clusters.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    labels = np.full(len(points), -1, dtype=np.int64)
    counts = cKDTree(points).query_ball_point(points, eps, return_length=True)
    core = np.flatnonzero(counts >= min_points)
    if len(core) == 0:
        return labels
    tree = cKDTree(points[core])
    pairs = tree.query_pairs(eps, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(len(core),) * 2)
    _, component = connected_components(graph, directed=False)
    labels[core] = component
    border = np.flatnonzero(counts < min_points)
    if len(border):
        distance, nearest = tree.query(points[border], distance_upper_bound=eps)
        reached = np.isfinite(distance)
        labels[border[reached]] = component[nearest[reached]]
    return labels


def plane_mesh(points: np.ndarray, plane: Plane):
    """The convex polygon of a plane's points, in the plane, as a triangle fan (a `trimesh.Trimesh`, normal along
    `plane.normal`)."""
    import trimesh
    from scipy.spatial import ConvexHull

    helper = np.eye(3)[int(np.argmin(np.abs(plane.normal)))]
    u = np.cross(plane.normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(plane.normal, u)
    flat = np.column_stack([points @ u, points @ v])
    corners = flat[ConvexHull(flat).vertices]  # counter-clockwise about u x v = normal
    vertices = corners[:, :1] * u + corners[:, 1:] * v - plane.offset * plane.normal
    faces = np.column_stack([np.zeros(len(corners) - 2, int), np.arange(1, len(corners) - 1),
                             np.arange(2, len(corners))])
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
