"""Mesh primitives the meshing stages share: unique edges, adjacency, normals, signed volume, argument checks."""

from __future__ import annotations

import numpy as np

from pcflow.errors import PcflowError


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_positive(value, name: str, *, allow_inf: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise PcflowError(f"{name}={value!r} is invalid; expected a positive number") from None
    if not (np.isfinite(value) or (allow_inf and value == np.inf)) or value <= 0:
        raise PcflowError(f"{name}={value!r} is invalid; expected a positive number")
    return value


def _check_count(value, name: str, *, minimum: int = 0) -> int:
    """`value` as an int >= `minimum`, else a PcflowError naming it."""
    if not _is_int(value) or value < minimum:
        raise PcflowError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")
    return int(value)


def _check_three_features(model) -> None:
    n_features = getattr(model, "n_features_in_", 3)
    if n_features != 3:
        raise PcflowError(f"model has n_features_in_={n_features}; a boundary mesh needs a 3-D model")


def _signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    if len(faces) == 0:
        return 0.0
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    # Translating to the centroid makes the sum better conditioned; it does not change a closed mesh's volume.
    centre = vertices[np.unique(faces)].mean(axis=0)
    a, b, c = a - centre, b - centre, c - centre
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _unique_rows(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique rows of an (N, 2) non-negative int array, with inverse index and counts (1-D keys, fast)."""
    n = int(pairs.max()) + 1 if len(pairs) else 1
    keys, inverse_index, counts = np.unique(pairs[:, 0] * n + pairs[:, 1], return_inverse=True, return_counts=True)
    return np.column_stack([keys // n, keys % n]), inverse_index.ravel(), counts


def _unique_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique edges (E, 2) and, per face, the ids of edges (v0 v1, v1 v2, v2 v0): (F, 3)."""
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges, inverse_index, _ = _unique_rows(np.sort(pairs, axis=1))
    return edges, inverse_index.reshape(3, -1).T


def _adjacency(faces: np.ndarray, n_vertices: int):
    """Sparse (V, V) 0/1 matrix of the vertices that share an edge."""
    from scipy.sparse import coo_matrix

    edges, _ = _unique_edges(faces)
    pairs = np.concatenate([edges, edges[:, ::-1]])
    return coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_vertices, n_vertices)).tocsr()


def _ring_mean(adjacency):
    """Sparse (V, V) matrix that takes the mean over each vertex's neighbours in `adjacency` (`_adjacency`)."""
    from scipy.sparse import diags

    return diags(1.0 / np.maximum(adjacency.sum(axis=1).A1, 1.0)) @ adjacency


def _face_normals(vertices: np.ndarray, faces: np.ndarray, *, unit: bool = True) -> np.ndarray:
    a = vertices[faces[:, 0]]
    normals = np.cross(vertices[faces[:, 1]] - a, vertices[faces[:, 2]] - a)
    if unit:
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    return normals


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals: the area-weighted sum of the faces' normals around each vertex."""
    face_normals = _face_normals(vertices, faces, unit=False)
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
