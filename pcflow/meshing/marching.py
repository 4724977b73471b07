"""Marching cubes of a model's decision function: a cross-check mesh of its region."""

from __future__ import annotations

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .boundary import _model_radius, sphere_mesh
from .primitives import _check_three_features, _is_int, _signed_volume
from .template import model_template

#: Grid points sent through `model.transform` at once: bounds memory, not the result (the map is pointwise).
_GRID_CHUNK = 1 << 18


def marching_cubes_mesh(
    model,
    *,
    coverage: float | None = None,
    resolution: int = 64,
    padding: float = 0.1,
) -> trimesh.Trimesh:
    """Zero level set of `radius - |transform(x)|` (the latent tori's level for a model of genus 1 to 3) on a grid,
    by marching cubes: a cross-check mesh.

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
    low, high = sphere_mesh(model.inverse_transform, radius, check_intersections=False,
                            template=model_template(model)).mesh.bounds
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
        values[start:start + _GRID_CHUNK] = radius - _level(model, latent)
    values = values.reshape(shape)
    if not (values.max() > 0 > values.min()):
        raise PcflowError("the decision function does not change sign on the grid; cannot run marching cubes")
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(spacing,) * 3)
    mesh = trimesh.Trimesh(vertices=verts + low, faces=faces, process=False)
    mesh.merge_vertices()
    if _signed_volume(np.asarray(mesh.vertices), np.asarray(mesh.faces)) < 0:
        mesh.invert()
    return mesh


def _level(model, latent: np.ndarray) -> np.ndarray:
    """The latent level of (M, 3) latent points: their radius, or the level of the model's latent surface
    (`template_`: a torus, joined tori or a shaped surface)."""
    torus = getattr(model, "template_", None)
    if torus is None:
        return np.linalg.norm(latent, axis=1)
    import torch

    return torus.level(torch.as_tensor(latent)).numpy()
