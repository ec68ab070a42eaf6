"""Stepping a gymnasium vector env and turning its output into transitions.

This module is the only code that knows the vector env's autoreset mode:

* ``SAME_STEP`` (the envs the suite builds): a step that ends an episode returns the first
  observation of the next episode, and the true last observation in ``info["final_obs"]``. Every
  step is a valid transition.
* ``NEXT_STEP`` (gymnasium's default and native vector envs such as CartPole's): a step that ends an
  episode returns the true last observation; the following step ignores the action and only resets.
  That reset step is stored with ``valid = False`` and consumers mask it out.

``terminated`` and ``truncated`` stay apart. ``next_obs`` is always the true successor of ``obs``,
so a truncated step can bootstrap from ``V(next_obs)`` while a terminated one does not.

Axis letters: N envs, K reward objectives, T time rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rl.core.storage import Storage

__all__ = ["EpisodeRecord", "OnPolicyActor", "RolloutCollector", "Transition"]


@dataclass(frozen=True)
class EpisodeRecord:
    """A finished episode: which env, its (vector) return and its length in steps."""

    env_index: int
    ret_k: np.ndarray
    length: int
    terminated: bool
    info: dict = field(default_factory=dict)


@dataclass
class Transition:
    """One vector step, every array leading with N."""

    obs: np.ndarray
    action: np.ndarray
    reward_nk: np.ndarray
    terminated_n: np.ndarray
    truncated_n: np.ndarray
    next_obs: np.ndarray
    valid_n: np.ndarray
    finished: list[EpisodeRecord]


class OnPolicyActor(Protocol):
    """What the on-policy collector needs from an agent."""

    def act(self, obs_n: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Actions for a batch of observations, plus extras to store (e.g. ``value``, ``logprob``)."""
        ...

    def value(self, obs_b: np.ndarray) -> np.ndarray:
        """State values ``[B, K]``."""
        ...


