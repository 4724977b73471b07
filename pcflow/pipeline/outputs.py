"""What every job does around its results: check and create the output folder, write JSON, name the versions."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

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
