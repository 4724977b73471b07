"""Readers and writers for point clouds and meshes, chosen through one table from file suffix to function."""

from __future__ import annotations

import io
import itertools
import os
import re
import struct
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import trimesh

from pcflow.errors import PcflowError
from pcflow.pcd import read_pcd, write_pcd

# Low-level exceptions that parsers raise on malformed input; readers turn them into one-line PcflowErrors.
_PARSE_ERRORS = (ValueError, struct.error, EOFError, UnicodeDecodeError, IndexError, KeyError, TypeError, OSError)


@dataclass(eq=False)
class PointCloud:
    """Points read from a file, with every per-point property the file held.

    Attributes:
        points: (N, 3) float64 array of coordinates ((N, 2) for two-column text files), all finite.
        fields: (N,) structured array of all per-point properties of the input, coordinates included, with
            their original names and dtypes (`red`/`green`/`blue` uint8, `nx`/`ny`/`nz`, `intensity`, a packed
            PCD `rgb`/`rgba`...); None when the file held coordinates only.
        n_dropped_nonfinite: rows dropped on reading because a coordinate was NaN or infinite.
        source: the path read, for reports ("" for clouds made in memory).

    Example:
        >>> cloud = PointCloud(np.zeros((4, 3)))
        >>> cloud.subset([0, 2]).points.shape, cloud.has_colors
        ((2, 3), False)
    """

    points: np.ndarray
    fields: np.ndarray | None = None
    n_dropped_nonfinite: int = 0
    source: str = ""

    def __post_init__(self):
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] not in (2, 3):
            raise PcflowError(f"points has shape {self.points.shape}; expected (N, 3) or (N, 2)")
        if self.fields is not None and len(self.fields) != len(self.points):
            raise PcflowError(f"fields has {len(self.fields)} rows but points has {len(self.points)}")

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, mask_or_index) -> PointCloud:
        """Returns the cloud of the selected rows (boolean (N,) mask or integer indices), fields kept."""
        index = np.asarray(mask_or_index)
        fields = None if self.fields is None else self.fields[index]
        return PointCloud(self.points[index], fields, self.n_dropped_nonfinite, self.source)

    @property
    def has_colors(self) -> bool:
        """Whether the fields hold colours (red/green/blue or a packed rgb/rgba)."""
        return self.colors is not None

    @property
    def colors(self) -> np.ndarray | None:
        """(N, 3) uint8 array of colours, or None when the cloud has none."""
        return None if self.fields is None else _colors_of(self.fields)

    def to_open3d(self):
        """This cloud as an ``open3d.geometry.PointCloud``, colours and normals kept (`pcflow.interop.to_open3d`)."""
        from pcflow.interop import to_open3d

        return to_open3d(self)

    def to_trimesh(self):
        """This cloud as a ``trimesh.PointCloud``, colours kept (`pcflow.interop.to_trimesh`)."""
        from pcflow.interop import to_trimesh

        return to_trimesh(self)


