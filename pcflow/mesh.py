"""Boundary meshes of flow regions: latent sphere through the inverse flow, refinement, validity checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import trimesh

from pcflow.errors import PcflowError

#: Default refinement tolerance, as a share of the mapped bounding-box diagonal.
DEFAULT_TOLERANCE_FRACTION = 0.02

#: `surface_gap` counts the surface farther than this many typical point spacings from every point as unsupported.
GAP_SPACINGS = 3.0

#: Rounds of moves of `snap_to_points`.
SNAP_ITERATIONS = 3

_SNAP_MIN_COS = 0.5  # a snapping move may turn a face's normal by at most 60 degrees
_SNAP_BACKOFFS = 12  # halvings of a round's moves around folds and crossings before the round is dropped
_SNAP_POOL_POINTS = 16  # a vertex's offset pools the points of enough rings of vertices to hold this many
_SNAP_MAX_RINGS = 8
_SNAP_SIGNIFICANCE = 0.5  # offsets are shrunk toward 0 by this many standard errors
_MAX_REFINEMENT_PASSES = 40
_MAX_INTERSECTION_ROUNDS = 4
_PAIR_CHUNK = 200_000
_GRID_CHUNK = 1 << 18


@dataclass
class BoundaryMesh:
    """A boundary mesh and the latent sphere it was mapped from.

    Attributes:
        mesh: the surface in input units; vertices welded, faces oriented so its volume is positive.
        latent: (V, 3) float array, latent vertex positions on the sphere of `radius`; row i maps to
            `mesh.vertices[i]`.
        uv: (V, 2) float array in [0, 1], sphere-chart coordinates of each vertex:
            u = azimuth / (2 pi), v = polar angle / pi of the latent direction (`face_uv` has them per face
            corner, unbroken across the chart's seam, as mesh.obj is written).
        radius: latent radius of the sphere.
        info: refinement statistics (`n_refinement_passes`, `max_edge`, `tolerance`, `hit_face_budget`,
            `n_intersection_rounds`, `self_intersections`, `n_inverse_calls`, `flipped`).
    """

    mesh: trimesh.Trimesh
    latent: np.ndarray
    uv: np.ndarray
    radius: float
    info: dict = field(default_factory=dict)

    @property
    def face_uv(self) -> np.ndarray:
        """(F, 3, 2) sphere-chart coordinates of each face corner, continuous across the chart's seam.

        A face that crosses azimuth 0 has its corners on the low side moved up by 1 (u up to 1.5, for a texture
        that repeats), so that no face stretches back across the whole chart; a corner at a pole, where the azimuth
        is undefined, takes the mean u of its face's other corners. v is `uv`'s.
        """
        faces = np.asarray(self.mesh.faces)
        corners = self.uv[faces].copy()
        u = corners[..., 0]
        pole = (np.hypot(self.latent[:, 0], self.latent[:, 1]) <= 1e-12 * np.linalg.norm(self.latent, axis=1))[faces]
        span = np.where(pole, -np.inf, u).max(axis=1) - np.where(pole, np.inf, u).min(axis=1)
        u[(span > 0.5)[:, None] & (u < 0.5) & ~pole] += 1.0
        mean_other = np.where(pole, 0.0, u).sum(axis=1) / np.maximum((~pole).sum(axis=1), 1)
        u[pole] = np.broadcast_to(mean_other[:, None], u.shape)[pole]
        return corners

    def to_open3d(self):
        """The mesh as an ``open3d.geometry.TriangleMesh`` with vertex normals (`pcflow.interop.to_open3d`)."""
        from pcflow.interop import to_open3d

        return to_open3d(self)

    def to_trimesh(self) -> trimesh.Trimesh:
        """The mesh as a ``trimesh.Trimesh``: `mesh` itself."""
        return self.mesh


def sphere_mesh(
    inverse: Callable[[np.ndarray], np.ndarray],
    radius: float,
    *,
    subdivisions: int = 3,
    tolerance: float | None = None,
    max_faces: int = 200_000,
    check_intersections: bool = True,
) -> BoundaryMesh:
    """Map a latent sphere through `inverse` and refine it until its edges are short in input space.

    An icosphere of radius `radius` is mapped vertex by vertex. Edges longer than `tolerance` after the map
    are split at their latent midpoint projected back onto the sphere (conforming longest-edge bisection,
    so there are no T-junctions and no slivers beyond those the map makes). Faces that take part in a
    self-intersection are refined again for a few rounds. Faces are flipped if the map reverses orientation.

    Args:
        inverse: callable taking an (M, 3) float64 latent array and returning the (M, 3) input-space array,
            e.g. `model.inverse_transform`.
        radius: latent sphere radius, > 0.
        subdivisions: icosphere subdivision level of the starting mesh (1280 faces at 3).
        tolerance: longest allowed mapped edge, in input units; default
            `DEFAULT_TOLERANCE_FRACTION` of the mapped starting mesh's bounding-box diagonal.
        max_faces: face budget; refinement stops before exceeding it and sets `info['hit_face_budget']`.
        check_intersections: count self-intersecting triangle pairs and refine around them.

    Returns:
        The `BoundaryMesh`.

    Example:
        >>> bm = sphere_mesh(lambda z: 2.0 * z, 1.0, subdivisions=1, tolerance=10.0)
        >>> len(bm.mesh.faces), bool(np.allclose(bm.mesh.vertices, 2.0 * bm.latent))
        (80, True)
    """
    radius = _check_positive(radius, "radius")
    if not _is_int(subdivisions) or not 0 <= subdivisions <= 7:
        raise PcflowError(f"subdivisions={subdivisions!r} is invalid; expected an integer from 0 to 7")
    if tolerance is not None:
        tolerance = _check_positive(tolerance, "tolerance", allow_inf=True)
    if not _is_int(max_faces) or max_faces < 1:
        raise PcflowError(f"max_faces={max_faces!r} is invalid; expected a positive integer")

    ico = trimesh.creation.icosphere(subdivisions=int(subdivisions), radius=1.0)
    refiner = _Refiner(inverse, radius, np.asarray(ico.vertices, dtype=np.float64), np.asarray(ico.faces, np.int64))
    if tolerance is None:
        diagonal = float(np.linalg.norm(np.ptp(refiner.mapped, axis=0)))
        tolerance = DEFAULT_TOLERANCE_FRACTION * diagonal if diagonal > 0 else np.inf

    hit_budget = False
    n_passes = 0
    while np.isfinite(tolerance) and n_passes < _MAX_REFINEMENT_PASSES:
        edges, face_edges, lengths = refiner.edges()
        wanted = lengths > tolerance
        if not wanted.any():
            break
        split, hit_budget = refiner.split(wanted, max_faces)
        n_passes += split
        if hit_budget:
            break

    n_rounds = 0
    n_intersections = None
    if check_intersections:
        pairs = _intersecting_pairs(refiner.mapped, refiner.faces)
        while len(pairs) and n_rounds < _MAX_INTERSECTION_ROUNDS and not hit_budget:
            edges, face_edges, lengths = refiner.edges()
            wanted = np.zeros(len(edges), dtype=bool)
            wanted[face_edges[np.unique(pairs)].ravel()] = True
            split, hit_budget = refiner.split(wanted, max_faces)
            if not split:
                break
            n_rounds += 1
            previous, pairs = len(pairs), _intersecting_pairs(refiner.mapped, refiner.faces)
            if len(pairs) >= previous:
                break  # not a discretisation artefact: the map itself overlaps there
        n_intersections = int(len(pairs))

    latent, mapped, faces = refiner.latent, refiner.mapped, refiner.faces
    flipped = _signed_volume(mapped, faces) < 0
    if flipped:
        faces = faces[:, ::-1].copy()
    mesh = trimesh.Trimesh(vertices=mapped, faces=faces, process=False)
    edges, _ = _unique_edges(faces)
    max_edge = float(np.linalg.norm(mapped[edges[:, 0]] - mapped[edges[:, 1]], axis=1).max())
    info = {
        "n_refinement_passes": n_passes,
        "n_intersection_rounds": n_rounds,
        "max_edge": max_edge,
        "tolerance": float(tolerance),
        "hit_face_budget": bool(hit_budget),
        "self_intersections": n_intersections,
        "n_inverse_calls": refiner.n_calls,
        "flipped": bool(flipped),
        "n_vertices": int(len(mapped)),
        "n_faces": int(len(faces)),
    }
    return BoundaryMesh(mesh=mesh, latent=latent, uv=_sphere_uv(latent), radius=radius, info=info)


def boundary_mesh(
    model,
    *,
    coverage: float | None = None,
    subdivisions: int = 3,
    tolerance: float | None = None,
    max_faces: int = 200_000,
    check_intersections: bool = True,
    snap: bool = True,
) -> BoundaryMesh:
    """Boundary mesh of a fitted model's region: its latent ball's sphere mapped through the inverse flow.

    A surface model's own surface (no `coverage`) is then moved onto the model's training inliers (its reference
    points that it predicts as inliers) by `snap_to_points`, unless `snap` is False; an envelope, or a surface
    model's region of another coverage, is the exact image of its sphere.

    Args:
        model: fitted 3-D model with `inverse_transform`, `radius_` and `radius_at(coverage)`.
        coverage: share of the training points the region should hold, in (0, 1); default the model's
            own radius `radius_`.
        subdivisions, tolerance, max_faces, check_intersections: as in `sphere_mesh`.
        snap: move a surface model's own surface onto its training inliers.

    Returns:
        The `BoundaryMesh`, in input units.
    """
    _check_three_features(model)
    boundary = sphere_mesh(
        model.inverse_transform,
        _model_radius(model, coverage),
        subdivisions=subdivisions,
        tolerance=tolerance,
        max_faces=max_faces,
        check_intersections=check_intersections,
    )
    if snap and coverage is None and getattr(model, "objective", None) == "surface":
        points = model.reference_points_ + model.center_
        boundary = snap_to_points(boundary, points[model.predict(points) == 1])
    return boundary


def snap_to_points(
    boundary: BoundaryMesh,
    points,
    *,
    iterations: int = SNAP_ITERATIONS,
    max_offset: float | None = None,
) -> BoundaryMesh:
    """Moves a boundary mesh's vertices along their normals onto the points near them, keeping every guarantee.

    Each round gives every point to its nearest vertex and measures its offset along that vertex's normal (the
    normals of the starting mesh, which is smooth). A vertex's offset is the mean over the points of the vertices
    within r edges of it, r the fewest rings that hold 16 points on average, each point weighted by a Gaussian of
    bandwidth `max_offset` / 2 in its offset and not counted beyond `max_offset`; the mean is shrunk toward 0 by
    half its standard error, so that rounds do not chase noise. A point on the far side of a thin part is nearer
    to the vertices of that side, so thin parts keep their thickness. The offsets are averaged once with the
    neighbouring vertices' and the vertices move by them. Where a round's moves would fold a face (turn its normal
    by more than 60 degrees), they are halved around it (over three rings of vertices, two more at each halving)
    until none does; a round that cannot be made so is dropped. After the rounds, their sum is halved in the same
    way around faces that would cross another face or face the other way than at the start, until none does (else
    nothing moves). The faces are not changed, so the mesh stays watertight, one component and genus 0, and without
    self-intersections if it had none (one that has some is returned unmoved). Vertices with no point near them, such as those of a surface
    spanning a gap, stay put. The mesh is then no longer the exact image of the latent sphere; `latent` and `uv`
    still give each vertex its place on it.

    Args:
        boundary: the `BoundaryMesh` to move (not changed).
        points: (N, 3) points the surface should pass through, e.g. the inliers of a scan.
        iterations: rounds of moves (0 returns the mesh unmoved).
        max_offset: longest offset along a normal that counts, in input units; default `DEFAULT_TOLERANCE_FRACTION`
            (2%) of the mesh's bounding-box diagonal, whatever its edge length.

    Returns:
        A new `BoundaryMesh` with the moved vertices; `info['snap']` holds `rounds` (kept), `max_offset`,
        `n_points`, `mean_move` and `max_move` (vertex displacement) and `n_backoffs`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> directions = rng.normal(size=(20_000, 3))
        >>> points = 1.05 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
        >>> unit = sphere_mesh(lambda z: z, 1.0, subdivisions=3, tolerance=0.1)
        >>> radii = np.linalg.norm(snap_to_points(unit, points).mesh.vertices, axis=1)
        >>> bool(np.all(np.abs(radii - 1.05) < 0.005))
        True
    """
    from scipy.sparse import diags

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise PcflowError(f"points has shape {points.shape}; expected (N, 3) with N >= 1")
    if not np.all(np.isfinite(points)):
        raise PcflowError("points has non-finite coordinates; expected finite values")
    if not _is_int(iterations) or iterations < 0:
        raise PcflowError(f"iterations={iterations!r} is invalid; expected a non-negative integer")
    faces = np.asarray(boundary.mesh.faces, dtype=np.int64)
    start = np.asarray(boundary.mesh.vertices, dtype=np.float64)
    if max_offset is None:
        max_offset = DEFAULT_TOLERANCE_FRACTION * float(np.linalg.norm(np.ptp(start, axis=0))) if len(start) else 1.0
    max_offset = _check_positive(max_offset, "max_offset")

    vertices, rounds, backoffs = start, 0, 0
    crossings = boundary.info.get("self_intersections")
    if crossings is None and iterations > 0:
        crossings = len(_intersecting_pairs(start, faces))
    if not crossings and iterations > 0 and len(start):
        adjacency = _adjacency(faces, len(start))
        ring_mean = diags(1.0 / np.maximum(adjacency.sum(axis=1).A1, 1.0)) @ adjacency  # mean over the neighbours
        normals = _vertex_normals(start, faces)  # the smooth surface's: moves along them cannot roughen them
        pool = _ring_pool(adjacency, _pool_rings(len(points) / len(start)))
        for _ in range(int(iterations)):
            offsets = _pooled_offsets(points, vertices, normals, pool, max_offset)
            offsets = 0.5 * (offsets + ring_mean @ offsets)
            moved, n_backoffs = _backed_off(vertices, offsets[:, None] * normals, faces, ring_mean,
                                            min_cos=_SNAP_MIN_COS, crossings=False)
            backoffs += n_backoffs
            if moved is None:
                break
            vertices, rounds = moved, rounds + 1
        if rounds:  # crossings are sought once, on the rounds' sum (no face flipped from the start either)
            moved, n_backoffs = _backed_off(start, vertices - start, faces, ring_mean, min_cos=0.0, crossings=True)
            backoffs += n_backoffs
            vertices, rounds = (start, 0) if moved is None else (moved, rounds)
    move = np.linalg.norm(vertices - start, axis=1)
    info = dict(boundary.info)
    if crossings is not None:
        info["self_intersections"] = int(crossings)
    info["snap"] = {
        "rounds": rounds, "max_offset": max_offset, "n_points": int(len(points)),
        "mean_move": float(move.mean()) if len(move) else 0.0, "max_move": float(move.max()) if len(move) else 0.0,
        "n_backoffs": backoffs,
    }
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return BoundaryMesh(mesh=mesh, latent=boundary.latent, uv=boundary.uv, radius=boundary.radius, info=info)


def unsupported_share(mesh: trimesh.Trimesh, points: np.ndarray, distance: float, *, n_samples: int = 20_000,
                      seed: int = 0) -> float:
    """Share of a mesh's area farther than `distance` from every one of `points`, estimated from `n_samples`
    seeded area-uniform samples of the surface.

    Example:
        >>> sphere = trimesh.creation.icosphere(subdivisions=4)
        >>> north = sphere.vertices[sphere.vertices[:, 2] > 0]
        >>> round(unsupported_share(sphere, north, 0.05), 1)  # the southern half has no points near it
        0.5
    """
    from scipy.spatial import cKDTree

    samples, _ = trimesh.sample.sample_surface(mesh, n_samples, seed=np.random.default_rng(seed))
    gaps, _ = cKDTree(np.asarray(points, dtype=np.float64)).query(samples, distance_upper_bound=distance)
    return float(np.mean(np.isinf(gaps)))  # no point within `distance`: the query answers inf


def surface_gap(model, *, spacings: float = GAP_SPACINGS, subdivisions: int = 5) -> float:
    """Share of a 3-D surface model's surface that spans empty space: `unsupported_share` of its unrefined sphere
    mesh (`subdivisions`) against its reference points, at `spacings` times their typical spacing (the median
    distance from a reference point to its 8th nearest other, `OneFlow.neighbor_distance`).

    A scan of a closed object leaves almost none of the surface unsupported; an open scene (a table top and a
    wall, say) leaves a good share of it (a fifth to nine tenths on the table-top scans measured), because a closed
    surface must bridge the open side.
    """
    _check_three_features(model)
    reference = getattr(model, "reference_points_", None)
    if reference is None:
        raise PcflowError("surface_gap needs a model fitted with objective='surface'")
    points = reference + model.center_
    spacing = float(np.median(model.neighbor_distance(points, k=8, statistic="kth")))
    coarse = sphere_mesh(model.inverse_transform, model.radius_, subdivisions=subdivisions, tolerance=np.inf,
                         check_intersections=False)
    return unsupported_share(coarse.mesh, points, spacings * spacing, seed=int(model.seed_))


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
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    edges, inverse_index, counts = _unique_rows(undirected)
    watertight = bool(np.all(counts == 2))
    _, _, directed_counts = _unique_rows(directed)
    # Of an edge shared by two faces, exactly one must run low -> high.
    forward = (directed[:, 0] < directed[:, 1]).astype(np.int64)
    n_forward = np.bincount(inverse_index, weights=forward, minlength=len(edges))
    shared_ok = np.all(n_forward[counts == 2] == 1)
    winding = bool(shared_ok and np.all(directed_counts == 1))
    n_vertices = int(len(np.unique(faces)))
    euler = n_vertices - len(edges) + n_faces
    n_components = _n_face_components(inverse_index, n_faces, len(edges))
    genus = None
    if watertight and n_components == 1:
        genus = (2 - euler) // 2 if euler % 2 == 0 else (2 - euler) / 2
    volume = _signed_volume(vertices, faces)
    return {
        "watertight": watertight,
        "winding_consistent": winding,
        "positive_volume": bool(volume > 0),
        "n_components": int(n_components),
        "euler": int(euler),
        "genus": genus,
        "self_intersections": count_self_intersections(mesh) if check_intersections else None,
        "n_vertices": n_vertices,
        "n_faces": int(n_faces),
        "volume": float(volume),
    }


def count_self_intersections(mesh: trimesh.Trimesh) -> int:
    """Number of intersecting triangle pairs that do not share a vertex.

    Candidate pairs come from an R-tree of face bounding boxes; each is decided by exact-sign
    segment-triangle tests (and a 2-D overlap test for coplanar pairs). Touching counts as not crossing.

    Args:
        mesh: the mesh (or any object with `vertices` (V, 3) and `faces` (F, 3)).

    Returns:
        The number of pairs.
    """
    return int(len(_intersecting_pairs(np.asarray(mesh.vertices, dtype=np.float64),
                                       np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3))))


def marching_cubes_mesh(
    model,
    *,
    coverage: float | None = None,
    resolution: int = 64,
    padding: float = 0.1,
) -> trimesh.Trimesh:
    """Zero level set of `radius - |transform(x)|` on a grid, by marching cubes: a cross-check mesh.

    The grid covers the bounding box of the boundary mesh (refined, unchecked) grown by `padding`
    of its extent on each side (and at least two grid cells), with `resolution` samples along its
    longest side and the same spacing on the others.

    Args:
        model: fitted 3-D model with `transform`, `inverse_transform`, `radius_`, `radius_at`.
        coverage: as in `boundary_mesh`.
        resolution: grid samples along the longest side, >= 8.
        padding: share of the extent added on each side, >= 0.

    Returns:
        The mesh in input units, oriented so its volume is positive.
    """
    from skimage.measure import marching_cubes

    _check_three_features(model)
    if not _is_int(resolution) or resolution < 8:
        raise PcflowError(f"resolution={resolution!r} is invalid; expected an integer >= 8")
    if not isinstance(padding, (int, float, np.number)) or not 0 <= padding < np.inf:
        raise PcflowError(f"padding={padding!r} is invalid; expected a finite number >= 0")
    radius = _model_radius(model, coverage)
    low, high = sphere_mesh(model.inverse_transform, radius, check_intersections=False).mesh.bounds
    extent = high - low
    spacing = float(extent.max()) * (1 + 2 * padding) / (resolution - 1)
    if spacing <= 0:
        raise PcflowError("the region is a single point; cannot run marching cubes on it")
    margin = np.maximum(padding * extent, 2 * spacing)
    low, high = low - margin, high + margin
    shape = np.ceil((high - low) / spacing).astype(int) + 1
    axes = [low[i] + spacing * np.arange(shape[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.empty(len(grid))
    for start in range(0, len(grid), _GRID_CHUNK):
        latent = np.asarray(model.transform(grid[start:start + _GRID_CHUNK]), dtype=np.float64)
        values[start:start + _GRID_CHUNK] = radius - np.linalg.norm(latent, axis=1)
    values = values.reshape(shape)
    if not (values.max() > 0 > values.min()):
        raise PcflowError("the decision function does not change sign on the grid; cannot run marching cubes")
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(spacing,) * 3)
    mesh = trimesh.Trimesh(vertices=verts + low, faces=faces, process=False)
    mesh.merge_vertices()
    if _signed_volume(np.asarray(mesh.vertices), np.asarray(mesh.faces)) < 0:
        mesh.invert()
    return mesh


# ----------------------------------------------------------------------------------------- helpers


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


def _check_three_features(model) -> None:
    n_features = getattr(model, "n_features_in_", 3)
    if n_features != 3:
        raise PcflowError(f"model has n_features_in_={n_features}; a boundary mesh needs a 3-D model")


def _adjacency(faces: np.ndarray, n_vertices: int):
    """Sparse (V, V) 0/1 matrix of the vertices that share an edge."""
    from scipy.sparse import coo_matrix

    edges, _ = _unique_edges(faces)
    pairs = np.concatenate([edges, edges[:, ::-1]])
    return coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_vertices, n_vertices)).tocsr()


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


def _pooled_offsets(points, vertices, normals, pool, max_offset: float) -> np.ndarray:
    """Per vertex, the weighted mean offset along the normal of the points nearest to the vertices of its row of
    `pool`, shrunk toward 0 by `_SNAP_SIGNIFICANCE` standard errors (see `snap_to_points`)."""
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
    return np.sign(mean) * np.maximum(np.abs(mean) - _SNAP_SIGNIFICANCE * stderr, 0.0)


def _ring_pool(adjacency, rings: int):
    """Sparse 0/1 (V, V) matrix of the vertices within `rings` edges of each vertex (itself included)."""
    from scipy.sparse import identity

    pool = identity(adjacency.shape[0], format="csr")
    step = (adjacency + pool).tocsr()
    for _ in range(rings):
        pool = pool @ step
        pool.data[:] = 1.0
    return pool


def _pool_rings(points_per_vertex: float) -> int:
    """Fewest rings r whose 1 + 3 r (r + 1) vertices (on a regular mesh) hold `_SNAP_POOL_POINTS` points on average."""
    for rings in range(_SNAP_MAX_RINGS):
        if (1 + 3 * rings * (rings + 1)) * points_per_vertex >= _SNAP_POOL_POINTS:
            return rings
    return _SNAP_MAX_RINGS


def _backed_off(start, displacement, faces, ring_mean, *, min_cos: float, crossings: bool):
    """`start` + `displacement`, the displacement halved around faces that would turn by more than arccos(`min_cos`)
    from their normal at `start` (or, with `crossings`, cross another face) until none does:
    (vertices, halvings), or (None, halvings) if that takes more than `_SNAP_BACKOFFS` halvings."""
    before = _face_normals(start, faces)
    has_normal = np.einsum("ij,ij->i", before, before) > 0.5  # a face of no area has no normal to turn
    scale = np.ones(len(start))
    for backoffs in range(_SNAP_BACKOFFS + 1):
        moved = start + scale[:, None] * displacement
        bad = (np.einsum("ij,ij->i", _face_normals(moved, faces), before) < min_cos) & has_normal
        bad_faces = np.flatnonzero(bad)
        if crossings:
            bad_faces = np.union1d(bad_faces, _intersecting_pairs(moved, faces).ravel())
        if len(bad_faces) == 0:
            return moved, backoffs
        near = np.zeros(len(start))
        near[faces[bad_faces].ravel()] = 1.0
        for _ in range(3 + 2 * backoffs):  # spread smoothly (wider each time), so the halving leaves no step behind
            near = np.maximum(near, ring_mean @ near)
        scale *= 1.0 - 0.5 * near
    return None, _SNAP_BACKOFFS + 1


def _model_radius(model, coverage: float | None) -> float:
    if coverage is None:
        return float(model.radius_)
    if not (isinstance(coverage, (int, float, np.floating)) and 0 < coverage < 1):
        raise PcflowError(f"coverage={coverage!r} is invalid; expected a number in (0, 1)")
    return float(model.radius_at(float(coverage)))


def _call_inverse(inverse, latent: np.ndarray) -> np.ndarray:
    mapped = np.asarray(inverse(latent.copy()), dtype=np.float64)
    if mapped.shape != latent.shape:
        raise PcflowError(f"inverse returned shape {mapped.shape}; expected {latent.shape}")
    if not np.all(np.isfinite(mapped)):
        raise PcflowError("inverse returned non-finite coordinates; expected finite (M, 3) values")
    return mapped


def _sphere_uv(latent: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(latent, axis=1)
    u = np.mod(np.arctan2(latent[:, 1], latent[:, 0]) / (2 * np.pi), 1.0)
    v = np.arccos(np.clip(latent[:, 2] / norms, -1.0, 1.0)) / np.pi
    return np.column_stack([np.minimum(u, 1.0), v])


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


def _n_face_components(edge_of_corner: np.ndarray, n_faces: int, n_edges: int) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    face_of_corner = np.tile(np.arange(n_faces), 3)
    incidence = coo_matrix((np.ones(len(face_of_corner)), (face_of_corner, edge_of_corner)),
                           shape=(n_faces, n_edges)).tocsr()
    adjacency = incidence @ incidence.T
    return int(connected_components(adjacency, directed=False)[0])


def _longest_position(face_edges: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per face, 0, 1 or 2: which of its edges is longest (ties broken by edge id, the same for all faces)."""
    rank = np.empty(len(lengths), dtype=np.int64)
    rank[np.lexsort((np.arange(len(lengths)), lengths))] = np.arange(len(lengths))
    return np.argmax(rank[face_edges], axis=1)


