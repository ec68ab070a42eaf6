"""``rl eval``: evaluate a run's final policy or one of its checkpoints, read-only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["EvalError", "evaluate_run", "format_table", "load_policy_agent"]


class EvalError(ValueError):
    """The run or the requested policy cannot be evaluated; the message says why."""


def load_policy_agent(run: Path, checkpoint: int | None):
    """(manifest, agent with the requested weights, label of what was loaded)."""
    from agents.registry import build_agent
    from envs.make import make_vector_env, reward_dim_of
    from experiments.manifest import manifest_from_json
    from rl.core import checkpoint as ckpt

    run = Path(run)
    if not (run / "manifest.json").is_file():
        raise EvalError(f"{run}: not a run directory (no manifest.json)")
    manifest = manifest_from_json(run / "manifest.json")
    envs = make_vector_env(manifest.env.id, 1, manifest.env.kwargs,
                           [(w.name, w.kwargs) for w in manifest.env.wrappers])
    agent = build_agent(manifest.agent, envs.single_observation_space, envs.single_action_space,
                        reward_dim_of(envs), 0)
    envs.close()
    if checkpoint is None:
        final = run / "final"
        if not os.path.lexists(final):
            raise EvalError(f"{run}: no final/ policy (the run has not finished); use --checkpoint STEP")
        weights, meta = ckpt.load_final_policy(final)  # sizes and sha256 checked against final/MANIFEST.json
        if meta.get("algo") != manifest.agent.algo or not isinstance(meta.get("agent"), dict):
            raise EvalError(f"{final / 'policy.json'}: written by algo {meta.get('algo')!r}, but the run's "
                            f"manifest says {manifest.agent.algo!r}")
        agent.load_state(weights, meta["agent"])
        return manifest, agent, "final"
    path = run / "checkpoints" / f"step-{checkpoint:012d}"
    if not path.is_dir():
        have = [p.name for p in ckpt.list_checkpoints(run / "checkpoints")]
        raise EvalError(f"{path}: no such checkpoint; available: {', '.join(have) or 'none'}")
    loaded = ckpt.load_checkpoint(path)
    agent.load_state(loaded.weights, loaded.state["agent"])
    return manifest, agent, path.name


def evaluate_run(run: Path, episodes: int, seed: int | None, checkpoint: int | None,
                 deterministic: bool = True) -> dict:
    """Play ``episodes`` episodes with seeds split from ``seed`` (default: the run's seed)."""
    from experiments.evaluation import run_episodes
    from experiments.session import build_envs
    from rl.core.seeding import SeedPlan

    if episodes < 1:
        raise EvalError(f"--episodes must be >= 1, got {episodes}")
    if seed is not None and seed < 0:
        raise EvalError(f"--seed must be non-negative, got {seed}")
    manifest, agent, label = load_policy_agent(run, checkpoint)
    eval_seed = manifest.seed if seed is None else seed
    envs = build_envs(manifest, episodes)
    try:
        res = run_episodes(agent, envs, SeedPlan(eval_seed).integers("rl-eval", episodes), deterministic)
    finally:
        envs.close()
    r = res.scalar_returns
    return {
        "run": str(run), "checkpoint": label, "episodes": episodes, "seed": eval_seed,
        "deterministic": deterministic, "mean_return": float(r.mean()), "std_return": float(r.std()),
        "returns": [float(x) for x in r], "lengths": [int(x) for x in res.lengths_e],
        "mean_length": float(np.mean(res.lengths_e)),
    }


def format_table(result: dict) -> str:
    """A rich table as text."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['run']} ({result['checkpoint']})")
    for col in ("episodes", "seed", "mean return", "std", "min", "max", "mean length"):
        table.add_column(col, justify="right")
    r = result["returns"]
    table.add_row(str(result["episodes"]), str(result["seed"]), f"{result['mean_return']:.2f}",
                  f"{result['std_return']:.2f}", f"{min(r):.2f}", f"{max(r):.2f}", f"{result['mean_length']:.1f}")
    console = Console(record=True, width=100)
    with console.capture() as cap:
        console.print(table)
    return cap.get()
