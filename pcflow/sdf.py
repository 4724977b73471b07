"""Signed distances of the hard benchmark shapes (`pcflow.synthetic.HARD_SHAPES`) and their marching-cubes meshes."""

from __future__ import annotations

import numpy as np
import trimesh


def implicit_mesh(distance, lo, hi, resolution: int) -> trimesh.Trimesh:
    """The zero level set of `distance` ((M, 3) points -> (M,) signed distances, negative inside) in the box [lo, hi],
    by marching cubes with `resolution` cells along the box's longest side: a watertight, outward-oriented mesh."""
    from skimage.measure import marching_cubes

    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    step = float((hi - lo).max()) / resolution
    start = lo - 2.3137 * step  # off the lattice of round numbers, so no grid node lies exactly on the surface
    axes = [np.arange(a, b + 2.5 * step, step) for a, b in zip(start, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = distance(grid).reshape(tuple(len(axis) for axis in axes))
    vertices, faces, _, _ = marching_cubes(values, 0.0, spacing=(step, step, step))
    mesh = trimesh.Trimesh(vertices=vertices + start, faces=faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _capsule(p: np.ndarray, a, b, radius: float) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1) - radius


def _box(p: np.ndarray, centre, half) -> np.ndarray:
    q = np.abs(p - np.asarray(centre, dtype=float)) - np.asarray(half, dtype=float)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


def _torus(p: np.ndarray, centre, major: float, minor: float) -> np.ndarray:
    q = p - np.asarray(centre, dtype=float)
    return np.hypot(np.hypot(q[:, 0], q[:, 1]) - major, q[:, 2]) - minor


def _smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """The union of two signed distances with the seam rounded over a width `k` (polynomial smooth minimum)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _flat_animal(p: np.ndarray) -> np.ndarray:
    flat = p * np.array([1.0, 1.0, 0.0])  # the outline in the xy-plane, extruded to a slab 0.1 thick
    outline = 0.45 * (np.linalg.norm(flat / [1.0, 0.45, 1.0], axis=1) - 1.0)  # body
    outline = _smooth_union(outline, np.linalg.norm(flat - [1.15, 0.45, 0.0], axis=1) - 0.32, 0.1)  # head
    for x in (-0.6, -0.3, 0.35, 0.65):
        outline = _smooth_union(outline, _capsule(flat, [x, -0.2, 0.0], [x, -1.0, 0.0], 0.09), 0.05)  # legs
    outline = _smooth_union(outline, _capsule(flat, [-0.9, 0.1, 0.0], [-1.35, 0.55, 0.0], 0.05), 0.05)  # tail
    return np.maximum(outline, np.abs(p[:, 2]) - 0.05)


def _stick_figure(p: np.ndarray) -> np.ndarray:
    distance = _capsule(p, [0.0, 0.0, -0.1], [0.0, 0.0, 0.7], 0.078)  # trunk
    for part in (np.linalg.norm(p - [0.0, 0.0, 0.95], axis=1) - 0.18,  # head
                 _capsule(p, [0.0, 0.0, 0.55], [-0.55, 0.0, 0.2], 0.06),  # arms
                 _capsule(p, [0.0, 0.0, 0.55], [0.55, 0.0, 0.25], 0.06),
                 _capsule(p, [0.0, 0.0, -0.1], [-0.25, 0.0, -1.0], 0.06),  # legs
                 _capsule(p, [0.0, 0.0, -0.1], [0.25, 0.05, -1.0], 0.06)):
        distance = _smooth_union(distance, part, 0.04)
    return distance


def _spiky_ball(p: np.ndarray) -> np.ndarray:
    distance = np.linalg.norm(p, axis=1) - 0.6
    directions = trimesh.creation.icosphere(subdivisions=1).vertices[::3]
    for u in directions / np.linalg.norm(directions, axis=1, keepdims=True):
        near = p @ u > 0.35  # a spike changes the distance only near its own axis
        distance[near] = _smooth_union(distance[near], _capsule(p[near], 0.5 * u, 1.0 * u, 0.05), 0.04)
    return distance


def _bracket(p: np.ndarray) -> np.ndarray:
    distance = np.minimum(_box(p, [0.0, 0.0, -0.4], [1.0, 0.5, 0.1]), _box(p, [-0.9, 0.0, 0.1], [0.1, 0.5, 0.6]))
    return np.minimum(distance, _box(p, [0.4, 0.0, -0.2], [0.3, 0.25, 0.12]))


def _double_torus(p: np.ndarray) -> np.ndarray:
    return np.minimum(_torus(p, [-0.85, 0.0, 0.0], 0.7, 0.25), _torus(p, [0.85, 0.0, 0.0], 0.7, 0.25))


def _triple_torus(p: np.ndarray) -> np.ndarray:
    rings = [_torus(p, [x, 0.0, 0.0], 0.7, 0.25) for x in (-1.7, 0.0, 1.7)]
    return np.minimum(np.minimum(rings[0], rings[1]), rings[2])


def _two_hole_plate(p: np.ndarray) -> np.ndarray:
    slab = _box(p, [0.0, 0.0, 0.0], [0.9, 0.45, 0.08]) - 0.07  # a plate with rounded edges
    holes = np.minimum(np.hypot(p[:, 0] + 0.45, p[:, 1]), np.hypot(p[:, 0] - 0.45, p[:, 1])) - 0.22
    return np.maximum(slab, -holes)


def _ring_pair(p: np.ndarray) -> np.ndarray:
    tilt = np.radians(35.0)  # the second, smaller ring turned about the x axis
    turned = p - np.array([0.78, 0.0, 0.0])
    turned = np.column_stack([turned[:, 0], np.cos(tilt) * turned[:, 1] + np.sin(tilt) * turned[:, 2],
                              -np.sin(tilt) * turned[:, 1] + np.cos(tilt) * turned[:, 2]])
    return _smooth_union(_torus(p, [-0.55, 0.0, 0.0], 0.75, 0.22), _torus(turned, [0.0, 0.0, 0.0], 0.5, 0.17), 0.1)


#: name -> (signed distance, box low corner, box high corner, marching-cubes cells along the longest side)
HARD_SHAPE_DISTANCES = {
    "flat_animal": (_flat_animal, (-1.5, -1.2, -0.06), (1.5, 0.9, 0.06), 160),
    "stick_figure": (_stick_figure, (-0.7, -0.2, -1.1), (0.7, 0.2, 1.2), 160),
    "spiky_ball": (_spiky_ball, (-1.1, -1.1, -1.1), (1.1, 1.1, 1.1), 128),
    "bracket": (_bracket, (-1.05, -0.55, -0.55), (1.05, 0.55, 0.75), 128),
    "double_torus": (_double_torus, (-1.85, -0.95, -0.3), (1.85, 0.95, 0.3), 160),
    "two_hole_plate": (_two_hole_plate, (-1.0, -0.55, -0.18), (1.0, 0.55, 0.18), 160),
    "ring_pair": (_ring_pair, (-1.55, -1.0, -0.6), (1.5, 1.0, 0.6), 160),
    "triple_torus": (_triple_torus, (-2.7, -0.95, -0.3), (2.7, 0.95, 0.3), 180),
}