def _closure(marked: np.ndarray, face_edges: np.ndarray, longest: np.ndarray) -> np.ndarray:
    """Mark the longest edge of every face that has a marked edge, until nothing changes."""
    marked = marked.copy()
    longest_edge = face_edges[np.arange(len(face_edges)), longest]
    while True:
        touched = marked[face_edges].any(axis=1)
        extra = longest_edge[touched & ~marked[longest_edge]]
        if len(extra) == 0:
            return marked
        marked[extra] = True


def _budgeted_marks(wanted, lengths, face_edges, n_faces, max_faces):
    """Conforming marks for `wanted` edges, cut to the longest ones if the face budget needs it.

    Returns (marked, limited); marked is None when not even one edge fits.
    """
    longest = _longest_position(face_edges, lengths)

    def n_after(marks):
        return n_faces + int(marks[face_edges].sum())

    marked = _closure(wanted, face_edges, longest)
    if n_after(marked) <= max_faces:
        return marked, False
    candidates = np.flatnonzero(wanted)
    candidates = candidates[np.argsort(-lengths[candidates], kind="stable")]
    # Binary search for the largest k whose top-k edges, closed, fit: k = lo fits, k > hi does not.
    lo, hi = 0, len(candidates) - 1
    best = None
    while lo < hi:
        k = (lo + hi + 1) // 2
        trial = np.zeros_like(wanted)
        trial[candidates[:k]] = True
        trial = _closure(trial, face_edges, longest)
        if n_after(trial) <= max_faces:
            lo, best = k, trial
        else:
            hi = k - 1
    return best, True


