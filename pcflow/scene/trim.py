"""Trimming a closed object surface to the part its points support: an open, manifold mesh with counted boundary loops.

A one-view object's closed surface bridges the side the scanner never saw. `trim_mesh` keeps the faces near the
points and cleans what is left up so that it stays a valid open surface: no vertex where two fans of faces touch
(the smaller fans are dropped), and no islands of a small share of the kept area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from ..errors import PcflowError
from ..meshing.primitives import _check_positive, _unique_rows

#: Pieces of the trimmed surface with less than this share of its area are dropped as islands.
MIN_ISLAND_SHARE = 0.01
#: Pieces of far faces with less than this share of the whole surface's area are kept, as holes of the sampling.
MAX_HOLE_SHARE = 0.01


@dataclass(eq=False)
class Trimmed:
    """A trimmed surface and what the trim did.

    Attributes:
        mesh: the open surface (a `trimesh.Trimesh`): every edge in one or two faces, one fan of faces around each
            vertex; its vertices are the input's kept vertices in their input order (`vertex_index`), its faces
            the input's kept faces in their input order (`face_index`), with the input's vertex normals.
        face_index: (F',) int64 array, the input face of each face of `mesh`.
        vertex_index: (V',) int64 array, the input vertex of each vertex of `mesh`.
        boundary_loops: number of closed loops of boundary edges (edges of one face); 0 for a closed surface.
        n_faces_removed: input faces not in `mesh`.
        area_share: area of `mesh` over the input's area.
    """

    mesh: trimesh.Trimesh
    face_index: np.ndarray
    vertex_index: np.ndarray
    boundary_loops: int
    n_faces_removed: int
    area_share: float


def trim_mesh(mesh: trimesh.Trimesh, points: np.ndarray, distance: float, *,
              min_island_share: float = MIN_ISLAND_SHARE, max_hole_share: float = MAX_HOLE_SHARE) -> Trimmed:
    """Keeps the faces of a surface within `distance` of the points, as an open manifold surface.

    A face is near the points when its centroid is within `distance` of one (a centroid, not a vertex: a long
    face bridging the unseen side from the seen rim has a vertex on the points, its centroid far from them). A
    piece of far faces (connected through shared edges) with less than `max_hole_share` of the surface's area is
    a gap in the sampling, not the unseen side, and is kept. Of the kept faces, a vertex where two or more fans of
    faces meet (touching at that vertex only) keeps its fan of largest area and loses the others' faces, repeated
    until no such vertex is left; then every connected piece (through shared edges) with less than
    `min_island_share` of the remaining area is dropped (the largest piece always stays). A subset of a surface
    without self-intersections has none either.

    Args:
        mesh: the closed (or open) surface; every edge in at most two faces.
        points: (N, 3) float array of the object's points, N >= 1, finite.
        distance: how near a face's centroid must be to a point, in the points' units (> 0).
        min_island_share: pieces below this share of the kept area are dropped, in [0, 1).
        max_hole_share: pieces of far faces below this share of the surface's area are kept, in [0, 1); 0 keeps
            only the near faces.

    Returns:
        The `Trimmed` surface; it may be empty (no faces) when no face is near the points.

    Raises:
        PcflowError: a bad distance or share, no points or non-3-D or non-finite points, a mesh without faces or with
            an edge of three or more faces.

    Example:
        >>> sphere = trimesh.creation.icosphere(subdivisions=3)
        >>> cap = trim_mesh(sphere, sphere.vertices[sphere.vertices[:, 2] > 0], 0.1)
        >>> cap.boundary_loops, cap.mesh.is_watertight, round(cap.area_share, 1)
        (1, False, 0.5)
    """
    distance = _check_positive(distance, "distance")
    for name, share in (("min_island_share", min_island_share), ("max_hole_share", max_hole_share)):
        if not isinstance(share, (int, float, np.number)) or not 0.0 <= float(share) < 1.0:
            raise PcflowError(f"{name}={share!r} is invalid; expected a share in [0, 1)")
    points = _check_points(points)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise PcflowError("the mesh has no faces; expected a surface to trim")
    areas = _face_areas(vertices, faces)
    _check_edges(faces)

    from scipy.spatial import cKDTree

    # The bound makes far faces cheap (inf without a search of the whole tree): 0.04 s against 1.0 s for 82k faces.
    bound = np.nextafter(distance, np.inf)  # the bound is strict: a centroid at `distance` is near
    nearest, _ = cKDTree(points).query(vertices[faces].mean(axis=1), distance_upper_bound=bound, workers=1)
    keep = np.flatnonzero(_fill_holes(faces, areas, nearest <= distance, float(max_hole_share)))
    keep = _drop_pinched_fans(faces, areas, keep)
    keep = _drop_islands(faces, areas, keep, float(min_island_share))

    vertex_index = np.unique(faces[keep])
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[vertex_index] = np.arange(len(vertex_index))
    trimmed_faces = remap[faces[keep]]
    trimmed = trimesh.Trimesh(
        vertices=vertices[vertex_index], faces=trimmed_faces, process=False,
        vertex_normals=np.asarray(mesh.vertex_normals)[vertex_index] if len(vertex_index) else None,
    )
    total = float(areas.sum())
    return Trimmed(
        mesh=trimmed, face_index=keep, vertex_index=vertex_index, boundary_loops=boundary_loops(trimmed_faces),
        n_faces_removed=int(len(faces) - len(keep)),
        area_share=float(areas[keep].sum() / total) if total > 0 else 0.0,
    )


def boundary_loops(faces: np.ndarray) -> int:
    """Number of loops of boundary edges (edges of exactly one face) of a surface whose vertices each have one fan.

    Args:
        faces: (F, 3) int array.

    Example:
        >>> boundary_loops(np.array([[0, 1, 2], [0, 2, 3]])), boundary_loops(np.zeros((0, 3), int))
        (1, 0)
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return 0
    edges, _, counts = _unique_rows(np.sort(_half_edges(faces), axis=1))
    rim = edges[counts == 1]
    if len(rim) == 0:
        return 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    used, local = np.unique(rim, return_inverse=True)
    local = local.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(local)), (local[:, 0], local[:, 1])), shape=(len(used), len(used)))
    return int(connected_components(graph, directed=False)[0])


