"""Starting, resuming and reproducing training runs (used by the CLI and by sweeps).

Stopping (SIGTERM, Ctrl-C): the first signal asks the run to stop at its next scheduled checkpoint.
Training goes on up to that checkpoint (at most ``checkpoint.every_steps`` env steps), which is
written as in an uninterrupted run, and the process exits with 143 (SIGTERM) or 130 (SIGINT). Only
checkpoint boundaries are exact resume points (the envs restart there with seeds of the checkpoint
index, see :mod:`experiments.session`), so a checkpoint written at the moment of the signal could
not be resumed bit-identically. A second signal stops at once and keeps the last checkpoint; so
does the first when no checkpoint is scheduled before the end of the run.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from agents.sb3.config import is_sb3
from experiments.manifest import Manifest, ManifestError, manifest_from_json
from experiments.run_dir import (
    RunDirError,
    RunLock,
    append_event,
    check_run_entries,
    new_run_dir,
    provenance,
    write_json_atomic,
    write_provenance,
)

__all__ = ["Interrupted", "preflight", "start_run", "resume_run"]


def check_vectorization(manifest: Manifest) -> None:
    """``env.vectorization: vector`` needs what its NEXT_STEP, shared-generator envs allow."""
    from agents.registry import agent_class
    from envs.make import make_native_vector_env

    if manifest.env.vectorization != "vector":
        return
    algo = manifest.agent.algo
    if is_sb3(algo) or not agent_class(algo).on_policy:
        raise ManifestError(f"env.vectorization=vector: agent.algo={algo} needs every step as a transition; "
                            "native vector envs are for the suite's on-policy agents (ppo); use sync")
    for field, value in (("env.wrappers", manifest.env.wrappers), ("curriculum", manifest.curriculum),
                         ("dataset", manifest.dataset)):
        if value:
            raise ManifestError(f"env.vectorization=vector: {field} needs per-sub-env envs; use vectorization: sync")
    make_native_vector_env(manifest.env.id, 1, manifest.env.kwargs).close()


def preflight(manifest: Manifest) -> None:
    """Build the env and agent once, so space/algorithm mismatches fail before anything is written."""
    from agents.registry import build_agent
    from envs.make import make_vector_env, reward_dim_of
    from experiments.loops.offpolicy import validate_off_policy

    check_vectorization(manifest)
    envs = make_vector_env(manifest.env.id, 1, manifest.env.kwargs,
                           [(w.name, w.kwargs) for w in manifest.env.wrappers])
    try:
        build_agent(manifest.agent, envs.single_observation_space, envs.single_action_space,
                    reward_dim_of(envs), 0)
    finally:
        envs.close()
    if is_sb3(manifest.agent.algo):
        from experiments.loops.sb3 import validate_sb3

        validate_sb3(manifest)
    elif _online_on_policy(manifest):
        from experiments.loops.onpolicy_phased import validate_on_policy_phases

        if manifest.dataset is not None:
            validate_on_policy_phases(manifest)
    elif manifest.dataset is None:
        validate_off_policy(manifest)
    from experiments.datasets import validate_dataset

    validate_dataset(manifest)
    from experiments.curriculum import check_curriculum

    check_curriculum(manifest)


def start_run(manifest: Manifest, runs_dir: Path, run_id: str | None = None, force: bool = False,
              overrides: list[str] | None = None, show_progress: bool = True) -> Path:
    """Validate, create the run directory, train to the end; returns the run directory."""
    preflight(manifest)
    run_dir = new_run_dir(runs_dir, manifest.name, manifest.seed, run_id, force)
    with RunLock(run_dir):
        write_json_atomic(run_dir / "manifest.json", manifest.resolved())
        write_provenance(run_dir, provenance(manifest.threads, overrides or [], sys.argv))
        append_event(run_dir, {"event": "start"})
        _train(manifest, run_dir, resume=False, show_progress=show_progress)
    return run_dir


def resume_run(run_dir: Path, show_progress: bool = True) -> Path:
    """Continue a run from its newest verified checkpoint, exactly."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no manifest.json)")
    check_run_entries(run_dir)  # before anything reads, locks or writes through a symlinked entry
    manifest = manifest_from_json(run_dir / "manifest.json")
    preflight(manifest)  # e.g. a dataset changed since the start: refused before the run is touched
    with RunLock(run_dir):
        _train(manifest, run_dir, resume=True, show_progress=show_progress)
    return run_dir


