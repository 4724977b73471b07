"""What every job does around its results: check, create and lock the output folder, write JSON, name the
versions."""

from __future__ import annotations

import json
import os
import platform
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import PcflowError


def versions() -> dict:
    """Versions of pcflow and the libraries that shape its results."""
    import torch
    import trimesh

    from .. import __version__

    return {
        "pcflow": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "trimesh": trimesh.__version__,
    }


def write_json(path: Path, data: dict) -> None:
    """Writes `data` as indented JSON, atomically."""
    from ..io import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=json_value) + "\n")


def json_value(value):
    """A JSON-writable stand-in for a numpy scalar or array or a path (the `default` of `json.dumps`)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def prepare_outdir(outdir, names, *, overwrite: bool, inputs=(), create: bool = True) -> Path:
    """Checks that `names` can be written into `outdir` and creates the folder if `create`.

    Refuses to replace existing outputs unless `overwrite`, and inputs ever. With `create=False` it only checks
    that the folder, or the nearest existing folder above it, is writable, so a long job can fail early without
    leaving an empty folder behind.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise PcflowError(f"output folder {outdir} exists and is not a folder")
    for source in inputs:
        for name in names:
            if (outdir / name).resolve() == Path(source).resolve():
                raise PcflowError(f"output {outdir / name} would overwrite the input {source}")
    existing = [name for name in names if (outdir / name).exists()]
    if existing and not overwrite:
        raise PcflowError(f"{outdir} already holds {', '.join(existing)}; pass --overwrite or choose another folder")
    if not create:
        ancestor = outdir.absolute()
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise PcflowError(f"cannot create output folder {outdir}: {ancestor} is not a writable folder")
        return outdir
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PcflowError(f"cannot create output folder {outdir}: {error.strerror}") from None
    return outdir


@contextmanager
def claimed_outdir(outdir, names, *, overwrite: bool, inputs=(), clear: bool = False) -> Iterator[Path]:
    """The output folder of one job, checked (`prepare_outdir`), created and locked for the `with` body.

    The lock (`pcflow.io.output_lock`) makes a second job into the same folder fail at once, and removes the
    temporary files of `names` that a killed job left. A folder this call created is removed again if the body
    leaves it empty (a job that failed before writing anything).

    Args:
        outdir: the folder.
        names: every file name the job may write there.
        overwrite: replace outputs already there.
        inputs: files the outputs must not overwrite.
        clear: remove the `names` already there first (an unfinished earlier run's outputs); implies `overwrite`.

    Raises:
        PcflowError: as `prepare_outdir`, or another process is writing into the folder.
    """
    from ..io import output_lock

    outdir = Path(outdir)
    overwrite = overwrite or clear
    prepare_outdir(outdir, names, overwrite=overwrite, inputs=inputs, create=False)
    created = not outdir.exists()
    prepare_outdir(outdir, (), overwrite=overwrite, inputs=inputs)
    try:
        with output_lock(outdir, names):
            prepare_outdir(outdir, names, overwrite=overwrite, inputs=inputs)  # again, now that no other job writes
            if clear:
                for name in names:
                    if (outdir / name).is_file():
                        (outdir / name).unlink()
            yield outdir
    finally:
        if created and outdir.is_dir() and not any(outdir.iterdir()):
            outdir.rmdir()
