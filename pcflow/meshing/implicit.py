"""Meshes of implicit latent surfaces, the level sets of a level function: marching cubes, then each vertex moved
onto the surface by Newton steps. The joined tori's template meshes (`pcflow.meshing.Tori`) are such meshes, and the
torus's (`pcflow.meshing.Torus`) where its hole has closed."""

from __future__ import annotations

import numpy as np

from .primitives import _adjacency, _ring_mean, _signed_volume

#: `level_set_mesh`'s smoothing rounds (a Laplacian step, then the projection back onto the surface), and the Newton
#: steps of a projection (`project_onto`).
SMOOTHING_ROUNDS = 4
NEWTON_STEPS = 4


def project_onto(level, z: np.ndarray, size: float, steps: int = NEWTON_STEPS) -> np.ndarray:
    """(M, 3) latent points moved onto the level set `level` = `size` (`level`: (N, 3) -> (N,) tensors) by `steps`
    Newton steps along the level's gradient."""
    import torch

    z = torch.as_tensor(np.array(z, dtype=np.float64))
    for _ in range(steps):
        z.requires_grad_(True)
        value = level(z)
        (gradient,) = torch.autograd.grad(value.sum(), z)
        with torch.no_grad():
            z = z - ((value - size) / (gradient * gradient).sum(dim=1).clamp_min(1e-12))[:, None] * gradient
    return z.detach().numpy()


def level_set_mesh(level, bounds: np.ndarray, size: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """The level set `level` = `size` inside the box `bounds` ((2, 3) corners) meshed: marching cubes on a grid of
    `spacing`, each vertex moved onto the surface (`project_onto`) and the triangles evened out by
    `SMOOTHING_ROUNDS` rounds of a Laplacian step and the projection. (V, 3) vertices, (F, 3) int64 faces wound
    outward (the level rising outward)."""
    import torch
    from skimage.measure import marching_cubes

    low, high = bounds
    low = low - 2.3137 * spacing  # off the lattice of the surface's own round numbers
    axes = [np.arange(a, b + 2.5 * spacing, spacing) for a, b in zip(low, high, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    with torch.no_grad():
        values = level(torch.as_tensor(grid)).numpy().reshape(tuple(len(axis) for axis in axes)) - size
    vertices, faces, _, _ = marching_cubes(values, 0.0, spacing=(spacing,) * 3)
    unique, inverse = np.unique(vertices + low, axis=0, return_inverse=True)  # exact duplicates merged
    faces = inverse.reshape(-1)[faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    ring_mean = _ring_mean(_adjacency(faces, len(unique)))
    latent = unique
    for _ in range(SMOOTHING_ROUNDS):
        latent = project_onto(level, ring_mean @ latent, size)
    return latent, (faces if _signed_volume(latent, faces) > 0 else faces[:, ::-1]).astype(np.int64)