def _colors_of(fields: np.ndarray) -> np.ndarray | None:
    """(N, 3) uint8 colours from red/green/blue (or r/g/b, diffuse_*) or a packed PCD rgb/rgba field, else None."""
    names = fields.dtype.names
    for trio in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(name in names for name in trio):
            return np.stack([_to_uint8(fields[name]) for name in trio], axis=1)
    for packed in ("rgb", "rgba"):
        if packed in names:
            values = np.ascontiguousarray(fields[packed])
            bits = values.view(np.uint32) if values.dtype.itemsize == 4 else values.astype(np.uint32)
            return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)
    return None


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Colour channel to uint8: floats in [0, 1] are scaled by 255, 16-bit integers (LAS) shifted by 8 bits."""
    if values.dtype == np.uint8:
        return values.copy()
    values = values.astype(np.float64)
    top = values.max(initial=0.0)
    if top <= 1.0 and np.any(values % 1 != 0):
        values = values * 255.0
    elif top > 255:
        values = values / 256.0
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------------------
# the format table


@dataclass(frozen=True)
class _Format:
    name: str
    read_cloud: Callable[[Path], tuple[np.ndarray, dict]] | None = None
    write_cloud: Callable[..., None] | None = None
    read_mesh: bool = False
    write_mesh: Callable[..., None] | None = None


_FORMATS: dict[str, _Format] = {}


def _register(suffixes: tuple[str, ...], fmt: _Format) -> None:
    for suffix in suffixes:
        _FORMATS[suffix] = fmt


def _format_for(path, role: str, what: str) -> _Format:
    suffix = Path(path).suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None or not getattr(fmt, role):
        supported = ", ".join(s for s, f in _FORMATS.items() if getattr(f, role))
        raise PcflowError(f"{path}: cannot {what} files with suffix {suffix or '(none)'!r}; supported: {supported}")
    return fmt


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise PcflowError(f"{path}: no such file")
    if not path.is_file():
        raise PcflowError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise PcflowError(f"{path}: empty file")
    return path


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ------------------------------------------------------------------------------------------------------------------
# public API


def read_cloud(path) -> PointCloud:
    """Reads a point cloud; rows with a non-finite coordinate are dropped and counted.

    Args:
        path: a file with a suffix from `CLOUD_SUFFIXES` (mesh files give their merged vertices).

    Returns:
        The cloud, with every per-point property of the file kept in `fields`.

    Raises:
        PcflowError: missing, empty, unknown, corrupt or truncated file, no x/y/z fields, no finite points.
    """
    records, _ = _read_records(path)
    coords, points = _coordinates(records, path)
    if len(points) == 0:
        raise PcflowError(f"{path}: the file holds no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        raise PcflowError(f"{path}: no finite points left (all {len(points)} rows have NaN or infinite coordinates)")
    fields = records[finite] if len(records.dtype.names) > len(coords) else None
    return PointCloud(points[finite], fields, int((~finite).sum()), str(path))


def write_cloud(path, cloud: PointCloud, *, ascii: bool = False, inputs=()) -> None:
    """Writes a cloud with all its fields (atomically; never over `cloud.source` or any of `inputs`).

    Args:
        path: a file with a suffix from `CLOUD_WRITE_SUFFIXES`; .xyz/.txt hold coordinates only, .csv a header
            row and every field.
        cloud: the cloud; coordinates come from `cloud.points`, stored in their field's original dtype when that
            is exact, else as float64.
        ascii: text PLY/PCD instead of binary (little endian).
        inputs: further paths that must not be overwritten.
    """
    fmt = _format_for(path, "write_cloud", "write point clouds to")
    records = _records_of(cloud)
    with atomic_output(path, inputs=(*inputs, *([cloud.source] if cloud.source else []))) as tmp:
        fmt.write_cloud(tmp, records, ascii=ascii)


def read_mesh(path) -> trimesh.Trimesh:
    """Reads a triangle mesh (OBJ, STL, OFF, PLY with faces, GLB); vertices are welded, visuals dropped.

    Raises:
        PcflowError: missing, empty, unknown or unreadable file, or a file without faces.
    """
    _format_for(path, "read_mesh", "read meshes from")
    path = _existing_file(path)
    mesh = _load_trimesh(path)
    if len(mesh.faces) == 0:
        raise PcflowError(f"{path}: the file has no faces (a point cloud, not a mesh)")
    return mesh


def write_mesh(path, mesh: trimesh.Trimesh, *, uv: np.ndarray | None = None, inputs=()) -> None:
    """Writes a triangle mesh (atomically; never over any of `inputs`).

    Args:
        path: a file with a suffix from `MESH_SUFFIXES`.
        mesh: the mesh.
        uv: optional texture coordinates: a (V, 2) float array, one per vertex, written by OBJ (`vt`, one per
            vertex, faces `f a/a b/b c/c`), PLY (`s`, `t`) and GLB, left out by STL and OFF, which cannot hold
            them; or a (F, 3, 2) array, one per face corner (as `BoundaryMesh.face_uv`), which only OBJ takes (`vt`
            rows shared by equal corners, faces `f a/i b/j c/k`) and the other formats refuse.
            OBJ, OFF and PLY keep float64 coordinates; STL and GLB store float32 by their specifications.
        inputs: paths that must not be overwritten.
    """
    fmt = _format_for(path, "write_mesh", "write meshes to")
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


def describe(path) -> dict:
    """Summarises a cloud or mesh file for `pcflow info`.

    Returns:
        dict with `path`, `format`, `n_points` (rows in the file), `n_nonfinite` (rows with a NaN or infinite
        coordinate), `fields` (name -> dtype string), `bounds` ((min, max) lists over finite rows, or None),
        `has_colors`, `is_mesh`, `n_faces` and `organized` ((width, height) of an organized PCD, else None).
    """
    records, info = _read_records(path)
    coords, points = _coordinates(records, path)
    finite = np.isfinite(points).all(axis=1)
    bounds = None
    if finite.any():
        bounds = (points[finite].min(axis=0).tolist(), points[finite].max(axis=0).tolist())
    fields = records if len(records.dtype.names) > len(coords) else None
    return {
        "path": str(path),
        "format": info["format"],
        "n_points": len(records),
        "n_nonfinite": int((~finite).sum()),
        "fields": {name: str(records.dtype[name]) for name in records.dtype.names},
        "bounds": bounds,
        "has_colors": PointCloud(points, fields).has_colors,
        "is_mesh": info.get("n_faces", 0) > 0,
        "n_faces": info.get("n_faces", 0),
        "organized": info.get("organized"),
    }


@contextmanager
def atomic_output(path, *, inputs=()) -> Iterator[Path]:
    """Yields a temporary path next to `path`, moved onto `path` only when the body finishes without error.

    Args:
        path: the file to create or replace.
        inputs: files that must not be overwritten (compared by identity, so links and `..` are caught).

    Raises:
        PcflowError: `path` is one of `inputs`, a folder, or its folder does not exist or is not writable.

    Example:
        >>> import tempfile; folder = tempfile.mkdtemp()
        >>> with atomic_output(os.path.join(folder, "a.txt")) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> sorted(os.listdir(folder))
        ['a.txt']
        >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise PcflowError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PcflowError(f"cannot write {path}: folder {folder} is not writable")
    if path.is_dir():
        raise PcflowError(f"cannot write {path}: it is a folder")
    for source in inputs:
        if source and path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise PcflowError(f"refusing to overwrite the input file {source} with output {path}")
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------------------------
# shared helpers


