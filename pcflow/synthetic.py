"""Synthetic scans and table-top scenes with known labels, sampled from closed meshes (docs/evaluation.md protocol)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import numpy as np
import trimesh

from pcflow.errors import PcflowError
from pcflow.scene import OUTLIER, PLANE
from pcflow.sdf import HARD_SHAPE_DISTANCES, implicit_mesh

BUILTIN_SHAPES = ("sphere", "capsule", "rounded_box")
#: Shapes kept out of the default benchmark, to measure on shapes a method was not tuned on: a cylinder and a cone
#: (genus 0 with sharp edges and an apex), a torus (genus 1: no genus-0 surface can follow its hole), an icosahedron
#: (flat faces, sharp edges and corners), a bumpy sphere (smooth bumps) and a star pillow (five arms with deep
#: concave notches between them).
HELD_OUT_SHAPES = ("cylinder", "cone", "torus", "icosahedron", "bumpy_sphere", "star_pillow")
#: Shapes of the kinds a genus-0 surface finds hardest, also kept out of every choice of settings, made by marching
#: cubes from signed distances: a flat cut-out animal (3% as thick as it is long), a stick figure (limbs 6% of its
#: height across), a ball with fourteen thin spikes (fine detail), an L bracket with a step (flat faces, sharp
#: edges), three of genus 2: a double torus, a plate with two holes and two rings of different sizes at an angle,
#: fused with a rounded seam, and a triple torus (three rings in a row, genus 3).
HARD_SHAPES = ("flat_animal", "stick_figure", "spiky_ball", "bracket", "double_torus", "two_hole_plate", "ring_pair",
               "triple_torus")
#: Genus of every built-in shape that is not genus 0.
SHAPE_GENUS = {"torus": 1, "double_torus": 2, "two_hole_plate": 2, "ring_pair": 2, "triple_torus": 3}


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


#: Directions of the all-around visibility test of `synthetic_scene`, spread evenly over the sky from
#: `ALL_AROUND_ELEVATION` degrees above the horizontal up: a scanner moved all around the table, never lower.
ALL_AROUND_DIRECTIONS = 64
ALL_AROUND_ELEVATION = 10.0
#: Most objects a synthetic scene holds (two rows of three).
MAX_SCENE_OBJECTS = 6


@dataclass
class SyntheticScene:
    """A labelled synthetic table-top scene and the surfaces it was sampled from.

    The frame is z up and normalised: the bounding box of the objects, the table top and the wall's front has its
    centre at the origin and diagonal 1.

    Attributes:
        points: (N, 3) float64 array.
        labels: (N,) int32 array in the `pcflow.scene` convention: `OUTLIER` for a background outlier, ``k`` for a
            point of object ``k``, ``PLANE`` for the table and ``PLANE + 1`` for the wall.
        meshes: the K closed object meshes (object ``k`` is ``meshes[k]``).
        planes: the table (and the wall) as thin closed boxes: the table's top face and the wall's front face are
            the sampled rectangles; plane ``k`` is ``planes[k]``.
        camera: (3,) camera position of a one-view scan; None for a scan from all around.
        spacing: sqrt(sampled area / points sampled), the side of the square each sample covers before the hidden
            ones were dropped.
        n_outliers_inside: how many background outliers landed inside an object.
    """

    points: np.ndarray
    labels: np.ndarray
    meshes: list
    planes: list
    camera: np.ndarray | None
    spacing: float
    n_outliers_inside: int

    def occluders(self, mesh: trimesh.Trimesh | None = None, replaces: int | None = None) -> trimesh.Trimesh:
        """Everything in the scene as one mesh: the planes and the objects, with `mesh` in place of object
        `replaces` (or added, when `replaces` is None)."""
        parts = [m for k, m in enumerate(self.meshes) if k != replaces] + list(self.planes)
        return trimesh.util.concatenate(parts + ([mesh] if mesh is not None else []))

    def visible_samples(self, mesh: trimesh.Trimesh, replaces: int, *, n_samples: int = 100_000,
                        seed: int = 0) -> np.ndarray:
        """Area samples of `mesh` that the scan sees when `mesh` stands in for object `replaces`.

        For a one-view scan: of `n_samples` points drawn by area on `mesh`, those the camera sees past the planes,
        the other objects and `mesh` itself (`visible_from`); for a scan from all around, all of them.

        Args:
            mesh: a triangle mesh in the scene's frame (the object itself, or a reconstruction of it).
            replaces: the index of the object `mesh` stands for (left out of the occluders).
            n_samples: points drawn on `mesh` before the hidden ones are dropped.
            seed: sampling seed.

        Returns:
            (M, 3) float64 array, M <= `n_samples`.
        """
        points, _ = trimesh.sample.sample_surface(mesh, int(n_samples), seed=np.random.default_rng(seed))
        points = np.asarray(points, dtype=np.float64)
        if self.camera is None:
            return points
        return points[visible_from(self.occluders(mesh, replaces), points, self.camera)]

    def visible_truth(self, k: int, *, n_samples: int = 100_000, seed: int = 0) -> np.ndarray:
        """The part of object `k` the scan sees, as noise-free area samples: (M, 3) float64 array
        (`visible_samples` of the object itself)."""
        return self.visible_samples(self.meshes[k], k, n_samples=n_samples, seed=seed)


def synthetic_scene(
    meshes,
    *,
    n_points: int = 20_000,
    size: float = 0.2,
    gap: float = 0.3,
    wall: bool = False,
    view=None,
    noise: float = 0.002,
    outlier_ratio: float = 0.05,
    seed: int = 0,
) -> SyntheticScene:
    """Sample a noisy scan of closed meshes standing on a table, optionally in front of a wall, with outliers.

    Each mesh is normalised (`normalize_mesh`), turned by a random angle about z, scaled to bounding-box diagonal
    `size` and set down on the table (its lowest point on the table top, z up) in a grid of one row (up to 3 objects)
    or two, each at a random place in its cell: the objects' bounding boxes stay at least `gap` object diagonals
    apart in x or y. The table is a rectangle as much larger than the objects' footprint on every side as makes the
    whole scene's bounding-box diagonal 1 / `size` object diagonals; the wall, a rectangle 1.5 times as high as the
    tallest object, stands on the table's back edge (+y). The scene is then normalised as docs/evaluation.md
    normalises a scan (bounding-box centre at the origin, diagonal 1).

    `n_points` points are drawn by area over the objects, the table top and the wall's front, one
    `numpy.random.default_rng(seed)` stream for every draw; the points no scanner could see are dropped:

    - all around (`view` None): a point is kept when at least one of `ALL_AROUND_DIRECTIONS` rays from it towards
      the sky (at least `ALL_AROUND_ELEVATION` degrees above the horizontal) leaves the scene without meeting a
      surface. The underside where an object rests on the table, and the table under an object, are dropped (a
      sphere loses the cap within 10 degrees of where it touches the table); the rest of each object's surface is
      kept, and its ground truth is the whole mesh.
    - one view: only the points a camera 2 diagonals from the centre in direction `view` sees (`visible_from`,
      with every object and plane in the scene as occluders); the ground truth of object ``k`` is its visible part,
      `SyntheticScene.visible_truth`.

    Then Gaussian noise of standard deviation `noise` goes on every coordinate, and `round(outlier_ratio * n)` of
    the `n` points kept, chosen at random, are replaced by points drawn uniformly in the bounding box enlarged 1.5x
    about its centre (label `OUTLIER`, also where they land inside an object).

    Args:
        meshes: 1 to `MAX_SCENE_OBJECTS` closed (watertight) triangle meshes, in any units; object ``k`` is
            ``meshes[k]``.
        n_points: points drawn before the hidden ones are dropped.
        size: each object's bounding-box diagonal, in units of the scene's diagonal, in (0, 1).
        gap: the least distance between two objects' bounding boxes, in object diagonals (> 0).
        wall: also a wall behind the objects (plane 1).
        view: None (all around), or the direction from the scene's centre towards the camera (a 3-vector).
        noise: standard deviation of the Gaussian noise, in units of the scene's diagonal.
        outlier_ratio: share of the points kept that are background outliers, in [0, 1).
        seed: seed of the random stream.

    Returns:
        A `SyntheticScene` in the normalised frame.

    Example:
        >>> scene = synthetic_scene([builtin_shape("sphere"), builtin_shape("capsule")], n_points=2000)
        >>> sorted(set(scene.labels.tolist()))
        [-1, 0, 1, 1000]
    """
    meshes = list(meshes) if isinstance(meshes, (list, tuple)) else meshes
    if not isinstance(meshes, list) or not 1 <= len(meshes) <= MAX_SCENE_OBJECTS:
        count = len(meshes) if isinstance(meshes, list) else type(meshes).__name__
        raise PcflowError(f"meshes holds {count}; expected a list of 1 to {MAX_SCENE_OBJECTS} closed meshes")
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 1:
        raise PcflowError(f"n_points is {n_points!r}; expected a positive integer")
    if not (isinstance(size, (int, float)) and 0.0 < size < 1.0):
        raise PcflowError(f"size is {size!r}; expected a share of the scene's diagonal in (0, 1)")
    if not (isinstance(gap, (int, float)) and math.isfinite(gap) and gap > 0.0):
        raise PcflowError(f"gap is {gap!r}; expected a positive number of object diagonals")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0.0):
        raise PcflowError(f"noise is {noise!r}; expected a finite number >= 0")
    if not (isinstance(outlier_ratio, (int, float)) and 0.0 <= outlier_ratio < 1.0):
        raise PcflowError(f"outlier_ratio is {outlier_ratio!r}; expected a number in [0, 1)")
    direction = None if view is None else _unit(view)
    rng = np.random.default_rng(seed)
    objects, planes, rectangles = _scene_layout(meshes, size, gap, wall, rng)

    areas = np.array([m.area for m in objects] + [r[1] * r[2] for r in rectangles])
    counts = rng.multinomial(int(n_points), areas / areas.sum())
    parts, labels = [], []
    for k, (mesh, count) in enumerate(zip(objects, counts[:len(objects)], strict=True)):
        parts.append(np.asarray(trimesh.sample.sample_surface(mesh, int(count), seed=rng)[0], dtype=np.float64))
        labels.append(np.full(count, k, dtype=np.int32))
    for k, ((corner, width, height, u, v), count) in enumerate(zip(rectangles, counts[len(objects):], strict=True)):
        s, t = rng.uniform(0.0, 1.0, size=(2, count, 1))
        parts.append(corner + s * width * u + t * height * v)
        labels.append(np.full(count, PLANE + k, dtype=np.int32))
    points, labels = np.concatenate(parts), np.concatenate(labels)
    spacing = math.sqrt(float(areas.sum()) / int(n_points))

    everything = trimesh.util.concatenate(objects + planes)
    camera = None if direction is None else 2.0 * direction  # the scene's centre is the origin
    seen = _seen_from_outside(everything, points) if camera is None else visible_from(everything, points, camera)
    if not seen.any():
        raise PcflowError(f"view is {np.asarray(view).tolist()!r}; the camera there sees no point of the scene")
    points, labels = points[seen], labels[seen]
    points = points + rng.normal(0.0, noise, size=points.shape)

    n_outliers = int(round(outlier_ratio * len(points)))
    replaced = rng.choice(len(points), size=n_outliers, replace=False)
    lo, hi = _scene_bounds(objects, rectangles)
    centre, half = (lo + hi) / 2.0, 1.5 * (hi - lo) / 2.0
    points[replaced] = rng.uniform(centre - half, centre + half, size=(n_outliers, 3))
    labels[replaced] = OUTLIER
    inside = points_inside(trimesh.util.concatenate(objects), points[replaced]) if n_outliers else np.zeros(0, bool)
    return SyntheticScene(points=points, labels=labels, meshes=objects, planes=planes, camera=camera,
                          spacing=spacing, n_outliers_inside=int(np.count_nonzero(inside)))


def _scene_layout(meshes, size: float, gap: float, wall: bool, rng: np.random.Generator):
    """The objects, the plane boxes and the sampled rectangles (corner, width, height, u, v) of a scene, normalised."""
    objects = []
    for k, mesh in enumerate(meshes):
        if not isinstance(mesh, trimesh.Trimesh):
            raise PcflowError(f"meshes[{k}] is a {type(mesh).__name__}; expected a trimesh.Trimesh")
        mesh = normalize_mesh(mesh)
        if not mesh.is_watertight:
            raise PcflowError(f"meshes[{k}] is not watertight; synthetic scenes need closed surfaces")
        turn = trimesh.transformations.rotation_matrix(rng.uniform(0.0, 2.0 * math.pi), [0.0, 0.0, 1.0])
        objects.append(normalize_mesh(mesh.apply_transform(turn)))  # diagonal 1 again, box aligned after the turn
    n_rows = 1 if len(objects) <= 3 else 2
    n_cols = -(-len(objects) // n_rows)
    extents = np.array([m.extents for m in objects])
    cell = extents[:, :2].max(axis=0) + gap
    for k, mesh in enumerate(objects):
        row, col = divmod(k, n_cols)
        slack = np.maximum(cell - gap - extents[k, :2], 0.0)
        centre = (np.array([col - (n_cols - 1) / 2.0, row - (n_rows - 1) / 2.0]) * cell
                  + rng.uniform(-slack / 2.0, slack / 2.0))
        lo, hi = mesh.bounds
        mesh.apply_translation([centre[0] - (lo[0] + hi[0]) / 2.0, centre[1] - (lo[1] + hi[1]) / 2.0, -lo[2]])
    lo = np.min([m.bounds[0] for m in objects], axis=0)
    hi = np.max([m.bounds[1] for m in objects], axis=0)
    (width, depth), tallest = hi[:2] - lo[:2], float(hi[2])
    wall_height = 1.5 * tallest
    height = wall_height if wall else tallest
    # the table's margin m on every side: (width + 2m)^2 + (depth + 2m)^2 + height^2 = (1 / size)^2
    b, c = 4.0 * (width + depth), width ** 2 + depth ** 2 + height ** 2 - 1.0 / size ** 2
    margin = (-b + math.sqrt(max(b * b - 32.0 * c, 0.0))) / 16.0
    if margin < gap:
        largest = 1.0 / math.sqrt((width + 2 * gap) ** 2 + (depth + 2 * gap) ** 2 + height ** 2)
        raise PcflowError(f"size is {size!r}; {len(objects)} objects {gap!r} diagonals apart, on a table {gap!r} "
                          f"diagonals wider on each side, fit only up to size {largest:.3f}")
    x0, y0 = lo[:2] - margin
    x1, y1 = hi[:2] + margin
    thick = 0.05  # of an object's diagonal: the boxes only block rays; their other faces are never sampled
    planes = [trimesh.creation.box(bounds=[[x0, y0, -thick], [x1, y1, 0.0]])]
    rectangles = [(np.array([x0, y0, 0.0]), x1 - x0, y1 - y0, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))]
    if wall:
        planes.append(trimesh.creation.box(bounds=[[x0, y1, 0.0], [x1, y1 + thick, wall_height]]))
        rectangles.append((np.array([x0, y1, 0.0]), x1 - x0, wall_height, np.array([1.0, 0, 0]),
                           np.array([0, 0, 1.0])))
    lo, hi = _scene_bounds(objects, rectangles)
    shift, scale = -(lo + hi) / 2.0, 1.0 / float(np.linalg.norm(hi - lo))
    for mesh in objects + planes:
        mesh.apply_translation(shift)
        mesh.apply_scale(scale)
    rectangles = [((corner + shift) * scale, w * scale, h * scale, u, v) for corner, w, h, u, v in rectangles]
    return objects, planes, rectangles


def _scene_bounds(objects, rectangles) -> tuple[np.ndarray, np.ndarray]:
    """(3,) low and high corners of the box around the objects and the sampled rectangles."""
    corners = [m.bounds for m in objects]
    corners += [np.array([corner, corner + w * u + h * v]) for corner, w, h, u, v in rectangles]
    corners = np.concatenate(corners)
    return corners.min(axis=0), corners.max(axis=0)


def _seen_from_outside(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """(M,) bool array, True where one of `ALL_AROUND_DIRECTIONS` rays from a point on `mesh`, each at least
    `ALL_AROUND_ELEVATION` degrees above the horizontal, leaves the scene without meeting a surface."""
    import open3d as o3d

    vertices, faces = _geometry(mesh)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    k = np.arange(ALL_AROUND_DIRECTIONS) + 0.5  # a Fibonacci spiral on the cap: near-uniform directions
    lowest = math.sin(math.radians(ALL_AROUND_ELEVATION))
    z = 1.0 - (1.0 - lowest) * k / ALL_AROUND_DIRECTIONS
    phi = math.pi * (3.0 - math.sqrt(5.0)) * k
    directions = np.column_stack([np.sqrt(1.0 - z * z) * np.cos(phi), np.sqrt(1.0 - z * z) * np.sin(phi), z])
    offset = 1e-4 * float(np.linalg.norm(np.ptp(vertices, axis=0)))  # off the surface the ray starts from
    seen = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), 8192):
        block = points[start:start + 8192]
        origins = block[:, None, :] + offset * directions[None, :, :]
        rays = np.concatenate([origins, np.broadcast_to(directions, origins.shape)], axis=2).reshape(-1, 6)
        hits = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))["t_hit"].numpy()
        seen[start:start + 8192] = np.isinf(hits.reshape(len(block), -1)).any(axis=1)
    return seen


def builtin_shape(name: str) -> trimesh.Trimesh:
    """Return a closed test shape, normalised to bounding-box diagonal 1.

    Args:
        name: one of `BUILTIN_SHAPES`, genus 0: 'sphere' (icosphere, 2,562 vertices), 'capsule' (cylinder with
            hemispherical caps, as long as it is wide plus its caps) or 'rounded_box' (a superellipsoid
            |x/a|^6 + |y/b|^6 + |z/c|^6 = 1 with half-axes 1, 0.75, 0.5: a box with rounded edges); or one of
            `HELD_OUT_SHAPES`: 'cylinder' (height 1.5 x its radius), 'cone' (height 2 x its base radius), both
            genus 0, 'torus' (tube radius 0.35 x the major radius, genus 1), 'icosahedron', 'bumpy_sphere' (a
            sphere of radius 1 + 0.12 sin(4 theta) cos(3 phi)) or 'star_pillow' (a sphere squashed to 0.35 in z and
            scaled in the xy-plane by 0.6 + 0.4 cos(5 phi): five arms), all genus 0; or one of `HARD_SHAPES`
            (marching cubes of a signed distance, with about 30,000-100,000 faces).

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
    elif name in HARD_SHAPES:
        mesh = implicit_mesh(*HARD_SHAPE_DISTANCES[name])
    else:
        known = ", ".join(BUILTIN_SHAPES + HELD_OUT_SHAPES + HARD_SHAPES)
        raise PcflowError(f"unknown shape {name!r}; expected one of {known}")
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
