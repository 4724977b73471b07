"""PLY point clouds (plyfile): whole-file and chunked reading, writing, and the header of streamed output."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np

from pcflow.errors import PcflowError

from .base import HeaderStream, counted_blocks, cut, format_rows, little_endian, one_line
from .records import colors_of, native

#: PLY scalar type names (both spellings) -> numpy type codes.
PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
             "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
             "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
#: numpy type codes -> the PLY type name written (the original spelling).
_PLY_NAMES = {}
for _name, _code in PLY_TYPES.items():
    _PLY_NAMES.setdefault(_code, _name)


def load_ply(path: Path):
    """The parsed PLY file (binary elements memory-mapped), or a PcflowError; it must have a vertex element."""
    from plyfile import PlyData, PlyParseError

    _check_sizes(path)
    try:
        ply = PlyData.read(str(path))  # memory-mapped: a header that lies about its counts fails without allocating
    except (PlyParseError, ValueError, OverflowError, OSError) as e:  # what plyfile raises on damaged files
        raise PcflowError(f"{path}: corrupt or truncated PLY file: {one_line(e)}") from e
    except MemoryError as e:
        raise PcflowError(f"{path}: corrupt or truncated PLY file: the header declares more data than fits") from e
    names = [element.name for element in ply.elements]
    if "vertex" not in names:
        raise PcflowError(f"{path}: PLY file has no vertex element (elements: {', '.join(names) or 'none'})")
    return ply


def _check_sizes(path: Path) -> None:
    """Raises a PcflowError when the header declares more element rows than the bytes after it can hold.

    Checked before plyfile reads the file, which sizes its ASCII arrays by the declared counts. A row takes at least
    its scalars' (and list lengths') bytes in binary and two characters a value in ASCII. Headers that cannot be
    parsed here are left to plyfile's own errors.
    """
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    end = head.find(b"end_header")
    stop = head.find(b"\n", end)
    if end < 0 or stop < 0:
        return
    lines = [line.split() for line in head[:end].decode("ascii", errors="replace").splitlines()]
    if len(lines) < 2 or lines[1][:1] != ["format"] or len(lines[1]) < 2:
        return
    ascii = lines[1][1] == "ascii"
    elements = []  # [name, count, least bytes of a row]
    for words in lines[2:]:
        if words[:1] == ["element"]:  # a count that is not a number is plyfile's to report
            elements.append([" ".join(words[1:2]), int(words[2]) if len(words) == 3 and words[2].isdigit() else 0, 0])
        elif words[:1] == ["property"] and elements:
            kind = words[2] if words[1:2] == ["list"] and len(words) > 2 else words[1] if len(words) > 1 else ""
            elements[-1][2] += 2 if ascii else np.dtype(PLY_TYPES.get(kind, "u1")).itemsize
    available = path.stat().st_size - stop - 1
    need = 0
    for name, count, row in elements:
        need += count * row
        if need > available:
            raise PcflowError(f"{path}: corrupt or truncated PLY file: the header declares {count} {name} rows (at "
                              f"least {need} bytes in all), the file holds {available} bytes after its header")


def read_ply(path: Path) -> tuple[np.ndarray, dict]:
    """Every vertex property of a PLY file (native byte order, list properties left out) and its info."""
    ply = load_ply(path)
    names = [element.name for element in ply.elements]
    n_faces = ply["face"].count if "face" in names else 0
    text = "ascii" if ply.text else "binary"
    return native(ply["vertex"].data), {"format": f"PLY {text}", "n_faces": n_faces}


def ply_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    """The vertices of a PLY file in chunks: ASCII vertex rows parsed chunk by chunk, binary ones memory-mapped."""
    with open(path, "rb") as f:
        header = _ascii_ply_vertex_header(f)
        if header is None:  # binary (plyfile memory-maps it) or an ASCII layout read whole
            yield from map(native, cut(load_ply(path)["vertex"].data, chunk_size))
            return
        dtype, count = header
        blocks = counted_blocks(io.TextIOWrapper(f, encoding="ascii"), count, chunk_size, lambda present: PcflowError(
            f"{path}: corrupt or truncated PLY file: {count} vertices declared, {present} present"))
        done = 0
        while True:
            try:
                lines = next(blocks)
                chunk = np.loadtxt(lines, dtype=dtype, ndmin=1, comments=None) if lines else np.empty(0, dtype)
            except StopIteration:
                return
            except PcflowError:
                raise
            except ValueError as e:  # a row that is not numbers of the declared types, or not ASCII
                raise PcflowError(f"{path}: corrupt or unreadable PLY file: {one_line(e)}") from e
            if len(chunk) != len(lines):
                raise PcflowError(f"{path}: corrupt PLY file: blank or broken vertex lines near row {done + 1}")
            done += len(lines)
            yield native(chunk)


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
        if len(words) != 3 or words[0] != "property" or words[1] not in PLY_TYPES:
            return None
        fields.append((words[2], PLY_TYPES[words[1]]))
    try:
        return np.dtype(fields), int(lines[elements[0]][2])
    except (TypeError, ValueError):
        return None


def ply_records(records: np.ndarray) -> np.ndarray:
    """The records a PLY file stores: a packed PCD rgb/rgba also gets red/green/blue uchar for PLY viewers."""
    names = records.dtype.names
    if {"rgb", "rgba"} & set(names) and not {"red", "green", "blue"} & set(names):
        colors = colors_of(records)
        extended = np.empty(len(records), dtype=records.dtype.descr + [(c, "u1") for c in ("red", "green", "blue")])
        for name in names:
            extended[name] = records[name]
        for k, name in enumerate(("red", "green", "blue")):
            extended[name] = colors[:, k]
        records = extended
    return records


def write_ply(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
    """PLY vertex element of all fields (see `ply_records`); `las_header` is not used."""
    from plyfile import PlyData, PlyElement

    PlyData([PlyElement.describe(ply_records(records), "vertex")], text=ascii, byte_order="<").write(str(path))


def ply_header(dtype: np.dtype, count: int, pad: int, *, ascii: bool, more: tuple[str, ...] = ()) -> bytes:
    """The header of a PLY file of `count` vertices laid out as `dtype` (streamed: with `pad` spare bytes in its
    comment line), then the header lines `more` of the elements after the vertices."""
    lines = ["ply", f"format {'ascii' if ascii else 'binary_little_endian'} 1.0",
             "comment written by pcflow" + " " * pad, f"element vertex {count}"]
    lines += [f"property {_PLY_NAMES[dtype[name].str[1:]]} {name}" for name in dtype.names]
    lines += [*more, "end_header"]
    return ("\n".join(lines) + "\n").encode("ascii")


def ply_body(records: np.ndarray, *, ascii: bool) -> bytes:
    """Vertex rows: little-endian binary, or text with floats to 17 significant digits."""
    if not ascii:
        return little_endian(records)
    columns = [records[name] for name in records.dtype.names]
    formats = ["%.17g" if column.dtype.kind == "f" else "%d" for column in columns]
    return format_rows(columns, formats, " ").encode("ascii")


def ply_stream(file, records: np.ndarray, *, ascii: bool, where: str, template=None, bounds=None) -> HeaderStream:
    """A `HeaderStream` of PLY vertices laid out as `records` (after `ply_records`); `template` and `bounds`
    are not used."""
    return HeaderStream(file, ply_records(records).dtype, partial(ply_header, ascii=ascii),
                        partial(ply_body, ascii=ascii), where, prepare=ply_records)