class RolloutCollector:
    """Steps a vector env, tracks episode returns and reports finished episodes.

    The collector owns the current observation. ``reset(seeds)`` starts fresh episodes in every
    sub-env (run start, resume, and every checkpoint boundary: see ``docs/architecture.md``).
    """

    def __init__(self, envs: VectorEnv, reward_dim: int):
        self.envs = envs
        self.mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if isinstance(self.mode, str):
            self.mode = AutoresetMode(self.mode)
        if self.mode == AutoresetMode.DISABLED:
            raise ValueError("vector envs with autoreset_mode=DISABLED are not supported; use SAME_STEP")
        self.num_envs = envs.num_envs
        self.reward_dim = reward_dim
        space = envs.single_action_space
        self._clip = (space.low, space.high) if isinstance(space, spaces.Box) else None
        self.obs: np.ndarray | None = None
        self.ep_return_nk = np.zeros((self.num_envs, reward_dim), np.float64)
        self.ep_length_n = np.zeros(self.num_envs, np.int64)
        self._pending_reset_n = np.zeros(self.num_envs, bool)

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Reset every sub-env with its own seed; partial episodes are discarded."""
        self.obs, _ = self.envs.reset(seed=seeds)
        self.ep_return_nk[:] = 0.0
        self.ep_length_n[:] = 0
        self._pending_reset_n[:] = False
        return self.obs

    def step(self, action: np.ndarray) -> Transition:
        """Send ``action`` (stored as given; clipped to a Box's bounds for the env) and record it."""
        obs = self.obs
        env_action = np.clip(action, *self._clip) if self._clip is not None else action
        next_obs, reward, terminated, truncated, info = self.envs.step(env_action)
        reward_nk = np.asarray(reward, np.float32).reshape(self.num_envs, self.reward_dim)
        terminated = np.asarray(terminated, bool)
        truncated = np.asarray(truncated, bool)
        valid_n = ~self._pending_reset_n
        ended_n = terminated | truncated
        true_next = next_obs
        if self.mode == AutoresetMode.SAME_STEP and ended_n.any():
            true_next = next_obs.copy()
            final_obs = info["final_obs"]
            for i in np.flatnonzero(ended_n):
                true_next[i] = final_obs[i]
        finished = self._track(reward_nk, terminated, truncated, valid_n, info)
        if self.mode == AutoresetMode.NEXT_STEP:
            self._pending_reset_n = ended_n.copy()
        self.obs = next_obs
        return Transition(obs, action, reward_nk, terminated, truncated, true_next, valid_n, finished)

    def _track(self, reward_nk, terminated, truncated, valid_n, info) -> list[EpisodeRecord]:
        self.ep_return_nk += np.where(valid_n[:, None], reward_nk, 0.0)
        self.ep_length_n += valid_n
        ended = np.flatnonzero((terminated | truncated) & valid_n)
        finished = []
        for i in ended:
            finished.append(
                EpisodeRecord(int(i), self.ep_return_nk[i].copy(), int(self.ep_length_n[i]), bool(terminated[i]),
                              _episode_info(info, i))
            )
            self.ep_return_nk[i] = 0.0
            self.ep_length_n[i] = 0
        return finished

    def collect(
        self,
        actor: OnPolicyActor,
        storage: Storage,
        on_episode: Callable[[EpisodeRecord], None],
    ) -> None:
        """Fill ``storage`` (cleared first) with ``storage.capacity`` vector steps from ``actor``.

        Stores ``obs, action, reward, terminated, truncated, valid, next_value`` plus the actor's
        extras. ``next_value[t]`` is ``V(s'_t)``: the next row's value, ``V(final obs)`` for a
        truncated step, and ``V(last obs)`` for the last row, so the advantage kernel never needs
        to know about resets.
        """
        storage.clear()
        rows = storage.capacity
        for _t in range(rows):
            obs = self.obs
            action, extras = actor.act(obs)
            tr = self.step(action)
            bootstrap = np.zeros((self.num_envs, self.reward_dim), np.float32)
            if self.mode == AutoresetMode.SAME_STEP and tr.truncated_n.any():
                idx = np.flatnonzero(tr.truncated_n)
                bootstrap[idx] = actor.value(tr.next_obs[idx])
            storage.add(
                obs=obs, action=action, reward=tr.reward_nk, terminated=tr.terminated_n,
                truncated=tr.truncated_n, valid=tr.valid_n, next_value=bootstrap, **extras,
            )
            for ep in tr.finished:
                on_episode(ep)
        self._fill_next_values(actor, storage)

    def _fill_next_values(self, actor: OnPolicyActor, storage: Storage) -> None:
        value_tnk = storage.arrays["value"]
        next_tnk = storage.arrays["next_value"]
        same_step = self.mode == AutoresetMode.SAME_STEP
        # Row t's successor value is row t+1's value unless a SAME_STEP reset happened in between
        # (then the bootstrap computed at step time, already in next_tnk, is the right one).
        ended_tn = storage.arrays["terminated"] | storage.arrays["truncated"]
        keep_tn = ended_tn[:-1] if same_step else np.zeros_like(ended_tn[:-1])
        next_tnk[:-1] = np.where(keep_tn[..., None], next_tnk[:-1], value_tnk[1:])
        last = actor.value(self.obs)
        keep_n = ended_tn[-1] if same_step else np.zeros_like(ended_tn[-1])
        next_tnk[-1] = np.where(keep_n[:, None], next_tnk[-1], last)


def _episode_info(info: dict, i: int) -> dict:
    """Scalars an env reported for env ``i`` at episode end (e.g. ``is_success``)."""
    out = {}
    final = info.get("final_info") if isinstance(info.get("final_info"), dict) else info
    for key in ("is_success", "success"):
        if key in final:
            mask = final.get("_" + key)
            if mask is None or mask[i]:
                out["is_success"] = float(np.asarray(final[key])[i])
    return out
