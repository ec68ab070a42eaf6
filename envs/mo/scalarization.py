"""Turning a vector reward into a scalar: linear and Chebyshev (Tchebycheff) scalarisation.

Axis letters: K reward objectives.

Linear scalarisation reaches only the points of the Pareto front on its convex hull; Chebyshev
scalarisation reaches every Pareto-optimal point for some weight (Moffaert et al. 2013, "Scalarized
multi-objective reinforcement learning"), but it is a non-linear function of the *return*, so it is
applied to the running return here (see `ChebyshevScalarization`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.mo.common import check_point, check_weights, vector_reward_dim

__all__ = ["ChebyshevScalarization", "LinearScalarization"]


def _scalar_space(low: float, high: float) -> spaces.Box:
    return spaces.Box(low=np.float32(low), high=np.float32(high), shape=(), dtype=np.float32)


class LinearScalarization(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reward ``w · r`` (a float); the vector reward goes to ``info["reward_vector"]``.

    The weights are used as given (not normalised). ``reward_space`` becomes a scalar Box so the
    suite sees K = 1.

    Example:
        >>> import mo_gymnasium  # registers deep-sea-treasure-v0
        >>> env = LinearScalarization(gym.make("deep-sea-treasure-v0"), weights=[0.5, 0.5])
        >>> _ = env.reset(seed=0)
        >>> _, r, *_, info = env.step(1)
        >>> float(r), info["reward_vector"].tolist()
        (-0.5, [0.0, -1.0])
    """

    def __init__(self, env: gym.Env, weights: Sequence[float]):
        gym.utils.RecordConstructorArgs.__init__(self, weights=list(weights))
        gym.Wrapper.__init__(self, env)
        k = vector_reward_dim(env, "LinearScalarization")
        self.weights = check_weights(weights, k, "weights")
        low, high = _bounds(env, k)
        # 0 · inf is nan: objectives with weight 0 do not contribute to the bounds.
        on = self.weights > 0
        self.reward_space = _scalar_space(np.sum(self.weights[on] * low[on]), np.sum(self.weights[on] * high[on]))

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward_k = np.asarray(reward, dtype=np.float64)
        info = dict(info)
        info.setdefault("reward_vector", reward_k.astype(np.float32))
        return obs, float(np.dot(self.weights, reward_k)), terminated, truncated, info


class ChebyshevScalarization(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The Chebyshev utility of the running return, paid out as reward differences.

    With ``G_t`` the undiscounted vector return after t steps, utopia point ``z*`` and weights w,

        S(G) = −max_i w_i (z*_i − G_i),      r_t = S(G_t) − S(G_{t−1}),   G_0 = 0,

    so an episode's scalar rewards sum to ``S(G_T) − S(0)``: the Chebyshev utility of the episode's
    vector return, up to a constant (exact for γ = 1; with γ < 1 it is the usual approximation).
    The utopia point should be at least every achievable return in each objective (e.g. the
    front's ideal point plus a margin). The vector reward goes to ``info["reward_vector"]``.

    Example:
        >>> import mo_gymnasium
        >>> env = ChebyshevScalarization(gym.make("deep-sea-treasure-v0"), weights=[0.5, 0.5],
        ...                              utopia=[24.0, 0.0])
        >>> _ = env.reset(seed=0)
        >>> _, r, *_ = env.step(1)
        >>> float(r)  # S moves from −max(12, 0) to −max(12, 0.5)
        0.0
    """

    def __init__(self, env: gym.Env, weights: Sequence[float], utopia: Sequence[float]):
        gym.utils.RecordConstructorArgs.__init__(self, weights=list(weights), utopia=list(utopia))
        gym.Wrapper.__init__(self, env)
        k = vector_reward_dim(env, "ChebyshevScalarization")
        self.weights = check_weights(weights, k, "weights")
        self.utopia = check_point(utopia, k, "utopia")
        self.reward_space = _scalar_space(-np.inf, np.inf)
        self._return_k = np.zeros(k, np.float64)

    def utility(self, return_k: np.ndarray) -> float:
        """``S(G) = −max_i w_i (z*_i − G_i)``."""
        return -float(np.max(self.weights * (self.utopia - return_k)))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._return_k = np.zeros_like(self._return_k)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward_k = np.asarray(reward, dtype=np.float64)
        before = self.utility(self._return_k)
        self._return_k = self._return_k + reward_k
        info = dict(info)
        info.setdefault("reward_vector", reward_k.astype(np.float32))
        return obs, self.utility(self._return_k) - before, terminated, truncated, info


def _bounds(env: gym.Env, k: int) -> tuple[np.ndarray, np.ndarray]:
    space = env.get_wrapper_attr("reward_space")
    low = np.broadcast_to(np.asarray(getattr(space, "low", -np.inf), np.float64), (k,))
    high = np.broadcast_to(np.asarray(getattr(space, "high", np.inf), np.float64), (k,))
    return low, high
