"""Weight-conditioned observations: the episode's objective weights appended to the observation.

Axis letters: D observation features of the wrapped env, K reward objectives.

A weight-conditioned agent (one policy for every trade-off, Abels et al. 2019; Yang et al. 2019)
sees ``[obs, w]`` and learns for the weight w it is shown. The reward stays a vector; agents combine
it with the weights they read from the last K observation entries.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.mo.common import MOWrapperError, check_weights, vector_reward_dim

__all__ = ["WEIGHT_DISTRIBUTIONS", "WeightConditionedObservation", "sample_weights"]

WEIGHT_DISTRIBUTIONS = ("uniform", "dirichlet", "corners", "fixed")
"""``uniform``: uniform on the simplex (Dirichlet(1, …, 1)); ``dirichlet``: Dirichlet(alpha, …);
``corners``: one objective at weight 1, chosen uniformly; ``fixed``: always ``weights``."""

_STREAM = zlib.crc32(b"rlsuite/WeightConditionedObservation")


def sample_weights(rng: np.random.Generator, k: int, distribution: str, alpha: float = 1.0,
                   mask_k: np.ndarray | None = None) -> np.ndarray:
    """One weight vector ``[K]`` on the simplex from a named distribution.

    ``mask_k`` (bool) restricts the draw to a face of the simplex: masked-out objectives get weight 0
    and the others are drawn as if K were their number (objective sub-sampling).
    """
    active = np.flatnonzero(mask_k) if mask_k is not None else np.arange(k)
    w = np.zeros(k, np.float64)
    if distribution in ("uniform", "dirichlet"):
        a = 1.0 if distribution == "uniform" else alpha
        w[active] = rng.dirichlet(np.full(len(active), a))
    elif distribution == "corners":
        w[rng.choice(active)] = 1.0
    else:
        raise MOWrapperError(f"distribution: cannot sample from {distribution!r}; choose one of "
                             f"{', '.join(d for d in WEIGHT_DISTRIBUTIONS if d != 'fixed')}")
    return w


class WeightConditionedObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Append the episode's weights (float32, each in [0, 1], summing to 1) to a flat Box observation.

    Weights are chosen at every ``reset``, first match wins:

    1. ``reset(options={"weights": w})`` — this episode only (used by Pareto sweeps);
    2. ``set_weights(w)`` — every episode from now on, until ``set_weights(None)``;
    3. ``weight_source`` — a callable ``mask_k -> w`` installed by the run (it samples from the run's
       own ``"weights"`` generator, so checkpoints hold its state);
    4. the named ``distribution`` (``weights`` for ``fixed``), drawn from the wrapper's own generator,
       seeded by ``reset(seed=...)`` and otherwise continuing, so the sequence is deterministic.

    Given or fixed weights are normalised to sum to 1. The current weights are in ``info["weights"]``.

    Example:
        >>> import mo_gymnasium
        >>> env = WeightConditionedObservation(gym.make("deep-sea-treasure-v0"), distribution="fixed",
        ...                                    weights=[1.0, 3.0])
        >>> obs, info = env.reset(seed=0)
        >>> obs.tolist(), info["weights"].tolist()
        ([0.0, 0.0, 0.25, 0.75], [0.25, 0.75])
    """

    def __init__(self, env: gym.Env, distribution: str = "uniform", weights: Sequence[float] | None = None,
                 alpha: float = 1.0):
        gym.utils.RecordConstructorArgs.__init__(self, distribution=distribution,
                                                 weights=None if weights is None else list(weights), alpha=alpha)
        gym.Wrapper.__init__(self, env)
        k = vector_reward_dim(env, "WeightConditionedObservation")
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise MOWrapperError(f"env: WeightConditionedObservation needs a flat Box observation space, got {space}")
        if distribution not in WEIGHT_DISTRIBUTIONS:
            raise MOWrapperError(f"distribution: unknown {distribution!r}; "
                                 f"choose one of {', '.join(WEIGHT_DISTRIBUTIONS)}")
        if not (np.isfinite(alpha) and alpha > 0):
            raise MOWrapperError(f"alpha: the Dirichlet concentration must be > 0, got {alpha!r}")
        if distribution == "fixed" and weights is None:
            raise MOWrapperError("weights: distribution 'fixed' needs weights (one per objective)")
        if distribution != "fixed" and weights is not None:
            raise MOWrapperError(f"weights: only used with distribution 'fixed', got distribution {distribution!r}")
        self.reward_dim = k
        self.distribution = distribution
        self.alpha = float(alpha)
        self._configured = None if weights is None else _normalised(check_weights(weights, k, "weights"))
        self._fixed = self._configured
        self.weight_source: Callable[[np.ndarray | None], np.ndarray] | None = None
        self.objective_mask: np.ndarray | None = None
        self._rng = np.random.default_rng()
        self.weights = self._fixed if self._fixed is not None else np.full(k, 1.0 / k)
        low = np.concatenate([space.low.astype(np.float32), np.zeros(k, np.float32)])
        high = np.concatenate([space.high.astype(np.float32), np.ones(k, np.float32)])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def set_weights(self, weights: Sequence[float] | None) -> None:
        """Use these weights (normalised) for every following episode; None goes back to the configured
        behaviour (sampling, or the constructor's fixed weights)."""
        self._fixed = self._configured if weights is None else _normalised(
            check_weights(weights, self.reward_dim, "weights"))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A weight vector from this wrapper's distribution, drawn from ``rng``."""
        if self.distribution == "fixed":
            return self._configured.copy()
        return sample_weights(rng, self.reward_dim, self.distribution, self.alpha, self.objective_mask)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([seed, _STREAM])
        options = dict(options or {})
        given = options.pop("weights", None)
        obs, info = self.env.reset(seed=seed, options=options or None)
        if given is not None:
            w = _normalised(check_weights(given, self.reward_dim, 'reset options["weights"]'))
        elif self._fixed is not None:
            w = self._fixed.copy()
        elif self.weight_source is not None:
            w = _normalised(check_weights(self.weight_source(self.objective_mask), self.reward_dim, "weight_source"))
        else:
            w = self.sample(self._rng)
        self.weights = w
        return self._obs(obs), self._info(info)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), reward, terminated, truncated, self._info(info)

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(obs, np.float32).ravel(), self.weights.astype(np.float32)])

    def _info(self, info: dict) -> dict:
        info = dict(info)
        info["weights"] = self.weights.astype(np.float32)
        return info


def _normalised(w_k: np.ndarray) -> np.ndarray:
    return w_k / w_k.sum()
