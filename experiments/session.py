"""What every training loop shares: envs, agent, seeds, logging, evaluation, checkpoints, resume.

A loop (``experiments/loops/*.py``) owns only its own stepping and update logic; everything that
makes a run reproducible and resumable lives here.

Exactness of resume: at each checkpoint every sub-env is reset with seeds derived from
``(run seed, "env", checkpoint index)``, in the uninterrupted run as in a resumed one, so a run
restarted from checkpoint ``k`` replays exactly what the uninterrupted run did after ``k``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import experiments.curriculum  # noqa: F401  (registers the curriculum extension)
from agents.registry import build_agent
from envs.checks import ContractCheck, SubEnvObsCheck
from envs.make import make_native_vector_env, make_vector_env, reward_dim_of
from experiments.evaluation import EvalResult, run_episodes
from experiments.extensions import Extension, build_extensions
from experiments.manifest import Manifest
from experiments.mo import ObjectivesExtension  # noqa: F401  (registers the objectives extension)
from experiments.run_dir import append_event
from rl.core import checkpoint as ckpt
from rl.core.metrics import CsvSink, MetricLogger, TensorBoardSink
from rl.core.rollout import EpisodeRecord
from rl.core.seeding import SeedPlan

__all__ = ["Counters", "Session", "TrainingError", "build_envs"]

ROLLOUT_KEYS = ["rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/success_rate",
                "time/total_timesteps", "time/iterations", "time/fps", "time/elapsed_s"]
EVAL_KEYS = ["eval/mean_reward", "eval/std_reward", "eval/mean_ep_length"]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. non-finite weights); the last good checkpoint is kept."""


@dataclass
class Counters:
    """Progress counters saved in every checkpoint."""

    env_steps: int = 0
    iterations: int = 0
    checkpoint_index: int = 0
    eval_index: int = 0
    episodes: int = 0


def build_envs(manifest: Manifest, num_envs: int, extensions: list[Extension] = (), training: bool = False):
    """The manifest's vector env with its wrapper chain, extension wrappers and contract checks (each
    sub-env's observation shape and dtype before batching, every vector step after). ``training``
    envs follow ``env.vectorization``; evaluation envs are always sync."""
    spec = manifest.env
    if training and spec.vectorization == "vector":
        return ContractCheck(make_native_vector_env(spec.id, num_envs, spec.kwargs), mode=spec.checks)

    def hook(env, index):
        for ext in extensions:
            env = ext.wrap_env(env, index)
        return SubEnvObsCheck(env, index, strict_dtype=spec.checks == "error")

    envs = make_vector_env(spec.id, num_envs, spec.kwargs, [(w.name, w.kwargs) for w in spec.wrappers],
                           sub_env_hook=hook)
    return ContractCheck(envs, mode=spec.checks)


