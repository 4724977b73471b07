"""Mesh files (trimesh): reading, the mesh writers with vertex normals, and mesh vertices as clouds."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from pcflow.errors import PcflowError

from .base import one_line

#: What trimesh's loaders raise on damaged OBJ, OFF, STL, PLY and GLB files (found by truncating and corrupting
#: files that pcflow writes): ValueError (JSONDecodeError and UnicodeDecodeError included), KeyError and IndexError
#: (missing keys, face indices past the vertices), OverflowError, NotImplementedError (GLB versions), OSError, and
#: what scripts/fuzz_readers.py found: UnboundLocalError (trimesh 4's GLB loader on an accessor whose buffer view is
#: damaged) and TypeError (its OFF loader multiplying strings on a damaged count line).
_TRIMESH_ERRORS = (ValueError, KeyError, IndexError, OverflowError, NotImplementedError, OSError, UnboundLocalError,
                   TypeError)


def load_trimesh(path: Path) -> trimesh.Trimesh:
    """The file's geometry as one mesh, vertices welded (texture seams, STL triangle soup); no faces for points."""
    if path.suffix.lower() == ".glb":
        _check_glb(path)
    try:
        loaded = trimesh.load(str(path), process=False)
        if isinstance(loaded, trimesh.Scene):
            loaded = loaded.to_mesh()
        vertices = getattr(loaded, "vertices", None)
        if vertices is None or len(vertices) == 0:
            raise PcflowError(f"{path}: the file holds no vertices")
        if np.shape(vertices)[1:] != (3,):  # a 2-D path, say
            raise PcflowError(f"{path}: the file holds no 3-D vertices (shape {np.shape(vertices)})")
        faces = getattr(loaded, "faces", None)
        faces = np.zeros((0, 3), dtype=np.int64) if faces is None else faces
        return trimesh.Trimesh(vertices=vertices, faces=faces, process=True)  # welding checks the face indices
    except PcflowError:
        raise
    except _TRIMESH_ERRORS as e:
        raise PcflowError(f"{path}: corrupt or unreadable mesh file: {one_line(e)}") from e


def _check_glb(path: Path) -> None:
    """Raises a PcflowError when a GLB file's header or chunk lengths claim more bytes than the file holds.

    Checked before trimesh reads it, which reads (and allocates) each chunk by its declared length first.
    """
    import struct

    data_size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"glTF":
            raise PcflowError(f"{path}: corrupt GLB file: no glTF binary header")
        at = 12
        while at < data_size:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise PcflowError(f"{path}: corrupt or truncated GLB file: a cut chunk header at byte {at}")
            (length, _) = struct.unpack("<II", chunk)
            if length > data_size - at - 8:
                raise PcflowError(f"{path}: corrupt or truncated GLB file: a chunk of {length} bytes declared at byte "
                                  f"{at}, {data_size - at - 8} bytes left")
            at += 8 + length
            f.seek(at)


def read_mesh_vertices(path: Path) -> tuple[np.ndarray, dict]:
    """The welded vertices of a mesh file as x/y/z float64 records, and its info (with the number of faces)."""
    mesh = load_trimesh(path)
    records = np.empty(len(mesh.vertices), dtype=[(axis, np.float64) for axis in "xyz"])
    for k, axis in enumerate("xyz"):
        records[axis] = mesh.vertices[:, k]
    return records, {"format": f"{path.suffix.lstrip('.').upper()} mesh", "n_faces": len(mesh.faces)}


def _vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """Unit vertex normals that follow the faces' winding: trimesh's angle-weighted mean of the face normals.

    They point outward when the faces wind counter-clockwise seen from outside (as `pcflow.meshing` orients its
    meshes: positive volume). Normals cached on `mesh` (loaded from a file, say) are ignored.

    Args:
        mesh: the mesh.

    Returns:
        (V, 3) float64 array; a vertex that no face uses gets (0, 0, 0).
    """
    fresh = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
    normals = np.zeros((len(fresh.vertices), 3))
    if len(fresh.faces):
        normals = np.asarray(fresh.vertex_normals, dtype=np.float64)
    return normals


