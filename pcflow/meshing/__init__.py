"""Meshes of flow regions: latent template -> inverse map -> refine -> snap -> checks, gap, marching cubes, genus."""

from .boundary import BoundaryMesh, boundary_mesh, sphere_mesh
from .checks import validity
from .gap import surface_gap, unsupported_share
from .genus import GenusEstimate, estimate_genus, needs_higher_genus, spanned_area, topology
from .intersections import count_self_intersections
from .marching import marching_cubes_mesh
from .refine import DEFAULT_TOLERANCE_FRACTION
from .snap import SNAP_OFFSET_FRACTION, snap_to_points
from .template import SPHERE, IcoSphere, Shaped, Template, Tori, Torus, model_template

__all__ = [
    "DEFAULT_TOLERANCE_FRACTION",
    "SNAP_OFFSET_FRACTION",
    "SPHERE",
    "BoundaryMesh",
    "GenusEstimate",
    "IcoSphere",
    "Template",
    "Shaped",
    "Tori",
    "Torus",
    "boundary_mesh",
    "count_self_intersections",
    "estimate_genus",
    "marching_cubes_mesh",
    "model_template",
    "needs_higher_genus",
    "snap_to_points",
    "spanned_area",
    "sphere_mesh",
    "surface_gap",
    "topology",
    "unsupported_share",
    "validity",
]
