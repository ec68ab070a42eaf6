"""Run directories: naming, creation, the single-writer lock and provenance."""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from experiments.manifest import NAME_RE

__all__ = ["RunDirError", "RunLock", "append_event", "check_run_entries", "check_run_id", "new_run_dir",
           "os_error_text", "write_provenance"]

_PACKAGES = ("rlsuite", "numpy", "torch", "jax", "jaxlib", "gymnasium", "stable-baselines3", "pydantic",
             "safetensors", "tensorboard", "scipy")


class RunDirError(ValueError):
    """A run directory problem caused by the user (exists, locked, bad name); exit code 2."""


def check_run_id(run_id: str) -> str:
    """Validate a run id like a manifest name (no separators, no '..', no leading dot)."""
    if not NAME_RE.fullmatch(run_id) or ".." in run_id:
        raise RunDirError(f"--run-id {run_id!r}: use 1-100 letters, digits, '_', '-', '.', no '..' or '/'")
    return run_id


def os_error_text(err: OSError) -> str:
    """``<strerror> [<ERRNO>]`` of an OSError, e.g. ``Read-only file system [EROFS]``."""
    name = errno.errorcode.get(err.errno, str(err.errno)) if err.errno is not None else type(err).__name__
    return f"{err.strerror or err} [{name}]"


def check_run_entries(run_dir: Path) -> None:
    """Refuse a run with a symlink among its own entries (``checkpoints/``, ``tb/``, ``.lock``, ``final/``,
    ``metrics.csv``, ``events.jsonl`` ...): resuming writes into, truncates or deletes each of them, and
    through a link it would do so outside the run. Every entry directly in the run counts."""
    try:
        entries = sorted(run_dir.iterdir())
    except OSError as err:
        raise RunDirError(f"{run_dir}: cannot list the run directory: {os_error_text(err)}") from None
    for entry in entries:
        if entry.is_symlink():
            raise RunDirError(f"{entry}: is a symlink (to {os.readlink(entry)}); a run's own files must be inside "
                              "it, and resuming would write through the link. Replace the link by the real "
                              "file or directory and resume again")


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def new_run_dir(runs_dir: Path, name: str, seed: int, run_id: str | None, force: bool) -> Path:
    """Create ``runs_dir/name/run_id`` (refusing an existing one unless ``force``)."""
    group = runs_dir / name
    if run_id is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        run_id = f"s{seed}-{stamp}"
        n = 2
        while (group / run_id).exists():
            run_id = f"s{seed}-{stamp}-{n}"
            n += 1
    path = group / check_run_id(run_id)
    if not _inside(runs_dir, group) or not _inside(runs_dir, path):
        raise RunDirError(f"{path}: resolves outside the runs directory {runs_dir} (a symlink?); refusing to write")
    if path.exists():
        if not force:
            raise RunDirError(f"{path}: run already exists; use 'rl train --resume {path}' to continue it "
                              "or --force to start it again from scratch")
        try:
            _clear_run(path)
        except OSError as err:
            raise RunDirError(f"{err.filename or path}: cannot clear the run for --force: {os_error_text(err)}"
                              ) from None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"{err.filename or path}: cannot create the run directory: {os_error_text(err)}") from None
    return path


def _clear_run(path: Path) -> None:
    import shutil

    for child in path.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock`` held while a process writes the run."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:  # O_NOFOLLOW: a symlinked .lock would truncate its target
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise RunDirError(f"{self.path}: cannot open the run lock (is the run directory writable?): "
                              f"{os_error_text(err)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"{self.path.parent}: another process is writing this run (lock held); "
                              "wait for it or stop it") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as err:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise RunDirError(f"{self.path}: cannot write the run lock: {os_error_text(err)}") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _git_state() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip() != ""
        return {"commit": commit or None, "dirty": dirty if commit else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def provenance(threads: int, overrides: list[str], argv: list[str]) -> dict:
    """Package versions, git state, interpreter, platform and thread settings."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "packages": versions,
        "git": _git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "threads": {"torch": threads, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "cpu_count": os.cpu_count()},
        "overrides": overrides,
        "argv": argv,
    }


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON via a temp file, fsync and rename."""
    from rl.core.checkpoint import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_provenance(run_dir: Path, data: dict) -> None:
    write_json_atomic(run_dir / "provenance.json", data)


def append_event(run_dir: Path, event: dict) -> None:
    """Append one JSON line to ``events.jsonl`` (starts, resumes, interruptions)."""
    event = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **event}
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")
        f.flush()
        os.fsync(f.fileno())
