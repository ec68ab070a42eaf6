"""Seed and grid sweeps: expand one manifest into many runs and run them on a local pool or on Ray.

Every run of a sweep is an ordinary run directory with a deterministic name, so running the same
sweep again skips what finished, resumes what was interrupted and starts the rest:

* without a grid: ``<runs dir>/<name>/s<seed>``;
* with a grid: ``<runs dir>/<name>-<point slug>/s<seed>``, one group per grid point, so that
  ``rl plot`` and ``rl report`` draw one line per point with the seeds as the unit.

Everything is validated before anything starts: the seed range, every expanded manifest (a grid key
that is not a manifest field is an error naming it), env and agent construction for every grid
point, and existing run directories (a run whose stored manifest differs is refused). A flock on
``<group>/.sweep.lock`` refuses a second sweep into the same group while one is running.

Backends (:mod:`experiments.sweep_backends`): a local process pool (``spawn``; one torch thread count
per run, from the manifest) or Ray, where each run is a task declaring ``num_cpus = manifest.threads``.
A Ray worker that dies has its task retried; the retry resumes the run from its newest verified
checkpoint (the run directory is the only state), so no step is counted twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.manifest import NAME_RE, ManifestError, load_manifest

__all__ = ["PlannedRun", "RunResult", "SweepError", "SweepLock", "expand", "parse_grid", "parse_seeds",
           "plan_runs", "run_sweep"]

MAX_SEEDS = 10_000
_SEED_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_FORBIDDEN_GRID_KEYS = {"seed": "use --seeds for seeds", "name": "a grid point's group name is derived from it"}


class SweepError(ValueError):
    """A user mistake in a sweep's arguments or a conflict with existing runs; exit code 2."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: where it goes and the resolved manifest it trains."""

    group: str
    """Group directory name (= the manifest's ``name``)."""
    run_id: str
    """Run directory name, ``s<seed>``."""
    seed: int
    manifest: dict[str, Any] = field(repr=False)
    """Resolved manifest (JSON data, every default filled)."""
    overrides: tuple[str, ...] = ()
    """The ``--set`` and grid overrides that produced it (recorded in provenance.json)."""

    @property
    def threads(self) -> int:
        return int(self.manifest["threads"])

    def run_dir(self, runs_dir: Path) -> Path:
        return Path(runs_dir) / self.group / self.run_id