def _read_records(path) -> tuple[np.ndarray, dict]:
    """Reads every per-point field of a cloud file: (N,) structured array (native byte order) and info dict."""
    fmt = _format_for(path, "read_cloud", "read point clouds from")
    path = _existing_file(path)
    try:
        records, info = fmt.read_cloud(path)
    except PcflowError:
        raise
    except _PARSE_ERRORS as e:
        raise PcflowError(f"{path}: corrupt or unreadable {fmt.name} file: {_one_line(e)}") from e
    info.setdefault("format", fmt.name)
    return records, info


def _coordinates(records: np.ndarray, path) -> tuple[tuple[str, ...], np.ndarray]:
    """The coordinate field names (x, y, z in any case; x, y for two-column text) and (N, 3) float64 points."""
    names = records.dtype.names or ()
    lower = {name.lower(): name for name in names}
    if all(axis in lower for axis in "xyz"):
        coords = tuple(lower[axis] for axis in "xyz")
    elif names == ("x", "y"):
        coords = names
    else:
        raise PcflowError(f"{path}: no x/y/z fields (found: {', '.join(names) or 'none'})")
    return coords, np.stack([records[name].astype(np.float64) for name in coords], axis=1)


def _records_of(cloud: PointCloud) -> np.ndarray:
    """The cloud as one structured array: coordinates from `points`, other fields from `fields`."""
    axes = "xyz"[:cloud.points.shape[1]]
    fields = cloud.fields
    if fields is None:
        fields = np.empty(len(cloud.points), dtype=[(axis, np.float64) for axis in axes])
    lower = {name.lower(): name for name in fields.dtype.names}
    coords = {lower.get(axis, axis): k for k, axis in enumerate(axes)}
    names = [name for name in coords if name not in fields.dtype.names] + list(fields.dtype.names)
    dtypes = []
    for name in names:
        if name in coords:
            column = cloud.points[:, coords[name]]
            kind = fields.dtype[name] if name in fields.dtype.names else np.dtype(np.float64)
            exact = kind.kind == "f" and np.array_equal(column.astype(kind), column, equal_nan=True)
            dtypes.append((_safe_name(name), kind if exact else np.float64))
        else:
            dtypes.append((_safe_name(name), _storable(fields[name])))
    out = np.empty(len(cloud.points), dtype=dtypes)
    for name, (safe, _) in zip(names, dtypes):
        out[safe] = cloud.points[:, coords[name]] if name in coords else fields[name]
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"\W", "_", name) or "field"


def _storable(values: np.ndarray) -> np.dtype:
    """A dtype that PLY and PCD can hold (1 to 4 byte integers, 4 or 8 byte floats) and that keeps the values."""
    kind = values.dtype
    if kind == np.bool_:
        return np.dtype(np.uint8)
    if kind.kind == "f":
        return np.dtype(np.float64) if kind.itemsize > 4 else np.dtype(np.float32)
    if kind.kind in "iu" and kind.itemsize <= 4:
        return kind.newbyteorder("=")
    if kind.kind in "iu":
        for small in (np.int32, np.uint32):
            info = np.iinfo(small)
            if len(values) == 0 or (values.min() >= info.min and values.max() <= info.max):
                return np.dtype(small)
        return np.dtype(np.float64)
    raise PcflowError(f"field of dtype {kind} cannot be written; expected numbers")


def _native(records: np.ndarray) -> np.ndarray:
    """Copy in native byte order, without padding and without non-numeric (list) properties."""
    keep = [(name, records.dtype[name].newbyteorder("=")) for name in records.dtype.names
            if records.dtype[name].kind in "biuf" and records.dtype[name].shape == ()]
    out = np.empty(len(records), dtype=keep)
    for name, _ in keep:
        out[name] = records[name]
    return out


# ------------------------------------------------------------------------------------------------------------------
# PLY (plyfile)


def _load_ply(path: Path):
    """The parsed PLY file (binary elements memory-mapped), or a PcflowError; it must have a vertex element."""
    from plyfile import PlyData, PlyParseError

    try:
        ply = PlyData.read(str(path))  # memory-mapped: a header that lies about its counts fails without allocating
    except (PlyParseError, *_PARSE_ERRORS) as e:
        raise PcflowError(f"{path}: corrupt or truncated PLY file: {_one_line(e)}") from e
    except MemoryError as e:
        raise PcflowError(f"{path}: corrupt or truncated PLY file: the header declares more data than fits") from e
    names = [element.name for element in ply.elements]
    if "vertex" not in names:
        raise PcflowError(f"{path}: PLY file has no vertex element (elements: {', '.join(names) or 'none'})")
    return ply


def _read_ply(path: Path) -> tuple[np.ndarray, dict]:
    ply = _load_ply(path)
    names = [element.name for element in ply.elements]
    n_faces = ply["face"].count if "face" in names else 0
    text = "ascii" if ply.text else "binary"
    return _native(ply["vertex"].data), {"format": f"PLY {text}", "n_faces": n_faces}


