"""LAS/LAZ point clouds (laspy, optional): every dimension read whole or in chunks, headers kept on writing."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pcflow.errors import PcflowError

from .base import ChunkLayoutError, existing_file, one_line
from .records import colors_of, coordinates, storable

#: Point formats of LAS 1.4 a cloud from another format is written in: without and with RGB.
_LAS_POINT_FORMATS = (6, 7)
#: Points a compressed file is decompressed at a time when read whole.
_LAZ_PIECE = 1 << 16


def _laspy(path):
    try:
        import laspy
    except ImportError as e:
        raise PcflowError(f'{path}: LAS/LAZ needs laspy; install it with: pip install "pcflow[las]"') from e
    return laspy


def _las_error(path, error: Exception) -> PcflowError:
    hint = ' (LAZ needs lazrs: pip install "pcflow[las]")' if Path(path).suffix.lower() == ".laz" else ""
    if hint and _sequential_backend(_laspy(path)) is not None:  # lazrs is there: the file is damaged
        hint = ""
    return PcflowError(f"{path}: cannot read LAS/LAZ file: {one_line(error)}{hint}")


@contextmanager
def _las_reader(path):
    """laspy's reader of a LAS/LAZ file; laspy's errors, also those of reading through it, become PcflowErrors."""
    laspy = _laspy(path)
    try:
        _check_layout(Path(path))
        with laspy.open(str(path), laz_backend=_sequential_backend(laspy)) as reader:
            yield reader
    except PcflowError:
        raise
    except _las_errors(laspy) as e:
        raise _las_error(path, e) from e


def _sequential_backend(laspy):
    """lazrs's one-thread decompressor (laspy's default otherwise): the parallel one decodes whole chunks of the
    VLR's chunk size, so a damaged chunk size made it work for minutes on a file of 40 points; on 1M points both
    took 0.7 s on the 2-core test machine."""
    try:
        import lazrs  # noqa: F401
    except ImportError:
        return None
    return laspy.LazBackend.Lazrs


def _check_layout(path: Path) -> None:
    """Raises a PcflowError when the header declares more than the file can hold: VLRs, EVLRs, points (LAS), or
    LAZ chunks (more than the bytes before the chunk table, or more points than the chunks hold).

    Checked before laspy opens the file: it sizes its buffers by the declared point count, and lazrs reserves the
    chunk table by the declared number of chunks (aborting the process when that fails). A file too short for a
    LAS header is left to laspy's own errors.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(375)
        if len(head) < 227 or head[:4] != b"LASF":
            return
        minor, (header_size,), (offset, n_vlrs) = head[25], _unpack("<H", head, 94), _unpack("<II", head, 96)
        compressed, (record,), (count,) = head[104] & 0xC0, _unpack("<H", head, 105), _unpack("<I", head, 107)
        start_evlr = n_evlrs = 0
        if minor >= 4 and header_size >= 375 and len(head) == 375:
            (start_evlr, n_evlrs), (wide,) = _unpack("<QI", head, 235), _unpack("<Q", head, 247)
            count = wide or count

        def fail(what: str) -> PcflowError:
            return PcflowError(f"{path}: cannot read LAS/LAZ file: corrupt or truncated: {what}")

        if not header_size <= offset <= size:
            raise fail(f"the point data offset {offset} lies outside the header ({header_size} bytes) or the file "
                       f"({size} bytes)")
        if n_vlrs * 54 > offset - header_size:
            raise fail(f"{n_vlrs} VLRs declared in {offset - header_size} bytes")
        if n_evlrs and not offset <= start_evlr <= size - 60 * n_evlrs:
            raise fail(f"{n_evlrs} EVLRs declared from byte {start_evlr} of a file of {size} bytes")
        if not compressed:
            if count * record > size - offset:
                raise fail(f"the header declares {count} points of {record} bytes, the file holds {size - offset} "
                           "bytes of point data")
            return
        laszip = _laszip_record(f, header_size, n_vlrs, offset)
        f.seek(offset)
        (table,) = _unpack("<q", f.read(8), 0)
        if table == -1:  # written to a stream: the offset is in the file's last 8 bytes
            f.seek(size - 8)
            (table,) = _unpack("<q", f.read(8), 0)
        if not offset + 8 <= table <= size - 8:
            raise fail(f"the LAZ chunk table offset {table} lies outside the point data")
        f.seek(table)
        (_, n_chunks) = _unpack("<II", f.read(8), 0)
        if n_chunks > table - offset or (count and not n_chunks):
            raise fail(f"{n_chunks} LAZ chunks declared in {table - offset} bytes")
        try:
            import lazrs
        except ImportError:  # laspy says what to install
            return
        if laszip is None:
            return
        (compressor,) = _unpack("<H", laszip, 0)
        if compressor not in (2, 3):  # what LASzip 2 and later write; lazrs misreads a chunk-less file as chunks
            raise fail(f"LAZ compressor {compressor}; pcflow reads the chunked ones (2 and 3) that LASzip 2 and "
                       "later write")
        f.seek(offset)
        chunks = lazrs.read_chunk_table(f, lazrs.LazVlr(laszip))  # (points, bytes) per chunk
        if sum(size for _, size in chunks) > table - offset - 8:
            raise fail(f"the LAZ chunk table declares {sum(size for _, size in chunks)} bytes of chunks in "
                       f"{table - offset - 8}")
        if count > sum(points for points, _ in chunks):
            raise fail(f"the header declares {count} points, its LAZ chunks hold at most "
                       f"{sum(points for points, _ in chunks)}")
        held = _check_layers(f, laszip, record, offset + 8, chunks, fail)
        if held is not None and count > held:
            raise fail(f"the header declares {count} points, its LAZ chunks hold {held}")


