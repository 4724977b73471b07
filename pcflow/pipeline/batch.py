"""Many clouds through the reconstruct job, in parallel processes; a file that fails is reported, not fatal."""

from __future__ import annotations

import glob
import multiprocessing
import os
import time
from dataclasses import replace
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

from ..errors import PcflowError
from .options import FitOptions, MeshOptions
from .outputs import prepare_outdir, write_json
from .reconstruct import reconstruct

#: Name of the summary `run_batch` writes into its output folder.
BATCH_REPORT = "batch_report.json"
_GLOB_CHARACTERS = "*?["


def is_batch(specs) -> bool:
    """Whether command-line inputs ask for a batch: several inputs, a folder, or a pattern that is not a file."""
    specs = [str(spec) for spec in specs]
    if len(specs) != 1:
        return True
    path = Path(specs[0])
    return path.is_dir() or (not path.exists() and any(c in specs[0] for c in _GLOB_CHARACTERS))


def expand_inputs(specs) -> list[Path]:
    """The cloud files that files, folders and glob patterns name, in the order given, each once.

    A folder gives its files (not those of sub-folders) with a suffix from `pcflow.io.CLOUD_SUFFIXES`, sorted by
    name; a pattern (`scans/*`, `**` for sub-folders) gives the files it matches with such a suffix, sorted; a
    file gives itself, whatever its suffix.

    Raises:
        PcflowError: an input that is no file, folder or matching pattern, or no files at all.

    Example:
        >>> import tempfile; folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.ply", "a.xyz", "notes.md"):
        ...     _ = (folder / name).write_text("")
        >>> [path.name for path in expand_inputs([folder])]
        ['a.xyz', 'b.ply']
        >>> import shutil; shutil.rmtree(folder)
    """
    from ..io import CLOUD_SUFFIXES

    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CLOUD_SUFFIXES)
            if not matches:
                raise PcflowError(f"{path}: no point cloud files in this folder (suffixes: {', '.join(CLOUD_SUFFIXES)})")
        elif path.exists():
            matches = [path]
        elif any(c in str(spec) for c in _GLOB_CHARACTERS):
            matches = sorted(Path(p) for p in glob.glob(str(spec), recursive=True)
                             if Path(p).is_file() and Path(p).suffix.lower() in CLOUD_SUFFIXES)
            if not matches:
                raise PcflowError(f"{spec}: the pattern matches no point cloud files")
        else:
            raise PcflowError(f"{spec}: no such file, folder or pattern")
        for match in matches:
            found.setdefault(match, None)
    return list(found)


def output_names(paths) -> list[str]:
    """One output folder name per input: its stem, with -2, -3, ... added where stems repeat."""
    names, seen = [], set()
    for path in paths:
        name, index = Path(path).stem, 2
        while name in seen:
            name, index = f"{Path(path).stem}-{index}", index + 1
        seen.add(name)
        names.append(name)
    return names


def run_batch(specs, outdir, fit_options: FitOptions, mesh_options: MeshOptions, *, jobs: int = 1,
              overwrite: bool = False, preview: bool = True, classify: bool = False, scores: bool = False,
              progress: Callable[[dict], None] | None = None) -> dict:
    """Runs `pipeline.reconstruct` on every input into `outdir/<stem>/` and writes `outdir/batch_report.json`.

    Args:
        specs: files, folders and glob patterns (see `expand_inputs`).
        outdir: output folder, created if needed.
        fit_options: model settings for every file (`progress` bars are turned off in parallel runs).
        mesh_options: mesh settings for every file.
        jobs: parallel worker processes; 1 runs in this process, 0 one per CPU (at most one per file). Each worker
            gets cpu_count // jobs torch threads, so that the workers do not oversubscribe the CPUs.
        overwrite: replace outputs already there.
        preview: also render each preview.png.
        classify: also write each classified.ply (see `pipeline.reconstruct`).
        scores: add the field `outlier_score` to each written cloud (see `pipeline.reconstruct`).
        progress: called with each file's entry as it finishes (in finishing order).

    Returns:
        The report: `outdir`, `jobs`, `n_files`, `n_ok`, `n_failed`, `seconds` and `files`, one entry per input in
        input order with `input`, `output`, `ok`, `error` (one line, or None), `mode` (the fit kept), `n_inliers`,
        `n_outliers`, `seconds`.

    Raises:
        PcflowError: bad inputs or `jobs`, or an output folder that cannot be written; a failing file only marks its
            entry.
    """
    start = time.perf_counter()
    paths = expand_inputs(specs)
    if not isinstance(jobs, int) or jobs < 0:
        raise PcflowError(f"jobs must be a non-negative integer, got {jobs!r}")
    cpus = os.cpu_count() or 1
    jobs = min(jobs or cpus, len(paths))
    outdir = prepare_outdir(outdir, [BATCH_REPORT], overwrite=overwrite, inputs=paths)
    if jobs > 1:
        fit_options = replace(fit_options, progress=False)
    outputs = {"overwrite": overwrite, "preview": preview, "classify": classify, "scores": scores}
    tasks = [
        (str(path), str(outdir / name), fit_options, mesh_options, outputs, max(1, cpus // jobs))
        for path, name in zip(paths, output_names(paths))
    ]
    if jobs == 1:
        entries = []
        for task in tasks:
            entries.append(_reconstruct_one(task[:-1] + (None,)))
            if progress:
                progress(entries[-1])
    else:
        entries = _run_parallel(tasks, jobs, progress)
    n_ok = sum(entry["ok"] for entry in entries)
    report = {
        "outdir": str(outdir),
        "jobs": jobs,
        "n_files": len(entries),
        "n_ok": n_ok,
        "n_failed": len(entries) - n_ok,
        "seconds": round(time.perf_counter() - start, 4),
        "files": entries,
    }
    write_json(outdir / BATCH_REPORT, report)
    return report


def _run_parallel(tasks, jobs: int, progress) -> list[dict]:
    # spawn: fresh interpreters, so no torch or OpenMP state is forked from this process
    context = multiprocessing.get_context("spawn")
    entries: list[dict | None] = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_reconstruct_one, task): k for k, task in enumerate(tasks)}
        for future in as_completed(futures):
            k = futures[future]
            try:
                entries[k] = future.result()
            except BrokenProcessPool:
                entries[k] = _entry(tasks[k], ok=False, error="its worker process died (out of memory?)", seconds=0.0)
            if progress:
                progress(entries[k])
    return entries


def _reconstruct_one(task) -> dict:
    """Worker: one reconstruct job; any error becomes the entry's one-line `error`."""
    source, output, fit_options, mesh_options, outputs, threads = task
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    start = time.perf_counter()
    try:
        report = reconstruct(source, output, fit_options, mesh_options, **outputs)
    except Exception as error:  # noqa: BLE001 - one file's failure of any kind must not stop the batch; it is reported
        message = " ".join(str(error).split())
        if not isinstance(error, PcflowError):
            message = f"{type(error).__name__}: {message}"
        return _entry(task, ok=False, error=message, seconds=time.perf_counter() - start)
    return _entry(task, ok=True, seconds=time.perf_counter() - start, mode=report["mode"],
                  n_inliers=report["n_inliers"], n_outliers=report["n_outliers"])


def _entry(task, *, ok: bool, seconds: float, error: str | None = None, mode=None, n_inliers=None,
           n_outliers=None) -> dict:
    return {"input": task[0], "output": task[1], "ok": ok, "error": error, "mode": mode, "n_inliers": n_inliers,
            "n_outliers": n_outliers, "seconds": round(seconds, 4)}