def _train(manifest: Manifest, run_dir: Path, resume: bool, show_progress: bool) -> None:
    stop = _StopRequest(manifest.train.total_steps)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run(manifest, run_dir, resume, show_progress, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(manifest: Manifest, run_dir: Path, resume: bool, show_progress: bool, stop: _StopRequest) -> None:
    from agents.registry import agent_class
    from envs.checks import EnvContractError
    from experiments.progress import TrainingProgress
    from experiments.session import Session, TrainingError

    with TrainingProgress(manifest.train.total_steps, enabled=show_progress) as progress:
        session = Session(manifest, run_dir, resume, extra_columns=_agent_columns(manifest),
                          console=progress.console)
        stop.session, stop.last = session, session.restored.path.name if session.restored else None
        session.on_checkpoint = stop.after_checkpoint
        try:
            progress(session, {})
            if is_sb3(manifest.agent.algo):
                from experiments.loops.sb3 import run_sb3 as run_loop
            elif manifest.dataset is not None and _online_on_policy(manifest):
                from experiments.loops.onpolicy_phased import run_phased_on_policy as run_loop
            elif manifest.dataset is not None:
                from experiments.loops.offline import run_phased as run_loop
            elif agent_class(manifest.agent.algo).on_policy:
                from experiments.loops.onpolicy import run_on_policy as run_loop
            else:
                from experiments.loops.offpolicy import run_off_policy as run_loop
            run_loop(session, progress)
            append_event(run_dir, {"event": "finished", "step": session.counters.env_steps})
        except EnvContractError as err:
            if err.kind == "action_nonfinite":  # the policy diverged; the env is not to blame
                raise TrainingError(f"{err}; the last good checkpoint in {session.ckpt_root} is kept") from None
            raise
        except KeyboardInterrupt as err:
            stop.session = None  # a signal from here on stops at once
            append_event(run_dir, {"event": "interrupted", "step": session.counters.env_steps,
                                   "checkpoint": getattr(err, "checkpoint", None)})
            raise
        finally:
            stop.session = None
            session.close()


def _online_on_policy(manifest: Manifest) -> bool:
    """An offline agent whose online phases are on-policy rollouts (Uni-O4)."""
    from agents.registry import agent_class

    return not is_sb3(manifest.agent.algo) and getattr(agent_class(manifest.agent.algo), "online_on_policy", False)


def _agent_columns(manifest: Manifest) -> list[str]:
    from agents.registry import metric_keys

    columns = metric_keys(manifest.agent)
    if manifest.dataset is not None:
        from experiments.loops.offline import PHASE_COLUMNS

        columns += PHASE_COLUMNS
    return columns


class Interrupted(KeyboardInterrupt):
    """A stop by signal; ``exit_code`` is 128 + the signal (130 for SIGINT, 143 for SIGTERM), as shells
    expect. ``checkpoint``: the checkpoint written for the stop (None: the last one is kept)."""

    def __init__(self, signum: int, message: str = "", checkpoint: str | None = None):
        super().__init__(message)
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint


class _StopRequest:
    """The SIGTERM / SIGINT handler while a run trains (see the module docstring)."""

    def __init__(self, total_steps: int):
        self.total_steps = total_steps
        self.session = None  # set while the loop runs: only then can a stop wait for a checkpoint
        self.signum: int | None = None
        self.last: str | None = None  # the newest checkpoint of the run

    def __call__(self, signum, frame) -> None:
        session = self.session
        target = None if session is None else session.next_ckpt
        if self.signum is not None or target is None or target >= self.total_steps:
            raise Interrupted(signum)  # a second signal, or no checkpoint before the end: stop now
        self.signum = signum
        keep = self.last or "no checkpoint"
        _notice(f"rl: {signal.Signals(signum).name}: stopping after the next checkpoint (env step {target}), where "
                f"a resume continues exactly; send it again to stop now and keep {keep}\n")

    def after_checkpoint(self, path: Path) -> None:
        """Called by the session after each checkpoint: the requested stop happens here."""
        self.last = path.name
        session = self.session
        if self.signum is not None and session is not None and session.counters.env_steps < self.total_steps:
            raise Interrupted(self.signum, f"wrote checkpoint {path.name}", checkpoint=path.name)


def _notice(text: str) -> None:
    # A signal handler runs between any two bytecodes, possibly inside a print to stderr: write(2) is safe.
    try:
        os.write(2, text.encode())
    except OSError:
        pass
