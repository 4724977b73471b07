"""Atomic output: a file appears at its path complete or not at all, and never over an input."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pcflow.errors import PcflowError


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
