"""The sweep's backends: a local ``spawn`` process pool and Ray, and the sweep's progress display.

:mod:`experiments.sweep` plans a sweep (seeds, grid points, what is complete) and hands the runs to
:func:`run_local` or :func:`run_ray` here; :mod:`experiments.tune` starts its own processes (it
stops pruned trials mid-run) and shares only the progress display and :func:`cpus`. Every run of
both backends goes through :func:`experiments.sweep.execute_run`; its run directory is the only state.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from experiments.sweep import PlannedRun, RunResult, SweepError, execute_run

RAY_CONNECT_TIMEOUT_S = 5.0


def cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class SweepProgress:
    """One progress bar for the whole sweep (runs done / total) and a line per finished run."""

    def __init__(self, total: int, enabled: bool = True):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self._progress = None
        self._task = None

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("runs"), TimeElapsedColumn(), console=self.console)
            self._progress.__enter__()
            self._task = self._progress.add_task("sweep", total=self.total)
        return self

    def say(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def skipped(self, n: int) -> None:
        if n:
            self.say(f"{n} of {self.total} runs already complete; skipping them")
        self._advance(n)

    def done(self, result: RunResult) -> None:
        r = result.run
        if result.status == "failed":
            self.say(f"FAILED {r.group}/{r.run_id}: {result.error}")
        else:
            ev = "" if result.final_eval is None else f", final eval/mean_reward {result.final_eval:g}"
            self.say(f"done {r.group}/{r.run_id} ({result.status}, {result.seconds:.1f} s{ev})")
        self._advance(1)

    def _advance(self, n: int) -> None:
        if self._progress is not None and n:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _collect(run: PlannedRun, get: Callable[[], RunResult]) -> RunResult:
    try:
        return get()
    except Exception as err:
        cause = getattr(err, "cause", None) or err  # Ray wraps a task's exception in RayTaskError
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        return RunResult(run, "failed", error=f"{type(cause).__name__}: {first}")


def run_local(todo: list[PlannedRun], runs_dir: Path, jobs: int,
               done: Callable[[RunResult], None]) -> list[RunResult]:
    """A ``spawn`` process pool of ``jobs`` workers, one run at a time per worker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: list[RunResult] = []
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(execute_run, run, str(runs_dir), list(sys.argv)): run for run in todo}
        for fut in as_completed(futures):
            results.append(_collect(futures[fut], fut.result))
            done(results[-1])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError("--backend ray needs Ray: pip install 'rlsuite[ray]'") from None
    return ray


def probe(address: str) -> None:
    """Fail within seconds, not minutes, when nothing listens at ``address`` (ray.init would hang)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address {address!r}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise SweepError(f"--address {address}: no Ray cluster reachable there ({err.strerror or err}); "
                         "start one with 'ray start --head' or check the host and port") from None


def _resolve_auto() -> str:
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a Ray without this helper: let ray.init look for the cluster itself
        return "auto"
    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:
        found = None
    if not found:
        raise SweepError("--address auto: no running Ray cluster found on this machine (and RAY_ADDRESS is "
                         "not set); start one with 'ray start --head' or give HOST:PORT")
    return found


def check_address(address: str | None) -> str | None:
    """Resolve ``auto`` and make sure something listens there, before anything starts."""
    if address is None:
        return None
    address = _resolve_auto() if address == "auto" else address
    if address != "auto":
        probe(address)
    return address


class RaySession:
    """Connect to the cluster at ``address`` (or start a local Ray instance) for one sweep."""

    def __init__(self, address: str | None, jobs: int):
        self.address, self.jobs = address, jobs

    def __enter__(self):
        import logging

        ray = import_ray()
        kwargs = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
        if self.address is None:
            ray.init(num_cpus=self.jobs, **kwargs)  # a private local instance for this sweep
            return ray
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as err:
            raise SweepError(f"--address {self.address}: {err}") from None
        return ray

    def __exit__(self, *exc) -> None:
        import ray

        ray.shutdown()


def run_ray(todo: list[PlannedRun], runs_dir: Path, max_retries: int,
             done: Callable[[RunResult], None]) -> list[RunResult]:
    """One Ray task per run (``num_cpus`` = its torch threads); a task whose worker dies is retried."""
    import ray

    # The run directory must be on a filesystem every node sees: a retry may land on another node.
    task = ray.remote(execute_run)
    refs = {task.options(num_cpus=run.threads, max_retries=max_retries, retry_exceptions=False,
                         name=f"{run.group}/{run.run_id}").remote(run, str(Path(runs_dir).resolve()), list(sys.argv)):
            run for run in todo}
    pending, results = list(refs), []
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                results.append(_collect(refs[ref], lambda ref=ref: ray.get(ref)))
                done(results[-1])
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: the run records "interrupted", its checkpoint stays
        raise
    return results
