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
            PCD `rgb`/`rgba`, float32 `x`/`y`/`z`...); None when the file held float64 coordinates only.
        n_dropped_nonfinite: rows dropped on reading because a coordinate was NaN or infinite.
        source: the path read, for reports ("" for clouds made in memory).
        las_header: the `laspy.LasHeader` of a LAS/LAZ source, else None; LAS/LAZ output then keeps its version,
            point format, scales, offsets, VLRs and EVLRs.

    Example:
        >>> cloud = PointCloud(np.zeros((4, 3)))
        >>> cloud.subset([0, 2]).points.shape, cloud.has_colors
        ((2, 3), False)
    """

    points: np.ndarray
    fields: np.ndarray | None = None
    n_dropped_nonfinite: int = 0
    source: str = ""
    las_header: object | None = None

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
        return PointCloud(self.points[index], fields, self.n_dropped_nonfinite, self.source, self.las_header)

    def with_fields(self, columns: dict) -> PointCloud:
        """Returns the cloud with per-point fields set: an existing field (matched without regard to case) keeps its
        dtype, a new one is appended with the dtype of its (N,) array.

        Example:
            >>> cloud = PointCloud(np.zeros((2, 3))).with_fields({"classification": np.array([1, 7], np.uint8)})
            >>> cloud.fields.dtype.names, cloud.fields["classification"].tolist()
            (('x', 'y', 'z', 'classification'), [1, 7])
        """
        fields = _records_of(self) if self.fields is None else self.fields
        lower = {name.lower(): name for name in fields.dtype.names}
        columns = {lower.get(name.lower(), name): np.asarray(values) for name, values in columns.items()}
        for name, values in columns.items():
            if values.shape != (len(self),):
                raise PcflowError(f"field {name!r} has shape {values.shape}; expected ({len(self)},)")
        added = [(name, values.dtype) for name, values in columns.items() if name not in fields.dtype.names]
        out = np.empty(len(self), dtype=[(name, fields.dtype[name]) for name in fields.dtype.names] + added)
        for name in fields.dtype.names:
            out[name] = fields[name]
        for name, values in columns.items():
            out[name] = values
        return PointCloud(self.points, out, self.n_dropped_nonfinite, self.source, self.las_header)

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
    """Colour channel to uint8: floats in [0, 1] are scaled by 255, 16-bit values (LAS) keep their high byte (so
    that both `v << 8` and `v * 257` give back `v`)."""
    if values.dtype == np.uint8:
        return values.copy()
    values = values.astype(np.float64)
    top = values.max(initial=0.0)
    if top <= 1.0 and np.any(values % 1 != 0):
        values = values * 255.0
    elif top > 255:
        values = np.floor(values / 256.0)
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
    records, info = _read_records(path)
    coords, points = _coordinates(records, path)
    if len(points) == 0:
        raise PcflowError(f"{path}: the file holds no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        raise PcflowError(f"{path}: no finite points left (all {len(points)} rows have NaN or infinite coordinates)")
    fields = records[finite] if _has_fields(records, coords) else None
    return PointCloud(points[finite], fields, int((~finite).sum()), str(path), info.get("las_header"))


def write_cloud(path, cloud: PointCloud, *, ascii: bool = False, inputs=()) -> None:
    """Writes a cloud with all its fields (atomically; never over `cloud.source` or any of `inputs`).

    Args:
        path: a file with a suffix from `CLOUD_WRITE_SUFFIXES`: .ply and .pcd keep every field in its dtype
            (PLY narrows 8-byte integers); .xyz/.txt are space-separated columns, with a `# x y z ...` line naming
            them when there are more than the coordinates; .csv has a header row. .las/.laz keep the version,
            point format, scales, offsets, VLRs, EVLRs and dimensions of `cloud.las_header`; a cloud from another
            format gets LAS 1.4 (point format 7 with colours, else 6), per-axis scales from the coordinates' range
            (`_las_scaling`) and its other fields as extra-bytes dimensions (see `_las_layout`).
        cloud: the cloud; coordinates come from `cloud.points`, stored in their field's original dtype when that
            is exact, else as float64.
        ascii: text PLY/PCD instead of binary (little endian).
        inputs: further paths that must not be overwritten.
    """
    fmt = _format_for(path, "write_cloud", "write point clouds to")
    records = _records_of(cloud, wide_ints=fmt.name in _WIDE_INT_FORMATS)
    with atomic_output(path, inputs=(*inputs, *([cloud.source] if cloud.source else []))) as tmp:
        fmt.write_cloud(tmp, records, ascii=ascii, las_header=cloud.las_header)


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
    """Writes a triangle mesh (atomically; never over any of `inputs`), in the input's coordinates and units.

    PLY (vertex x y z double, nx ny nz float; face vertex_indices as a uchar/int list) and OBJ (one `vn` per `v`)
    carry vertex normals, GLB too, STL facet normals, OFF none (NOFF is not read by meshio); all follow the faces'
    winding (`_vertex_normals`), which points outward for `pcflow.mesh`'s meshes. Without `uv`, Open3D, trimesh and
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


