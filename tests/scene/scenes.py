"""Small seeded scenes for the scene tests: spheres and boxes standing on a square table, with background outliers."""

from __future__ import annotations

import numpy as np
import trimesh

from pcflow.scene import OUTLIER, PLANE


def table_scene(n_objects: int = 2, *, n_points: int = 6000, outlier_ratio: float = 0.02, seed: int = 0):
    """(points, labels, object meshes): `n_objects` spheres of radius 0.12 on the table z = 0 ([-0.5, 0.5]^2, half
    the points), 0.2 apart, Gaussian noise 0.002, uniform outliers in the 1.2x bounding box."""
    rng = np.random.default_rng(seed)
    n_table = n_points // 2
    table = np.column_stack([rng.uniform(-0.5, 0.5, (n_table, 2)), np.zeros(n_table)])
    parts, labels, meshes = [table], [np.full(n_table, PLANE)], []
    per_object = (n_points - n_table) // max(n_objects, 1)
    for k in range(n_objects):
        centre = np.array([-0.25 + 0.5 * k / max(n_objects - 1, 1), 0.1 * (-1) ** k, 0.12])
        mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.12)
        mesh.apply_translation(centre)
        surface, _ = trimesh.sample.sample_surface(mesh, per_object, seed=rng)
        surface = surface[surface[:, 2] > 0.003]  # the part below the table top is not seen
        parts.append(surface)
        labels.append(np.full(len(surface), k))
        meshes.append(mesh)
    points = np.concatenate(parts)
    points = points + rng.normal(0.0, 0.002, points.shape)
    labels = np.concatenate(labels).astype(np.int32)
    n_out = int(round(outlier_ratio * len(points)))
    rows = rng.choice(len(points), n_out, replace=False)
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, 0.6 * (high - low)
    points[rows] = rng.uniform(centre - half, centre + half, (n_out, 3))
    labels[rows] = OUTLIER
    return points, labels, meshes