def _check_points(points) -> np.ndarray:
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise PcflowError("points is not a numeric array; expected an (N, 3) float array") from None
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise PcflowError(f"points has shape {points.shape}; expected (N, 3) with N >= 1")
    if not np.isfinite(points).all():
        raise PcflowError("points holds NaN or infinite coordinates; expected finite points")
    return points


def _face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def _half_edges(faces: np.ndarray) -> np.ndarray:
    """(3F, 2) directed edges, the one from corner k to corner k+1 of face f at row 3f + k."""
    return np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)


def _check_edges(faces: np.ndarray) -> None:
    _, _, counts = _unique_rows(np.sort(_half_edges(faces), axis=1))
    if counts.max() > 2:
        raise PcflowError(f"the mesh has {int((counts > 2).sum())} edges of three or more faces; expected a surface "
                          "with every edge in at most two faces")


def _fans(faces: np.ndarray) -> np.ndarray:
    """The fan of each corner (row 3f + k: corner k of face f): corners around one vertex are in one fan when their
    faces are connected through edges at that vertex. Returns (3F,) int labels, equal within a fan only."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = 3 * len(faces)
    half = _half_edges(faces)
    start = np.arange(n)
    end = 3 * (start // 3) + (start + 1) % 3  # corner at the half-edge's second vertex
    _, edge, counts = _unique_rows(np.sort(half, axis=1))
    inner = np.flatnonzero(counts[edge] == 2)
    inner = inner[np.argsort(edge[inner], kind="stable")].reshape(-1, 2)  # the two half-edges of each inner edge
    h, g = inner[:, 0], inner[:, 1]
    # The corner of g at h's first vertex: g's own first corner if g runs the same way, else its second.
    same = half[h, 0] == half[g, 0]
    links = np.concatenate([
        np.column_stack([start[h], np.where(same, start[g], end[g])]),
        np.column_stack([end[h], np.where(same, end[g], start[g])]),
    ])
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _drop_pinched_fans(faces: np.ndarray, areas: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`keep` (sorted face ids) less the faces of every fan but the largest at vertices of several fans, repeated
    until each vertex has one fan."""
    while len(keep):
        kept = faces[keep]
        fan = _fans(kept)
        vertex = kept.ravel()
        n_fans = int(fan.max()) + 1
        keys, pair_of_corner = np.unique(vertex * n_fans + fan, return_inverse=True)
        pairs = np.column_stack([keys // n_fans, keys % n_fans])
        if len(pairs) == len(np.unique(vertex)):
            break
        fan_area = np.bincount(pair_of_corner, weights=areas[keep][np.arange(len(vertex)) // 3],
                               minlength=len(pairs))
        # Per vertex, its fan of largest area (ties: the fan of lowest label, deterministic).
        order = np.lexsort((pairs[:, 1], -fan_area, pairs[:, 0]))
        first = np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]
        best = np.zeros(len(pairs), dtype=bool)
        best[order[first]] = True
        drop = np.unique(np.flatnonzero(~best[pair_of_corner]) // 3)
        keep = np.delete(keep, drop)
    return keep


def _pieces(faces: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of pieces, (F,) piece of each face): faces connected through shared edges are in one piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, edge, _ = _unique_rows(np.sort(_half_edges(faces), axis=1))
    face = np.arange(len(edge)) // 3
    incidence = coo_matrix((np.ones(len(edge)), (face, edge)), shape=(len(faces), int(edge.max()) + 1)).tocsr()
    return connected_components(incidence @ incidence.T, directed=False)


def _fill_holes(faces: np.ndarray, areas: np.ndarray, near: np.ndarray, max_share: float) -> np.ndarray:
    """`near` (an (F,) bool mask) with the pieces of far faces below `max_share` of the surface's area put back."""
    far = np.flatnonzero(~near)
    if len(far) == 0 or max_share == 0:
        return near
    n_pieces, piece = _pieces(faces[far])
    piece_area = np.bincount(piece, weights=areas[far], minlength=n_pieces)
    near = near.copy()
    near[far[piece_area[piece] < max_share * areas.sum()]] = True
    return near


def _drop_islands(faces: np.ndarray, areas: np.ndarray, keep: np.ndarray, min_share: float) -> np.ndarray:
    """`keep` less the pieces below `min_share` of the kept area; the largest piece always stays."""
    if len(keep) == 0:
        return keep
    n_pieces, piece = _pieces(faces[keep])
    if n_pieces == 1:
        return keep
    piece_area = np.bincount(piece, weights=areas[keep], minlength=n_pieces)
    stays = piece_area >= min_share * piece_area.sum()
    stays[np.argmax(piece_area)] = True
    return keep[stays[piece]]