def describe(path, *, seed: int = 0) -> dict:
    """Summarises a cloud or mesh file for `pcflow info`: what it holds, its extent, spacing and kind.

    Args:
        path: a file with a suffix from `CLOUD_SUFFIXES`.
        seed: seed of the random subsamples behind `spacing` and `shape`.

    Returns:
        dict with `path`, `format`, `n_points` (rows in the file), `n_nonfinite` (rows with a NaN or infinite
        coordinate), `fields` (name -> dtype string), `bounds` ((min, max) lists over finite rows, or None),
        `size` (max - min per axis, or None), `spacing` (`_spacing`: the median distance from a point to its
        nearest neighbour, or None), `shape` (`_shape`: object or scene, judged by the share of points on the
        largest plane; None for mesh files and 2-D clouds), `has_colors`, `is_mesh`, `n_faces` and `organized`
        ((width, height) of an organized PCD, else None).
    """
    records, info = _read_records(path)
    coords, points = _coordinates(records, path)
    finite = np.isfinite(points).all(axis=1)
    points = points[finite]
    bounds = size = None
    if len(points):
        low, high = points.min(axis=0), points.max(axis=0)
        bounds, size = (low.tolist(), high.tolist()), (high - low).tolist()
    fields = records[finite] if _has_fields(records, coords) else None
    is_mesh = info.get("n_faces", 0) > 0
    return {
        "path": str(path),
        "format": info["format"],
        "n_points": len(records),
        "n_nonfinite": int((~finite).sum()),
        "fields": {name: str(records.dtype[name]) for name in records.dtype.names},
        "bounds": bounds,
        "size": size,
        "spacing": _spacing(points, np.random.default_rng(seed)),
        "shape": None if is_mesh or points.shape[1] != 3 else _shape(points, np.random.default_rng(seed)),
        "has_colors": PointCloud(points, fields).has_colors,
        "is_mesh": is_mesh,
        "n_faces": info.get("n_faces", 0),
        "organized": info.get("organized"),
    }


#: Points whose nearest-neighbour distance `describe` measures (a random subset; the tree holds every point).
SPACING_SAMPLES = 10_000
#: Points and candidate planes of `describe`'s plane test.
PLANE_SAMPLES, PLANE_CANDIDATES = 5_000, 400
#: A point is on a plane when nearer to it than this share of the diagonal of the box from the 1st to the 99th
#: percentile of each coordinate (outliers do not widen it).
PLANE_TOLERANCE = 0.01
#: A cloud whose largest plane holds at least this share of its points is called a scene (a floor, table or wall).
#: Measured with the defaults above: 0.09 (the bundled Spot scan) to 0.14 on scanned and meshed objects, 0.60 and
#: 0.83 on the two table-top scenes of the PCL test data, 0.96 on an airborne LiDAR tile; one face of a cube holds
#: 1/6 to 1/3 of its points.
SCENE_PLANE_SHARE = 0.3


def _spacing(points: np.ndarray, rng: np.random.Generator) -> dict | None:
    """Median distance from a point to its nearest other point (duplicates skipped), over a random sample.

    Args:
        points: (N, D) finite coordinates.
        rng: random generator of the sample.

    Returns:
        {"median_nn": distance, "n_sampled": points measured}, or None with fewer than two distinct points.
    """
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return None
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)  # built quicker; queries barely slower
    sample = points[rng.choice(len(points), min(SPACING_SAMPLES, len(points)), replace=False)]
    distances, _ = tree.query(sample, k=min(8, len(points)))
    distances = np.where(distances > 0, distances, np.inf).min(axis=1)  # the nearest point that is not a duplicate
    distances = distances[np.isfinite(distances)]
    if len(distances) == 0:
        return None
    return {"median_nn": float(np.median(distances)), "n_sampled": int(len(sample))}