class _Refiner:
    """A latent sphere mesh, its image under `inverse`, and conforming longest-edge bisection of it.

    Edge lengths are measured in input space along the image of the edge's latent arc: the mapped
    distance from one end to the image of the latent midpoint (projected onto the sphere) and on to the
    other end. That catches edges whose chord is short but whose arc the map folds or bends. Midpoint
    images are cached by edge, so every latent point goes through `inverse` once.
    """

    def __init__(self, inverse, radius: float, directions: np.ndarray, faces: np.ndarray):
        self.inverse, self.radius = inverse, radius
        self.latent = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
        self.mapped = _call_inverse(inverse, self.latent)
        self.faces = faces
        self.n_calls = 1
        self._keys = np.empty(0, dtype=np.int64)
        self._mid_latent = np.empty((0, 3))
        self._mid_mapped = np.empty((0, 3))
        self._state = None

    def edges(self):
        """Unique edges (E, 2), per-face edge ids (F, 3), and mapped arc lengths (E,)."""
        if self._state is not None:
            return self._state
        edges, face_edges = _unique_edges(self.faces)
        keys = (edges[:, 0] << 32) | edges[:, 1]
        mid_latent = np.empty((len(edges), 3))
        mid_mapped = np.empty((len(edges), 3))
        where = np.minimum(np.searchsorted(self._keys, keys), max(len(self._keys) - 1, 0))
        known = (self._keys[where] == keys) if len(self._keys) else np.zeros(len(keys), dtype=bool)
        mid_latent[known] = self._mid_latent[where[known]]
        mid_mapped[known] = self._mid_mapped[where[known]]
        fresh = ~known
        if fresh.any():
            points = self.latent[edges[fresh, 0]] + self.latent[edges[fresh, 1]]
            points *= self.radius / np.linalg.norm(points, axis=1, keepdims=True)
            mid_latent[fresh] = points
            mid_mapped[fresh] = _call_inverse(self.inverse, points)
            self.n_calls += 1
        self._keys, self._mid_latent, self._mid_mapped = keys, mid_latent, mid_mapped  # keys come sorted
        lengths = np.linalg.norm(self.mapped[edges[:, 0]] - mid_mapped, axis=1)
        lengths += np.linalg.norm(mid_mapped - self.mapped[edges[:, 1]], axis=1)
        self._state = (edges, face_edges, lengths)
        return self._state

    def split(self, wanted: np.ndarray, max_faces: int) -> tuple[bool, bool]:
        """Bisect the `wanted` edges (and those conformity needs) within the face budget.

        Returns (split anything, hit the face budget).
        """
        edges, face_edges, lengths = self.edges()
        marked, limited = _budgeted_marks(wanted, lengths, face_edges, len(self.faces), max_faces)
        if marked is None:
            return False, True
        longest = _longest_position(face_edges, lengths)
        marked_ids = np.flatnonzero(marked)
        midpoint = np.full(len(edges), -1, dtype=np.int64)
        midpoint[marked_ids] = len(self.latent) + np.arange(len(marked_ids))
        self.latent = np.concatenate([self.latent, self._mid_latent[marked_ids]])
        self.mapped = np.concatenate([self.mapped, self._mid_mapped[marked_ids]])
        self.faces = _bisect_faces(self.faces, face_edges, longest, marked, midpoint)
        self._state = None
        return True, limited


