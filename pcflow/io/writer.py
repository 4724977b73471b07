"""Streamed output: a cloud written chunk by chunk through its format's stream, atomically."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .atomic import atomic_output, write_error
from .cloud import PointCloud
from .records import records_of
from .registry import format_for


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
        >>> import tempfile; from pcflow.io import read_cloud; folder = Path(tempfile.mkdtemp())
        >>> with CloudWriter(folder / "a.ply") as writer:
        ...     writer.write(PointCloud(np.zeros((2, 3))))
        ...     writer.write(PointCloud(np.ones((1, 3))))
        >>> read_cloud(folder / "a.ply").points.tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
        >>> import shutil; shutil.rmtree(folder)
    """

    def __init__(self, path, *, ascii: bool = False, inputs=(), bounds=None):
        self.path = Path(path)
        self._fmt = format_for(path, "stream", "write point clouds to")
        self._ascii = ascii
        self._bounds = bounds
        self._stream = None
        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_output(path, inputs=inputs))
        self._file = self._stack.enter_context(open(tmp, "wb"))
        self.count = 0

    def __enter__(self) -> CloudWriter:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None:
            self.close()
            return False
        return bool(self._stack.__exit__(kind, error, traceback))

    def write(self, cloud: PointCloud) -> None:
        """Appends the rows of `cloud`; every chunk must give the same fields and dtypes as the first.

        Raises:
            PcflowError: the write failed (``cannot write PATH: No space left on device``), named here, since other
                writers open at the same time see the error pass too.
        """
        records = records_of(cloud, wide_ints=self._fmt.wide_ints)
        try:
            if self._stream is None:
                self._stream = self._fmt.stream(self._file, records, ascii=self._ascii, where=str(self.path),
                                                template=cloud.las_header, bounds=self._bounds)
            self._stream.write(records)
        except OSError as error:
            raise write_error(self.path, error) from None
        self.count += len(records)

    def close(self) -> None:
        """Writes the final header and moves the file into place (on an error: removes the temporary file)."""
        with self._stack:
            if self._stream is None:
                self.write(PointCloud(np.zeros((0, 3))))
            try:
                self._stream.close()
            except OSError as error:
                raise write_error(self.path, error) from None
