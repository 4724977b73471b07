"""PCD (Point Cloud Library) files: ASCII, binary and binary_compressed (LZF) bodies, whole or in chunks."""

from __future__ import annotations

import struct
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np

from pcflow.errors import PcflowError

from .base import HeaderStream, counted_blocks, cut, format_rows, little_endian

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
          ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8"}
_HEADER_KEYS = ("VERSION", "FIELDS", "COLUMNS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS")
_MAX_HEADER_LINES = 64
_MAX_COUNT = 2 ** 31 - 1  # bytes per point: numpy's limit for the dtype of a row


def lzf_decompress(data: bytes, size: int) -> bytes:
    """Decompresses an LZF stream (the liblzf format PCL uses) that expands to exactly `size` bytes.

    Kept in pure Python: python-lzf 0.2.6 decodes the PCL mug scan 50x faster (5.6 vs 288 ms) but ships no wheels.

    Args:
        data: the compressed bytes.
        size: the expected length of the output.

    Returns:
        The `size` decompressed bytes.

    Raises:
        ValueError: the stream is truncated, refers back before its start or expands to another length.

    Example:
        >>> lzf_decompress(bytes([2]) + b"abc" + bytes([0x40, 2]), 7)  # literal "abc", then copy 4 from 3 back
        b'abcabca'
    """
    src = bytes(data)
    end = len(src)
    out = bytearray()
    i = 0
    try:
        while i < end:
            ctrl = src[i]
            i += 1
            if ctrl < 32:  # literal run of ctrl + 1 bytes
                stop = i + ctrl + 1
                if stop > end:
                    raise ValueError("truncated LZF literal run")
                out += src[i:stop]
                i = stop
                continue
            length = ctrl >> 5
            if length == 7:
                length += src[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - src[i] - 1
            i += 1
            length += 2
            if ref < 0:
                raise ValueError("LZF back-reference before the start of the output")
            if ref + length <= len(out):
                out += out[ref:ref + length]
            else:  # overlapping copy: repeats the last len(out) - ref bytes
                period = out[ref:]
                out += (period * (length // len(period) + 1))[:length]
            if len(out) > size:
                break
    except IndexError as e:
        raise ValueError("truncated LZF back-reference") from e
    if len(out) != size:
        raise ValueError(f"LZF data expands to {len(out)} bytes, the header says {size}")
    return bytes(out)


def _parse_header(raw: bytes, path: Path) -> tuple[dict, int]:
    """Returns the header entries (upper-case keys to lists of tokens) and the offset where the data starts."""
    header: dict[str, list[str]] = {}
    offset = 0
    for _ in range(_MAX_HEADER_LINES):
        stop = raw.find(b"\n", offset)
        if stop < 0:
            stop = len(raw)
        try:
            line = raw[offset:stop].decode("ascii").strip()
        except UnicodeDecodeError as e:
            raise PcflowError(f"{path}: corrupt PCD header (not ASCII text)") from e
        offset = stop + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        key = key.upper()
        if key == "DATA":
            header["DATA"] = [v.lower() for v in values] or ["?"]
            return header, offset
        if key not in _HEADER_KEYS:
            raise PcflowError(f"{path}: corrupt PCD header: unexpected line {line[:40]!r}")
        header["FIELDS" if key == "COLUMNS" else key] = values
    raise PcflowError(f"{path}: corrupt PCD header: no DATA line")


def _read_header(raw: bytes, path: Path) -> tuple[list[tuple[str, str, int]], int, int, int, str, int]:
    """The fields (`_unique_names`), number of points, width, height, DATA kind and data offset of a PCD file
    that starts with `raw`."""
    header, offset = _parse_header(raw, path)
    fields, n, width, height = _layout(header, path)
    return _unique_names(fields), n, width, height, header["DATA"][0], offset


def _layout(header: dict, path: Path) -> tuple[list[tuple[str, str, int]], int, int, int]:
    """Returns the fields as (name, numpy type, count), the number of points, the width and the height."""
    names = header.get("FIELDS")
    if not names:
        raise PcflowError(f"{path}: corrupt PCD header: no FIELDS line")
    sizes = header.get("SIZE", ["4"] * len(names))
    types = header.get("TYPE", ["F"] * len(names))
    counts = header.get("COUNT", ["1"] * len(names))
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise PcflowError(f"{path}: corrupt PCD header: FIELDS, SIZE, TYPE and COUNT have different lengths")
    try:
        fields = [(name, _TYPES[(kind.upper(), int(size))], int(count))
                  for name, size, kind, count in zip(names, sizes, types, counts)]
        width = int(header.get("WIDTH", ["0"])[0])
        height = int(header.get("HEIGHT", ["1"])[0])
        n_points = int(header["POINTS"][0]) if "POINTS" in header else width * height
    except (KeyError, ValueError, IndexError) as e:
        raise PcflowError(f"{path}: corrupt PCD header: bad SIZE/TYPE/COUNT/WIDTH/HEIGHT/POINTS value") from e
    if width == 0:
        width = n_points
    if min(width, height, n_points) < 0 or any(count < 1 for _, _, count in fields):
        raise PcflowError(f"{path}: corrupt PCD header: negative or zero counts")
    if len({name for name, _, _ in fields if name != "_"}) < sum(name != "_" for name, _, _ in fields):
        raise PcflowError(f"{path}: corrupt PCD header: a field name occurs twice in FIELDS {' '.join(names)}")
    if sum(np.dtype(kind).itemsize * count for _, kind, count in fields) > _MAX_COUNT:
        raise PcflowError(f"{path}: corrupt PCD header: SIZE x COUNT make points of more than {_MAX_COUNT} bytes")
    if width * height != n_points:
        raise PcflowError(f"{path}: PCD header says WIDTH x HEIGHT = {width} x {height} but POINTS {n_points}")
    return fields, n_points, width, height


def _unique_names(fields: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Renames padding fields `_` to distinct private names, so that they can sit in one dtype."""
    return [(f"_pad{i}" if name == "_" else name, kind, count) for i, (name, kind, count) in enumerate(fields)]


def _flatten(records: np.ndarray, fields: list[tuple[str, str, int]]) -> np.ndarray:
    """Native-endian structured array without padding; a field with COUNT c becomes `name_0` ... `name_{c-1}`."""
    columns = []
    for name, kind, count in fields:
        if name.startswith("_pad"):
            continue
        native = np.dtype(kind).newbyteorder("=")
        values = records[name].reshape(len(records), count)
        if count == 1:
            columns.append((name, native, values[:, 0]))
        else:
            columns.extend((f"{name}_{k}", native, values[:, k]) for k in range(count))
    out = np.empty(len(records), dtype=[(name, dt) for name, dt, _ in columns])
    for name, _, values in columns:
        out[name] = values
    return out


def read_pcd(path: Path) -> tuple[np.ndarray, dict]:
    """Reads a PCD file of any DATA kind.

    Args:
        path: the file.

    Returns:
        records: (N,) structured array of every field in file order (padding `_` dropped, COUNT > 1 split into
            `name_0`, `name_1`, ...), rows in file order including NaN rows of organized clouds.
        info: `format` ("PCD ascii" / "PCD binary" / "PCD binary_compressed") and `organized`
            ((width, height) when HEIGHT > 1, else None).

    Raises:
        PcflowError: corrupt header, truncated body, or a header that declares more points than the data holds.
    """
    raw = Path(path).read_bytes()
    fields, n, width, height, kind, offset = _read_header(raw, path)
    body = raw[offset:]
    if kind == "ascii":
        records = _read_ascii(body, fields, n, path)
    elif kind == "binary":
        records = _read_binary(body, fields, n, path)
    elif kind == "binary_compressed":
        records = _read_compressed(body, fields, n, path)
    else:
        raise PcflowError(f"{path}: unknown PCD DATA kind {kind!r}; expected ascii, binary or binary_compressed")
    info = {"format": f"PCD {kind}", "organized": (width, height) if height > 1 else None}
    return _flatten(records, fields), info


def pcd_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    """The rows of a PCD file in chunks: binary memory-mapped, ascii parsed chunk by chunk, binary_compressed (one
    LZF block) read whole and then cut."""
    with open(path, "rb") as f:
        fields, n, _, _, kind, offset = _read_header(f.read(1 << 20), path)
    dtype = np.dtype([(name, kind_, (count,)) for name, kind_, count in fields])
    if kind == "binary":
        available = path.stat().st_size - offset
        if available < n * dtype.itemsize:
            raise PcflowError(f"{path}: truncated PCD binary data: header declares {n} points of {dtype.itemsize} "
                              f"bytes, the file holds {available} bytes of data")
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n,)) if n else np.empty(0, dtype)
        for chunk in cut(data, chunk_size):
            yield _flatten(np.array(chunk), fields)
        return
    if kind != "ascii":
        yield from cut(read_pcd(path)[0], chunk_size)
        return
    with open(path, "rb") as f:
        f.seek(offset)
        lines = (line for line in f if line.strip())
        for block in counted_blocks(lines, n, chunk_size, lambda present: PcflowError(
                f"{path}: PCD header declares {n} points but the data holds {present} rows")):
            records = _read_ascii(b"".join(block), fields, len(block), path) if block else np.empty(0, dtype)
            yield _flatten(records, fields)


def _read_ascii(body: bytes, fields, n: int, path: Path) -> np.ndarray:
    try:
        rows = [line.split() for line in body.decode("ascii").splitlines() if line.strip()]
    except UnicodeDecodeError as e:
        raise PcflowError(f"{path}: corrupt PCD ascii data (not ASCII text)") from e
    if len(rows) < n:
        raise PcflowError(f"{path}: PCD header declares {n} points but the data holds {len(rows)} rows")
    width = sum(count for _, _, count in fields)
    if any(len(row) != width for row in rows[:n]):
        raise PcflowError(f"{path}: PCD ascii rows do not all have the {width} values the header declares")
    try:
        values = np.array(rows[:n], dtype=np.float64).reshape(n, width)
    except ValueError as e:
        raise PcflowError(f"{path}: non-numeric value in PCD ascii data") from e
    records = np.empty(n, dtype=[(name, kind, (count,)) for name, kind, count in fields])
    column = 0
    for name, kind, count in fields:
        block = values[:, column:column + count]
        if np.dtype(kind).kind in "iu":
            block = np.nan_to_num(block)
        records[name] = block.astype(kind)
        column += count
    return records


def _read_binary(body: bytes, fields, n: int, path: Path) -> np.ndarray:
    dtype = np.dtype([(name, kind, (count,)) for name, kind, count in fields])
    if len(body) < n * dtype.itemsize:
        raise PcflowError(f"{path}: truncated PCD binary data: header declares {n} points of {dtype.itemsize} "
                          f"bytes, the file holds {len(body)} bytes of data")
    return np.frombuffer(body, dtype=dtype, count=n)


def _read_compressed(body: bytes, fields, n: int, path: Path) -> np.ndarray:
    if len(body) < 8:
        raise PcflowError(f"{path}: truncated PCD binary_compressed data (no size words)")
    compressed_size, size = struct.unpack("<II", body[:8])
    if len(body) - 8 < compressed_size:
        raise PcflowError(f"{path}: truncated PCD binary_compressed data: {compressed_size} compressed bytes "
                          f"declared, {len(body) - 8} present")
    try:
        raw = lzf_decompress(body[8:8 + compressed_size], size)
    except ValueError as e:
        raise PcflowError(f"{path}: corrupt PCD binary_compressed data: {e}") from e
    stored = [(name, kind, count) for name, kind, count in fields if not name.startswith("_pad")]
    needed = n * sum(np.dtype(kind).itemsize * count for _, kind, count in stored)
    if len(raw) < needed:
        raise PcflowError(f"{path}: PCD header declares {n} points ({needed} bytes) but the compressed data "
                          f"holds {len(raw)} bytes")
    records = np.zeros(n, dtype=[(name, kind, (count,)) for name, kind, count in fields])
    start = 0
    for name, kind, count in stored:  # fields are stored one after the other (xx..yy..zz..)
        nbytes = n * np.dtype(kind).itemsize * count
        records[name] = np.frombuffer(raw, dtype=kind, count=n * count, offset=start).reshape(n, count)
        start += nbytes
    return records


def pcd_header(dtype: np.dtype, count: int, pad: int = 0, *, ascii: bool) -> bytes:
    """The header of an unorganized PCD file of `count` points, with `pad` spare bytes in its first comment.

    A float `rgb`/`rgba` field gets TYPE U in ASCII (written as the unsigned integer of its bits, as PCL does).
    """
    names = dtype.names
    kinds = [dtype[name] for name in names]
    letters = [_letter(name, kind, ascii) for name, kind in zip(names, kinds)]
    lines = ["# .PCD v0.7 - Point Cloud Data file format" + " " * pad, "VERSION 0.7",
             "FIELDS " + " ".join(names), "SIZE " + " ".join(str(dt.itemsize) for dt in kinds),
             "TYPE " + " ".join(letters), "COUNT " + " ".join("1" for _ in names), f"WIDTH {count}",
             "HEIGHT 1", "VIEWPOINT 0 0 0 1 0 0 0", f"POINTS {count}", f"DATA {'ascii' if ascii else 'binary'}"]
    return ("\n".join(lines) + "\n").encode("ascii")


def _letter(name: str, kind: np.dtype, ascii: bool) -> str:
    """The PCD TYPE letter of a field: F, U or I (U for a float rgb/rgba written as text)."""
    if ascii and name in ("rgb", "rgba") and kind == np.float32:
        return "U"
    return "F" if kind.kind == "f" else "U" if kind.kind in "ub" else "I"


def pcd_body(records: np.ndarray, *, ascii: bool) -> bytes:
    """Rows as little-endian binary or as text: float32 to 9 significant digits, float64 to 17, a float rgb/rgba
    as the integer of its bits."""
    if not ascii:
        return little_endian(records)
    names = records.dtype.names
    columns, formats = [], []
    for name in names:
        column = records[name]
        letter = _letter(name, column.dtype, ascii)
        if letter == "U" and column.dtype.kind == "f":
            column = np.ascontiguousarray(column).view(np.uint32)
        columns.append(column)
        formats.append("%d" if letter != "F" else "%.9g" if column.dtype.itemsize == 4 else "%.17g")
    return format_rows(columns, formats, " ").encode("ascii")


def write_pcd(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
    """Writes a structured array as an unorganized PCD file (DATA ascii or binary).

    Args:
        path: the file to write.
        records: (N,) structured array of numeric fields of 1, 2, 4 or 8 bytes, no sub-arrays.
        ascii: write `DATA ascii` instead of `DATA binary` (see `pcd_header` and `pcd_body`).
        las_header: not used (the writers of the suffix table share one signature).
    """
    with open(path, "wb") as f:
        f.write(pcd_header(records.dtype, len(records), ascii=ascii))
        f.write(pcd_body(records, ascii=ascii))


def pcd_stream(file, records: np.ndarray, *, ascii: bool, where: str, template=None, bounds=None) -> HeaderStream:
    """A `HeaderStream` of PCD rows laid out as `records`; `template` and `bounds` are not used."""
    return HeaderStream(file, records.dtype, partial(pcd_header, ascii=ascii), partial(pcd_body, ascii=ascii), where)
