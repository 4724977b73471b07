"""`pcflow info`'s summary of a file: what it holds, its extent, point spacing, and object or scene."""

from __future__ import annotations

import numpy as np

from .cloud import PointCloud
from .records import coordinates, has_fields
from .registry import read_records


def describe(path, *, seed: int = 0) -> dict:
    """Summarises a cloud or mesh file for `pcflow info`: what it holds, its extent, spacing and kind.

    Args:
        path: a file with a suffix from `CLOUD_SUFFIXES`.
        seed: seed of the random subsamples behind `spacing` and `shape`.

    Returns:
        dict with `path`, `format`, `n_points` (rows in the file), `n_nonfinite` (rows with a NaN or infinite
        coordinate), `fields` (name -> dtype string), `bounds` ((min, max) lists over finite rows, or None),
        `size` (max - min per axis, or None), `spacing` (`_spacing`: the median distance from a point to its
        nearest neighbour, or None), `shape` (`_shape`: object or scene, judged by the share of points on the
        largest plane; None for mesh files and 2-D clouds), `has_colors`, `is_mesh`, `n_faces` and `organized`
        ((width, height) of an organized PCD, else None).
    """
    records, info = read_records(path)
    coords, points = coordinates(records, path)
    finite = np.isfinite(points).all(axis=1)
    points = points[finite]
    bounds = size = None
    if len(points):
        low, high = points.min(axis=0), points.max(axis=0)
        bounds, size = (low.tolist(), high.tolist()), (high - low).tolist()
    fields = records[finite] if has_fields(records, coords) else None
    is_mesh = info.get("n_faces", 0) > 0
    return {
        "path": str(path),
        "format": info["format"],
        "n_points": len(records),
        "n_nonfinite": int((~finite).sum()),
        "fields": {name: str(records.dtype[name]) for name in records.dtype.names},
        "bounds": bounds,
        "size": size,
        "spacing": _spacing(points, np.random.default_rng(seed)),
        "shape": None if is_mesh or points.shape[1] != 3 else _shape(points, np.random.default_rng(seed)),
        "has_colors": PointCloud(points, fields).has_colors,
        "is_mesh": is_mesh,
        "n_faces": info.get("n_faces", 0),
        "organized": info.get("organized"),
    }


#: Points whose nearest-neighbour distance `describe` measures (a random subset; the tree holds every point).
SPACING_SAMPLES = 10_000
#: Points and candidate planes of `describe`'s plane test.
PLANE_SAMPLES, PLANE_CANDIDATES = 5_000, 400
#: A point is on a plane when nearer to it than this share of the diagonal of the box from the 1st to the 99th
#: percentile of each coordinate (outliers do not widen it).
PLANE_TOLERANCE = 0.01
#: A cloud whose largest plane holds at least this share of its points is called a scene (a floor, table or wall).
#: Measured with the defaults above: 0.09 (the bundled Spot scan) to 0.14 on scanned and meshed objects, 0.60 and
#: 0.83 on the two table-top scenes of the PCL test data, 0.96 on an airborne LiDAR tile; one face of a cube holds
#: 1/6 to 1/3 of its points.
SCENE_PLANE_SHARE = 0.3


def _spacing(points: np.ndarray, rng: np.random.Generator) -> dict | None:
    """Median distance from a point to its nearest other point (duplicates skipped), over a random sample.

    Args:
        points: (N, D) finite coordinates.
        rng: random generator of the sample.

    Returns:
        {"median_nn": distance, "n_sampled": points measured}, or None with fewer than two distinct points.
    """
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return None
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)  # built quicker; queries barely slower
    sample = points[rng.choice(len(points), min(SPACING_SAMPLES, len(points)), replace=False)]
    distances, _ = tree.query(sample, k=min(8, len(points)))
    distances = np.where(distances > 0, distances, np.inf).min(axis=1)  # the nearest point that is not a duplicate
    distances = distances[np.isfinite(distances)]
    if len(distances) == 0:
        return None
    return {"median_nn": float(np.median(distances)), "n_sampled": int(len(sample))}


def _shape(points: np.ndarray, rng: np.random.Generator) -> dict | None:
    """Object or scene, by the share of points on the largest plane that a RANSAC over random triples finds.

    Args:
        points: (N, 3) finite coordinates.
        rng: random generator of the sample and the triples.

    Returns:
        {"kind": "scene" or "object", "plane_share": share of the sampled points within `tolerance` of the best of
        `PLANE_CANDIDATES` planes through random triples, "tolerance": in input units, "n_sampled"}; a scene when
        `plane_share` >= `SCENE_PLANE_SHARE`. None for fewer than three points or points all on one spot.
    """
    if len(points) < 3:
        return None
    sample = points[rng.choice(len(points), min(PLANE_SAMPLES, len(points)), replace=False)]
    low, high = np.percentile(sample, [1, 99], axis=0)
    tolerance = PLANE_TOLERANCE * float(np.linalg.norm(high - low))
    if tolerance == 0:
        return None
    triples = sample[rng.integers(0, len(sample), size=(PLANE_CANDIDATES, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    planes = lengths > 0
    if not planes.any():  # every triple collinear: the points lie on a line, which one plane holds
        share = 1.0
    else:
        normals = normals[planes] / lengths[planes, None]
        offsets = np.einsum("ij,ij->i", normals, triples[planes, 0])
        share = float((np.abs(sample @ normals.T - offsets) <= tolerance).mean(axis=0).max())
    return {"kind": "scene" if share >= SCENE_PLANE_SHARE else "object", "plane_share": share,
            "tolerance": tolerance, "n_sampled": int(len(sample))}
