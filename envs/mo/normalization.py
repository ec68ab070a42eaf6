"""Per-objective reward normalisation: each objective divided by the running std of its return.

Axis letters: K reward objectives.

Objectives often differ in scale by orders of magnitude (minecart: ore in [0, 1.5] per step, fuel
around −0.02), so a shared normalisation would drown the small ones. This is gymnasium's
``NormalizeReward`` (the discounted-return variance estimate of stable-baselines3's VecNormalize)
applied to each objective separately.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.mo.common import MOWrapperError, vector_reward_dim

__all__ = ["NormalizeRewardVector"]


class NormalizeRewardVector(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reward ``r_i / sqrt(Var[R_i] + ε)`` per objective i, with ``R_i`` the running discounted return.

    ``R ← γ R + r`` is tracked per objective through each episode; when the episode ends, its values
    of R are folded into the running variance (Chan et al.'s batch update), so within an episode the
    scale is fixed. That lag of one episode is what makes the wrapper deterministic for a given
    seed (gymnasium's ``check_env`` replays a seeded step twice; a per-step update, as gymnasium's
    ``NormalizeReward``, fails that check). An episode cut by ``reset`` is not counted. Statistics
    persist across episodes. The raw vector goes to ``info["reward_vector"]``.
    ``state()`` / ``load(state)`` expose the statistics as JSON (the run checkpoints them).
    Set ``update=False`` to freeze them (evaluation).

    Example:
        >>> import mo_gymnasium
        >>> env = NormalizeRewardVector(gym.make("minecart-v0"), gamma=0.99)
        >>> _ = env.reset(seed=0)
        >>> env.step(0)[1].shape
        (3,)
    """

    def __init__(self, env: gym.Env, gamma: float = 0.99, epsilon: float = 1e-8):
        gym.utils.RecordConstructorArgs.__init__(self, gamma=gamma, epsilon=epsilon)
        gym.Wrapper.__init__(self, env)
        k = vector_reward_dim(env, "NormalizeRewardVector")
        if not (isinstance(gamma, int | float) and 0.0 <= gamma <= 1.0):
            raise MOWrapperError(f"gamma: must be in [0, 1], got {gamma!r}")
        if not (isinstance(epsilon, int | float) and epsilon > 0):
            raise MOWrapperError(f"epsilon: must be > 0, got {epsilon!r}")
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.update = True
        self.reward_space = spaces.Box(-np.inf, np.inf, shape=(k,), dtype=np.float32)
        self._ret_k = np.zeros(k, np.float64)
        self._episode_tk: list[np.ndarray] = []
        self.count = 0.0
        self.mean_k = np.zeros(k, np.float64)
        self.var_k = np.ones(k, np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._ret_k = np.zeros_like(self._ret_k)
        self._episode_tk = []
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward_k = np.asarray(reward, np.float64)
        self._ret_k = self._ret_k * self.gamma + reward_k
        self._episode_tk.append(self._ret_k)
        normed_k = reward_k / np.sqrt(self.var_k + self.epsilon)
        if terminated or truncated:
            if self.update:
                self._observe(np.stack(self._episode_tk))
            self._ret_k = np.zeros_like(self._ret_k)
            self._episode_tk = []
        info = dict(info)
        info.setdefault("reward_vector", reward_k.astype(np.float32))
        return obs, normed_k.astype(np.float32), terminated, truncated, info

    def _observe(self, x_tk: np.ndarray) -> None:
        # Chan et al.'s parallel variance update with one episode as the batch.
        n = float(len(x_tk))
        count = self.count + n
        delta_k = x_tk.mean(axis=0) - self.mean_k
        self.mean_k = self.mean_k + delta_k * n / count
        m2_k = self.var_k * self.count + x_tk.var(axis=0) * n + delta_k**2 * self.count * n / count
        self.var_k = m2_k / count
        self.count = count

    def state(self) -> dict[str, Any]:
        """JSON statistics (count, mean, var); the running return restarts with each episode."""
        return {"count": self.count, "mean": self.mean_k.tolist(), "var": self.var_k.tolist()}

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.count = float(state["count"])
        self.mean_k = np.array(state["mean"], np.float64)
        self.var_k = np.array(state["var"], np.float64)
