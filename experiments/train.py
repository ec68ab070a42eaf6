"""Starting, resuming and reproducing training runs (used by the CLI and by sweeps)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from agents.sb3.config import is_sb3
from experiments.manifest import Manifest, manifest_from_json
from experiments.run_dir import (
    RunDirError,
    RunLock,
    append_event,
    new_run_dir,
    provenance,
    write_json_atomic,
    write_provenance,
)

__all__ = ["preflight", "start_run", "resume_run"]


def preflight(manifest: Manifest) -> None:
    """Build the env and agent once, so space/algorithm mismatches fail before anything is written."""
    from agents.registry import build_agent
    from envs.make import make_vector_env, reward_dim_of
    from experiments.loops.offpolicy import validate_off_policy

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
    manifest = manifest_from_json(run_dir / "manifest.json")
    with RunLock(run_dir):
        _train(manifest, run_dir, resume=True, show_progress=show_progress)
    return run_dir


def _train(manifest: Manifest, run_dir: Path, resume: bool, show_progress: bool) -> None:
    from agents.registry import agent_class
    from experiments.progress import TrainingProgress
    from experiments.session import Session

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    with TrainingProgress(manifest.train.total_steps, enabled=show_progress) as progress:
        session = Session(manifest, run_dir, resume, extra_columns=_agent_columns(manifest),
                          console=progress.console)
        try:
            progress(session, {})
            if is_sb3(manifest.agent.algo):
                from experiments.loops.sb3 import run_sb3 as run_loop
            elif manifest.dataset is not None:
                from experiments.loops.offline import run_phased as run_loop
            elif agent_class(manifest.agent.algo).on_policy:
                from experiments.loops.onpolicy import run_on_policy as run_loop
            else:
                from experiments.loops.offpolicy import run_off_policy as run_loop
            run_loop(session, progress)
            append_event(run_dir, {"event": "finished", "step": session.counters.env_steps})
        except KeyboardInterrupt:
            append_event(run_dir, {"event": "interrupted", "step": session.counters.env_steps})
            raise
        finally:
            session.close()
            signal.signal(signal.SIGTERM, previous)


def _agent_columns(manifest: Manifest) -> list[str]:
    from agents.registry import metric_keys

    columns = metric_keys(manifest.agent)
    if manifest.dataset is not None:
        from experiments.loops.offline import PHASE_COLUMNS

        columns += PHASE_COLUMNS
    return columns


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C, but exit with 143 (128 + SIGTERM) as shells expect."""

    exit_code = 128 + signal.SIGTERM


def _raise_interrupt(signum, frame) -> None:
    raise Terminated
