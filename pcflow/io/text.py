"""Text clouds: XYZ/TXT (space separated), CSV and PTS columns, read whole or in chunks, written with a header."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from pcflow.errors import PcflowError

from .base import ChunkLayoutError, HeaderStream, format_rows, one_line
from .records import safe_name

_PTS_NAMES = {4: ("intensity",), 6: ("red", "green", "blue"), 7: ("intensity", "red", "green", "blue")}


def read_text(path: Path) -> tuple[np.ndarray, dict]:
    """Every column of a text cloud, as `text_chunks` reads them in one chunk, and its info."""
    (records,) = text_chunks(path, sys.maxsize)
    return records, {"format": path.suffix.lower().lstrip(".").upper()}


def text_chunks(path: Path, chunk_size: int) -> Iterator[np.ndarray]:
    """The numeric rows of a text cloud in chunks, from the first row of 2 or more numbers on.

    Columns are named by the line before that row when it names x and y (a `# x y z ...` or CSV header line),
    else x, y, z, then PTS's intensity/colour columns or f3, f4, ...; colour columns whose values are all bytes
    are uint8, every other column float64. A colour column of bytes in the first chunk that holds other values
    later raises `ChunkLayoutError`.
    """
    try:
        yield from _text_chunks(path, chunk_size)
    except UnicodeDecodeError as e:
        raise PcflowError(f"{path}: not a text file (undecodable bytes)") from e


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
                raise PcflowError(f"{path}: non-numeric text in the data rows ({one_line(e)})") from e
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


def _numeric_row(line: str) -> int:
    """Number of columns of a numeric row, 0 when the line is not numeric."""
    tokens = line.split("," if "," in line else ";" if ";" in line else None)
    try:
        [float(token) for token in tokens]
    except ValueError:
        return 0
    return len(tokens)


def _column_names(header: str, width: int, suffix: str) -> list[str]:
    tokens = [safe_name(t.lower()) for t in re.split(r"[,;\s]+", header.lstrip("#/ ").strip()) if t]
    if len(tokens) == width and len(set(tokens)) == width and {"x", "y"} <= set(tokens):
        return tokens
    names = ["x", "y", "z"][:width]
    extra = _PTS_NAMES.get(width, ()) if suffix == ".pts" else ()
    return names + (list(extra) if extra else [f"f{k}" for k in range(3, width)])


def _text_dtype(name: str, values: np.ndarray) -> np.dtype:
    is_byte = np.isin(values, np.arange(256)).all()
    is_colour = name in ("red", "green", "blue", "r", "g", "b")
    return np.dtype(np.uint8) if is_colour and is_byte else np.dtype(np.float64)


def text_header(names: tuple[str, ...], delimiter: str) -> str:
    """The line naming the columns of a text cloud: always for CSV, for XYZ/TXT only beyond the coordinates
    (the readers here, CloudCompare and PDAL's readers.text take the names from it)."""
    if delimiter == ",":
        return ",".join(names) + "\n"
    return "" if names in (("x", "y", "z"), ("x", "y")) else "# " + " ".join(names) + "\n"


def text_rows(records: np.ndarray, delimiter: str) -> str:
    """The rows of a text cloud: integers as integers, floats with 17 significant digits."""
    columns = [records[name] for name in records.dtype.names]
    return format_rows(columns, ["%.17g" if column.dtype.kind == "f" else "%d" for column in columns], delimiter)


def text_writer(delimiter: str):
    """The writer of text clouds with `delimiter` between columns (" " for XYZ/TXT, "," for CSV)."""
    def write(path: Path, records: np.ndarray, *, ascii: bool = True, las_header=None) -> None:
        """Columns with a `text_header` line first; `ascii` and `las_header` are not used."""
        with open(path, "wb") as f:
            f.write(text_header(records.dtype.names, delimiter).encode("utf-8"))
            f.write(text_rows(records, delimiter).encode("ascii"))

    return write


def text_stream(delimiter: str):
    """The streamed counterpart of `text_writer(delimiter)`: its header holds no count and needs no padding."""
    def stream(file, records: np.ndarray, *, ascii: bool, where: str, template=None, bounds=None) -> HeaderStream:
        return HeaderStream(file, records.dtype, lambda dtype, count, pad: text_header(dtype.names, delimiter)
                            .encode("utf-8"), lambda chunk: text_rows(chunk, delimiter).encode("ascii"), where)

    return stream