def _ply_records(records: np.ndarray) -> np.ndarray:
    """The records a PLY file stores: a packed PCD rgb/rgba also gets red/green/blue uchar for PLY viewers."""
    names = records.dtype.names
    if {"rgb", "rgba"} & set(names) and not {"red", "green", "blue"} & set(names):
        colors = _colors_of(records)
        extended = np.empty(len(records), dtype=records.dtype.descr + [(c, "u1") for c in ("red", "green", "blue")])
        for name in names:
            extended[name] = records[name]
        for k, name in enumerate(("red", "green", "blue")):
            extended[name] = colors[:, k]
        records = extended
    return records


def _write_ply(path: Path, records: np.ndarray, *, ascii: bool = False) -> None:
    """PLY vertex element of all fields (see `_ply_records`)."""
    from plyfile import PlyData, PlyElement

    PlyData([PlyElement.describe(_ply_records(records), "vertex")], text=ascii, byte_order="<").write(str(path))


# ------------------------------------------------------------------------------------------------------------------
# text: XYZ, TXT, CSV, PTS

_PTS_NAMES = {4: ("intensity",), 6: ("red", "green", "blue"), 7: ("intensity", "red", "green", "blue")}


def _read_text(path: Path) -> tuple[np.ndarray, dict]:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise PcflowError(f"{path}: not a text file (undecodable bytes)") from e
    lines = [line for line in lines if line]
    start = next((k for k, line in enumerate(lines) if _numeric_row(line) >= 2), None)
    if start is None:
        raise PcflowError(f"{path}: no numeric rows of 2 or more columns (non-numeric text?)")
    delimiter = "," if "," in lines[start] else ";" if ";" in lines[start] else None
    rows = [line.split(delimiter) for line in lines[start:]]
    width = len(rows[0])
    bad = next((k for k, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise PcflowError(f"{path}: line {start + bad + 1} has {len(rows[bad])} columns, expected {width}")
    try:
        values = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    except ValueError as e:
        raise PcflowError(f"{path}: non-numeric text in the data rows ({_one_line(e)})") from e
    names = _column_names(lines[start - 1] if start else "", width, path.suffix.lower())
    records = np.empty(len(values), dtype=[(name, _text_dtype(name, values[:, k])) for k, name in enumerate(names)])
    for k, name in enumerate(names):
        records[name] = values[:, k]
    return records, {"format": path.suffix.lower().lstrip(".").upper()}


def _numeric_row(line: str) -> int:
    """Number of columns of a numeric row, 0 when the line is not numeric."""
    tokens = line.split("," if "," in line else ";" if ";" in line else None)
    try:
        [float(token) for token in tokens]
    except ValueError:
        return 0
    return len(tokens)


def _column_names(header: str, width: int, suffix: str) -> list[str]:
    tokens = [_safe_name(t.lower()) for t in re.split(r"[,;\s]+", header.lstrip("#/ ").strip()) if t]
    if len(tokens) == width and len(set(tokens)) == width and {"x", "y"} <= set(tokens):
        return tokens
    names = ["x", "y", "z"][:width]
    extra = _PTS_NAMES.get(width, ()) if suffix == ".pts" else ()
    return names + (list(extra) if extra else [f"f{k}" for k in range(3, width)])


def _text_dtype(name: str, values: np.ndarray) -> np.dtype:
    is_byte = np.isin(values, np.arange(256)).all()
    is_colour = name in ("red", "green", "blue", "r", "g", "b")
    return np.dtype(np.uint8) if is_colour and is_byte else np.dtype(np.float64)


def _write_xyz(path: Path, records: np.ndarray, *, ascii: bool = True) -> None:
    axes = [name for name in ("x", "y", "z") if name in records.dtype.names]
    np.savetxt(path, np.stack([records[name] for name in axes], axis=1), fmt="%.17g")


def _write_csv(path: Path, records: np.ndarray, *, ascii: bool = True) -> None:
    formats = ",".join("%.17g" if records.dtype[name].kind == "f" else "%d" for name in records.dtype.names)
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(records.dtype.names) + "\n")
        rows = zip(*(records[name].tolist() for name in records.dtype.names))
        f.write("".join(formats % row + "\n" for row in rows))


# ------------------------------------------------------------------------------------------------------------------
# LAS / LAZ (laspy, optional)

_LAS_FIELDS = ("intensity", "return_number", "number_of_returns", "classification", "gps_time", "red", "green", "blue")


def _read_las(path: Path) -> tuple[np.ndarray, dict]:
    try:
        import laspy
    except ImportError as e:
        raise PcflowError(f'{path}: reading LAS/LAZ needs laspy; install it with: pip install "pcflow[las]"') from e
    try:
        las = laspy.read(str(path))
    except (laspy.errors.LaspyException, *_PARSE_ERRORS) as e:
        hint = ' (LAZ needs lazrs: pip install "pcflow[las]")' if path.suffix.lower() == ".laz" else ""
        raise PcflowError(f"{path}: cannot read LAS/LAZ file: {_one_line(e)}{hint}") from e
    present = set(las.point_format.dimension_names)
    columns = {axis: np.asarray(las[axis], dtype=np.float64) for axis in "xyz"}  # scale and offset applied
    columns.update({name: np.asarray(las[name]) for name in _LAS_FIELDS if name in present})
    records = np.empty(len(las.points), dtype=[(name, values.dtype) for name, values in columns.items()])
    for name, values in columns.items():
        records[name] = values
    return records, {"format": f"LAS {las.header.version}"}


# ------------------------------------------------------------------------------------------------------------------
# meshes (trimesh)


def _load_trimesh(path: Path) -> trimesh.Trimesh:
    """The file's geometry as one mesh, vertices welded (texture seams, STL triangle soup); no faces for points."""
    try:
        loaded = trimesh.load(str(path), process=False)
        if isinstance(loaded, trimesh.Scene):
            loaded = loaded.to_mesh()
    except _PARSE_ERRORS as e:
        raise PcflowError(f"{path}: corrupt or unreadable mesh file: {_one_line(e)}") from e
    vertices = getattr(loaded, "vertices", None)
    if vertices is None or len(vertices) == 0:
        raise PcflowError(f"{path}: the file holds no vertices")
    faces = getattr(loaded, "faces", None)
    faces = np.zeros((0, 3), dtype=np.int64) if faces is None else faces
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=True)