def _shape(points: np.ndarray, rng: np.random.Generator) -> dict | None:
    """Object or scene, by the share of points on the largest plane that a RANSAC over random triples finds.

    Args:
        points: (N, 3) finite coordinates.
        rng: random generator of the sample and the triples.

    Returns:
        {"kind": "scene" or "object", "plane_share": share of the sampled points within `tolerance` of the best of
        `PLANE_CANDIDATES` planes through random triples, "tolerance": in input units, "n_sampled"}; a scene when
        `plane_share` >= `SCENE_PLANE_SHARE`. None for fewer than three points or points all on one spot.
    """
    if len(points) < 3:
        return None
    sample = points[rng.choice(len(points), min(PLANE_SAMPLES, len(points)), replace=False)]
    low, high = np.percentile(sample, [1, 99], axis=0)
    tolerance = PLANE_TOLERANCE * float(np.linalg.norm(high - low))
    if tolerance == 0:
        return None
    triples = sample[rng.integers(0, len(sample), size=(PLANE_CANDIDATES, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    planes = lengths > 0
    if not planes.any():  # every triple collinear: the points lie on a line, which one plane holds
        share = 1.0
    else:
        normals = normals[planes] / lengths[planes, None]
        offsets = np.einsum("ij,ij->i", normals, triples[planes, 0])
        share = float((np.abs(sample @ normals.T - offsets) <= tolerance).mean(axis=0).max())
    return {"kind": "scene" if share >= SCENE_PLANE_SHARE else "object", "plane_share": share,
            "tolerance": tolerance, "n_sampled": int(len(sample))}


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


def _has_fields(records: np.ndarray, coords: tuple[str, ...]) -> bool:
    """Whether `records` hold more than `PointCloud.points` can: other fields, or coordinates not in float64."""
    return len(records.dtype.names) > len(coords) or any(records.dtype[name] != np.float64 for name in coords)


def _records_of(cloud: PointCloud, *, wide_ints: bool = False) -> np.ndarray:
    """The cloud as one structured array: coordinates from `points`, other fields from `fields`, in dtypes
    `_storable` allows (8-byte integers too with `wide_ints`)."""
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
            dtypes.append((_safe_name(name), _storable(fields[name], wide_ints=wide_ints)))
    out = np.empty(len(cloud.points), dtype=dtypes)
    for name, (safe, _) in zip(names, dtypes):
        out[safe] = cloud.points[:, coords[name]] if name in coords else fields[name]
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"\W", "_", name) or "field"


def _storable(values: np.ndarray, *, wide_ints: bool = False) -> np.dtype:
    """A dtype that PLY can hold (1 to 4 byte integers, 4 or 8 byte floats; PCD and LAS also 8-byte integers, with
    `wide_ints`) and that keeps the values."""
    kind = values.dtype
    if kind == np.bool_:
        return np.dtype(np.uint8)
    if kind.kind == "f":
        return np.dtype(np.float64) if kind.itemsize > 4 else np.dtype(np.float32)
    if kind.kind in "iu" and (kind.itemsize <= 4 or wide_ints):
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


def _write_ply(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
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


def _write_xyz(path: Path, records: np.ndarray, *, ascii: bool = True, las_header=None) -> None:
    """Space-separated columns; a `# x y z ...` line first names them when there are more than the coordinates
    (the readers here, CloudCompare and PDAL's readers.text take the names from it)."""
    _write_text(path, records, " ")


def _write_csv(path: Path, records: np.ndarray, *, ascii: bool = True, las_header=None) -> None:
    _write_text(path, records, ",")


def _text_header(names: tuple[str, ...], delimiter: str) -> str:
    """The line naming the columns of a text cloud: always for CSV, for XYZ/TXT only beyond the coordinates."""
    if delimiter == ",":
        return ",".join(names) + "\n"
    return "" if names in (("x", "y", "z"), ("x", "y")) else "# " + " ".join(names) + "\n"


def _text_rows(records: np.ndarray, delimiter: str) -> str:
    """The rows of a text cloud: integers as integers, floats with 17 significant digits."""
    names = records.dtype.names
    line = delimiter.join("%.17g" if records.dtype[name].kind == "f" else "%d" for name in names) + "\n"
    return "".join(line % row for row in zip(*(records[name].tolist() for name in names)))


def _write_text(path: Path, records: np.ndarray, delimiter: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(_text_header(records.dtype.names, delimiter))
        f.write(_text_rows(records, delimiter))


# ------------------------------------------------------------------------------------------------------------------
# LAS / LAZ (laspy, optional)

#: Formats whose writers take 8-byte integer fields as they are.
_WIDE_INT_FORMATS = ("PCD", "LAS")
#: Point formats of LAS 1.4 a cloud from another format is written in: without and with RGB.
_LAS_POINT_FORMATS = (6, 7)


def _laspy(path):
    try:
        import laspy
    except ImportError as e:
        raise PcflowError(f'{path}: LAS/LAZ needs laspy; install it with: pip install "pcflow[las]"') from e
    return laspy


def _las_error(path, error: Exception) -> PcflowError:
    hint = ' (LAZ needs lazrs: pip install "pcflow[las]")' if Path(path).suffix.lower() == ".laz" else ""
    return PcflowError(f"{path}: cannot read LAS/LAZ file: {_one_line(error)}{hint}")


def _read_las(path: Path) -> tuple[np.ndarray, dict]:
    laspy = _laspy(path)
    try:
        las = laspy.read(str(path))
    except (laspy.errors.LaspyException, *_PARSE_ERRORS) as e:
        raise _las_error(path, e) from e
    return _las_records(las.points), {"format": f"LAS {las.header.version}", "las_header": las.header}


def _las_records(points) -> np.ndarray:
    """Every dimension of laspy points as one structured array: `x`/`y`/`z` float64 (scaled and offset), the
    other standard and extra-bytes dimensions under their laspy names (scaled extra bytes as float64, an array
    dimension `d` of k values as `d_0` ... `d_{k-1}`)."""
    columns = {axis: np.asarray(getattr(points, axis), dtype=np.float64) for axis in "xyz"}
    for name in points.point_format.dimension_names:
        if name in ("X", "Y", "Z"):
            continue
        values = np.asarray(points[name])
        if values.ndim == 2:
            columns.update({f"{name}_{k}": values[:, k] for k in range(values.shape[1])})
        else:
            columns[name] = values
    records = np.empty(len(columns["x"]), dtype=[(name, values.dtype) for name, values in columns.items()])
    for name, values in columns.items():
        records[name] = values
    return records


def read_las_header(path):
    """The `laspy.LasHeader` of a LAS/LAZ file (VLRs and EVLRs included), None for a file of another format.

    Raises:
        PcflowError: an unreadable LAS/LAZ file, or laspy missing.
    """
    path = Path(path)
    if path.suffix.lower() not in (".las", ".laz"):
        return None
    laspy = _laspy(path)
    try:
        with laspy.open(str(_existing_file(path))) as reader:
            return reader.header
    except (laspy.errors.LaspyException, *_PARSE_ERRORS) as e:
        raise _las_error(path, e) from e


def _las_scaling(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scales and offsets for LAS coordinates between `low` and `high`: per axis the finest power of ten that keeps
    the range within +-2^30 (half the 32-bit integers), and an offset near the middle, rounded to a decimal
    (a cloud of 1 m gets 1e-9, one of 10 km 1e-5: finer than float32 resolves at the cloud's extent)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    half = np.maximum((high - low) / 2, 1e-3)
    scales = 10.0 ** np.ceil(np.log10(half / 2.0 ** 30))
    unit = 10.0 ** np.floor(np.log10(half))
    offsets = np.round((low + high) / 2 / unit) * unit
    return scales, offsets


@dataclass
class _LasLayout:
    """How records go into LAS points: the header and, per field, its target dimension (and array index)."""

    header: object
    coords: tuple[str, ...]
    targets: dict  # field name -> (dimension name, index in an array dimension or None)
    colours: bool  # RGB from the records' colours, scaled to 16 bits (a cloud from another format)


def _las_layout(records: np.ndarray, template, bounds, where: str) -> _LasLayout:
    """The header of a LAS/LAZ output and where each field goes (`where` names the output in error messages).

    With a `template` (the header of a LAS/LAZ source) its version, point format, scales, offsets, VLRs and EVLRs
    are kept and fields go back into the dimensions they came from. Otherwise the header is LAS 1.4, point format
    7 when the records hold colours (else 6), with scales and offsets from `bounds` ((low, high) per axis; the
    records' own by default). A field named (in any case) as a standard dimension goes there when that dimension
    holds its values exactly; every other field, and one a standard dimension cannot hold (a float intensity),
    becomes an extra-bytes dimension (under its name, or `<name>_value` for a standard one).
    """
    import copy

    laspy = _laspy(where)
    coords, points = _coordinates(records, where)
    if points.shape[1] != 3:
        raise PcflowError(f"{where}: needs 3-D points, got {points.shape[1]} coordinates per point")
    if template is not None:
        header, colours = copy.deepcopy(template), False
    else:
        colours = _colors_of(records) is not None
        header = laspy.LasHeader(point_format=_LAS_POINT_FORMATS[colours], version="1.4")
        if bounds is None:
            finite = np.isfinite(points).all(axis=1)
            bounds = (points[finite].min(axis=0), points[finite].max(axis=0)) if finite.any() else (np.zeros(3),) * 2
        header.scales, header.offsets = _las_scaling(*bounds)
        header.generating_software = "pcflow"
    dimensions = {dim.name: dim for dim in header.point_format.dimensions}
    arrays = {f"{name}_{k}": (name, k) for name, dim in dimensions.items() if dim.num_elements > 1
              for k in range(dim.num_elements)}
    lower = {name.lower(): name for name in dimensions if name not in ("X", "Y", "Z")}
    targets, extra = {}, []
    for name in records.dtype.names:
        if name in coords or (colours and name in ("red", "green", "blue")):
            continue
        if name in arrays:
            targets[name] = arrays[name]
            continue
        dimension = lower.get(name.lower())
        if dimension is not None and _las_holds(dimensions[dimension], records[name]):
            targets[name] = (dimension, None)
            continue
        extra_name = name if dimension is None else f"{name}_value"
        if len(extra_name.encode()) > 32:
            raise PcflowError(f"{where}: field name {extra_name!r} is longer than LAS extra bytes allow (32 bytes)")
        extra.append(laspy.ExtraBytesParams(name=extra_name, type=_storable(records[name], wide_ints=True)))
        targets[name] = (extra_name, None)
    if extra:
        header.add_extra_dims(extra)
    return _LasLayout(header, coords, targets, colours)


def _las_holds(dimension, values: np.ndarray) -> bool:
    """Whether a LAS dimension holds `values` exactly (a bit field its range, an integer its type's)."""
    if dimension.kind.name == "FloatingPoint" or dimension.is_scaled:
        return values.dtype.kind in "biuf"
    if values.dtype.kind not in "biuf" or (values.dtype.kind == "f" and not np.all(values % 1 == 0)):
        return False
    if dimension.kind.name == "BitField":
        low, high = 0, 2 ** dimension.num_bits - 1
    else:
        info = np.iinfo(dimension.dtype.base if dimension.dtype.shape else dimension.dtype)
        low, high = info.min, info.max
    return len(values) == 0 or (values.min() >= low and values.max() <= high)


def _las_points(layout: _LasLayout, records: np.ndarray, where: str):
    """The records as laspy points of `layout.header` (coordinates quantized by its scales and offsets)."""
    import laspy

    header = layout.header
    points = laspy.ScaleAwarePointRecord.zeros(len(records), header=header)
    for k, (axis, name) in enumerate(zip("XYZ", layout.coords)):
        quantized = np.round((records[name].astype(np.float64) - header.offsets[k]) / header.scales[k])
        if len(quantized) and not (np.abs(quantized) <= 2 ** 31 - 1).all():
            raise ChunkLayoutError(f"{where}: coordinates outside what the LAS header's scale {header.scales[k]} and "
                                   f"offset {header.offsets[k]} can store in {axis}")
        points[axis] = quantized.astype(np.int32)
    if layout.colours:
        for name, values in zip(("red", "green", "blue"), _las_colours(records).T):
            points[name] = values
    arrays = {}
    dimensions = {dim.name: dim for dim in header.point_format.dimensions}
    for name, (dimension, index) in layout.targets.items():
        if not _las_holds(dimensions[dimension], records[name]):
            raise ChunkLayoutError(f"{where}: field {name!r} holds values that its LAS dimension {dimension!r}, fixed "
                                   "by the first chunk, cannot")
        if index is None:
            points[dimension] = records[name]
        else:
            arrays.setdefault(dimension, np.array(points[dimension]))[:, index] = records[name]
    for dimension, values in arrays.items():
        points[dimension] = values
    return points


def _las_colours(records: np.ndarray) -> np.ndarray:
    """(N, 3) uint16 LAS colours: uint8 channels times 257 (255 -> 65535), 16-bit ones as they are, floats in
    [0, 1] times 65535; a packed PCD rgb/rgba through `PointCloud.colors`."""
    names = records.dtype.names
    if not all(name in names for name in ("red", "green", "blue")):
        return _colors_of(records).astype(np.uint16) * 257
    channels = []
    for name in ("red", "green", "blue"):
        values = records[name]
        if values.dtype == np.uint8:
            values = values.astype(np.uint16) * 257
        elif values.dtype.kind == "f" and values.max(initial=0.0) <= 1.0:
            values = np.round(values * 65535.0)
        channels.append(np.clip(values, 0, 65535).astype(np.uint16))
    return np.stack(channels, axis=1)


class _LasStream:
    """Writes records into an open LAS/LAZ file chunk by chunk; the first chunk's fields fix the layout."""

    def __init__(self, file, records: np.ndarray, *, compress: bool, template, bounds, where: str):
        laspy = _laspy(where)
        self._where = where
        self._layout = _las_layout(records, template, bounds, where)
        self._names = records.dtype
        self._evlrs = getattr(template, "evlrs", None) or []
        self._writer = laspy.LasWriter(file, self._layout.header, do_compress=compress, closefd=False)

    def write(self, records: np.ndarray) -> None:
        if records.dtype.names != self._names.names:
            raise ChunkLayoutError(f"{self._where}: a later chunk has fields {records.dtype.names}, "
                                   f"the first had {self._names.names}")
        if len(records):
            self._writer.write_points(_las_points(self._layout, records, self._where))

    def close(self) -> None:
        if self._evlrs and self._layout.header.version.minor >= 4:
            self._writer.write_evlrs(self._evlrs)
        self._writer.close()


def _las_writer(compress: bool) -> Callable[..., None]:
    def write(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
        """LAS (or LAZ) of every field; see `_las_layout` for the header and where each field goes."""
        with open(path, "wb") as f:
            stream = _LasStream(f, records, compress=compress, template=las_header, bounds=None, where="LAS/LAZ output")
            stream.write(records)
            stream.close()

    return write


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


def _vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """Unit vertex normals that follow the faces' winding: trimesh's angle-weighted mean of the face normals.

    They point outward when the faces wind counter-clockwise seen from outside (as `pcflow.mesh` orients its
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


def _write_obj(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """OBJ with one `vn` per vertex (so `v` and `vn` rows pair up, as meshio needs) and `vt` rows if `uv`."""
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


def _write_ply_mesh(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """Binary PLY as MeshLab, Open3D, trimesh and meshio read it: vertex x y z (double, which keeps georeferenced
    coordinates) nx ny nz (float) [s t], face vertex_indices (uchar count, int indices)."""
    from plyfile import PlyData, PlyElement

    columns = [(name, np.float64) for name in "xyz"] + [(name, np.float32) for name in ("nx", "ny", "nz")]
    values = [np.asarray(mesh.vertices), _vertex_normals(mesh)]
    if uv is not None:
        columns += [("s", np.float64), ("t", np.float64)]
        values.append(uv)
    values = np.hstack(values)
    vertex = np.empty(len(values), dtype=columns)
    for k, (name, _) in enumerate(columns):
        vertex[name] = values[:, k]
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", np.int32, (3,))])
    face["vertex_indices"] = mesh.faces
    elements = [PlyElement.describe(vertex, "vertex"),
                PlyElement.describe(face, "face", len_types={"vertex_indices": "u1"})]
    PlyData(elements, byte_order="<").write(str(path))


def _write_off(path: Path, mesh: trimesh.Trimesh, uv: np.ndarray | None) -> None:
    """Plain OFF, without normals: meshio reads only an `OFF` header (not NOFF) and trimesh skips normal columns."""
    with open(path, "w", encoding="ascii") as f:
        f.write(f"OFF\n{len(mesh.vertices)} {len(mesh.faces)} 0\n")
        f.write("".join("%.17g %.17g %.17g\n" % tuple(v) for v in np.asarray(mesh.vertices).tolist()))
        f.write("".join("3 %d %d %d\n" % tuple(face) for face in np.asarray(mesh.faces).tolist()))


def _trimesh_writer(file_type: str) -> Callable[[Path, trimesh.Trimesh, np.ndarray | None], None]:
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


def _write_pcd(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
    write_pcd(path, records, ascii=ascii)  # codec in pcflow/pcd.py


_register((".ply",), _Format("PLY", read_cloud=_read_ply, write_cloud=_write_ply, read_mesh=True,
                             write_mesh=_write_ply_mesh))
_register((".pcd",), _Format("PCD", read_cloud=read_pcd, write_cloud=_write_pcd))
_register((".xyz", ".txt"), _Format("XYZ", read_cloud=_read_text, write_cloud=_write_xyz))
_register((".csv",), _Format("CSV", read_cloud=_read_text, write_cloud=_write_csv))
_register((".pts",), _Format("PTS", read_cloud=_read_text))
_register((".las",), _Format("LAS", read_cloud=_read_las, write_cloud=_las_writer(compress=False)))
_register((".laz",), _Format("LAS", read_cloud=_read_las, write_cloud=_las_writer(compress=True)))
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
    laspy = _laspy(path)
    try:
        with laspy.open(str(path)) as reader:
            for points in reader.chunk_iterator(chunk_size):
                yield _las_records(points)
    except laspy.errors.LaspyException as e:
        raise _las_error(path, e) from e


#: Chunked readers by format name; formats not listed are read whole and then cut.
_CHUNK_READERS: dict[str, Callable[[Path, int], Iterator[np.ndarray]]] = {
    "PLY": _ply_chunks, "PCD": _pcd_chunks, "XYZ": _text_chunks, "CSV": _text_chunks, "PTS": _text_chunks,
    "LAS": _las_chunks,
}


class CloudWriter:
    """Writes a cloud chunk by chunk into PLY, PCD, XYZ/TXT, CSV or LAS/LAZ, atomically, with the fields
    `write_cloud` keeps.

    Nothing appears at `path` until the writer closes without error; the header's point count is patched in at the
    end (a padded comment line keeps the header's length fixed; laspy updates a LAS header). Use it as a context
    manager. LAS/LAZ output takes the header of the first chunk's `las_header` when it has one (see `write_cloud`).

    Args:
        path: a file with a suffix from `CLOUD_WRITE_SUFFIXES`.
        ascii: text PLY/PCD instead of binary (little endian).
        inputs: paths that must not be overwritten.
        bounds: (low, high) coordinates of the whole cloud, each of 3 values, from which LAS/LAZ output without a
            source header takes its scales and offsets; None takes the first chunk's, and a later chunk beyond
            what they can store raises `ChunkLayoutError`.

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

    def __init__(self, path, *, ascii: bool = False, inputs=(), bounds=None):
        self.path = Path(path)
        self._fmt = _format_for(path, "write_cloud", "write point clouds to")
        self._ascii = ascii
        self._bounds = bounds
        self._las = None
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
        records = _records_of(cloud, wide_ints=self._fmt.name in _WIDE_INT_FORMATS)
        if self._fmt.name == "PLY":
            records = _ply_records(records)
        elif self._fmt.name == "LAS":
            if self._las is None:
                self._las = _LasStream(self._file, records, compress=self.path.suffix.lower() == ".laz",
                                       template=cloud.las_header, bounds=self._bounds, where=str(self.path))
            self._las.write(records)
            self.count += len(records)
            return
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
        if self._dtype is None and self._las is None:
            self.write(PointCloud(np.zeros((0, 3))))
        if self._las is not None:
            self._las.close()
            self._stack.close()
            return
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
        else:
            return _text_header(names, "," if self._fmt.name == "CSV" else " ").encode("utf-8")
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
