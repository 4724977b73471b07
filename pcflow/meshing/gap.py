"""Gap measures: how much of a surface lies far from every point, i.e. spans empty space."""

from __future__ import annotations

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .boundary import sphere_mesh
from .primitives import _check_three_features
from .template import model_template


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


def surface_gap(model, *, spacings: float = 3.0, subdivisions: int = 5) -> float:
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
                         check_intersections=False, template=model_template(model))
    return unsupported_share(coarse.mesh, points, spacings * spacing, seed=int(model.seed_))
