"""What every format module shares: file checks, one-line messages, row cutting and the header-patching stream."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pcflow.errors import PcflowError


class ChunkLayoutError(PcflowError):
    """A later chunk of a streamed cloud needs other field dtypes than the first chunk fixed.

    Text colour columns are uint8 only when every value is a byte, and 64-bit integer fields are narrowed from their
    range; a stream that decided from its first chunk raises this, and callers fall back to whole-file reading.
    """


def existing_file(path) -> Path:
    """`path` as a Path, or a PcflowError when it is missing, not a file, or empty."""
    path = Path(path)
    if not path.exists():
        raise PcflowError(f"{path}: no such file")
    if not path.is_file():
        raise PcflowError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise PcflowError(f"{path}: empty file")
    return path


def one_line(error: BaseException) -> str:
    """The error's message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def cut(records: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of at most `chunk_size` rows; one empty slice for no rows."""
    for start in range(0, max(len(records), 1), chunk_size):
        yield records[start:start + chunk_size]


def counted_blocks(items: Iterator, count: int, chunk_size: int,
                   short: Callable[[int], PcflowError]) -> Iterator[list]:
    """The first `count` of `items` in lists of at most `chunk_size` (one empty list when `count` is 0).

    Raises:
        PcflowError: `short(n_present)` when `items` ends before `count`.
    """
    done = 0
    while done < count or done == 0:
        take = min(chunk_size, count - done)
        block = list(itertools.islice(items, take))
        if len(block) < take:
            raise short(done + len(block))
        done += take
        yield block
        if count == 0:
            return


def format_rows(columns: list[np.ndarray], formats: list[str], delimiter: str) -> str:
    """Text rows of equal-length columns, each value formatted with its column's %-format."""
    line = delimiter.join(formats) + "\n"
    return "".join(line % row for row in zip(*(column.tolist() for column in columns)))


def little_endian(records: np.ndarray) -> bytes:
    """The rows as packed little-endian binary."""
    little = np.dtype([(name, records.dtype[name].newbyteorder("<")) for name in records.dtype.names])
    return records.astype(little).tobytes()


class HeaderStream:
    """Writes a header, then bodies chunk by chunk; `close` writes the header again with the final count.

    The first header is written with `PAD` spare bytes (a padded comment line, say) so that the final one, padded
    to the same length, fits in its place.

    Args:
        file: the open binary file, at its start.
        dtype: the records' dtype, fixed by the first chunk.
        header: (dtype, count, pad) -> the header bytes with `pad` spare bytes.
        body: records -> their bytes.
        where: the output, for error messages.
        prepare: records -> the records the format stores (applied to every chunk first).
    """

    PAD = 48  # spare header bytes: room for two counts of up to 20 digits

    def __init__(self, file, dtype: np.dtype, header: Callable[[np.dtype, int, int], bytes],
                 body: Callable[[np.ndarray], bytes], where: str, prepare: Callable[[np.ndarray], np.ndarray] = None):
        self._file, self._dtype, self._header, self._body, self._where = file, dtype, header, body, where
        self._prepare = prepare or (lambda records: records)
        self.count = 0
        first = header(dtype, 0, self.PAD)
        self._size = len(first)
        file.write(first)

    def write(self, records: np.ndarray) -> None:
        """Appends the rows; they must have the first chunk's dtype."""
        records = self._prepare(records)
        if records.dtype != self._dtype:
            raise ChunkLayoutError(f"{self._where}: a later chunk has fields {records.dtype.descr}, "
                                   f"the first had {self._dtype.descr}")
        self._file.write(self._body(records))
        self.count += len(records)

    def close(self) -> None:
        """Writes the final header over the first one."""
        header = self._header(self._dtype, self.count, 0)
        if len(header) > self._size:
            raise PcflowError(f"{self._where}: header grew beyond its reserved size")
        self._file.seek(0)
        self._file.write(self._header(self._dtype, self.count, self._size - len(header)))
