"""Tiny fixture envs for fast unit tests: constant reward, known returns, injected faults.

``register_testing_envs()`` (called when ``envs`` is imported) registers them with gymnasium:

- ``rlsuite/ConstantReward-v0``: `ConstantRewardEnv`, the same reward every step, fixed horizon.
- ``rlsuite/KnownReturns-v0``: `KnownReturnsEnv`, reward = step index, so returns are known.
- ``rlsuite/FaultyEnv-v0``: `FaultyEnv`, a ConstantReward env that breaks its contract at one step.

Step numbering, shared with `envs.checks`: ``reset()`` returns the observation of step 0 and the
k-th call to ``step()`` in an episode is step k (1-based). An episode of horizon H ends on step H,
with ``terminated=True`` (or ``truncated=True`` when ``truncate_instead=True``). The horizon lives in
the env, not in a ``TimeLimit`` wrapper, so the two ways of ending stay under the test's control.

Episodes are counted from 0 by the number of ``reset()`` calls, as `envs.checks.ContractCheck` does.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

__all__ = [
    "CONSTANT_REWARD_ID",
    "FAULTS",
    "FAULTY_ENV_ID",
    "KNOWN_RETURNS_ID",
    "ConstantRewardEnv",
    "FaultyEnv",
    "KnownReturnsEnv",
    "known_returns",
    "register_testing_envs",
]

CONSTANT_REWARD_ID = "rlsuite/ConstantReward-v0"
KNOWN_RETURNS_ID = "rlsuite/KnownReturns-v0"
FAULTY_ENV_ID = "rlsuite/FaultyEnv-v0"

FAULTS = ("nan_reward", "inf_reward", "nan_obs", "inf_obs", "obs_out_of_space", "wrong_dtype", "wrong_shape")
"""The faults `FaultyEnv` can inject; the ``*_reward`` ones need ``fault_step >= 1``."""

_ENTRY_POINTS = {
    CONSTANT_REWARD_ID: "envs.testing:ConstantRewardEnv",
    KNOWN_RETURNS_ID: "envs.testing:KnownReturnsEnv",
    FAULTY_ENV_ID: "envs.testing:FaultyEnv",
}


def register_testing_envs() -> None:
    """Register the fixture envs with gymnasium; calling it again does nothing.

    Example:
        >>> register_testing_envs()
        >>> gymnasium.make("rlsuite/ConstantReward-v0").spec.id
        'rlsuite/ConstantReward-v0'
    """
    for env_id, entry_point in _ENTRY_POINTS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point)


def known_returns(horizon: int, gamma: float = 1.0) -> np.ndarray:
    """Discounted returns ``G_t`` of a `KnownReturnsEnv` episode, for t = 0 .. horizon-1.

    ``G_t = Σ_{j=t}^{H-1} γ^{j-t} j`` (reward j is received on the step taken from step j), so
    ``G_0 = H(H-1)/2`` when γ = 1. Returns a float64 array of shape [horizon].

    Example:
        >>> known_returns(4).tolist()
        [6.0, 6.0, 5.0, 3.0]
    """
    _require_int("horizon", horizon, minimum=1)
    returns_t = np.zeros(horizon, dtype=np.float64)
    acc = 0.0
    for t in reversed(range(horizon)):
        acc = t + gamma * acc
        returns_t[t] = acc
    return returns_t


class ConstantRewardEnv(gymnasium.Env):
    """Reward ``reward`` on every step; the episode ends on step ``horizon``.

    Observations are uniform noise in [-1, 1]^obs_dim (float32) drawn from the env's seeded
    generator, so ``reset(seed=...)`` fixes the whole episode. Actions do not matter, but are
    checked: a discrete action must lie in ``Discrete(n_actions)`` and a continuous one must be a
    finite array of shape ``(action_dim,)`` (values outside [-1, 1] are allowed, as an unclipped
    Gaussian policy produces them). Stepping before ``reset()`` or after the episode ended raises.

    Example:
        >>> env = gymnasium.make("rlsuite/ConstantReward-v0", reward=2.0, horizon=3)
        >>> _ = env.reset(seed=0)
        >>> [env.step(0)[1:4] for _ in range(3)]
        [(2.0, False, False), (2.0, False, False), (2.0, True, False)]
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        reward: float = 1.0,
        horizon: int = 10,
        obs_dim: int = 3,
        continuous: bool = False,
        n_actions: int = 2,
        action_dim: int = 1,
        truncate_instead: bool = False,
    ) -> None:
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        _require_int("horizon", horizon, minimum=1)
        _require_int("obs_dim", obs_dim, minimum=1)
        self.reward = float(reward)
        self.horizon = horizon
        self.truncate_instead = bool(truncate_instead)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(obs_dim,), dtype=np.float32)
        self.action_space = _action_space(continuous, n_actions, action_dim)
        self._t = 0
        self._running = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._running = True
        return self._obs(), {}

    def step(self, action):
        _check_action(action, self.action_space)
        if not self._running:
            raise RuntimeError(
                f"step() called before reset() or after the episode ended at step {self.horizon}; call reset() first"
            )
        self._t += 1
        ended = self._t >= self.horizon
        self._running = not ended
        return self._obs(), self.reward, ended and not self.truncate_instead, ended and self.truncate_instead, {}

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, size=self.observation_space.shape).astype(np.float32)


