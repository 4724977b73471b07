"""Validity of a triangle mesh: closed, consistently wound, positive volume, one component, genus, crossings."""

from __future__ import annotations

import numpy as np
import trimesh

from .intersections import count_self_intersections
from .primitives import _signed_volume, _unique_rows


def bounds_one_surface(vertices: np.ndarray, faces: np.ndarray, genus: int) -> bool:
    """Whether a template mesh is one closed surface of `genus`: one body, Euler characteristic 2 - 2 genus (a mesh
    without faces is none)."""
    if len(faces) == 0:
        return False
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return mesh.body_count == 1 and mesh.euler_number == 2 - 2 * genus


def validity(mesh: trimesh.Trimesh, *, check_intersections: bool = True) -> dict:
    """Validity report of a triangle mesh, as defined in docs/evaluation.md.

    Args:
        mesh: the mesh to check.
        check_intersections: also count self-intersecting triangle pairs (else reported as None).

    Returns:
        dict with `watertight` (every edge shared by exactly two faces), `winding_consistent` (every
        shared edge traversed in opposite directions, no directed edge repeated), `positive_volume`,
        `n_components` (connected through shared edges), `euler` (V - E + F over referenced vertices),
        `genus` ((2 - euler) / 2 for a single closed component, else None), `self_intersections`,
        `n_vertices`, `n_faces`, `volume` (signed).

    Example:
        >>> report = validity(trimesh.creation.torus(major_radius=1.0, minor_radius=0.3))
        >>> report["watertight"], report["euler"], report["genus"], report["self_intersections"]
        (True, 0, 1, 0)
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    n_faces = len(faces)
    if n_faces == 0:
        return {
            "watertight": False, "winding_consistent": True, "positive_volume": False, "n_components": 0,
            "euler": 0, "genus": None, "self_intersections": 0 if check_intersections else None,
            "n_vertices": 0, "n_faces": 0, "volume": 0.0,
        }
    # Not trimesh's is_watertight / euler_number / volume: they rebuild the edge table this builds anyway (0.50 s
    # against 0.20 s on an 81,920-face sphere), and its is_winding_consistent skips edges of three or more faces.
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges, inverse_index, counts = _unique_rows(np.sort(directed, axis=1))
    watertight = bool(np.all(counts == 2))
    n_vertices = int(len(np.unique(faces)))
    euler = n_vertices - len(edges) + n_faces
    n_components = _n_face_components(inverse_index, n_faces, len(edges))
    genus = None
    if watertight and n_components == 1:
        genus = (2 - euler) // 2 if euler % 2 == 0 else (2 - euler) / 2
    volume = _signed_volume(vertices, faces)
    return {
        "watertight": watertight,
        "winding_consistent": _winding_consistent(directed, inverse_index, counts),
        "positive_volume": bool(volume > 0),
        "n_components": int(n_components),
        "euler": int(euler),
        "genus": genus,
        "self_intersections": count_self_intersections(mesh) if check_intersections else None,
        "n_vertices": n_vertices,
        "n_faces": int(n_faces),
        "volume": float(volume),
    }


def _winding_consistent(directed: np.ndarray, inverse_index: np.ndarray, counts: np.ndarray) -> bool:
    """Every edge of two faces runs once each way, and no directed edge is repeated (also on edges of three or more
    faces, which trimesh's `is_winding_consistent` skips)."""
    _, _, directed_counts = _unique_rows(directed)
    # Of an edge shared by two faces, exactly one must run low -> high.
    forward = (directed[:, 0] < directed[:, 1]).astype(np.int64)
    n_forward = np.bincount(inverse_index, weights=forward, minlength=len(counts))
    return bool(np.all(n_forward[counts == 2] == 1) and np.all(directed_counts == 1))


def _n_face_components(edge_of_corner: np.ndarray, n_faces: int, n_edges: int) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    face_of_corner = np.tile(np.arange(n_faces), 3)
    incidence = coo_matrix((np.ones(len(face_of_corner)), (face_of_corner, edge_of_corner)),
                           shape=(n_faces, n_edges)).tocsr()
    adjacency = incidence @ incidence.T
    return int(connected_components(adjacency, directed=False)[0])