def _bisect_faces(faces, face_edges, longest, marked, midpoint) -> np.ndarray:
    """Split each face with marked edges: first at its longest edge, then the children at the others.

    Marks must be closed (a face with any marked edge has its longest edge marked), so the result conforms.
    """
    rows = np.arange(len(faces))
    # Rotate each face to (a, b, c) with its longest edge b-c; the cyclic order, so orientation, is kept.
    order = np.stack([(longest + 2) % 3, longest, (longest + 1) % 3], axis=1)
    a, b, c = (faces[rows, order[:, i]] for i in range(3))
    e_ab, e_bc, e_ca = (face_edges[rows, order[:, i]] for i in range(3))
    split = marked[e_bc]
    keep = faces[~split]
    a, b, c = a[split], b[split], c[split]
    m = midpoint[e_bc[split]]
    m_ab, m_ca = midpoint[e_ab[split]], midpoint[e_ca[split]]
    ab, ca = m_ab >= 0, m_ca >= 0
    pieces = [
        keep,
        np.column_stack([a, b, m])[~ab],
        np.column_stack([m, a, m_ab])[ab],
        np.column_stack([m, m_ab, b])[ab],
        np.column_stack([a, m, c])[~ca],
        np.column_stack([m, c, m_ca])[ca],
        np.column_stack([m, m_ca, a])[ca],
    ]
    return np.concatenate(pieces).astype(np.int64)


