"""Many clouds through the reconstruct job, in parallel processes or on a Dask cluster; a file that fails is reported,
not fatal, and a batch run again with `resume` skips the files already complete."""

from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..errors import PcflowError
from .options import FitOptions, MeshOptions
from .outputs import claimed_outdir, write_json
from .reconstruct import reconstruct
from .tasks import SCHEDULER_TIMEOUT, connect, run_tasks  # noqa: F401 - re-exported

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
              overwrite: bool = False, resume: bool = False, scheduler: str | None = None, preview: bool = True,
              classify: bool = False, scores: bool = False, scene: dict | None = None,
              progress: Callable[[dict], None] | None = None) -> dict:
    """Runs `pipeline.reconstruct` on every input into `outdir/<stem>/` and writes `outdir/batch_report.json`.

    The batch holds the lock of `outdir` (`pcflow.io.output_lock`) while it runs, each file the lock of its own
    folder. A file's outputs are complete once its report.json is there (it is written last).

    Args:
        specs: files, folders and glob patterns (see `expand_inputs`).
        outdir: output folder, created if needed.
        fit_options: model settings for every file (`progress` bars are turned off in parallel runs).
        mesh_options: mesh settings for every file.
        jobs: parallel worker processes; 1 runs in this process, 0 one per CPU (at most one per file). Each worker
            gets cpu_count // jobs torch threads, so that the workers do not oversubscribe the CPUs. Unused with
            `scheduler`.
        overwrite: replace outputs already there.
        resume: skip the files whose folder holds a complete reconstruct of them (`completed`, whatever settings
            made it) and redo the others, removing what an unfinished run left in their folders.
        scheduler: address of a Dask distributed scheduler (``tcp://host:8786``): each file is then one task on its
            workers (`run_tasks`), which must see the inputs and `outdir` at the same paths; None runs here.
        preview: also render each preview.png.
        classify: also write each classified.ply (see `pipeline.reconstruct`).
        scores: add the field `outlier_score` to each written cloud (see `pipeline.reconstruct`).
        scene: `pipeline.reconstruct`'s scene settings for every file (``scene``, ``trim``, ``plane_meshes``); a
            scene's objects are fitted one after another in its file's worker.
        progress: called with each file's entry as it finishes (in finishing order; skipped files first).

    Returns:
        The report: `outdir`, `jobs` (None with a scheduler), `scheduler`, `n_files`, `n_ok`, `n_failed`,
        `n_skipped`, `skipped` (the inputs skipped as complete), `seconds` and `files`, one entry per input in
        input order with `input`, `output`, `ok`, `skipped`, `error` (one line, or None), `mode` (the fit kept),
        `n_inliers`, `n_outliers`, `warnings` (its report.json's), `seconds`.

    Raises:
        PcflowError: bad inputs or `jobs`, an output folder that cannot be written or that another process is
            writing, a scheduler that cannot be reached; a failing file only marks its entry.
    """
    start = time.perf_counter()
    paths = expand_inputs(specs)
    if not isinstance(jobs, int) or jobs < 0:
        raise PcflowError(f"jobs must be a non-negative integer, got {jobs!r}")
    cpus = os.cpu_count() or 1
    jobs = min(jobs or cpus, len(paths))
    with claimed_outdir(outdir, [BATCH_REPORT], overwrite=overwrite or resume, inputs=paths) as outdir:
        if jobs > 1 or scheduler is not None:
            fit_options = replace(fit_options, progress=False)
        outputs = {"overwrite": overwrite, "preview": preview, "classify": classify, "scores": scores,
                   "clear": resume, **(scene or {}), "jobs": 1}
        threads = max(1, cpus // jobs) if jobs > 1 and scheduler is None else None
        entries, tasks, slots, given = [], [], [], {}
        for path, name in zip(paths, output_names(paths)):
            output = outdir / name
            done = completed(output, path) if resume else None
            if done is not None:
                entries.append(_entry((str(path), str(output)), ok=True, skipped=True, seconds=0.0,
                                      mode=done.get("mode"), n_inliers=done.get("n_inliers"),
                                      n_outliers=done.get("n_outliers"), warnings=done.get("warnings", ())))
                if progress:
                    progress(entries[-1])
                continue
            slots.append(len(entries))
            entries.append(None)
            shown = {"input": str(path), "output": str(output)}
            if scheduler is not None:  # the workers' working folders may differ from this one
                path, output = path.absolute(), output.absolute()
            given[str(path)] = shown
            tasks.append((str(path), str(output), fit_options, mesh_options, outputs, threads))
        results = run_tasks(reconstruct_task, tasks, jobs=jobs, scheduler=scheduler,
                            progress=progress and (lambda result: progress({**result, **given[result["input"]]})),
                            failed=lambda task, message: _entry(task, ok=False, error=message, seconds=0.0))
        for slot, result in zip(slots, results):
            entries[slot] = {**result, **given[result["input"]]}  # the paths as given
        n_ok = sum(entry["ok"] for entry in entries)
        report = {
            "outdir": str(outdir),
            "jobs": None if scheduler is not None else jobs,
            "scheduler": scheduler,
            "n_files": len(entries),
            "n_ok": n_ok,
            "n_failed": len(entries) - n_ok,
            "n_skipped": sum(entry["skipped"] for entry in entries),
            "skipped": [entry["input"] for entry in entries if entry["skipped"]],
            "seconds": round(time.perf_counter() - start, 4),
            "files": entries,
        }
        write_json(outdir / BATCH_REPORT, report)
    return report


def completed(output, source) -> dict | None:
    """The report.json of a finished reconstruct of `source` in the folder `output`, or None.

    Finished means: report.json (written last) is there and parseable, names `source` as its input, and every file
    it lists is there.
    """
    output = Path(output)
    try:
        report = json.loads((output / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("input"), str):
        return None
    if Path(report["input"]).absolute().resolve() != Path(source).absolute().resolve():
        return None
    if not all(isinstance(name, str) and (output / name).is_file() for name in report.get("files", [])):
        return None
    return report


def reconstruct_task(source: str, output: str, fit_options: FitOptions, mesh_options: MeshOptions, outputs: dict,
                     threads: int | None = None) -> dict:
    """One file of a batch (the task `run_tasks` runs): `pipeline.reconstruct`, any error in the entry's `error`.

    Args:
        source: the input file.
        output: its output folder.
        fit_options: model settings.
        mesh_options: mesh settings.
        outputs: the keyword arguments of `pipeline.reconstruct` beside these (`overwrite`, `preview`, ...).
        threads: torch threads for this process, or None to leave them.

    Returns:
        The batch report's entry of the file (see `run_batch`).
    """
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    task = (source, output)
    start = time.perf_counter()
    try:
        report = reconstruct(source, output, fit_options, mesh_options, **outputs)
    except Exception as error:  # noqa: BLE001 - one file's failure of any kind must not stop the batch; it is reported
        message = " ".join(str(error).split())
        if not isinstance(error, PcflowError):
            message = f"{type(error).__name__}: {message}"
        return _entry(task, ok=False, error=message, seconds=time.perf_counter() - start)
    return _entry(task, ok=True, seconds=time.perf_counter() - start, mode=report["mode"],
                  n_inliers=report["n_inliers"], n_outliers=report["n_outliers"], warnings=report["warnings"])


def _entry(task, *, ok: bool, seconds: float, error: str | None = None, skipped: bool = False, mode=None,
           n_inliers=None, n_outliers=None, warnings=()) -> dict:
    return {"input": task[0], "output": task[1], "ok": ok, "skipped": skipped, "error": error, "mode": mode,
            "n_inliers": n_inliers, "n_outliers": n_outliers, "warnings": list(warnings),
            "seconds": round(seconds, 4)}