class Session:
    """One run's shared machinery. ``resume`` restores the newest verified checkpoint."""

    def __init__(self, manifest: Manifest, run_dir: Path, resume: bool, extra_columns: list[str],
                 console=None):
        import torch

        torch.set_num_threads(manifest.threads)
        self.manifest = manifest
        self.run_dir = run_dir
        self.console = console
        self.plan = SeedPlan(manifest.seed)
        self.extensions = build_extensions(manifest, self.plan)
        self.envs = build_envs(manifest, manifest.env.num_envs, self.extensions, training=True)
        self.eval_envs = None
        self.reward_dim = reward_dim_of(self.envs)
        self.agent = build_agent(manifest.agent, self.envs.single_observation_space,
                                 self.envs.single_action_space, self.reward_dim, self.plan.integer("agent"))
        self.counters = Counters()
        self.window: deque[tuple[float, int, float | None]] = deque(maxlen=100)
        self.ckpt_root = run_dir / "checkpoints"
        self.ckpt_root.mkdir(exist_ok=True)
        self.restored: ckpt.Checkpoint | None = None
        self.on_checkpoint: Callable[[Path], None] | None = None  # called after every checkpoint is saved
        if resume:
            self.restored = self._restore()
        resume_step = self.restored.step if self.restored else None
        ext_columns = [c for ext in self.extensions for c in ext.columns]
        columns = ROLLOUT_KEYS + extra_columns + ext_columns + EVAL_KEYS
        tensorboard = TensorBoardSink(run_dir / "tb", purge_step=None if resume_step is None else resume_step + 1)
        sinks = [CsvSink(run_dir / "metrics.csv", columns, resume_step=resume_step if resume else None), tensorboard]
        for ext in self.extensions:  # optional: an extension's own records (e.g. curriculum.csv)
            sinks += getattr(ext, "log_sinks", lambda *_: [])(run_dir, resume_step, tensorboard)
        self.logger = MetricLogger(sinks)
        self.next_eval = self._next_multiple(manifest.evaluation.every_steps)
        self.next_ckpt = self._next_multiple(manifest.checkpoint.every_steps)
        self._t0 = time.perf_counter()
        self._steps0 = self.counters.env_steps

    def _next_multiple(self, every: int) -> int | None:
        if every <= 0:
            return None
        return (self.counters.env_steps // every + 1) * every

    # -- seeds ----------------------------------------------------------------------------------------
    def env_seeds(self) -> list[int]:
        """Reset seeds of the training sub-envs for the current checkpoint segment."""
        return self.plan.integers("env", self.manifest.env.num_envs, self.counters.checkpoint_index)

    # -- episodes and logging -------------------------------------------------------------------------
    def on_episode(self, ep: EpisodeRecord) -> None:
        """Fold a finished training episode into the recent-episode window."""
        self.counters.episodes += 1
        self.window.append((float(ep.ret_k.sum()), ep.length, ep.info.get("is_success")))
        for ext in self.extensions:
            ext.on_episode(ep)

    def rollout_metrics(self) -> dict[str, float]:
        """SB3's ``rollout/`` and ``time/`` keys for the current row."""
        out: dict[str, float] = {
            "time/total_timesteps": float(self.counters.env_steps),
            "time/iterations": float(self.counters.iterations),
        }
        if self.window:
            out["rollout/ep_rew_mean"] = float(np.mean([w[0] for w in self.window]))
            out["rollout/ep_len_mean"] = float(np.mean([w[1] for w in self.window]))
            succ = [w[2] for w in self.window if w[2] is not None]
            if succ:
                out["rollout/success_rate"] = float(np.mean(succ))
        for ext in self.extensions:
            out.update(ext.metrics())
        elapsed = time.perf_counter() - self._t0
        out["time/elapsed_s"] = elapsed
        out["time/fps"] = (self.counters.env_steps - self._steps0) / max(elapsed, 1e-9)
        return out

    def log(self, row: dict[str, float]) -> None:
        self.logger.write(self.counters.env_steps, row)

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self) -> EvalResult:
        """Deterministic-seed evaluation on a separate env (seeds depend only on the eval index)."""
        spec = self.manifest.evaluation
        if self.eval_envs is None:
            self.eval_envs = build_envs(self.manifest, spec.episodes)
        seeds = self.plan.integers("eval", spec.episodes, self.counters.eval_index)
        self.counters.eval_index += 1
        return run_episodes(self.agent, self.eval_envs, seeds, spec.deterministic)

    def eval_due(self, force: bool) -> dict[str, float]:
        """Evaluate if the schedule says so, or whenever ``force`` (the run's end; the phased loops also
        force it at each phase's end) without moving the schedule; returns the ``eval/`` row entries."""
        due = self.next_eval is not None and self.counters.env_steps >= self.next_eval
        if not (due or force):
            return {}
        if due:
            self.next_eval = self._next_multiple(self.manifest.evaluation.every_steps)
        res = self.evaluate()
        r = res.scalar_returns
        return {"eval/mean_reward": float(r.mean()), "eval/std_reward": float(r.std()),
                "eval/mean_ep_length": float(res.lengths_e.mean())}

    # -- checkpoints ----------------------------------------------------------------------------------
    def checkpoint_due(self, final: bool) -> bool:
        due = self.next_ckpt is not None and self.counters.env_steps >= self.next_ckpt
        return due or final

    def save_checkpoint(self, loop_state: dict[str, Any], buffers: dict[str, np.ndarray] | None = None) -> Path:
        """Write a checkpoint at the current step, then start a new env segment."""
        arrays, agent_json = self.agent.state()
        for name, arr in arrays.items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise TrainingError(
                    f"step {self.counters.env_steps}: agent tensor {name!r} is not finite; training diverged. "
                    f"The last good checkpoint in {self.ckpt_root} is kept"
                )
        self.counters.checkpoint_index += 1
        state = {
            "algo": self.manifest.agent.algo,
            "counters": asdict(self.counters),
            "agent": agent_json,
            "loop": loop_state,
            "window": [list(w) for w in self.window],
            "extensions": {ext.name: ext.state() for ext in self.extensions},
        }
        self.logger.flush(durable=True)
        path = ckpt.save_checkpoint(self.ckpt_root, self.counters.env_steps, weights=arrays, state=state,
                                    buffers=buffers, keep_last=self.manifest.checkpoint.keep_last)
        self.next_ckpt = self._next_multiple(self.manifest.checkpoint.every_steps)
        if self.on_checkpoint is not None:
            self.on_checkpoint(path)  # experiments.train: a stop requested by a signal happens here
        return path

    def _restore(self) -> ckpt.Checkpoint | None:
        ckpt.cleanup_stale(self.ckpt_root)
        ckpt.cleanup_stale(self.run_dir)  # a final/ save killed mid-publish
        found, skipped = ckpt.latest_verified(self.ckpt_root)
        for path, reason in skipped:
            self._say(f"[yellow]skipping checkpoint {path.name}: {reason}[/]")
        if found is None:
            raise ckpt.CheckpointError(f"{self.ckpt_root}: no verified checkpoint to resume from; "
                                       "start a new run (or use --force to restart this one from scratch)")
        st = found.state
        if st.get("algo") != self.manifest.agent.algo:
            raise ckpt.CheckpointError(f"{found.path}: written by algo {st.get('algo')!r}, "
                                       f"but the manifest says {self.manifest.agent.algo!r}")
        self.agent.load_state(found.weights, st["agent"])
        self.counters = Counters(**st["counters"])
        self.window.extend(tuple(w) for w in st["window"])
        for ext in self.extensions:
            if ext.name not in st.get("extensions", {}):
                raise ckpt.CheckpointError(f"{found.path}: has no state for {ext.name!r}; it was written by another "
                                           "configuration")
            ext.load(st["extensions"][ext.name])
        append_event(self.run_dir, {"event": "resume", "step": found.step,
                                    "skipped": [[str(p), r] for p, r in skipped]})
        self._say(f"resuming from {found.path.name} (env step {found.step})")
        return found

    def save_final(self) -> None:
        """The policy ``rl eval`` uses by default: weights + JSON + MANIFEST.json (sha256), staged and
        renamed into place like a checkpoint (:func:`rl.core.checkpoint.save_final_policy`)."""
        arrays, policy_json = self.agent.policy_state()
        ckpt.save_final_policy(self.run_dir, self.counters.env_steps, weights=arrays,
                               meta={"algo": self.manifest.agent.algo, "step": self.counters.env_steps,
                                     "agent": policy_json})

    def _say(self, msg: str) -> None:
        if self.console is not None:
            self.console.print(msg)

    def close(self) -> None:
        self.logger.close()
        self.envs.close()
        if self.eval_envs is not None:
            self.eval_envs.close()
