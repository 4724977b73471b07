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


#: How often `run_watched` reads the memory of a command's processes.
WATCH_INTERVAL_S = 0.02


def run_watched(command: list[str], **popen) -> tuple[int, float, float]:
    """Runs a command to its end: (exit status, wall seconds, peak memory in MiB).

    The peak memory is the largest total resident memory of the command's process and all its descendants, read
    from /proc every `WATCH_INTERVAL_S` seconds, and at least the largest peak of any one of them (its VmHWM). Not
    `os.wait4`'s ru_maxrss: that counts the memory of the process that started the command (a child shares its
    parent's memory until it runs the command), and only one process of the tree.
    """
    import subprocess

    start = time.perf_counter()
    child = subprocess.Popen(command, **popen)
    peak, single = 0.0, {}
    while child.poll() is None:
        total = 0.0
        for pid in _process_tree(child.pid):
            resident, highest = _memory_mib(pid)
            total += resident
            single[pid] = max(single.get(pid, 0.0), highest)
        peak = max(peak, total)
        time.sleep(WATCH_INTERVAL_S)
    seconds = time.perf_counter() - start
    return child.returncode, seconds, max(peak, max(single.values(), default=0.0))


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants now running (from /proc/PID/task/*/children)."""
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                for child in children.read().split():
                    found.extend(_process_tree(int(child)))
    except OSError:  # it ended meanwhile
        pass
    return found


def _memory_mib(pid: int) -> tuple[float, float]:
    """(resident memory, its peak so far) of a running process in MiB; zeros once it has ended."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


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
