"""The suite's gymnasium vector env seen through stable-baselines3's ``VecEnv`` interface.

SB3's ``learn()`` needs its own ``VecEnv``. Rather than build a second chain of envs, this adapter
steps the run's own vector env (the manifest's wrapper chain, extension wrappers and
``envs.checks.ContractCheck``) through :class:`rl.core.rollout.RolloutCollector`, so the same
episodes reach the session's statistics and extensions as with the suite's own agents.

SAME_STEP autoreset (the suite's envs) is what SB3's ``VecEnv`` promises too: a step that ends an
episode returns the next episode's first observation, with the true last one in
``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` for a time-out, so SB3
bootstraps truncated steps and not terminated ones.

Axis letters: N envs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rl.core.rollout import EpisodeRecord, RolloutCollector

__all__ = ["SessionVecEnv", "placeholder_vec_env"]


class SessionVecEnv(VecEnv):
    """A ``VecEnv`` over a SAME_STEP gymnasium ``VectorEnv``; finished episodes go to ``on_episode``.

    Example:
        >>> venv = SessionVecEnv(session.envs, on_episode=session.on_episode)
        >>> venv.seed_each(session.env_seeds())   # used by the next reset() (SB3's learn calls it)
    """

    def __init__(self, envs: VectorEnv, on_episode: Callable[[EpisodeRecord], None] = lambda ep: None):
        self.collector = RolloutCollector(envs, reward_dim=1)
        if self.collector.mode != AutoresetMode.SAME_STEP:
            raise ValueError("the SB3 backend needs a SAME_STEP vector env (as the suite builds them)")
        self.envs = envs
        self.on_episode = on_episode
        self._sub_envs: list[gym.Env] = list(envs.unwrapped.envs)
        self._actions: np.ndarray | None = None
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    def seed_each(self, seeds: Sequence[int]) -> None:
        """Seeds, one per sub-env, for the next :meth:`reset` (SB3's ``seed(int)`` uses seed + index)."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        self._seeds = [int(s) for s in seeds]

    def reset(self) -> np.ndarray:
        seeds = self._seeds if all(s is not None for s in self._seeds) else None
        obs = self.collector.reset(seeds)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        tr = self.collector.step(self._actions)
        ended_n = tr.terminated_n | tr.truncated_n
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(ended_n):
            infos[i]["terminal_observation"] = tr.next_obs[i]
            infos[i]["TimeLimit.truncated"] = bool(tr.truncated_n[i] and not tr.terminated_n[i])
        for ep in tr.finished:
            infos[ep.env_index]["episode"] = {"r": float(ep.ret_k.sum()), "l": ep.length}
            if "is_success" in ep.info:
                infos[ep.env_index]["is_success"] = ep.info["is_success"]
            self.on_episode(ep)
        return self.collector.obs, tr.reward_nk[:, 0].copy(), ended_n, infos

    def close(self) -> None:
        """The session owns and closes the envs."""

    def _targets(self, indices) -> list[gym.Env]:
        if indices is None:
            return self._sub_envs
        if isinstance(indices, int):
            indices = [indices]
        return [self._sub_envs[i] for i in indices]

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [env.get_wrapper_attr(attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for env in self._targets(indices):
            setattr(env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [env.get_wrapper_attr(method_name)(*method_args, **method_kwargs) for env in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        from stable_baselines3.common.env_util import is_wrapped

        return [is_wrapped(env, wrapper_class) for env in self._targets(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [env.render() for env in self._sub_envs]


class _SpacesOnly(gym.Env):
    """An env that only has spaces: enough for SB3 to build a model, never stepped."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("placeholder env: the SB3 model must be bound to the run's envs before training")

    def step(self, action):
        raise RuntimeError("placeholder env: the SB3 model must be bound to the run's envs before training")


def placeholder_vec_env(observation_space: gym.Space, action_space: gym.Space, num_envs: int = 1) -> DummyVecEnv:
    """A ``DummyVecEnv`` of ``num_envs`` space-only envs, to build (or check) a model without an env."""
    return DummyVecEnv([lambda: _SpacesOnly(observation_space, action_space) for _ in range(num_envs)])
