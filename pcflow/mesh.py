"""Keeps the old import path `pcflow.mesh` for one version; the code lives in `pcflow.meshing`."""

from pcflow.meshing import (  # noqa: F401
    DEFAULT_TOLERANCE_FRACTION,
    BoundaryMesh,
    boundary_mesh,
    count_self_intersections,
    marching_cubes_mesh,
    snap_to_points,
    sphere_mesh,
    surface_gap,
    unsupported_share,
    validity,
)