@dataclass
class RunResult:
    """What happened to one run: ``complete`` (skipped), ``started``, ``resumed``, ``restarted`` or ``failed``."""

    run: PlannedRun
    status: str
    seconds: float = 0.0
    final_eval: float | None = None
    error: str | None = None


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` (inclusive), ``"3"`` or a comma list of those, e.g. ``"0-4,10"``; sorted, no repeats."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        m = _SEED_RANGE.match(part.strip())
        if not m:
            raise SweepError(f"--seeds {text!r}: expected a range like 0-9, a seed like 3, or a comma list of them")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise SweepError(f"--seeds {text!r}: range {part.strip()} is empty (the end is below the start); "
                             f"did you mean {hi}-{lo}?")
        if hi > 2**31 - 1 or len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise SweepError(f"--seeds {text!r}: at most {MAX_SEEDS} seeds, each below 2**31")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def _split_values(raw: str) -> list[str]:
    """Split on commas outside brackets, so ``[64,64],[32]`` gives two list values."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["agent.learning_rate=1e-3,3e-4", ...]`` -> ``[("agent.learning_rate", ["1e-3", "3e-4"]), ...]``."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. agent.learning_rate=1e-3,3e-4")
        if key in _FORBIDDEN_GRID_KEYS:
            raise SweepError(f"--grid {item!r}: {key!r} cannot be a grid key; {_FORBIDDEN_GRID_KEYS[key]}")
        if any(k == key for k, _ in grid):
            raise SweepError(f"--grid {item!r}: {key!r} is given twice; put all its values in one --grid")
        values = _split_values(raw)
        if not all(values):
            raise SweepError(f"--grid {item!r}: empty value; separate values with commas, e.g. {key}=1e-3,3e-4")
        if len(set(values)) != len(values):
            raise SweepError(f"--grid {item!r}: a value is repeated")
        grid.append((key, values))
    return grid


def _slug(point: tuple[tuple[str, str], ...]) -> str:
    text = "-".join(f"{key.rsplit('.', 1)[-1]}_{value}" for key, value in point)
    return re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "_", text)).strip("._-")


def _hash_slug(point: tuple[tuple[str, str], ...]) -> str:
    return "g" + hashlib.sha256(json.dumps(point).encode()).hexdigest()[:8]


def _group_names(base: str, points: list[tuple[tuple[str, str], ...]]) -> list[str]:
    """``base`` without a grid; ``base-<slug>`` per point, or ``base-g<hash>`` if slugs clash or are long."""
    if points == [()]:
        return [base]
    names = [f"{base}-{_slug(p)}" for p in points]
    if len(set(names)) != len(names) or not all(NAME_RE.match(n) and ".." not in n for n in names):
        names = [f"{base}-{_hash_slug(p)}" for p in points]
    return names


def expand(manifest_path: Path | str, seeds: Sequence[int], grid: Sequence[tuple[str, list[str]]] = (),
           overrides: Sequence[str] = ()) -> list[PlannedRun]:
    """Every (grid point, seed) as a validated :class:`PlannedRun`; raises on the first bad manifest."""
    if not seeds:
        raise SweepError("--seeds: no seeds to run")
    points = [tuple(zip([k for k, _ in grid], values, strict=True))
              for values in itertools.product(*[v for _, v in grid])]
    base, _ = _load(manifest_path, list(overrides), None, "")
    groups = _group_names(base.name, points)
    runs: list[PlannedRun] = []
    seen: dict[str, str] = {}
    for point, group in zip(points, groups, strict=True):
        point_overrides = [*overrides, *(f"{k}={v}" for k, v in point)]
        label = " ".join(f"--grid {k}={v}" for k, v in point)
        for seed in seeds:
            manifest, _ = _load(manifest_path, [*point_overrides, f"name={group}"], seed, label)
            resolved = manifest.resolved()
            if seed == seeds[0]:
                key = json.dumps({k: v for k, v in resolved.items() if k != "name"}, sort_keys=True)
                if key in seen:
                    raise SweepError(f"grid points {seen[key]!r} and {label!r} give the same manifest; "
                                     "drop one of the values")
                seen[key] = label
            runs.append(PlannedRun(group, f"s{seed}", seed, resolved, tuple(point_overrides)))
    return runs


def _load(path: Path | str, overrides: list[str], seed: int | None, label: str):
    try:
        return load_manifest(path, overrides, seed)
    except ManifestError as err:
        raise SweepError(f"{label}: {err}" if label else str(err)) from None


def preflight_points(runs: Sequence[PlannedRun]) -> None:
    """Build env and agent once per group, so a bad grid point fails before any run starts."""
    from experiments.manifest import Manifest
    from experiments.train import preflight

    done: set[str] = set()
    for run in runs:
        if run.group not in done:
            done.add(run.group)
            preflight(Manifest.model_validate(run.manifest))


class SweepLock:
    """Exclusive, non-blocking flocks on ``<runs dir>/<group>/.sweep.lock`` for every group of a sweep."""

    def __init__(self, runs_dir: Path, groups: Sequence[str]):
        self.paths = [Path(runs_dir) / g / ".sweep.lock" for g in sorted(set(groups))]
        self._stack = ExitStack()

    def __enter__(self) -> SweepLock:
        try:
            for path in self.paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                self._stack.callback(os.close, fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SweepError(f"{path.parent}: another sweep is running into this group (lock {path} "
                                     "is held); wait for it to finish or stop it") from None
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else f"{prefix.rstrip('.')} ({a!r} vs {b!r})"


def plan_runs(runs: Sequence[PlannedRun], runs_dir: Path) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """Split into (complete, to do); refuse run directories that hold a different manifest."""
    complete, todo = [], []
    for run in runs:
        path = run.run_dir(runs_dir)
        stored = path / "manifest.json"
        if stored.is_file():
            try:
                data = json.loads(stored.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise SweepError(f"{stored}: unreadable ({err}); move the run away and sweep again") from None
            diff = _first_difference(data, run.manifest)
            if diff:
                raise SweepError(f"{path}: holds a run with a different manifest ({diff}, stored vs this sweep); "
                                 "use another --runs-dir or move the run away")
        elif path.exists() and any(p.name != ".lock" for p in path.iterdir()):
            raise SweepError(f"{path}: exists but is not a run directory (no manifest.json); move it away")
        (complete if (path / "final" / "policy.safetensors").is_file() else todo).append(run)
    return complete, todo


def execute_run(run: PlannedRun, runs_dir: str, argv: Sequence[str]) -> RunResult:
    """Bring one run to completion in this process: skip, resume from its newest checkpoint, or start.

    Runs in a pool or Ray worker. It decides from the run directory alone, so a retried Ray task
    (its worker died) resumes where the last verified checkpoint left off.
    """
    import torch

    from experiments.manifest import Manifest
    from experiments.train import resume_run, start_run
    from rl.core.checkpoint import list_checkpoints

    torch.set_num_threads(run.threads)
    t0 = time.perf_counter()
    path = run.run_dir(Path(runs_dir))
    if (path / "final" / "policy.safetensors").is_file():
        return RunResult(run, "complete", final_eval=_final_eval(path))
    saved_argv, sys.argv = sys.argv, list(argv)  # provenance.json records the sweep's command line
    try:
        if (path / "manifest.json").is_file() and list_checkpoints(path / "checkpoints"):
            status = "resumed"
            resume_run(path, show_progress=False)
        else:
            status = "restarted" if path.exists() else "started"
            start_run(Manifest.model_validate(run.manifest), Path(runs_dir), run.run_id, force=path.exists(),
                      overrides=list(run.overrides), show_progress=False)
    finally:
        sys.argv = saved_argv
    return RunResult(run, status, time.perf_counter() - t0, _final_eval(path))


def _final_eval(run_dir: Path) -> float | None:
    from experiments.plotting import PlotError, read_metrics

    try:
        values = read_metrics(run_dir).get("eval/mean_reward")
    except PlotError:
        return None
    if values is None:
        return None
    finite = values[values == values]
    return float(finite[-1]) if len(finite) else None


def run_sweep(manifest_path: Path, seeds: str, grid: Sequence[str] = (), overrides: Sequence[str] = (),
              runs_dir: Path = Path("runs"), jobs: int | None = None, backend: str = "local",
              address: str | None = None, max_retries: int = 3, show_progress: bool = True) -> list[RunResult]:
    """Validate, lock the groups, skip complete runs and run the rest; returns one result per run."""
    if backend not in ("local", "ray"):
        raise SweepError(f"--backend {backend!r}: choose local or ray")
    if backend == "local" and address is not None:
        raise SweepError("--address is for --backend ray")
    if jobs is not None and jobs < 1:
        raise SweepError(f"--jobs {jobs}: expected at least 1")
    if max_retries < 0:
        raise SweepError(f"--max-retries {max_retries}: expected 0 or more")
    from experiments.sweep_backends import (
        RaySession,
        SweepProgress,
        check_address,
        cpus,
        import_ray,
        run_local,
        run_ray,
    )

    runs = expand(manifest_path, parse_seeds(seeds), parse_grid(grid), overrides)
    if backend == "ray":
        import_ray()
        address = check_address(address)
    preflight_points(runs)
    with SweepLock(runs_dir, [r.group for r in runs]), SweepProgress(len(runs), show_progress) as progress:
        complete, todo = plan_runs(runs, runs_dir)
        results = [RunResult(r, "complete", final_eval=_final_eval(r.run_dir(runs_dir))) for r in complete]
        progress.skipped(len(complete))
        if not todo:
            return results
        jobs = jobs or max(1, cpus() // max(r.threads for r in todo))
        progress.say(f"sweep: {len(todo)} of {len(runs)} runs to run on {backend}"
                     + (f" with {min(jobs, len(todo))} processes" if backend == "local" else ""))
        if backend == "local":
            results += run_local(todo, runs_dir, jobs, progress.done)
        else:
            with RaySession(address, jobs):
                results += run_ray(todo, runs_dir, max_retries, progress.done)
    return results


def main_sweep(args) -> int:
    """``rl sweep``: run, then print a summary; exit 1 if any run failed."""
    try:
        results = run_sweep(args.manifest, args.seeds, args.grid, args.overrides, args.runs_dir, args.jobs,
                            args.backend, args.address, args.max_retries, show_progress=not args.quiet)
    except KeyboardInterrupt:
        print("rl: sweep interrupted; checkpoints are kept, run the same command again to resume", file=sys.stderr)
        return 130
    counts: dict[str, int] = {}
    for res in results:
        counts[res.status] = counts.get(res.status, 0) + 1
    print(f"sweep finished: {len(results)} runs in {args.runs_dir} ("
          + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ")")
    failed = [r for r in results if r.status == "failed"]
    for res in failed:
        print(f"failed: {res.run.run_dir(args.runs_dir)}: {res.error}")
    if failed:
        print("fix the cause and run the same command again; finished runs are skipped, the rest resume")
    return 1 if failed else 0
