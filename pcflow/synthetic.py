"""Synthetic scans with known outlier labels, sampled from closed meshes (docs/evaluation.md protocol)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import numpy as np
import trimesh

from pcflow.errors import PcflowError

BUILTIN_SHAPES = ("sphere", "capsule", "rounded_box")
#: Shapes kept out of the default benchmark, to measure on shapes a method was not tuned on: a cylinder and a cone
#: (genus 0 with sharp edges and an apex), a torus (genus 1: no genus-0 surface can follow its hole), an icosahedron
#: (flat faces, sharp edges and corners), a bumpy sphere (smooth bumps) and a star pillow (five arms with deep
#: concave notches between them).
HELD_OUT_SHAPES = ("cylinder", "cone", "torus", "icosahedron", "bumpy_sphere", "star_pillow")


@dataclass
class SyntheticScan:
    """A labelled synthetic scan and the surface it was sampled from.

    Attributes:
        points: (N, 3) float64 array in the normalised frame (bounding-box centre at the origin,
            bounding-box diagonal 1).
        labels: (N,) int8 array, 1 = background outlier, 0 = noisy surface point.
        mesh: the ground-truth mesh in the same normalised frame.
        n_outliers_inside: how many background outliers landed inside the closed surface.
    """

    points: np.ndarray
    labels: np.ndarray
    mesh: trimesh.Trimesh
    n_outliers_inside: int


def normalize_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Return a copy of `mesh` with its bounding-box centre at the origin and bounding-box diagonal 1.

    Only the geometry is kept: texture coordinates and colours are dropped, so vertices that a loader
    split along texture seams are merged again and a closed surface stays watertight.

    Args:
        mesh: a triangle mesh with at least one face and a non-degenerate bounding box.

    Returns:
        A new `trimesh.Trimesh`; `mesh` is not modified.

    Example:
        >>> m = normalize_mesh(trimesh.creation.box(extents=(3.0, 4.0, 12.0)))
        >>> round(float(np.linalg.norm(m.extents)), 12), np.allclose(m.bounds.mean(axis=0), 0.0)
        (1.0, True)
    """
    vertices, faces = _geometry(mesh)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    diagonal = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diagonal) or diagonal <= 0.0:
        raise PcflowError(f"mesh bounding-box diagonal is {diagonal}; expected a finite positive size")
    vertices = (vertices - (lo + hi) / 2.0) / diagonal
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=True)


def synthetic_scan(
    mesh: trimesh.Trimesh,
    *,
    n_points: int = 20_000,
    noise: float = 0.002,
    outlier_ratio: float = 0.05,
    seed: int = 0,
    view=None,
) -> SyntheticScan:
    """Sample a noisy scan of a closed mesh with uniform background outliers.

    Follows docs/evaluation.md "Synthetic scans": the mesh is normalised (`normalize_mesh`), `n_points`
    points are sampled uniformly by area, Gaussian noise of standard deviation `noise` is added per
    coordinate, then `round(outlier_ratio * n_points)` points chosen at random are replaced by points
    drawn uniformly in the bounding box enlarged 1.5x about its centre. Outliers keep label 1 even
    when they land inside the surface; their number is reported in `n_outliers_inside`.

    With `view`, a single-view scan (beyond docs/evaluation.md): of the sampled points only those a camera sees are
    kept, before the noise and the outliers (the outliers are then `outlier_ratio` of the points kept).

    Args:
        mesh: a closed (watertight) triangle mesh, in any units.
        n_points: total number of points, inliers plus outliers (with `view`: points sampled before the hidden ones
            are dropped).
        noise: standard deviation of the Gaussian noise, in units of the bounding-box diagonal.
        outlier_ratio: share of the points that are background outliers, in [0, 1).
        seed: seed of the single `numpy.random.default_rng` stream used for every draw.
        view: None (the whole surface), or the direction from the bounding-box centre to a camera 2 diagonals
            away (`visible_from`).

    Returns:
        A `SyntheticScan` whose points, labels and mesh are all in the normalised frame.

    Example:
        >>> scan = synthetic_scan(builtin_shape("sphere"), n_points=1000, outlier_ratio=0.1)
        >>> scan.points.shape, int(scan.labels.sum())
        ((1000, 3), 100)
    """
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 1:
        raise PcflowError(f"n_points is {n_points!r}; expected a positive integer")
    if not (math.isfinite(noise) and noise >= 0.0):
        raise PcflowError(f"noise is {noise!r}; expected a finite number >= 0")
    if not (0.0 <= outlier_ratio < 1.0):
        raise PcflowError(f"outlier_ratio is {outlier_ratio!r}; expected a number in [0, 1)")
    gt = normalize_mesh(mesh)
    if not gt.is_watertight:
        raise PcflowError("mesh is not watertight; synthetic scans need a closed surface")

    rng = np.random.default_rng(seed)
    points, _ = trimesh.sample.sample_surface(gt, int(n_points), seed=rng)
    points = np.asarray(points, dtype=np.float64)
    if view is not None:
        points = points[visible_from(gt, points, gt.bounds.mean(axis=0) + 2.0 * _unit(view))]
    n_points = len(points)
    points = points + rng.normal(0.0, noise, size=(n_points, 3))

    n_outliers = int(round(outlier_ratio * n_points))
    replaced = rng.choice(n_points, size=n_outliers, replace=False)
    lo, hi = gt.bounds
    centre, half = (lo + hi) / 2.0, 1.5 * (hi - lo) / 2.0
    outliers = rng.uniform(centre - half, centre + half, size=(n_outliers, 3))
    points[replaced] = outliers

    labels = np.zeros(n_points, dtype=np.int8)
    labels[replaced] = 1
    n_inside = int(np.count_nonzero(points_inside(gt, outliers))) if n_outliers else 0
    return SyntheticScan(points=points, labels=labels, mesh=gt, n_outliers_inside=n_inside)


