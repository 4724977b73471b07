"""Snapping a boundary mesh onto points: vertex moves along the normals, backed off around folds and crossings."""

from __future__ import annotations

import dataclasses

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .intersections import _intersecting_pairs
from .primitives import (_adjacency, _check_count, _check_positive, _face_normals, _is_int, _ring_mean,
                         _vertex_normals)

#: `snap_to_points`'s default reach (`max_offset`): this share of the mesh's bounding-box diagonal.
SNAP_OFFSET_FRACTION = 0.04


def snap_to_points(
    boundary,
    points,
    *,
    iterations: int = 3,
    refine_iterations: int = 4,
    max_offset: float | None = None,
    min_cos: float = 0.5,
    max_backoffs: int = 12,
    pool_points: float = 16.0,
    max_rings: int = 8,
    significance: float = 0.5,
):
    """Moves a boundary mesh's vertices along their normals onto the points near them, keeping every guarantee.

    Each round gives every point to its nearest vertex and measures its offset along that vertex's normal (the
    normals of the starting mesh, which is smooth). A vertex's offset is the mean over the points of the vertices
    within r edges of it, r the fewest rings that hold `pool_points` points on average (at most `max_rings`), each
    point weighted by a Gaussian of bandwidth `max_offset` / 2 in its offset and not counted beyond `max_offset`;
    the mean is shrunk toward 0 by `significance` times its standard error, so that rounds do not chase noise. A
    point on the far side of a thin part is nearer to the vertices of that side, so thin parts keep their thickness.
    The offsets are averaged once with the neighbouring vertices' and the vertices move by them. Where a round's
    moves would fold a face (turn its normal by more than arccos(`min_cos`), 60 degrees by default), they are halved
    around it (over three rings of vertices, two more at each halving) until none does; a round that needs more than
    `max_backoffs` halvings is dropped. After the rounds, their sum is halved in the same way around faces that
    would cross another face or face the other way than at the start, until none does (else nothing moves). The
    faces are not changed, so the mesh stays watertight, one component and of its genus, and without
    self-intersections if it had none (one that has some is returned unmoved). Vertices with no point near them,
    such as those of a surface spanning a gap, stay put. The mesh is then no longer the exact image of the latent
    template; `latent` and `uv` still give each vertex its place on it. Then `refine_iterations` more rounds run the
    same way from the moved mesh, along its own normals and with half the reach, so that the surface follows the
    points where the starting mesh's normals were off (a part the fit left coarse).

    Args:
        boundary: the `BoundaryMesh` to move (not changed).
        points: (N, 3) points the surface should pass through, e.g. the inliers of a scan.
        iterations: rounds of moves along the starting mesh's normals (0 returns the mesh unmoved).
        refine_iterations: rounds of moves along the moved mesh's normals afterwards, reach `max_offset` / 2.
        max_offset: longest offset along a normal that counts, in input units; default `SNAP_OFFSET_FRACTION`
            (4%) of the mesh's bounding-box diagonal, whatever its edge length.
        min_cos: least cosine, in [-1, 1), between a face's normal before and after a round's moves.
        max_backoffs: halvings of a round's moves around folds before the round is dropped (and of the rounds'
            sum around crossings before nothing moves).
        pool_points: points a vertex's offset pools on average, by taking enough rings of vertices around it.
        max_rings: most rings of vertices an offset pools.
        significance: standard errors by which each offset is shrunk toward 0, >= 0.

    Returns:
        A new `BoundaryMesh` with the moved vertices; `info['snap']` holds `rounds` and `refine_rounds` (kept),
        `max_offset`, `n_points`, `mean_move` and `max_move` (vertex displacement) and `n_backoffs`.

    Example:
        >>> from pcflow.meshing import sphere_mesh
        >>> rng = np.random.default_rng(0)
        >>> directions = rng.normal(size=(20_000, 3))
        >>> points = 1.05 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
        >>> unit = sphere_mesh(lambda z: z, 1.0, subdivisions=3, tolerance=0.1)
        >>> radii = np.linalg.norm(snap_to_points(unit, points).mesh.vertices, axis=1)
        >>> bool(np.all(np.abs(radii - 1.05) < 0.005))
        True
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise PcflowError(f"points has shape {points.shape}; expected (N, 3) with N >= 1")
    if not np.all(np.isfinite(points)):
        raise PcflowError("points has non-finite coordinates; expected finite values")
    for name, value in (("iterations", iterations), ("refine_iterations", refine_iterations)):
        if not _is_int(value) or value < 0:
            raise PcflowError(f"{name}={value!r} is invalid; expected a non-negative integer")
    if not (isinstance(min_cos, (int, float, np.floating)) and -1.0 <= min_cos < 1.0):
        raise PcflowError(f"min_cos={min_cos!r} is invalid; expected a number in [-1, 1)")
    settings = {
        "min_cos": float(min_cos),
        "max_backoffs": _check_count(max_backoffs, "max_backoffs"),
        "significance": _check_non_negative(significance, "significance"),
    }
    pool_points, max_rings = _check_positive(pool_points, "pool_points"), _check_count(max_rings, "max_rings")
    faces = np.asarray(boundary.mesh.faces, dtype=np.int64)
    start = np.asarray(boundary.mesh.vertices, dtype=np.float64)
    if max_offset is None:
        max_offset = SNAP_OFFSET_FRACTION * float(np.linalg.norm(np.ptp(start, axis=0))) if len(start) else 1.0
    max_offset = _check_positive(max_offset, "max_offset")

    vertices, rounds, refine_rounds, backoffs = start, 0, 0, 0
    crossings = boundary.info.get("self_intersections")
    if crossings is None and iterations > 0:
        crossings = len(_intersecting_pairs(start, faces))
    if not crossings and iterations > 0 and len(start):
        adjacency = _adjacency(faces, len(start))
        ring_mean = _ring_mean(adjacency)
        pool = _ring_pool(adjacency, _pool_rings(len(points) / len(start), pool_points, max_rings))
        vertices, rounds, backoffs = _snap_rounds(start, faces, points, ring_mean, pool, int(iterations), max_offset,
                                                  **settings)
        if refine_iterations > 0:  # from the moved mesh, which has no crossings either
            vertices, refine_rounds, more = _snap_rounds(vertices, faces, points, ring_mean, pool,
                                                         int(refine_iterations), 0.5 * max_offset, **settings)
            backoffs += more
    move = np.linalg.norm(vertices - start, axis=1)
    info = dict(boundary.info)
    if crossings is not None:
        info["self_intersections"] = int(crossings)
    info["snap"] = {
        "rounds": rounds, "refine_rounds": refine_rounds, "max_offset": max_offset, "n_points": int(len(points)),
        "mean_move": float(move.mean()) if len(move) else 0.0, "max_move": float(move.max()) if len(move) else 0.0,
        "n_backoffs": backoffs,
    }
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return dataclasses.replace(boundary, mesh=mesh, info=info)


def _snap_rounds(start, faces, points, ring_mean, pool, iterations: int, max_offset: float, *, min_cos: float,
                 max_backoffs: int, significance: float) -> tuple[np.ndarray, int, int]:
    """The rounds of `snap_to_points` on a mesh without self-intersections, along the normals of `start` (`ring_mean`:
    the mean over each vertex's neighbours; `pool`: `_ring_pool`'s rows): (vertices, rounds kept, halvings)."""
    normals = _vertex_normals(start, faces)  # the smooth surface's: moves along them cannot roughen them
    vertices, rounds, backoffs = start, 0, 0
    for _ in range(iterations):
        offsets = _pooled_offsets(points, vertices, normals, pool, max_offset, significance)
        offsets = 0.5 * (offsets + ring_mean @ offsets)
        moved, n_backoffs = _backed_off(vertices, offsets[:, None] * normals, faces, ring_mean,
                                        min_cos=min_cos, crossings=False, max_backoffs=max_backoffs)
        backoffs += n_backoffs
        if moved is None:
            break
        vertices, rounds = moved, rounds + 1
    if rounds:  # crossings are sought once, on the rounds' sum (no face flipped from the start either)
        moved, n_backoffs = _backed_off(start, vertices - start, faces, ring_mean, min_cos=0.0, crossings=True,
                                        max_backoffs=max_backoffs)
        backoffs += n_backoffs
        vertices, rounds = (start, 0) if moved is None else (moved, rounds)
    return vertices, rounds, backoffs


def _check_non_negative(value, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
            and 0 <= value < np.inf):
        raise PcflowError(f"{name}={value!r} is invalid; expected a finite number >= 0")
    return float(value)


def _pooled_offsets(points, vertices, normals, pool, max_offset: float, significance: float) -> np.ndarray:
    """Per vertex, the weighted mean offset along the normal of the points nearest to the vertices of its row of
    `pool`, shrunk toward 0 by `significance` standard errors (see `snap_to_points`)."""
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(vertices).query(points)
    along = np.einsum("ij,ij->i", points - vertices[nearest], normals[nearest])
    weight = np.exp(-2.0 * (along / max_offset) ** 2) * (np.abs(along) < max_offset)
    sums = pool @ np.stack([np.bincount(nearest, weights=w, minlength=len(vertices))
                            for w in (weight, weight**2, weight * along, weight * along**2)], axis=1)
    total, total_sq, first, second = sums.T
    mean = np.where(total > 1e-12, first / np.maximum(total, 1e-300), 0.0)
    variance = np.maximum(np.where(total > 1e-12, second / np.maximum(total, 1e-300), 0.0) - mean**2, 0.0)
    stderr = np.sqrt(variance * total_sq / np.maximum(total**2, 1e-300))  # over the effective number of points
    return np.sign(mean) * np.maximum(np.abs(mean) - significance * stderr, 0.0)


def _ring_pool(adjacency, rings: int):
    """Sparse 0/1 (V, V) matrix of the vertices within `rings` edges of each vertex (itself included)."""
    from scipy.sparse import identity

    pool = identity(adjacency.shape[0], format="csr")
    step = (adjacency + pool).tocsr()
    for _ in range(rings):
        pool = pool @ step
        pool.data[:] = 1.0
    return pool


def _pool_rings(points_per_vertex: float, pool_points: float, max_rings: int) -> int:
    """Fewest rings r <= `max_rings` whose 1 + 3 r (r + 1) vertices (on a regular mesh) hold `pool_points` points
    on average."""
    for rings in range(max_rings):
        if (1 + 3 * rings * (rings + 1)) * points_per_vertex >= pool_points:
            return rings
    return max_rings


def _backed_off(start, displacement, faces, ring_mean, *, min_cos: float, crossings: bool, max_backoffs: int):
    """`start` + `displacement`, the displacement halved around faces that would turn by more than arccos(`min_cos`)
    from their normal at `start` (or, with `crossings`, cross another face) until none does:
    (vertices, halvings), or (None, halvings) if that takes more than `max_backoffs` halvings."""
    before = _face_normals(start, faces)
    has_normal = np.einsum("ij,ij->i", before, before) > 0.5  # a face of no area has no normal to turn
    scale = np.ones(len(start))
    moved_faces = None  # the faces moved by the last halving (None: all, the first time)
    for backoffs in range(max_backoffs + 1):
        moved = start + scale[:, None] * displacement
        bad = (np.einsum("ij,ij->i", _face_normals(moved, faces), before) < min_cos) & has_normal
        bad_faces = np.flatnonzero(bad)
        if crossings:  # two faces the halving did not move did not cross before it either
            bad_faces = np.union1d(bad_faces, _intersecting_pairs(moved, faces, moved_faces).ravel())
        if len(bad_faces) == 0:
            return moved, backoffs
        near = np.zeros(len(start))
        near[faces[bad_faces].ravel()] = 1.0
        for _ in range(3 + 2 * backoffs):  # spread smoothly (wider each time), so the halving leaves no step behind
            near = np.maximum(near, ring_mean @ near)
        scale *= 1.0 - 0.5 * near
        moved_faces = (near > 0)[faces].any(axis=1)
    return None, max_backoffs + 1

