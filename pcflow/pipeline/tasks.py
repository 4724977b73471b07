"""Tasks run here, in local processes or on a Dask cluster, through one `concurrent.futures` interface."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import PcflowError

#: Seconds `connect` waits for a Dask scheduler to answer.
SCHEDULER_TIMEOUT = 10


def run_tasks(function: Callable, tasks: list[tuple], *, jobs: int = 1, scheduler: str | None = None,
              progress: Callable | None = None, failed: Callable | None = None) -> list:
    """Calls ``function(*task)`` for every task: here (`jobs` 1), in `jobs` local processes, or on a Dask cluster.

    The local pool and the cluster run the same code through a `concurrent.futures` executor (the cluster's from
    `distributed.Client.get_executor`), so a task is a module-level function of plain, picklable values that returns
    its result and reports its own failures in it (as `reconstruct_task` does) rather than raising.

    Args:
        function: a module-level function (it is pickled by name to the workers).
        tasks: the argument tuples, one per call.
        jobs: local worker processes (started with spawn, fresh interpreters); unused with `scheduler`.
        scheduler: address of a Dask distributed scheduler (see `connect`), or None.
        progress: called with each result as it comes (in finishing order).
        failed: ``failed(task, message)`` gives the result of a task whose worker died or that the cluster lost;
            None raises PcflowError instead.

    Returns:
        The results, in task order.
    """
    if not tasks:
        return []
    if scheduler is None and jobs == 1:
        results = []
        for task in tasks:
            results.append(function(*task))
            if progress:
                progress(results[-1])
        return results
    results: list = [None] * len(tasks)
    with _executor(jobs, scheduler) as pool:
        futures = {pool.submit(function, *task): k for k, task in enumerate(tasks)}
        for future in as_completed(futures):
            k = futures[future]
            try:
                results[k] = future.result()
            except BrokenProcessPool:
                results[k] = _lost(failed, tasks[k], "its worker process died (out of memory?)")
            except Exception as error:  # noqa: BLE001 - the cluster lost this task (a worker died, ...): reported
                reason = " ".join(str(error).split())
                results[k] = _lost(failed, tasks[k], f"the cluster lost the task: {type(error).__name__}: {reason}")
            if progress:
                progress(results[k])
    return results


def connect(address: str, timeout: float | None = None):
    """A `distributed.Client` of the Dask scheduler at `address` (``tcp://host:8786``).

    Raises:
        PcflowError: Dask distributed is not installed, the address is malformed, or no scheduler answers within
            `timeout` seconds (default `SCHEDULER_TIMEOUT`).
    """
    try:
        from distributed import Client
    except ImportError:
        raise PcflowError("a scheduler needs Dask distributed: pip install 'pcflow[cluster]'") from None
    try:
        return Client(address, timeout=timeout or SCHEDULER_TIMEOUT, set_as_default=False)
    except (OSError, ValueError, TypeError) as error:
        reason = " ".join(str(error).split())
        raise PcflowError(f"cannot connect to the Dask scheduler at {address}: {reason}") from None


@contextmanager
def _executor(jobs: int, scheduler: str | None) -> Iterator:
    """A local process pool of `jobs` workers, or the executor of the Dask cluster at `scheduler`."""
    if scheduler is None:
        # spawn: fresh interpreters, so no torch or OpenMP state is forked from this process
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
        return
    client = connect(scheduler)
    try:
        with client.get_executor(pure=False) as pool:  # pure=False: a rerun computes again, never reuses results
            yield pool
    finally:
        client.close()


def _lost(failed, task, message: str):
    if failed is None:
        raise PcflowError(message)
    return failed(task, message)