def write_obj(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """OBJ with one `vn` per vertex (so `v` and `vn` rows pair up, as meshio needs) and `vt` rows if `uv`.

    Not trimesh's exporter: it holds texture coordinates per vertex only, so it cannot write `vt` per face corner.
    """
    faces = np.asarray(mesh.faces) + 1
    with open(path, "w", encoding="ascii") as f:
        f.write("# written by pcflow\n")
        f.write("".join("v %.17g %.17g %.17g\n" % tuple(v) for v in np.asarray(mesh.vertices).tolist()))
        f.write("".join("vn %.9g %.9g %.9g\n" % tuple(n) for n in _vertex_normals(mesh).tolist()))
        if uv is None:
            f.write("".join("f %d//%d %d//%d %d//%d\n" % (a, a, b, b, c, c) for a, b, c in faces.tolist()))
            return
        if uv.ndim == 3:  # one per face corner: equal corners share a vt row
            uv, corners = np.unique(uv.reshape(-1, 2), axis=0, return_inverse=True)
            texture = corners.reshape(-1, 3) + 1
        else:
            texture = faces
        f.write("".join("vt %.17g %.17g\n" % tuple(t) for t in uv.tolist()))
        f.write("".join("f %d/%d/%d %d/%d/%d %d/%d/%d\n" % (a, i, a, b, j, b, c, k, c)
                        for (a, b, c), (i, j, k) in zip(faces.tolist(), texture.tolist())))


def write_ply_mesh(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """Binary PLY as MeshLab, Open3D, trimesh, plyfile and meshio read it: vertex x y z (double, which keeps
    georeferenced coordinates) nx ny nz (float) [s t], face vertex_indices (uchar count, int indices).

    Not plyfile's writer: it writes a list property face by face, which takes a third of a second for 40,000 faces;
    the rows here are numpy records written whole.
    """
    from .ply import ply_header

    columns = [(name, "<f8") for name in "xyz"] + [(name, "<f4") for name in ("nx", "ny", "nz")]
    values = [np.asarray(mesh.vertices), _vertex_normals(mesh)]
    if uv is not None:
        columns += [("s", "<f8"), ("t", "<f8")]
        values.append(uv)
    values = np.hstack(values)
    vertex = np.empty(len(values), dtype=columns)
    for k, (name, _) in enumerate(columns):
        vertex[name] = values[:, k]
    face = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("vertex_indices", "<i4", (3,))])
    face["count"] = 3
    face["vertex_indices"] = mesh.faces
    faces = (f"element face {len(face)}", "property list uchar int vertex_indices")
    with open(path, "wb") as f:
        f.write(ply_header(vertex.dtype, len(vertex), 0, ascii=False, more=faces))
        f.write(vertex.tobytes())
        f.write(face.tobytes())


def write_off(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """Plain OFF, without normals: meshio reads only an `OFF` header (not NOFF) and trimesh skips normal columns.

    Not trimesh's exporter: it writes fixed decimals (`digits` after the point), which turn 1e-20 into 0.
    """
    with open(path, "w", encoding="ascii") as f:
        f.write(f"OFF\n{len(mesh.vertices)} {len(mesh.faces)} 0\n")
        f.write("".join("%.17g %.17g %.17g\n" % tuple(v) for v in np.asarray(mesh.vertices).tolist()))
        f.write("".join("3 %d %d %d\n" % tuple(face) for face in np.asarray(mesh.faces).tolist()))


def trimesh_writer(file_type: str) -> Callable[[Path, trimesh.Trimesh, np.ndarray | None], None]:
    """STL (facet normals from the winding) or GLB (vertex normals and, with `uv`, texture coordinates)."""
    def write(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
        out = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
        options = {}
        if file_type == "glb":
            out.vertex_normals = _vertex_normals(mesh)
            options["include_normals"] = True
        if uv is not None:
            out.visual = trimesh.visual.TextureVisuals(uv=uv)
        data = out.export(file_type=file_type, **options)
        Path(path).write_bytes(data.encode("ascii") if isinstance(data, str) else data)

    return write
