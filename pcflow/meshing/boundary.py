"""Boundary meshes: a latent template mapped through the inverse flow, refined, repaired and snapped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .primitives import _check_count, _check_positive, _check_three_features, _is_int, _signed_volume, _unique_edges
from .refine import DEFAULT_TOLERANCE_FRACTION, _refine_edges, _refine_intersections, _Refiner
from .snap import snap_to_points
from .template import SPHERE, Template, model_template


@dataclass
class BoundaryMesh:
    """A boundary mesh and the latent template surface it was mapped from.

    Attributes:
        mesh: the surface in input units; vertices welded, faces oriented so its volume is positive.
        latent: (V, 3) float array, latent vertex positions on the template of size `radius` (the sphere of that
            radius by default); row i maps to `mesh.vertices[i]`.
        uv: (V, 2) float array in [0, 1], the template's chart coordinates of each vertex; on the sphere
            u = azimuth / (2 pi), v = polar angle / pi of the latent direction (`face_uv` has them per face
            corner, unbroken across the chart's seam, as mesh.obj is written).
        radius: latent radius of the sphere (the template's size).
        info: refinement statistics (`n_refinement_passes`, `max_edge`, `tolerance`, `hit_face_budget`,
            `n_intersection_rounds`, `self_intersections`, `n_inverse_calls`, `flipped`).
        template: the latent `Template` (`SPHERE` by default).
    """

    mesh: trimesh.Trimesh
    latent: np.ndarray
    uv: np.ndarray
    radius: float
    info: dict = field(default_factory=dict)
    template: Template = SPHERE

    @property
    def face_uv(self) -> np.ndarray:
        """(F, 3, 2) chart coordinates of each face corner, continuous across the chart's seam.

        On the sphere, a face that crosses azimuth 0 has its corners on the low side moved up by 1 (u up to 1.5,
        for a texture that repeats), so that no face stretches back across the whole chart; a corner at a pole,
        where the azimuth is undefined, takes the mean u of its face's other corners. v is `uv`'s.
        """
        return self.template.face_uv(self.latent, self.uv, np.asarray(self.mesh.faces))


def sphere_mesh(
    inverse: Callable[[np.ndarray], np.ndarray],
    radius: float,
    *,
    subdivisions: int = 3,
    tolerance: float | None = None,
    max_faces: int = 200_000,
    check_intersections: bool = True,
    max_passes: int = 40,
    max_intersection_rounds: int = 4,
    template: Template = SPHERE,
) -> BoundaryMesh:
    """Map a latent sphere (or another template) through `inverse` and refine it until its edges are short.

    The template's starting mesh (an icosphere of radius `radius` by default) is mapped vertex by vertex. Edges
    longer than `tolerance` after the map are split at their latent midpoint projected back onto the template
    (on the sphere, the chord's midpoint scaled to `radius`), by conforming longest-edge bisection, so there are
    no T-junctions and no slivers beyond those the map makes. Faces that take part in a self-intersection are
    refined again for a few rounds. Faces are flipped if the map reverses orientation.

    Args:
        inverse: callable taking an (M, 3) float64 latent array and returning the (M, 3) input-space array,
            e.g. `model.inverse_transform`.
        radius: latent sphere radius (the template's size), > 0.
        subdivisions: subdivision level of the starting mesh, 0 to `template.max_subdivisions` (the icosphere's
            1280 faces at 3).
        tolerance: longest allowed mapped edge, in input units; default
            `DEFAULT_TOLERANCE_FRACTION` of the mapped starting mesh's bounding-box diagonal.
        max_faces: face budget; refinement stops before exceeding it and sets `info['hit_face_budget']`.
        check_intersections: count self-intersecting triangle pairs and refine around them.
        max_passes: most passes of edge bisection toward `tolerance`.
        max_intersection_rounds: most rounds of bisection around self-intersecting faces.
        template: the latent surface to map (`SPHERE`, the icosphere, by default).

    Returns:
        The `BoundaryMesh`.

    Example:
        >>> bm = sphere_mesh(lambda z: 2.0 * z, 1.0, subdivisions=1, tolerance=10.0)
        >>> len(bm.mesh.faces), bool(np.allclose(bm.mesh.vertices, 2.0 * bm.latent))
        (80, True)
    """
    radius = _check_positive(radius, "radius")
    if not _is_int(subdivisions) or not 0 <= subdivisions <= template.max_subdivisions:
        raise PcflowError(f"subdivisions={subdivisions!r} is invalid; "
                          f"expected an integer from 0 to {template.max_subdivisions}")
    if tolerance is not None:
        tolerance = _check_positive(tolerance, "tolerance", allow_inf=True)
    if not _is_int(max_faces) or max_faces < 1:
        raise PcflowError(f"max_faces={max_faces!r} is invalid; expected a positive integer")
    max_passes = _check_count(max_passes, "max_passes")
    max_intersection_rounds = _check_count(max_intersection_rounds, "max_intersection_rounds")

    refiner = _Refiner(inverse, radius, template, int(subdivisions))
    if tolerance is None:
        diagonal = float(np.linalg.norm(np.ptp(refiner.mapped, axis=0)))
        tolerance = DEFAULT_TOLERANCE_FRACTION * diagonal if diagonal > 0 else np.inf
    n_passes, hit_budget = _refine_edges(refiner, tolerance, max_faces, max_passes)
    n_rounds, n_intersections = 0, None
    if check_intersections:
        n_rounds, n_intersections, hit_budget = _refine_intersections(refiner, max_faces, max_intersection_rounds,
                                                                      hit_budget)
    mesh, flipped, max_edge = _oriented_mesh(refiner.mapped, refiner.faces)
    info = {
        "n_refinement_passes": n_passes,
        "n_intersection_rounds": n_rounds,
        "max_edge": max_edge,
        "tolerance": float(tolerance),
        "hit_face_budget": bool(hit_budget),
        "self_intersections": n_intersections,
        "n_inverse_calls": refiner.n_calls,
        "flipped": bool(flipped),
        "n_vertices": int(len(mesh.vertices)),
        "n_faces": int(len(mesh.faces)),
    }
    return BoundaryMesh(mesh=mesh, latent=refiner.latent, uv=template.uv(refiner.latent), radius=radius, info=info,
                        template=template)


def _oriented_mesh(mapped: np.ndarray, faces: np.ndarray) -> tuple[trimesh.Trimesh, bool, float]:
    """The mesh, its faces flipped if the map reversed their orientation: (mesh, flipped, longest chord)."""
    flipped = _signed_volume(mapped, faces) < 0
    if flipped:
        faces = faces[:, ::-1].copy()
    mesh = trimesh.Trimesh(vertices=mapped, faces=faces, process=False)
    edges, _ = _unique_edges(faces)
    max_edge = float(np.linalg.norm(mapped[edges[:, 0]] - mapped[edges[:, 1]], axis=1).max())
    return mesh, bool(flipped), max_edge


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
    """Boundary mesh of a fitted model's region: its latent ball's sphere (a surface model's torus or
    joined tori, `model_template`) mapped through the inverse flow.

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
        template=model_template(model),
    )
    if snap and coverage is None and getattr(model, "objective", None) == "surface":
        points = model.reference_points_ + model.center_
        boundary = snap_to_points(boundary, points[model.predict(points) == 1])
    return boundary


def _model_radius(model, coverage: float | None) -> float:
    if coverage is None:
        return float(model.radius_)
    if not (isinstance(coverage, (int, float, np.floating)) and 0 < coverage < 1):
        raise PcflowError(f"coverage={coverage!r} is invalid; expected a number in (0, 1)")
    return float(model.radius_at(float(coverage)))
