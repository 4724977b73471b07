"""Readers and writers for point clouds and meshes, chosen through one table from file suffix to function."""

from __future__ import annotations

import os
import re
import struct
import tempfile
from contextlib import contextmanager
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
        uv: optional (V, 2) float array of per-vertex texture coordinates, written by OBJ (`vt`, one per vertex,
            faces `f a/a b/b c/c`), PLY (`s`, `t`) and GLB; STL and OFF cannot hold them and leave them out.
            OBJ, OFF and PLY keep float64 coordinates; STL and GLB store float32 by their specifications.
        inputs: paths that must not be overwritten.
    """
    fmt = _format_for(path, "write_mesh", "write meshes to")
    if uv is not None:
        uv = np.asarray(uv, dtype=np.float64)
        if uv.shape != (len(mesh.vertices), 2):
            raise PcflowError(f"uv has shape {uv.shape}; expected ({len(mesh.vertices)}, 2), one row per vertex")
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


def _read_ply(path: Path) -> tuple[np.ndarray, dict]:
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
    n_faces = ply["face"].count if "face" in names else 0
    text = "ascii" if ply.text else "binary"
    return _native(ply["vertex"].data), {"format": f"PLY {text}", "n_faces": n_faces}


def _write_ply(path: Path, records: np.ndarray, *, ascii: bool = False) -> None:
    """PLY vertex element of all fields; a packed PCD rgb/rgba also gets red/green/blue uchar for PLY viewers."""
    from plyfile import PlyData, PlyElement

    names = records.dtype.names
    if {"rgb", "rgba"} & set(names) and not {"red", "green", "blue"} & set(names):
        colors = _colors_of(records)
        extended = np.empty(len(records), dtype=records.dtype.descr + [(c, "u1") for c in ("red", "green", "blue")])
        for name in names:
            extended[name] = records[name]
        for k, name in enumerate(("red", "green", "blue")):
            extended[name] = colors[:, k]
        records = extended
    PlyData([PlyElement.describe(records, "vertex")], text=ascii, byte_order="<").write(str(path))


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
        f.write("".join("vt %.17g %.17g\n" % tuple(t) for t in uv.tolist()))
        f.write("".join("f %d/%d %d/%d %d/%d\n" % (a, a, b, b, c, c) for a, b, c in faces.tolist()))


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