def builtin_shape(name: str) -> trimesh.Trimesh:
    """Return a closed test shape, normalised to bounding-box diagonal 1.

    Args:
        name: one of `BUILTIN_SHAPES`, genus 0: 'sphere' (icosphere, 2,562 vertices), 'capsule' (cylinder with
            hemispherical caps, as long as it is wide plus its caps) or 'rounded_box' (a superellipsoid
            |x/a|^6 + |y/b|^6 + |z/c|^6 = 1 with half-axes 1, 0.75, 0.5: a box with rounded edges); or one of
            `HELD_OUT_SHAPES`: 'cylinder' (height 1.5 x its radius), 'cone' (height 2 x its base radius), both
            genus 0, 'torus' (tube radius 0.35 x the major radius, genus 1), 'icosahedron', 'bumpy_sphere' (a
            sphere of radius 1 + 0.12 sin(4 theta) cos(3 phi)) or 'star_pillow' (a sphere squashed to 0.35 in z and
            scaled in the xy-plane by 0.6 + 0.4 cos(5 phi): five arms), all genus 0.

    Returns:
        A watertight, consistently oriented `trimesh.Trimesh` with positive volume.
    """
    if name == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    elif name == "capsule":
        mesh = trimesh.creation.capsule(height=1.0, radius=0.5, count=[32, 32])
    elif name == "rounded_box":
        mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
        axes = np.array([1.0, 0.75, 0.5])
        power = 6.0
        directions = np.asarray(mesh.vertices)
        # Scale each ray from the centre until it meets the superellipsoid: the map is radial, so the
        # icosphere's connectivity stays watertight and its orientation outward.
        scale = np.sum(np.abs(directions / axes) ** power, axis=1) ** (-1.0 / power)
        mesh = trimesh.Trimesh(vertices=directions * scale[:, None], faces=mesh.faces, process=True)
    elif name == "cylinder":
        mesh = trimesh.creation.cylinder(radius=1.0, height=1.5, sections=96)
    elif name == "cone":
        mesh = trimesh.creation.cone(radius=1.0, height=2.0, sections=96)
    elif name == "torus":
        mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=96, minor_sections=48)
    elif name == "icosahedron":
        mesh = trimesh.creation.icosahedron()
    elif name in ("bumpy_sphere", "star_pillow"):
        sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
        x, y, z = np.asarray(sphere.vertices).T
        theta, phi = np.arccos(np.clip(z, -1.0, 1.0)), np.arctan2(y, x)
        if name == "bumpy_sphere":  # radial, so the sphere's connectivity stays watertight and outward
            vertices = sphere.vertices * (1.0 + 0.12 * np.sin(4 * theta) * np.cos(3 * phi))[:, None]
        else:  # each ray in the xy-plane scaled by a positive factor: one-to-one, orientation kept
            arms = 0.6 + 0.4 * np.cos(5 * phi)
            vertices = np.column_stack([x * arms, y * arms, 0.35 * z])
        mesh = trimesh.Trimesh(vertices=vertices, faces=sphere.faces, process=True)
    else:
        raise PcflowError(f"unknown shape {name!r}; expected one of {', '.join(BUILTIN_SHAPES + HELD_OUT_SHAPES)}")
    return normalize_mesh(mesh)


