"""Small helpers shared by the benchmark scripts: output folders, timing, CSV/JSON/markdown writing."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from pcflow.pipeline import json_value

REPO = Path(__file__).resolve().parents[1]
#: Default data folder: ../shared/data next to the repository (override with --data or PCFLOW_DATA).
DATA = Path(os.environ.get("PCFLOW_DATA", REPO.parent / "shared" / "data"))
#: Default output root (git-ignored).
RESULTS = REPO / "results"


def timed(function, *args, **kwargs):
    """Calls function(*args, **kwargs); returns (result, wall seconds)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def cpu_timed(function, *args, **kwargs):
    """Calls function(*args, **kwargs); returns (result, wall seconds, CPU seconds). CPU time counts every thread of
    this process and every child process that ended and was waited for meanwhile (a process pool shut down): on a
    machine shared with other jobs it tells the work done, where wall time also counts the waiting."""
    import resource

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    start_cpu, start = cpu(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, cpu() - start_cpu


def outdir(path) -> Path:
    """Creates and returns the output folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path, data) -> None:
    """Writes data as indented JSON (NaN written as null)."""
    text = json.dumps(_nan_to_none(data), indent=2, default=json_value)
    Path(path).write_text(text + "\n")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def write_csv(path, rows: list[dict]) -> None:
    """Writes rows (dicts) as CSV; the header is the union of their keys in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json_value(v) if isinstance(v, (np.generic, np.ndarray, Path)) else v
                             for k, v in row.items()})


def fmt(value, digits: int = 3) -> str:
    """A number for a markdown cell: fixed digits, scientific when tiny, '-' when missing."""
    if value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(float(value))):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str], headers: list[str] | None = None,
                   digits: int = 3) -> str:
    """A GitHub markdown table of the given columns of rows."""
    headers = headers or columns
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation of finite values (NaN, NaN if none)."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std())


def set_threads(n: int) -> None:
    """Limits torch (and BLAS/OpenMP where it honours it) to n threads: small flows run fastest single-threaded."""
    import torch

    torch.set_num_threads(n)


def machine() -> dict:
    """Where the numbers were measured."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
