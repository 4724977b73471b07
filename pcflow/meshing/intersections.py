"""Self-intersection tests: candidate face pairs from their bounding boxes, exact-sign triangle-triangle tests."""

from __future__ import annotations

import numpy as np

#: Face pairs tested at once: bounds the memory of the vectorised tests, not their result.
_PAIR_CHUNK = 200_000


def count_self_intersections(mesh) -> int:
    """Number of intersecting triangle pairs that do not share a vertex.

    Candidate pairs are the faces whose bounding boxes overlap; each is decided by exact-sign
    segment-triangle tests (and a 2-D overlap test for coplanar pairs). Touching counts as not crossing.

    Args:
        mesh: the mesh (or any object with `vertices` (V, 3) and `faces` (F, 3)).

    Returns:
        The number of pairs.
    """
    return int(len(_intersecting_pairs(np.asarray(mesh.vertices, dtype=np.float64),
                                       np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3))))


def _intersecting_pairs(vertices: np.ndarray, faces: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """(K, 2) face index pairs i < j that intersect and share no vertex, sorted; with `among`, a (F,) boolean mask,
    only the pairs with a face in it (the faces that moved since a mesh was found to have none)."""
    found = [np.empty((0, 2), dtype=np.int64)]
    if len(faces) < 2:
        return found[0]
    scale = float(np.ptp(vertices, axis=0).max()) or 1.0

    def test(first, second):
        shares = (faces[first][:, :, None] == faces[second][:, None, :]).any(axis=(1, 2))
        first, second = first[~shares], second[~shares]
        hits = _triangles_intersect(vertices[faces[first]] / scale, vertices[faces[second]] / scale)
        found.append(np.column_stack([first[hits], second[hits]]))

    waiting, n_waiting = [], 0  # small chunks wait to be tested together, large ones are cut
    for first, second in _candidate_chunks(vertices, faces, among):
        waiting.append((first, second))
        n_waiting += len(first)
        if n_waiting < _PAIR_CHUNK:
            continue
        first, second = (np.concatenate(column) for column in zip(*waiting))
        for start in range(0, len(first), _PAIR_CHUNK):
            test(first[start:start + _PAIR_CHUNK], second[start:start + _PAIR_CHUNK])
        waiting, n_waiting = [], 0
    if waiting:
        test(*(np.concatenate(column) for column in zip(*waiting)))
    pairs = np.concatenate(found)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


#: `_candidate_chunks` gives the bounding boxes to an R-tree instead of the k-d tree of their centres when the largest
#: box's half-diagonal is more than this many times the median one (the centres within reach of each other, and the
#: pairs to sort out, grow with the square of that ratio).
_MAX_SIZE_RATIO = 4.0
#: The most candidate pairs one R-tree query hands over: a mesh with faces across most of it (a flow stretched
#: along a slab) has up to F^2 of them, so they come in chunks instead of all at once.
_QUERY_PAIRS = 16_000_000


def _candidate_chunks(vertices: np.ndarray, faces: np.ndarray, among: np.ndarray | None = None):
    """Face pairs i < j whose bounding boxes overlap, as (first, second) chunks, each pair once, in no set order:
    the pairs of box centres closer than the two largest half-diagonals (scipy's k-d tree), kept where the boxes
    overlap; an R-tree of the boxes where the largest face is so much larger than the rest that the centres close
    enough would be too many pairs (in chunks of at most `_QUERY_PAIRS`). With `among` ((F,) bool), only the pairs
    with a face in it, found from those faces' boxes."""
    from scipy.spatial import cKDTree

    triangles = vertices[faces]
    mins, maxs = triangles.min(axis=1), triangles.max(axis=1)
    pad = 1e-12 * (float(np.ptp(vertices, axis=0).max()) or 1.0)
    mins, maxs = mins - pad, maxs + pad
    centres, half = 0.5 * (mins + maxs), 0.5 * np.linalg.norm(maxs - mins, axis=1)
    reach = 2.0 * float(half.max()) * (1.0 + 1e-9)  # boxes that overlap have centres closer than their half-diagonals
    if float(half.max()) > _MAX_SIZE_RATIO * float(np.median(half)):
        chunks = _rtree_pairs(mins, maxs, among)
    elif among is None:
        pairs = cKDTree(centres).query_pairs(reach, output_type="ndarray")  # i < j in each row
        chunks = [(pairs[:, 0], pairs[:, 1])]
    else:
        queried = np.flatnonzero(among)
        near = cKDTree(centres[queried]).sparse_distance_matrix(cKDTree(centres), reach, output_type="ndarray")
        chunks = [_each_pair_once(queried[near["i"]], near["j"], among)]
    for first, second in chunks:
        for axis in range(3):  # one axis at a time, on the pairs the axes before left
            low, high = mins[:, axis], maxs[:, axis]
            overlap = (low[first] <= high[second]) & (low[second] <= high[first])
            first, second = first[overlap], second[overlap]
        yield first, second


def _each_pair_once(queried: np.ndarray, other: np.ndarray, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) with first < second from pairs (a face of `among`, any other face) found from the faces of
    `among`: each pair once (a pair of two such faces is found from both)."""
    keep = (queried != other) & ~(among[other] & (other < queried))
    queried, other = queried[keep], other[keep]
    return np.minimum(queried, other), np.maximum(queried, other)


def _rtree_pairs(mins: np.ndarray, maxs: np.ndarray, among: np.ndarray | None = None):
    """Box pairs i < j that overlap, from an R-tree of the boxes: (first, second) chunks, each from the boxes of a
    run of first indices (with `among`, (F,) bool, of its boxes, each pair with one of them once), at most
    `_QUERY_PAIRS` pairs each."""
    from rtree import index

    properties = index.Property()
    properties.dimension = 3
    properties.leaf_capacity = properties.index_capacity = 16
    tree = index.Index((np.arange(len(mins), dtype=np.int64), mins, maxs), properties=properties)
    rows = np.arange(len(mins)) if among is None else np.flatnonzero(among)
    block = max(1, _QUERY_PAIRS // len(mins))
    for start in range(0, len(rows), block):
        run = rows[start:start + block]
        ids, counts = tree.intersection_v(mins[run], maxs[run])
        first = np.repeat(run, np.asarray(counts, dtype=np.int64))
        second = np.asarray(ids, dtype=np.int64)
        if among is None:
            keep = first < second
            yield first[keep], second[keep]
        else:
            yield _each_pair_once(first, second, among)


def _orient(a, b, c, d) -> np.ndarray:
    """Signed volume sign-carrier det[b - a, c - a, d - a] for rows of (K, 3) arrays."""
    return np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a))


def _segment_crosses_triangle(p, q, a, b, c) -> np.ndarray:
    """Segment p-q crosses the interior of triangle a-b-c, strictly (touching does not count)."""
    sp, sq = np.sign(_orient(a, b, c, p)), np.sign(_orient(a, b, c, q))
    s1 = np.sign(_orient(p, q, a, b))
    s2 = np.sign(_orient(p, q, b, c))
    s3 = np.sign(_orient(p, q, c, a))
    return (sp * sq < 0) & (s1 != 0) & (s1 == s2) & (s2 == s3)


def _triangles_intersect(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """Rows of (K, 3, 3) triangle pairs that intersect: an edge of one crosses the other, or coplanar overlap."""
    hit = np.zeros(len(t1), dtype=bool)
    for s, t in ((t1, t2), (t2, t1)):
        a, b, c = t[:, 0], t[:, 1], t[:, 2]
        for i, j in ((0, 1), (1, 2), (2, 0)):
            hit |= _segment_crosses_triangle(s[:, i], s[:, j], a, b, c)
    normal = np.cross(t1[:, 1] - t1[:, 0], t1[:, 2] - t1[:, 0])
    area2 = np.linalg.norm(normal, axis=1)
    heights = np.abs(np.einsum("ikj,ij->ik", t2 - t1[:, :1], normal))
    size = np.abs(t2 - t1[:, :1]).max(axis=(1, 2))
    flat = heights <= 1e-12 * (area2 * np.maximum(size, 1e-300))[:, None]
    coplanar = ~hit & (area2 > 0) & np.all(flat, axis=1)
    if coplanar.any():
        idx = np.flatnonzero(coplanar)
        hit[idx] = _coplanar_overlap(t1[idx], t2[idx], normal[idx])
    return hit


def _coplanar_overlap(t1, t2, normal) -> np.ndarray:
    """Coplanar triangle pairs whose interiors overlap: crossing edges or one triangle inside the other."""
    drop = np.argmax(np.abs(normal), axis=1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[drop]
    keep = np.repeat(keep[:, None, :], 3, axis=1)
    p1, p2 = np.take_along_axis(t1, keep, axis=2), np.take_along_axis(t2, keep, axis=2)

    def cross2(o, a, b):
        return (a[:, 0] - o[:, 0]) * (b[:, 1] - o[:, 1]) - (a[:, 1] - o[:, 1]) * (b[:, 0] - o[:, 0])

    hit = np.zeros(len(t1), dtype=bool)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        for k, m in ((0, 1), (1, 2), (2, 0)):
            p, q, r, s = p1[:, i], p1[:, j], p2[:, k], p2[:, m]
            d1, d2 = np.sign(cross2(p, q, r)), np.sign(cross2(p, q, s))
            d3, d4 = np.sign(cross2(r, s, p)), np.sign(cross2(r, s, q))
            hit |= (d1 * d2 < 0) & (d3 * d4 < 0)

    def inside(point, tri):
        s1 = np.sign(cross2(tri[:, 0], tri[:, 1], point))
        s2 = np.sign(cross2(tri[:, 1], tri[:, 2], point))
        s3 = np.sign(cross2(tri[:, 2], tri[:, 0], point))
        return (s1 != 0) & (s1 == s2) & (s2 == s3)

    hit |= inside(p1.mean(axis=1), p2) | inside(p2.mean(axis=1), p1)
    return hit