def _intersecting_pairs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(K, 2) face index pairs i < j that intersect and share no vertex."""
    if len(faces) < 2:
        return np.empty((0, 2), dtype=np.int64)
    first, second = _candidate_pairs(vertices, faces)
    shares = (faces[first][:, :, None] == faces[second][:, None, :]).any(axis=(1, 2))
    first, second = first[~shares], second[~shares]
    hits = np.zeros(len(first), dtype=bool)
    scale = float(np.ptp(vertices, axis=0).max()) or 1.0
    for start in range(0, len(first), _PAIR_CHUNK):
        stop = start + _PAIR_CHUNK
        t1 = vertices[faces[first[start:stop]]] / scale
        t2 = vertices[faces[second[start:stop]]] / scale
        hits[start:stop] = _triangles_intersect(t1, t2)
    return np.column_stack([first[hits], second[hits]])


def _candidate_pairs(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face pairs i < j whose bounding boxes overlap, from an R-tree."""
    from rtree import index

    triangles = vertices[faces]
    mins, maxs = triangles.min(axis=1), triangles.max(axis=1)
    pad = 1e-12 * (float(np.ptp(vertices, axis=0).max()) or 1.0)
    mins, maxs = mins - pad, maxs + pad
    properties = index.Property()
    properties.dimension = 3
    properties.leaf_capacity = properties.index_capacity = 16
    tree = index.Index((np.arange(len(faces), dtype=np.int64), mins, maxs), properties=properties)
    ids, counts = tree.intersection_v(mins, maxs)
    first = np.repeat(np.arange(len(faces)), np.asarray(counts, dtype=np.int64))
    second = np.asarray(ids, dtype=np.int64)
    keep = first < second
    return first[keep], second[keep]


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
