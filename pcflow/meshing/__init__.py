"""Meshes of flow regions: latent template -> inverse map -> refine -> snap -> checks, gap, marching cubes."""

from .boundary import BoundaryMesh, boundary_mesh, sphere_mesh
from .checks import validity
from .gap import surface_gap, unsupported_share
from .intersections import count_self_intersections
from .marching import marching_cubes_mesh
from .refine import DEFAULT_TOLERANCE_FRACTION
from .snap import snap_to_points
from .template import SPHERE, IcoSphere, Template

__all__ = [
    "DEFAULT_TOLERANCE_FRACTION",
    "SPHERE",
    "BoundaryMesh",
    "IcoSphere",
    "Template",
    "boundary_mesh",
    "count_self_intersections",
    "marching_cubes_mesh",
    "snap_to_points",
    "sphere_mesh",
    "surface_gap",
    "unsupported_share",
    "validity",
]
