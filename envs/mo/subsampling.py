"""Objective sub-sampling: each episode trains on a random subset of the objectives.

Axis letters: K reward objectives.

AdsorbRL (Lacombe et al. 2023) trains a multi-objective agent on a random subset of its objectives
in each episode, so it learns to serve any subset, and learns faster than on all objectives at once.
"""

from __future__ import annotations

import zlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.mo.common import MOWrapperError, find_wrapper, vector_reward_dim
from envs.mo.weights import WeightConditionedObservation

__all__ = ["ObjectiveSubsampling"]

_STREAM = zlib.crc32(b"rlsuite/ObjectiveSubsampling")


class ObjectiveSubsampling(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Each episode, pick ``m`` active objectives (m uniform in ``[min_active, max_active]``, then a
    uniform subset of that size); with ``mask_rewards`` inactive objectives' rewards are zeroed.

    Weight-conditioned agents learn per-objective values and are told the subset through their
    weights, so they want ``mask_rewards=False``; a scalarising agent wants ``True``.
    The 0/1 mask ``[K]`` is in ``info["objective_mask"]`` and, with ``mask_in_obs``, appended to a
    flat Box observation. When the wrapped chain has a `WeightConditionedObservation`, its episode
    weights are drawn on the face of the simplex of the active objectives (weight 0 elsewhere), so
    the agent is told which objectives count. The vector reward before masking goes to
    ``info["reward_vector"]``. The subset comes from the wrapper's own generator, seeded by
    ``reset(seed=...)``.

    Example:
        >>> import mo_gymnasium
        >>> env = ObjectiveSubsampling(gym.make("resource-gathering-v0"), min_active=1, max_active=1)
        >>> _, info = env.reset(seed=0)
        >>> int(info["objective_mask"].sum())
        1
    """

    def __init__(self, env: gym.Env, min_active: int = 1, max_active: int | None = None, mask_rewards: bool = True,
                 mask_in_obs: bool = False):
        gym.utils.RecordConstructorArgs.__init__(self, min_active=min_active, max_active=max_active,
                                                 mask_rewards=mask_rewards, mask_in_obs=mask_in_obs)
        gym.Wrapper.__init__(self, env)
        k = vector_reward_dim(env, "ObjectiveSubsampling")
        max_active = k if max_active is None else max_active
        if not isinstance(min_active, int) or not 1 <= min_active <= k:
            raise MOWrapperError(f"min_active: must be an integer in [1, {k}] (K = {k}), got {min_active!r}")
        if not isinstance(max_active, int) or not min_active <= max_active <= k:
            raise MOWrapperError(f"max_active: must be an integer in [min_active={min_active}, {k}], "
                                 f"got {max_active!r}")
        self.reward_dim = k
        self.min_active = min_active
        self.max_active = max_active
        self.mask_rewards = bool(mask_rewards)
        self.mask_in_obs = bool(mask_in_obs)
        self.mask_k = np.ones(k, bool)
        self._rng = np.random.default_rng()
        self._conditioned = find_wrapper(env, WeightConditionedObservation)
        if self.mask_in_obs:
            space = env.observation_space
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise MOWrapperError(f"mask_in_obs: needs a flat Box observation space, got {space}")
            low = np.concatenate([space.low.astype(np.float32), np.zeros(k, np.float32)])
            high = np.concatenate([space.high.astype(np.float32), np.ones(k, np.float32)])
            self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([seed, _STREAM])
        m = int(self._rng.integers(self.min_active, self.max_active + 1))
        mask = np.zeros(self.reward_dim, bool)
        mask[self._rng.choice(self.reward_dim, size=m, replace=False)] = True
        self.mask_k = mask
        if self._conditioned is not None:
            self._conditioned.objective_mask = mask
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), self._info(info)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward_k = np.asarray(reward, np.float32)
        info = self._info(info)
        info.setdefault("reward_vector", reward_k.copy())
        if self.mask_rewards:
            reward_k = np.where(self.mask_k, reward_k, np.float32(0.0))
        return self._obs(obs), reward_k, terminated, truncated, info

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        if not self.mask_in_obs:
            return obs
        return np.concatenate([np.asarray(obs, np.float32).ravel(), self.mask_k.astype(np.float32)])

    def _info(self, info: dict) -> dict:
        info = dict(info)
        info["objective_mask"] = self.mask_k.astype(np.float32)
        return info
