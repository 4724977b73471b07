"""The suffix table: file suffix -> format (reader, writer, chunk reader, stream), and the dispatching API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .atomic import atomic_output
from .base import existing_file, one_line
from .cloud import PointCloud
from .las import las_chunks, las_stream, las_writer, read_las
from .meshes import load_trimesh, read_mesh_vertices, trimesh_writer, write_obj, write_off, write_ply_mesh
from .pcd import pcd_chunks, pcd_stream, read_pcd, write_pcd
from .ply import ply_chunks, ply_stream, read_ply, write_ply
from .records import coordinates, has_fields, records_of
from .text import read_text, text_chunks, text_stream, text_writer


@dataclass(frozen=True)
class Format:
    """What pcflow can do with one file format; the functions take and give plain arrays.

    Attributes:
        name: the format's name in messages and `pcflow info` ("PLY", "LAS", ...).
        read_cloud: path -> ((N,) structured records in native byte order, info dict with at least `format`).
        write_cloud: (path, records, *, ascii, las_header) -> None.
        read_mesh: whether `read_mesh` takes the format (through trimesh).
        write_mesh: (path, mesh, uv) -> None.
        read_chunks: (path, chunk_size) -> iterator of records; None: read whole, then cut.
        stream: (file, first records, *, ascii, where, template, bounds) -> an object with `write(records)` and
            `close()` that `CloudWriter` feeds chunk by chunk.
        wide_ints: whether the writers take 8-byte integer fields as they are (else they are narrowed).
    """

    name: str
    read_cloud: Callable[[Path], tuple[np.ndarray, dict]] | None = None
    write_cloud: Callable[..., None] | None = None
    read_mesh: bool = False
    write_mesh: Callable[..., None] | None = None
    read_chunks: Callable[[Path, int], Iterator[np.ndarray]] | None = None
    stream: Callable[..., object] | None = None
    wide_ints: bool = False


_FORMATS: dict[str, Format] = {}


def register(suffixes: tuple[str, ...], fmt: Format) -> None:
    """Makes `fmt` the format of files with any of `suffixes` (lower case, with the dot)."""
    for suffix in suffixes:
        _FORMATS[suffix] = fmt


def format_for(path, role: str, what: str) -> Format:
    """The format of `path` by its suffix, which must do `role` (a `Format` attribute), else a PcflowError that
    says it cannot `what` such files and lists the suffixes that can."""
    suffix = Path(path).suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None or not getattr(fmt, role):
        supported = ", ".join(s for s, f in _FORMATS.items() if getattr(f, role))
        raise PcflowError(f"{path}: cannot {what} files with suffix {suffix or '(none)'!r}; supported: {supported}")
    return fmt


def read_cloud(path) -> PointCloud:
    """Reads a point cloud; rows with a non-finite coordinate are dropped and counted.

    Args:
        path: a file with a suffix from `CLOUD_SUFFIXES` (mesh files give their merged vertices).

    Returns:
        The cloud, with every per-point property of the file kept in `fields`.

    Raises:
        PcflowError: missing, empty, unknown, corrupt or truncated file, no x/y/z fields, no finite points.
    """
    records, info = read_records(path)
    coords, points = coordinates(records, path)
    if len(points) == 0:
        raise PcflowError(f"{path}: the file holds no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        raise PcflowError(f"{path}: no finite points left (all {len(points)} rows have NaN or infinite coordinates)")
    fields = records[finite] if has_fields(records, coords) else None
    return PointCloud(points[finite], fields, int((~finite).sum()), str(path), info.get("las_header"))


def write_cloud(path, cloud: PointCloud, *, ascii: bool = False, inputs=()) -> None:
    """Writes a cloud with all its fields (atomically; never over `cloud.source` or any of `inputs`).

    Args:
        path: a file with a suffix from `CLOUD_WRITE_SUFFIXES`: .ply and .pcd keep every field in its dtype
            (PLY narrows 8-byte integers); .xyz/.txt are space-separated columns, with a `# x y z ...` line naming
            them when there are more than the coordinates; .csv has a header row. .las/.laz keep the version,
            point format, scales, offsets, VLRs, EVLRs and dimensions of `cloud.las_header`; a cloud from another
            format gets LAS 1.4 (point format 7 with colours, else 6), per-axis scales from the coordinates' range
            (`pcflow.io.las.las_scaling`) and its other fields as extra-bytes dimensions (see `pcflow.io.las`).
        cloud: the cloud; coordinates come from `cloud.points`, stored in their field's original dtype when that
            is exact, else as float64.
        ascii: text PLY/PCD instead of binary (little endian).
        inputs: further paths that must not be overwritten.
    """
    fmt = format_for(path, "write_cloud", "write point clouds to")
    records = records_of(cloud, wide_ints=fmt.wide_ints)
    with atomic_output(path, inputs=(*inputs, *([cloud.source] if cloud.source else []))) as tmp:
        fmt.write_cloud(tmp, records, ascii=ascii, las_header=cloud.las_header)


def read_mesh(path) -> trimesh.Trimesh:
    """Reads a triangle mesh (OBJ, STL, OFF, PLY with faces, GLB); vertices are welded, visuals dropped.

    Raises:
        PcflowError: missing, empty, unknown or unreadable file, or a file without faces.
    """
    format_for(path, "read_mesh", "read meshes from")
    path = existing_file(path)
    mesh = load_trimesh(path)
    if len(mesh.faces) == 0:
        raise PcflowError(f"{path}: the file has no faces (a point cloud, not a mesh)")
    return mesh


def write_mesh(path, mesh: trimesh.Trimesh, *, uv: np.ndarray | None = None, inputs=()) -> None:
    """Writes a triangle mesh (atomically; never over any of `inputs`), in the input's coordinates and units.

    PLY (vertex x y z double, nx ny nz float; face vertex_indices as a uchar/int list) and OBJ (one `vn` per `v`)
    carry vertex normals, GLB too, STL facet normals, OFF none (NOFF is not read by meshio); all follow the faces'
    winding (`pcflow.io.meshes`), which points outward for `pcflow.meshing`'s meshes. Without `uv`, Open3D, trimesh and
    meshio open every format watertight with the mesh's vertex and face counts, except that Open3D keeps STL's
    triangles apart (`remove_duplicated_vertices()` welds them) and meshio has no GLB reader. With `uv` per face
    corner, trimesh and Open3D split the vertices where a vertex has several texture coordinates.

    Args:
        path: a file with a suffix from `MESH_SUFFIXES`.
        mesh: the mesh.
        uv: optional texture coordinates: a (V, 2) float array, one per vertex, written by OBJ (`vt`, one per
            vertex, faces `f a/a/a b/b/b c/c/c`), PLY (`s`, `t`) and GLB, left out by STL and OFF, which cannot hold
            them; or a (F, 3, 2) array, one per face corner (as `BoundaryMesh.face_uv`), which only OBJ takes (`vt`
            rows shared by equal corners, faces `f a/i/a b/j/b c/k/c`) and the other formats refuse.
            OBJ, OFF and PLY keep float64 coordinates; STL and GLB store float32 by their specifications.
        inputs: paths that must not be overwritten.
    """
    fmt = format_for(path, "write_mesh", "write meshes to")
    if uv is not None:
        uv = np.asarray(uv, dtype=np.float64)
        per_corner = (len(mesh.faces), 3, 2)
        if uv.shape not in ((len(mesh.vertices), 2), per_corner):
            raise PcflowError(f"uv has shape {uv.shape}; expected ({len(mesh.vertices)}, 2), one row per vertex, or "
                              f"{per_corner}, one per face corner")
        if uv.shape == per_corner and Path(path).suffix.lower() != ".obj":
            raise PcflowError(f"{path}: texture coordinates per face corner can only be written to OBJ")
    with atomic_output(path, inputs=inputs) as tmp:
        fmt.write_mesh(tmp, mesh, uv)


def read_records(path) -> tuple[np.ndarray, dict]:
    """Reads every per-point field of a cloud file: (N,) structured array (native byte order) and info dict."""
    fmt = format_for(path, "read_cloud", "read point clouds from")
    path = existing_file(path)
    try:
        records, info = fmt.read_cloud(path)
    except OSError as e:  # the format modules turn damaged content into PcflowErrors; this is the file system
        raise PcflowError(f"{path}: corrupt or unreadable {fmt.name} file: {one_line(e)}") from e
    info.setdefault("format", fmt.name)
    return records, info


_MESH = dict(read_cloud=read_mesh_vertices, read_mesh=True)
register((".ply",), Format("PLY", read_cloud=read_ply, write_cloud=write_ply, read_mesh=True, write_mesh=write_ply_mesh,
                           read_chunks=ply_chunks, stream=ply_stream))
register((".pcd",), Format("PCD", read_cloud=read_pcd, write_cloud=write_pcd, read_chunks=pcd_chunks, stream=pcd_stream,
                           wide_ints=True))
register((".xyz", ".txt"), Format("XYZ", read_cloud=read_text, write_cloud=text_writer(" "), read_chunks=text_chunks,
                                  stream=text_stream(" ")))
register((".csv",), Format("CSV", read_cloud=read_text, write_cloud=text_writer(","), read_chunks=text_chunks,
                           stream=text_stream(",")))
register((".pts",), Format("PTS", read_cloud=read_text, read_chunks=text_chunks))
for _suffix, _compress in ((".las", False), (".laz", True)):
    register((_suffix,), Format("LAS", read_cloud=read_las, write_cloud=las_writer(_compress), read_chunks=las_chunks,
                                stream=las_stream(_compress), wide_ints=True))
register((".obj",), Format("OBJ", write_mesh=write_obj, **_MESH))
register((".stl",), Format("STL", write_mesh=trimesh_writer("stl"), **_MESH))
register((".off",), Format("OFF", write_mesh=write_off, **_MESH))
register((".glb",), Format("GLB", write_mesh=trimesh_writer("glb"), **_MESH))

#: Suffixes `read_cloud` accepts (mesh files give their vertices).
CLOUD_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.read_cloud)
#: Suffixes `write_cloud` accepts.
CLOUD_WRITE_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.write_cloud)
#: Suffixes `read_mesh` and `write_mesh` accept.
MESH_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.read_mesh)