class KnownReturnsEnv(gymnasium.Env):
    """Reward equals the step index the action was taken from: 0, 1, ..., horizon-1.

    The observation is ``[t]`` (float32, in Box(0, horizon)), the number of steps taken in the
    episode, so the undiscounted return is ``horizon * (horizon - 1) / 2`` and the return from any
    step is `known_returns`. The env has no randomness; ``reset(seed=...)`` still seeds
    ``np_random`` as the API requires.

    Example:
        >>> env = gymnasium.make("rlsuite/KnownReturns-v0", horizon=4)
        >>> _ = env.reset(seed=0)
        >>> sum(env.step(0)[1] for _ in range(4))
        6.0
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        horizon: int = 10,
        continuous: bool = False,
        n_actions: int = 2,
        action_dim: int = 1,
        truncate_instead: bool = False,
    ) -> None:
        _require_int("horizon", horizon, minimum=1)
        self.horizon = horizon
        self.truncate_instead = bool(truncate_instead)
        self.observation_space = spaces.Box(0.0, float(horizon), shape=(1,), dtype=np.float32)
        self.action_space = _action_space(continuous, n_actions, action_dim)
        self._t = 0
        self._running = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._running = True
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        _check_action(action, self.action_space)
        if not self._running:
            raise RuntimeError(
                f"step() called before reset() or after the episode ended at step {self.horizon}; call reset() first"
            )
        reward = float(self._t)
        self._t += 1
        ended = self._t >= self.horizon
        self._running = not ended
        obs = np.array([self._t], dtype=np.float32)
        return obs, reward, ended and not self.truncate_instead, ended and self.truncate_instead, {}


class FaultyEnv(ConstantRewardEnv):
    """A `ConstantRewardEnv` that produces ``fault`` at step ``fault_step`` of an episode.

    ``fault`` is one of `FAULTS`. Observation faults touch ``obs[0]`` (``nan_obs``, ``inf_obs``,
    ``obs_out_of_space`` sets it to 2.0 outside [-1, 1]) or the whole array (``wrong_dtype`` returns
    float64, ``wrong_shape`` returns ``obs_dim + 1`` values). ``fault_step=0`` corrupts the reset
    observation; ``fault_step=horizon`` corrupts the last one (``final_obs`` under SAME_STEP
    autoreset). ``fault_episode=None`` faults in every episode, an int only in that episode (counted
    from 0 by ``reset()`` calls). With the defaults (step 5 of 10) the env passes ``check_env``.

    Example:
        >>> env = gymnasium.make("rlsuite/FaultyEnv-v0", fault="nan_reward", fault_step=2)
        >>> _ = env.reset(seed=0)
        >>> [env.step(0)[1] for _ in range(2)]
        [1.0, nan]
    """

    def __init__(
        self,
        fault: str = "nan_reward",
        fault_step: int = 5,
        fault_episode: int | None = None,
        horizon: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon=horizon, **kwargs)
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        _require_int("fault_step", fault_step, minimum=0)
        if fault_step > horizon:
            raise ValueError(f"fault_step must be <= horizon ({horizon}) or it never happens, got {fault_step}")
        if fault.endswith("_reward") and fault_step == 0:
            raise ValueError(f"fault_step must be >= 1 for fault {fault!r}: reset() returns no reward")
        if fault_episode is not None:
            _require_int("fault_episode", fault_episode, minimum=0)
        self.fault = fault
        self.fault_step = fault_step
        self.fault_episode = fault_episode
        self._episode = -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        self._episode += 1
        if self._fault_now():
            obs = self._corrupt(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self._fault_now():
            if self.fault == "nan_reward":
                reward = float("nan")
            elif self.fault == "inf_reward":
                reward = float("inf")
            else:
                obs = self._corrupt(obs)
        return obs, reward, terminated, truncated, info

    def _fault_now(self) -> bool:
        return self._t == self.fault_step and self.fault_episode in (None, self._episode)

    def _corrupt(self, obs: np.ndarray) -> np.ndarray:
        if self.fault == "wrong_dtype":
            return obs.astype(np.float64)
        if self.fault == "wrong_shape":
            return np.append(obs, np.float32(0.0))
        bad = {"nan_obs": np.nan, "inf_obs": np.inf, "obs_out_of_space": 2.0}[self.fault]
        obs[0] = bad
        return obs


def _action_space(continuous: bool, n_actions: int, action_dim: int) -> spaces.Space:
    if continuous:
        _require_int("action_dim", action_dim, minimum=1)
        return spaces.Box(-1.0, 1.0, shape=(action_dim,), dtype=np.float32)
    _require_int("n_actions", n_actions, minimum=1)
    return spaces.Discrete(n_actions)


def _check_action(action: Any, space: spaces.Space) -> None:
    if isinstance(space, spaces.Discrete):
        if not space.contains(action):
            raise ValueError(f"action {action!r} is not in {space}; expected an int in [0, {space.n})")
        return
    action = np.asarray(action)
    if action.shape != space.shape or not np.all(np.isfinite(action)):
        raise ValueError(f"action {action!r} must be a finite array of shape {space.shape} for {space}")


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
