"""Readers and writers for point clouds and meshes, chosen through one table from file suffix to function.

One module per concern: `cloud` (PointCloud), `registry` (the suffix table and read/write dispatch), `atomic`,
`ply`, `pcd`, `text` (XYZ/TXT/CSV/PTS), `las`, `meshes`, `chunks` (chunked reading), `writer` (CloudWriter) and
`describe` (`pcflow info`).
"""

from pcflow.errors import PcflowError

from .atomic import LOCK_NAME, atomic_output, output_lock, temporary_name
from .base import ChunkLayoutError, existing_file
from .chunks import iter_cloud_chunks
from .cloud import PointCloud
from .describe import PLANE_CANDIDATES, PLANE_SAMPLES, PLANE_TOLERANCE, SCENE_PLANE_SHARE, SPACING_SAMPLES, describe
from .las import las_scaling, read_las_header
from .pcd import lzf_decompress, read_pcd, write_pcd
from .records import coordinates, has_fields
from .registry import (CLOUD_SUFFIXES, CLOUD_WRITE_SUFFIXES, MESH_SUFFIXES, read_cloud, read_mesh, write_cloud,
                       write_mesh)
from .writer import CloudWriter

# The old private names, kept for the modules and tests that still import them.
_coordinates, _existing_file, _has_fields, _las_scaling = coordinates, existing_file, has_fields, las_scaling

__all__ = [
    "CLOUD_SUFFIXES", "CLOUD_WRITE_SUFFIXES", "ChunkLayoutError", "CloudWriter", "LOCK_NAME", "MESH_SUFFIXES",
    "PLANE_CANDIDATES", "PLANE_SAMPLES", "PLANE_TOLERANCE", "PcflowError", "PointCloud", "SCENE_PLANE_SHARE",
    "SPACING_SAMPLES", "atomic_output", "coordinates", "describe", "existing_file", "has_fields", "iter_cloud_chunks",
    "las_scaling", "lzf_decompress", "output_lock", "read_cloud", "read_las_header", "read_mesh", "read_pcd",
    "temporary_name", "write_cloud", "write_mesh", "write_pcd",
]
