"""``rl collect --replay RUN``: an off-policy run's replay buffer as a Minari dataset.

This is D4RL's "medium-replay" recipe: every transition an agent stored while it trained up to a
medium policy. The buffer comes from the run's newest checkpoint that verifies (the final checkpoint
of a finished run), so the run must have kept its buffer in checkpoints (``agent.save_buffer: true``,
the default).

Episodes are rebuilt per env in the order the buffer received them:

- an episode ends at a row marked ``terminated`` or ``truncated``, stored as it was (a checkpoint cut
  is a truncation: the loop marks the last row of each env truncated before it saves and resets the
  envs after, so the buffer never holds half an episode that continues later);
- rows not marked ``valid`` are skipped (buffers without that field, as the off-policy loop writes
  them now, hold only real transitions);
- once the ring buffer has wrapped, the oldest rows of each env may start in the middle of an
  episode whose beginning was overwritten, so each env's first episode is dropped then;
- rows after an env's last episode end (none when the buffer came from a checkpoint) are dropped;
- inside an episode each row's ``obs`` must equal the previous row's ``next_obs``; a buffer where it
  does not is refused, naming the row, rather than written as episodes that never happened.

The episodes are written through :class:`envs.recording.RecordEpisodes` (staged, then renamed into
place; the same ``card.json`` and sha256 as every suite dataset). Reference returns for normalised
scores are measured as ``rl collect`` measures them: the random policy's mean return and the expert's
deterministic return (``--ref-expert``, by default the run's own final policy).

Axis letters: T replay rows in time order, N envs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rl.core.datasets import DatasetError

__all__ = ["collect_replay", "replay_episodes"]

_FIELDS = ("obs", "next_obs", "action", "reward", "terminated", "truncated")
"""The fields a replay buffer must have; ``valid`` is optional (older buffers carry it)."""


def replay_episodes(arrays: dict[str, np.ndarray], state: dict[str, Any], where: str) -> list[dict[str, np.ndarray]]:
    """The complete episodes in a replay buffer's arrays (``[rows, N, ...]``, as checkpoints hold them).

    ``state`` is the storage's ``{"pos", "full", "capacity", "num_envs"}``. Returns dicts with
    ``obs`` (``[T + 1, ...]``), ``action``, ``reward`` (``[T]``), ``terminated`` and ``truncated``
    (``[T]`` bool), in the order the buffer received them, env by env.
    """
    missing = [f for f in _FIELDS if f not in arrays]
    if missing:
        raise DatasetError(f"{where}: the replay buffer has no field(s) {missing}; it was not written by the "
                           "off-policy loop")
    if arrays["reward"].shape[2:] not in ((), (1,)):
        raise DatasetError(f"{where}: rewards have {arrays['reward'].shape[2]} objectives; datasets hold "
                           "scalar rewards")
    rows = arrays["obs"].shape[0]
    pos, full = int(state["pos"]), bool(state["full"])
    order_t = np.r_[pos:rows, 0:pos] if full else np.arange(rows)
    episodes = []
    for n in range(arrays["obs"].shape[1]):
        t_valid = order_t[arrays["valid"][order_t, n]] if "valid" in arrays else order_t
        ends = arrays["terminated"][t_valid, n] | arrays["truncated"][t_valid, n]
        end_idx = np.flatnonzero(ends)
        start = 0
        for k, end in enumerate(end_idx):
            rows_t = t_valid[start : end + 1]
            start = end + 1
            if full and k == 0:
                continue  # may have lost its beginning when the ring buffer wrapped
            obs = arrays["obs"][rows_t, n]
            next_obs = arrays["next_obs"][rows_t, n]
            gap = np.flatnonzero((obs[1:] != next_obs[:-1]).reshape(len(rows_t) - 1, -1).any(axis=1))
            if gap.size:
                raise DatasetError(f"{where}: env {n}, buffer row {int(rows_t[gap[0] + 1])}: obs is not the "
                                   "previous row's next_obs inside one episode; the buffer is not a record of "
                                   "whole episodes")
            episodes.append({
                "obs": np.concatenate([obs, next_obs[-1:]]),
                "action": arrays["action"][rows_t, n],
                "reward": arrays["reward"][rows_t, n].reshape(len(rows_t)),
                "terminated": arrays["terminated"][rows_t, n],
                "truncated": arrays["truncated"][rows_t, n],
            })
    return episodes


class _Replay(gym.Env):
    """Plays back stored episodes through reset/step so `RecordEpisodes` can write them."""

    def __init__(self, like: gym.Env):
        self.observation_space, self.action_space, self.spec = like.observation_space, like.action_space, like.spec
        self._ep: dict[str, np.ndarray] | None = None
        self._t = 0

    def load(self, episode: dict[str, np.ndarray]) -> None:
        self._ep, self._t = episode, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self._ep["obs"][0], {}

    def step(self, action):
        ep, t = self._ep, self._t
        self._t += 1
        return (ep["obs"][t + 1], float(ep["reward"][t]), bool(ep["terminated"][t]), bool(ep["truncated"][t]), {})


def collect_replay(env_id: str, run: str, out: str, root: str | None = None, seed: int = 0, force: bool = False,
                   ref_episodes: int = 10, ref_expert: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the replay buffer of the run directory ``run`` as the Minari dataset ``out``; returns
    (dataset directory, card). See the module docstring for how episodes are rebuilt."""
    from envs.recording import RecordEpisodes, RecordingError
    from experiments.datasets import (
        dataset_root,
        expert_reference,
        output_dir,
        policy_for_env,
        random_actor,
        reference_returns,
    )
    from experiments.manifest import manifest_from_json
    from rl.core.checkpoint import CheckpointError, latest_verified
    from rl.core.seeding import SeedPlan

    run_dir = Path(run)
    if not (run_dir / "manifest.json").is_file():
        raise DatasetError(f"--replay {run}: not a run directory (no manifest.json)")
    manifest = manifest_from_json(run_dir / "manifest.json")
    if manifest.env.id != env_id:
        raise DatasetError(f"--replay {run} was trained on {manifest.env.id}, not --env {env_id}")
    if manifest.env.wrappers:
        raise DatasetError(f"--replay {run}: its env has wrappers; datasets through wrappers are not supported yet")
    target = output_dir(out, dataset_root(root), force)
    try:
        ckpt, skipped = latest_verified(run_dir / "checkpoints")
    except CheckpointError as err:
        raise DatasetError(f"--replay {run}: {err}") from None
    if ckpt is None:
        why = f" ({len(skipped)} failed verification)" if skipped else ""
        raise DatasetError(f"--replay {run}: no checkpoint that verifies{why}; nothing to read the buffer from")
    loop = ckpt.state.get("loop", {})
    if "storage" not in loop:
        raise DatasetError(f"--replay {run}: {ckpt.path.name} holds no replay buffer (not an off-policy run)")
    if not loop.get("buffer_saved") or ckpt.buffers is None:
        raise DatasetError(f"--replay {run}: {ckpt.path.name} was saved without its replay buffer "
                           "(agent.save_buffer: false); rerun with save_buffer: true")
    episodes = replay_episodes(ckpt.buffers, loop["storage"], f"--replay {ckpt.path}")
    if not episodes:
        raise DatasetError(f"--replay {run}: the buffer holds no complete episode; nothing written")

    env = gym.make(env_id, **dict(manifest.env.kwargs))
    plan = SeedPlan(seed)
    expert, expert_return = ((policy_for_env("--replay", run, env_id)[1], None) if ref_expert is None
                             else expert_reference(ref_expert, env_id))
    refs = reference_returns(env, random_actor(env.action_space, plan.generator("collect-random")), expert, plan,
                              ref_episodes)
    if expert_return is not None:
        refs["expert"] = expert_return
    if force and target.exists():
        import shutil

        shutil.rmtree(target)
    replay = _Replay(env)
    try:
        recorder = RecordEpisodes(replay, target, out, policy=f"replay of {os.fspath(run_dir)} at {ckpt.path.name}",
                                  algorithm_name=f"rlsuite collect --replay ({manifest.agent.algo})",
                                  description=f"rl collect --env {env_id} --replay {run}",
                                  ref_min_score=refs["random"], ref_max_score=refs["expert"])
        try:
            for episode in episodes:
                replay.load(episode)
                recorder.reset()
                for action in episode["action"]:
                    recorder.step(action)
            path = recorder.finalize()
        finally:
            recorder.close()
    except RecordingError as err:
        raise DatasetError(str(err)) from None
    finally:
        env.close()
    import json

    card = json.loads((path / "card.json").read_text(encoding="utf-8"))
    return path, card
