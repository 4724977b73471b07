"""Atomic output: a file appears at its path complete or not at all, and never over an input; a lock per job."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pcflow.errors import PcflowError

#: The lock file `output_lock` holds in an output folder while a job writes there.
LOCK_NAME = ".pcflow.lock"
#: Errors of a write whatever file they name: a full device, a quota, a size limit, a read-only file system.
_WRITE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def temporary_name(path) -> re.Pattern:
    """The pattern of the temporary files `atomic_output` writes for `path`: ``.NAME.XXXXXXXX.tmp`` beside it.

    Example:
        >>> bool(temporary_name("out/inliers.ply").fullmatch(".inliers.ply.k2_8xq0a.tmp"))
        True
    """
    return re.compile(rf"\.{re.escape(Path(path).name)}\.[a-z0-9_]{{8}}\.tmp")


def write_error(path, error: OSError) -> PcflowError:
    """The one-line error of a failed write of `path`: ``cannot write PATH: No space left on device``."""
    return PcflowError(f"cannot write {path}: {error.strerror or error}")


@contextmanager
def atomic_output(path, *, inputs=()) -> Iterator[Path]:
    """Yields a temporary path next to `path`, moved onto `path` only when the body finishes without error.

    The temporary file is named ``.NAME.XXXXXXXX.tmp`` (`temporary_name`), removed on any error; one that a killed
    process leaves behind is removed by the next job holding `output_lock` on the folder.

    Args:
        path: the file to create or replace.
        inputs: files that must not be overwritten (compared by identity, so links and `..` are caught).

    Raises:
        PcflowError: `path` is one of `inputs`, a folder, or its folder does not exist or is not writable; or the
            write failed for want of space, quota or a writable device (`cannot write PATH: REASON`).

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
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise write_error(path, error) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as error:
        # a read error of an input (a file name of its own, or an errno a write cannot give) passes unchanged
        if error.errno not in _WRITE_FAULTS and error.filename not in (str(tmp), str(path)):
            raise
        raise write_error(path, error) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def output_lock(target, names=()) -> Iterator[Path]:
    """Holds an exclusive lock on an output folder, or one output file, while a job writes there.

    The lock is `fcntl.flock` on ``LOCK_NAME`` in the folder `target` (or ``.NAME.lock`` beside the file `target`),
    so a killed process leaves no lock that blocks the next one; the lock file is removed on release. Once the lock
    is held, the temporary files (`temporary_name`) of `names` in the folder, left there by a killed job, are
    removed: no running job writes them.

    Args:
        target: an existing output folder, or a file whose folder exists.
        names: the file names the job may write into the folder (for `target` a file: its own name is added).

    Raises:
        PcflowError: another process holds the lock, or the lock file cannot be created (a read-only folder).

    Example:
        >>> import tempfile; folder = Path(tempfile.mkdtemp())
        >>> with output_lock(folder) as lock:
        ...     lock.name, lock.exists()
        ('.pcflow.lock', True)
        >>> list(folder.iterdir())
        []
        >>> folder.rmdir()
    """
    target = Path(target)
    if target.is_dir():
        folder, path = target, target / LOCK_NAME
    else:
        folder, path, names = target.parent, target.parent / f".{target.name}.lock", (target.name, *names)
    shown = folder / names[0] if names else folder
    fd = _lock(path, shown)
    try:
        try:  # the holder's process id, for the message of a job refused; a full device leaves it out
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        for entry in os.listdir(folder):
            if any(temporary_name(name).fullmatch(entry) for name in names):
                (folder / entry).unlink(missing_ok=True)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _lock(path: Path, shown: Path) -> int:
    """An open descriptor of the lock file `path`, locked; `shown` is the output the errors name."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise write_error(shown, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise PcflowError(f"cannot write {shown}: {who} is writing there (lock {path}); wait for it to finish "
                              "or choose another output") from None
        except OSError as error:
            os.close(fd)
            raise PcflowError(f"cannot lock {path}: {error.strerror or error}") from None
        # the holder may have removed the file between our open and our lock: then lock the file now at the path
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