def _read_mesh_vertices(path: Path) -> tuple[np.ndarray, dict]:
    mesh = _load_trimesh(path)
    records = np.empty(len(mesh.vertices), dtype=[(axis, np.float64) for axis in "xyz"])
    for k, axis in enumerate("xyz"):
        records[axis] = mesh.vertices[:, k]
    return records, {"format": f"{path.suffix.lstrip('.').upper()} mesh", "n_faces": len(mesh.faces)}


def _write_obj(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    faces = np.asarray(mesh.faces) + 1
    with open(path, "w", encoding="ascii") as f:
        f.write("# written by pcflow\n")
        f.write("".join("v %.17g %.17g %.17g\n" % tuple(v) for v in np.asarray(mesh.vertices).tolist()))
        if uv is None:
            f.write("".join("f %d %d %d\n" % tuple(face) for face in faces.tolist()))
            return
        if uv.ndim == 3:  # one per face corner: equal corners share a vt row
            uv, corners = np.unique(uv.reshape(-1, 2), axis=0, return_inverse=True)
            texture = corners.reshape(-1, 3) + 1
        else:
            texture = faces
        f.write("".join("vt %.17g %.17g\n" % tuple(t) for t in uv.tolist()))
        f.write("".join("f %d/%d %d/%d %d/%d\n" % (a, i, b, j, c, k)
                        for (a, b, c), (i, j, k) in zip(faces.tolist(), texture.tolist())))


def _write_ply_mesh(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    from plyfile import PlyData, PlyElement

    columns = ["x", "y", "z"] + ([] if uv is None else ["s", "t"])  # float64 keeps georeferenced coordinates
    values = np.asarray(mesh.vertices) if uv is None else np.hstack([mesh.vertices, uv])
    vertex = np.empty(len(values), dtype=[(name, np.float64) for name in columns])
    for k, name in enumerate(columns):
        vertex[name] = values[:, k]
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", np.int32, (3,))])
    face["vertex_indices"] = mesh.faces
    elements = [PlyElement.describe(vertex, "vertex"),
                PlyElement.describe(face, "face", len_types={"vertex_indices": "u1"})]
    PlyData(elements, byte_order="<").write(str(path))


def _write_off(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(f"OFF\n{len(mesh.vertices)} {len(mesh.faces)} 0\n")
        f.write("".join("%.17g %.17g %.17g\n" % tuple(v) for v in np.asarray(mesh.vertices).tolist()))
        f.write("".join("3 %d %d %d\n" % tuple(face) for face in np.asarray(mesh.faces).tolist()))


def _trimesh_writer(file_type: str) -> Callable[[Path, trimesh.Trimesh, np.ndarray | None], None]:
    def write(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
        out = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
        if uv is not None:
            out.visual = trimesh.visual.TextureVisuals(uv=uv)
        data = out.export(file_type=file_type)
        Path(path).write_bytes(data.encode("ascii") if isinstance(data, str) else data)

    return write


_register((".ply",), _Format("PLY", read_cloud=_read_ply, write_cloud=_write_ply, read_mesh=True,
                             write_mesh=_write_ply_mesh))
_register((".pcd",), _Format("PCD", read_cloud=read_pcd, write_cloud=write_pcd))  # codec in pcflow/pcd.py
_register((".xyz", ".txt"), _Format("XYZ", read_cloud=_read_text, write_cloud=_write_xyz))
_register((".csv",), _Format("CSV", read_cloud=_read_text, write_cloud=_write_csv))
_register((".pts",), _Format("PTS", read_cloud=_read_text))
_register((".las", ".laz"), _Format("LAS", read_cloud=_read_las))
_register((".obj",), _Format("OBJ", read_cloud=_read_mesh_vertices, read_mesh=True, write_mesh=_write_obj))
_register((".stl",), _Format("STL", read_cloud=_read_mesh_vertices, read_mesh=True,
                             write_mesh=_trimesh_writer("stl")))
_register((".off",), _Format("OFF", read_cloud=_read_mesh_vertices, read_mesh=True,
                             write_mesh=_write_off))
_register((".glb",), _Format("GLB", read_cloud=_read_mesh_vertices, read_mesh=True,
                             write_mesh=_trimesh_writer("glb")))

#: Suffixes `read_cloud` accepts (mesh files give their vertices).
CLOUD_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.read_cloud)
#: Suffixes `write_cloud` accepts.
CLOUD_WRITE_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.write_cloud)
#: Suffixes `read_mesh` and `write_mesh` accept.
MESH_SUFFIXES = tuple(s for s, f in _FORMATS.items() if f.read_mesh)


# ------------------------------------------------------------------------------------------------------------------
# chunked reading and writing, for clouds larger than memory should hold


class ChunkLayoutError(PcflowError):
    """A later chunk of a streamed cloud needs other field dtypes than the first chunk fixed.

    Text colour columns are uint8 only when every value is a byte, and 64-bit integer fields are narrowed from their
    range; a stream that decided from its first chunk raises this, and callers fall back to whole-file reading.
    """


def iter_cloud_chunks(path, chunk_size: int = 1_000_000) -> Iterator[np.ndarray]:
    """Reads a cloud file in chunks of at most `chunk_size` rows, in file order.

    Streams binary PLY (memory-mapped) and ASCII PLY whose first element is the vertex element, PCD ascii and
    binary (memory-mapped), text (XYZ/TXT/CSV/PTS) and LAS/LAZ (laspy's chunk iterator). Binary_compressed PCD,
    ASCII PLY with other elements first or list properties, and mesh files are read whole and then cut, so their
    memory is not bounded by `chunk_size`.

    Args:
        path: a file with a suffix from `CLOUD_SUFFIXES`.
        chunk_size: most rows per chunk, at least 1.

    Yields:
        (n,) structured arrays with the fields and dtypes `read_cloud` keeps (native byte order), rows with
        non-finite coordinates included; at least one chunk, possibly empty.

    Raises:
        PcflowError: as `read_cloud`, when the chunk that holds the problem is reached; ChunkLayoutError when a text
            colour column holds non-byte values only after the first chunk.
    """
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise PcflowError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    fmt = _format_for(path, "read_cloud", "read point clouds from")
    path = _existing_file(path)
    reader = _CHUNK_READERS.get(fmt.name)
    if reader is None:
        yield from _cut(_read_records(path)[0], chunk_size)
        return
    chunks = reader(path, chunk_size)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except PcflowError:
            raise
        except _PARSE_ERRORS as e:
            raise PcflowError(f"{path}: corrupt or unreadable {fmt.name} file: {_one_line(e)}") from e
        yield chunk


def _cut(records: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
    for start in range(0, max(len(records), 1), chunk_size):
        yield records[start:start + chunk_size]


def _ply_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    with open(path, "rb") as f:
        header = _ascii_ply_vertex_header(f)
        if header is None:  # binary (plyfile memory-maps it) or an ASCII layout read whole
            yield from map(_native, _cut(_load_ply(path)["vertex"].data, chunk_size))
            return
        dtype, count = header
        text = io.TextIOWrapper(f, encoding="ascii")
        done = 0
        while done < count or done == 0:
            take = min(chunk_size, count - done)
            lines = list(itertools.islice(text, take))
            if len(lines) < take:
                raise PcflowError(f"{path}: corrupt or truncated PLY file: {count} vertices declared, "
                                  f"{done + len(lines)} present")
            chunk = np.loadtxt(lines, dtype=dtype, ndmin=1, comments=None) if lines else np.empty(0, dtype)
            if len(chunk) != take:
                raise PcflowError(f"{path}: corrupt PLY file: blank or broken vertex lines near row {done + 1}")
            done += take
            yield _native(chunk)
            if count == 0:
                return


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _ascii_ply_vertex_header(f) -> tuple[np.dtype, int] | None:
    """(vertex dtype, count) of an ASCII PLY whose first element is a vertex element of scalars, the stream left
    at its first data line; None for any other layout (binary, lists, other elements first)."""
    lines = []
    for _ in range(10_000):
        line = f.readline()
        if not line:
            return None
        words = line.decode("ascii", errors="replace").split()
        if words[:1] == ["end_header"]:
            break
        lines.append(words)
    else:
        return None
    if len(lines) < 2 or lines[0] != ["ply"] or lines[1][:2] != ["format", "ascii"]:
        return None
    elements = [k for k, words in enumerate(lines) if words[:1] == ["element"]]
    if not elements or len(lines[elements[0]]) != 3 or lines[elements[0]][1] != "vertex":
        return None
    stop = elements[1] if len(elements) > 1 else len(lines)
    fields = []
    for words in lines[elements[0] + 1:stop]:
        if words[:1] in (["comment"], ["obj_info"]):
            continue
        if len(words) != 3 or words[0] != "property" or words[1] not in _PLY_TYPES:
            return None
        fields.append((words[2], _PLY_TYPES[words[1]]))
    try:
        return np.dtype(fields), int(lines[elements[0]][2])
    except (TypeError, ValueError):
        return None


def _pcd_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    from pcflow import pcd

    with open(path, "rb") as f:
        header, offset = pcd._parse_header(f.read(1 << 20), path)
    fields, n, _, _ = pcd._layout(header, path)
    fields = pcd._unique_names(fields)
    kind = header["DATA"][0]
    dtype = np.dtype([(name, kind_, (count,)) for name, kind_, count in fields])
    if kind == "binary":
        available = path.stat().st_size - offset
        if available < n * dtype.itemsize:
            raise PcflowError(f"{path}: truncated PCD binary data: header declares {n} points of {dtype.itemsize} "
                              f"bytes, the file holds {available} bytes of data")
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n,)) if n else np.empty(0, dtype)
        for chunk in _cut(data, chunk_size):
            yield pcd._flatten(np.array(chunk), fields)
        return
    if kind != "ascii":  # binary_compressed: one LZF block, read whole
        yield from _cut(read_pcd(path)[0], chunk_size)
        return
    with open(path, "rb") as f:
        f.seek(offset)
        lines = (line for line in f if line.strip())
        done = 0
        while done < n or done == 0:
            take = min(chunk_size, n - done)
            block = list(itertools.islice(lines, take))
            if len(block) < take:
                raise PcflowError(f"{path}: PCD header declares {n} points but the data holds {done + len(block)} rows")
            records = pcd._read_ascii(b"".join(block), fields, take, path) if take else np.empty(0, dtype)
            done += take
            yield pcd._flatten(records, fields)
            if n == 0:
                return


def _text_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    with open(path, encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        lines = (line for line in lines if line)
        previous, start = "", 0
        for first in lines:
            if _numeric_row(first) >= 2:
                break
            previous, start = first, start + 1
        else:
            raise PcflowError(f"{path}: no numeric rows of 2 or more columns (non-numeric text?)")
        delimiter = "," if "," in first else ";" if ";" in first else None
        width = len(first.split(delimiter))
        names = _column_names(previous, width, path.suffix.lower())
        rows = itertools.chain([first], lines)
        dtype, done = None, 0
        while True:
            block = [line.split(delimiter) for line in itertools.islice(rows, chunk_size)]
            if not block and dtype is not None:
                return
            bad = next((k for k, row in enumerate(block) if len(row) != width), None)
            if bad is not None:
                raise PcflowError(f"{path}: line {start + done + bad + 1} has {len(block[bad])} columns, "
                                  f"expected {width}")
            try:
                values = np.array(block, dtype=np.float64).reshape(len(block), width)
            except ValueError as e:
                raise PcflowError(f"{path}: non-numeric text in the data rows ({_one_line(e)})") from e
            kinds = [_text_dtype(name, values[:, k]) for k, name in enumerate(names)]
            if dtype is None:
                dtype = np.dtype(list(zip(names, kinds)))
            elif any(kind != dtype[k] and dtype[k] == np.uint8 for k, kind in enumerate(kinds)):
                raise ChunkLayoutError(f"{path}: a colour column holds non-byte values after row {done}, "
                                       "but the rows before were bytes")
            records = np.empty(len(values), dtype=dtype)
            for k, name in enumerate(names):
                records[name] = values[:, k]
            done += len(block)
            yield records


def _las_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    try:
        import laspy
    except ImportError:
        yield from _cut(_read_las(path)[0], chunk_size)
        return
    try:
        with laspy.open(str(path)) as reader:
            present = set(reader.header.point_format.dimension_names)
            for points in reader.chunk_iterator(chunk_size):
                columns = {axis: np.asarray(getattr(points, axis), dtype=np.float64) for axis in "xyz"}
                columns.update({name: np.asarray(points[name]) for name in _LAS_FIELDS if name in present})
                records = np.empty(len(columns["x"]), dtype=[(name, v.dtype) for name, v in columns.items()])
                for name, values in columns.items():
                    records[name] = values
                yield records
    except laspy.errors.LaspyException as e:
        hint = ' (LAZ needs lazrs: pip install "pcflow[las]")' if path.suffix.lower() == ".laz" else ""
        raise PcflowError(f"{path}: cannot read LAS/LAZ file: {_one_line(e)}{hint}") from e


#: Chunked readers by format name; formats not listed are read whole and then cut.
_CHUNK_READERS: dict[str, Callable[[Path, int], Iterator[np.ndarray]]] = {
    "PLY": _ply_chunks, "PCD": _pcd_chunks, "XYZ": _text_chunks, "CSV": _text_chunks, "PTS": _text_chunks,
    "LAS": _las_chunks,
}


class CloudWriter:
    """Writes a cloud chunk by chunk into PLY, PCD, XYZ/TXT or CSV, atomically, with the fields `write_cloud` keeps.

    Nothing appears at `path` until the writer closes without error; the header's point count is patched in at the
    end (a padded comment line keeps the header's length fixed). Use it as a context manager.

    Args:
        path: a file with a suffix from `CLOUD_WRITE_SUFFIXES`.
        ascii: text PLY/PCD instead of binary (little endian).
        inputs: paths that must not be overwritten.

    Example:
        >>> import tempfile; folder = Path(tempfile.mkdtemp())
        >>> with CloudWriter(folder / "a.ply") as writer:
        ...     writer.write(PointCloud(np.zeros((2, 3))))
        ...     writer.write(PointCloud(np.ones((1, 3))))
        >>> read_cloud(folder / "a.ply").points.tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
        >>> import shutil; shutil.rmtree(folder)
    """

    _PAD = 48  # spare header bytes: room for two counts of up to 20 digits

    def __init__(self, path, *, ascii: bool = False, inputs=()):
        self.path = Path(path)
        self._fmt = _format_for(path, "write_cloud", "write point clouds to")
        self._ascii = ascii
        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_output(path, inputs=inputs))
        self._file = self._stack.enter_context(open(tmp, "wb"))
        self._dtype = None
        self._header_size = 0
        self.count = 0

    def __enter__(self) -> CloudWriter:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None:
            self.close()
            return False
        return bool(self._stack.__exit__(kind, error, traceback))

    def write(self, cloud: PointCloud) -> None:
        """Appends the rows of `cloud`; every chunk must give the same fields and dtypes as the first."""
        records = _records_of(cloud)
        if self._fmt.name == "PLY":
            records = _ply_records(records)
        elif self._fmt.name == "XYZ":
            axes = [name for name in ("x", "y", "z") if name in records.dtype.names]
            records = records[axes]
        if self._dtype is None:
            self._dtype = records.dtype
            header = self._header(0, self._PAD)
            self._header_size = len(header)
            self._file.write(header)
        elif records.dtype != self._dtype:
            raise ChunkLayoutError(f"{self.path}: a later chunk has fields {records.dtype.descr}, "
                                   f"the first had {self._dtype.descr}")
        self._file.write(self._body(records))
        self.count += len(records)

    def close(self) -> None:
        """Writes the final header and moves the file into place."""
        if self._dtype is None:
            self.write(PointCloud(np.zeros((0, 3))))
        header = self._header(self.count, 0)
        if len(header) > self._header_size:
            raise PcflowError(f"{self.path}: header grew beyond its reserved size")
        self._file.seek(0)
        self._file.write(self._header(self.count, self._header_size - len(header)))
        self._stack.close()

    def _header(self, count: int, pad: int) -> bytes:
        names = self._dtype.names
        if self._fmt.name == "PLY":
            types = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
                     "f4": "float", "f8": "double"}
            lines = ["ply", f"format {'ascii' if self._ascii else 'binary_little_endian'} 1.0",
                     "comment written by pcflow" + " " * pad, f"element vertex {count}"]
            lines += [f"property {types[self._dtype[name].str[1:]]} {name}" for name in names]
            lines.append("end_header")
        elif self._fmt.name == "PCD":
            kinds = [self._dtype[name] for name in names]
            letters = ["F" if dt.kind == "f" else "U" if dt.kind in "ub" else "I" for dt in kinds]
            if self._ascii:
                letters = ["U" if name in ("rgb", "rgba") and dt == np.float32 else letter
                           for name, dt, letter in zip(names, kinds, letters)]
            lines = ["# .PCD v0.7 - Point Cloud Data file format" + " " * pad, "VERSION 0.7",
                     "FIELDS " + " ".join(names), "SIZE " + " ".join(str(dt.itemsize) for dt in kinds),
                     "TYPE " + " ".join(letters), "COUNT " + " ".join("1" for _ in names), f"WIDTH {count}",
                     "HEIGHT 1", "VIEWPOINT 0 0 0 1 0 0 0", f"POINTS {count}",
                     f"DATA {'ascii' if self._ascii else 'binary'}"]
        elif self._fmt.name == "CSV":
            lines = [",".join(names)]
        else:
            return b""
        return ("\n".join(lines) + "\n").encode("ascii")

    def _body(self, records: np.ndarray) -> bytes:
        names = records.dtype.names
        text = self._ascii or self._fmt.name in ("XYZ", "CSV")
        if not text:
            little = np.dtype([(name, records.dtype[name].newbyteorder("<")) for name in names])
            return records.astype(little).tobytes()
        columns = [records[name] for name in names]
        formats = ["%.17g" if column.dtype.kind == "f" else "%d" for column in columns]
        if self._fmt.name == "PCD":  # as pcflow.pcd.write_pcd: float rgb as its bits, float32 with 9 digits
            for k, name in enumerate(names):
                if name in ("rgb", "rgba") and columns[k].dtype == np.float32:
                    columns[k], formats[k] = np.ascontiguousarray(columns[k]).view(np.uint32), "%d"
                elif columns[k].dtype == np.float32:
                    formats[k] = "%.9g"
        line = (" " if self._fmt.name != "CSV" else ",").join(formats) + "\n"
        rows = zip(*(column.tolist() for column in columns))
        return "".join(line % row for row in rows).encode("ascii")