def visible_from(mesh: trimesh.Trimesh, points: np.ndarray, camera) -> np.ndarray:
    """Tell which points on a mesh's surface a camera at `camera` sees: (M,) bool array, True where the ray from
    the camera to the point first meets the surface at the point (Open3D's ray casting)."""
    import open3d as o3d

    vertices, faces = _geometry(mesh)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    camera = np.asarray(camera, dtype=np.float64)
    offsets = points - camera
    lengths = np.linalg.norm(offsets, axis=1)
    rays = np.hstack([np.broadcast_to(camera, points.shape), offsets / lengths[:, None]]).astype(np.float32)
    hits = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    return hits >= lengths - 1e-4 * float(np.linalg.norm(np.ptp(vertices, axis=0)))  # float32 rays


def _unit(direction) -> np.ndarray:
    direction = np.asarray(direction, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(direction)) if direction.shape == (3,) else 0.0
    if not (math.isfinite(norm) and norm > 0):
        raise PcflowError(f"view is {direction.tolist()!r}; expected a non-zero 3-vector (towards the camera)")
    return direction / norm


def points_inside(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Tell which points lie inside a closed mesh.

    Uses Open3D's ray-casting occupancy (a majority of 3 ray parities per point) when Open3D is installed, and the
    generalised winding number otherwise.

    Args:
        mesh: a watertight, consistently oriented triangle mesh.
        points: (M, 3) float array.

    Returns:
        (M,) bool array, True inside.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if importlib.util.find_spec("open3d") is None:
        return winding_number(mesh, points) > 0.5
    import open3d as o3d

    vertices, faces = _geometry(mesh)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    occupancy = scene.compute_occupancy(o3d.core.Tensor(points.astype(np.float32)), nsamples=3)
    return occupancy.numpy() > 0.5


def winding_number(mesh: trimesh.Trimesh, points: np.ndarray, *, chunk: int = 64) -> np.ndarray:
    """Generalised winding number of a triangle mesh at query points.

    Sum of the signed solid angles of all faces seen from each point, divided by 4 pi (Van Oosterom
    and Strackee formula): about 1 inside and 0 outside a closed outward-oriented mesh.

    Args:
        mesh: a triangle mesh.
        points: (M, 3) float array.
        chunk: points per batch; memory is about chunk * n_faces * 100 bytes.

    Returns:
        (M,) float64 array.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        rel = triangles[None, :, :, :] - points[start:start + chunk, None, None, :]
        a, b, c = rel[:, :, 0], rel[:, :, 1], rel[:, :, 2]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        numerator = np.einsum("ijk,ijk->ij", a, np.cross(b, c))
        denominator = (la * lb * lc + np.einsum("ijk,ijk->ij", a, b) * lc
                       + np.einsum("ijk,ijk->ij", b, c) * la + np.einsum("ijk,ijk->ij", c, a) * lb)
        out[start:start + chunk] = np.arctan2(numerator, denominator).sum(axis=1) / (2.0 * np.pi)
    return out


def _geometry(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and faces (F, 3) int64 of a mesh, checked to be usable."""
    if not isinstance(mesh, trimesh.Trimesh):
        raise PcflowError(f"mesh is a {type(mesh).__name__}; expected a trimesh.Trimesh")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        raise PcflowError("mesh has no faces; expected a triangle mesh")
    if not np.all(np.isfinite(vertices)):
        raise PcflowError("mesh has non-finite vertex coordinates; expected finite numbers")
    return vertices, faces
