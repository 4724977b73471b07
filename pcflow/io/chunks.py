"""Chunked reading of clouds larger than memory should hold, through each format's chunk reader."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from pcflow.errors import PcflowError

from .base import cut, existing_file, one_line
from .registry import format_for, read_records


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
    fmt = format_for(path, "read_cloud", "read point clouds from")
    path = existing_file(path)
    if fmt.read_chunks is None:
        yield from cut(read_records(path)[0], chunk_size)
        return
    chunks = fmt.read_chunks(path, chunk_size)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except OSError as e:  # the chunk readers turn damaged content into PcflowErrors; this is the file system
            raise PcflowError(f"{path}: corrupt or unreadable {fmt.name} file: {one_line(e)}") from e
        yield chunk