#: Layers per LAZ item type of the layered compression of point formats 6 to 10: point14, rgb14, rgbnir14,
#: wavepacket14 (the byte14 item has one per byte).
_LAYERS = {10: 9, 11: 1, 12: 2, 13: 1}


def _check_layers(f, laszip: bytes, record: int, start: int, chunks, fail) -> int | None:
    """Checks each chunk's layer sizes (layered LAZ, point formats 6 to 10) against the chunk's bytes; returns the
    number of points the chunks hold (None for other point formats, whose chunks do not say).

    lazrs reads each layer by its declared size before decoding it: a corrupt size makes it allocate and fill
    gigabytes (seconds of work) before it fails.
    """
    (n_items,) = _unpack("<H", laszip, 32)
    items = [_unpack("<HHH", laszip, 34 + 6 * k) for k in range(n_items)]
    if not any(kind in _LAYERS for kind, _, _ in items):
        return None
    n_layers = sum(_LAYERS.get(kind, size if kind == 14 else 0) for kind, size, _ in items)
    held = 0
    for points, size in chunks:
        f.seek(start + record)
        head = f.read(4 + 4 * n_layers)
        values = _unpack(f"<{1 + n_layers}I", head, 0)
        if values[0] > points or 4 * len(values) + record + sum(values[1:]) > size:
            raise fail(f"a LAZ chunk at byte {start} declares layers of {sum(values[1:])} bytes in {size}")
        start += size
        held += values[0]
    return held


def _unpack(layout: str, data: bytes, at: int) -> tuple:
    """struct.unpack_from that reads zeros past the end of `data` (the checks that follow then fail)."""
    import struct

    need = at + struct.calcsize(layout)
    return struct.unpack_from(layout, data.ljust(need, b"\0"), at)


def _laszip_record(f, at: int, n_vlrs: int, end: int) -> bytes | None:
    """The data of the LASzip VLR among the `n_vlrs` VLRs from byte `at` (before `end`), else None."""
    for _ in range(n_vlrs):
        f.seek(at)
        vlr = f.read(54)
        if len(vlr) < 54 or at + 54 > end:
            return None
        (record_id, length) = _unpack("<HH", vlr, 18)
        if vlr[2:18].rstrip(b"\0") == b"laszip encoded" and record_id == 22204:
            return f.read(length)
        at += 54 + length
    return None


def _las_errors(laspy) -> tuple[type[Exception], ...]:
    """What laspy (and lazrs, for LAZ) raise on damaged files: laspy's own errors, ValueError (from numpy buffers
    and VLR lookups, UnicodeDecodeError of VLR text included), lazrs's LazrsError (a RuntimeError), OSError, and
    struct.error (a header cut short)."""
    import struct

    try:
        from lazrs import LazrsError
    except ImportError:
        return laspy.errors.LaspyException, ValueError, OSError, struct.error
    return laspy.errors.LaspyException, LazrsError, ValueError, OSError, struct.error


def read_las(path: Path) -> tuple[np.ndarray, dict]:
    """Every dimension of a LAS/LAZ file (`_las_records`) and its info, with the header (VLRs, EVLRs) for writing."""
    with _las_reader(path) as reader:
        if reader.header.are_points_compressed:
            # in bounded pieces: a LAZ file's point count is only checked against what its chunks declare
            pieces = [_las_records(chunk) for chunk in reader.chunk_iterator(_LAZ_PIECE)]
            records = np.concatenate(pieces) if pieces else _las_records(reader.read().points)
            header = reader.header
        else:
            las = reader.read()
            records, header = _las_records(las.points), las.header
    return records, {"format": f"LAS {header.version}", "las_header": header}


def las_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    """The points of a LAS/LAZ file in chunks (laspy's chunk iterator), as `read_las` gives them."""
    with _las_reader(path) as reader:
        for points in reader.chunk_iterator(chunk_size):
            yield _las_records(points)


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
    with _las_reader(existing_file(path)) as reader:
        return reader.header


def las_scaling(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    coords, points = coordinates(records, where)
    if points.shape[1] != 3:
        raise PcflowError(f"{where}: needs 3-D points, got {points.shape[1]} coordinates per point")
    if template is not None:
        header, colours = copy.deepcopy(template), False
    else:
        colours = colors_of(records) is not None
        header = laspy.LasHeader(point_format=_LAS_POINT_FORMATS[colours], version="1.4")
        if bounds is None:
            finite = np.isfinite(points).all(axis=1)
            bounds = (points[finite].min(axis=0), points[finite].max(axis=0)) if finite.any() else (np.zeros(3),) * 2
        header.scales, header.offsets = las_scaling(*bounds)
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
        extra.append(laspy.ExtraBytesParams(name=extra_name, type=storable(records[name], wide_ints=True)))
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
        return colors_of(records).astype(np.uint16) * 257
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


def las_writer(compress: bool) -> Callable[..., None]:
    """The writer of LAS (or, with `compress`, LAZ) files."""
    def write(path: Path, records: np.ndarray, *, ascii: bool = False, las_header=None) -> None:
        """LAS (or LAZ) of every field; see `_las_layout` for the header and where each field goes."""
        with open(path, "wb") as f:
            stream = _LasStream(f, records, compress=compress, template=las_header, bounds=None, where="LAS/LAZ output")
            stream.write(records)
            stream.close()

    return write


def las_stream(compress: bool) -> Callable[..., _LasStream]:
    """The streamed counterpart of `las_writer(compress)`: the first chunk's records, `template` (a source's
    `laspy.LasHeader`) and `bounds` fix the layout (see `_las_layout`)."""
    def stream(file, records: np.ndarray, *, ascii: bool, where: str, template=None, bounds=None) -> _LasStream:
        return _LasStream(file, records, compress=compress, template=template, bounds=bounds, where=where)

    return stream
