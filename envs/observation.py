"""Observation encodings that manifests can name under ``env.wrappers``.

``OneHotObservation`` turns a small integer observation (a grid position, a count) into one one-hot
block per dimension. A network then sees every value of a coordinate as its own input instead of
one number on a line, which is what tabular-like tasks such as Deep Sea Treasure need: with the raw
``(row, column)`` a weight-conditioned Q network blends the values of neighbouring cells and
treasures, and misses the convex-hull points whose weight ranges are narrow (see
``experiments/manifests/dst_dqn.yaml``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["MAX_ONE_HOT_WIDTH", "OneHotObservation", "OneHotObservationError"]

MAX_ONE_HOT_WIDTH = 4096
"""Largest encoded observation; wider ones are refused (use an embedding or the raw values)."""


class OneHotObservationError(ValueError):
    """The observation space cannot be one-hot encoded; the message names the space and what to do."""


class OneHotObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Integer ``Box``, ``Discrete`` or ``MultiDiscrete`` observations as concatenated one-hot blocks.

    Dimension ``i`` with values ``low_i..high_i`` becomes ``high_i − low_i + 1`` float32 entries, one
    of them 1. The new space is ``Box(0, 1, (Σ_i sizes,), float32)``. An observation outside the
    original space has no code and raises ``ValueError`` naming the dimension and value (the run's
    env checks would refuse it anyway).

    Example:
        >>> import gymnasium as gym
        >>> env = OneHotObservation(gym.make("FrozenLake-v1"))
        >>> env.observation_space.shape
        (16,)
        >>> obs, _ = env.reset(seed=0)
        >>> int(obs.argmax()), float(obs.sum())
        (0, 1.0)
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if isinstance(space, gym.spaces.Discrete):
            low, high = np.array([space.start]), np.array([space.start + space.n - 1])
        elif isinstance(space, gym.spaces.MultiDiscrete):
            low = np.asarray(space.start, np.int64).ravel()
            high = low + np.asarray(space.nvec, np.int64).ravel() - 1
        elif isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.integer):
            low, high = space.low.astype(np.int64).ravel(), space.high.astype(np.int64).ravel()
        else:
            raise OneHotObservationError(f"OneHotObservation: observation space {space} is not integer (Box of an "
                                         "integer dtype, Discrete or MultiDiscrete); remove the wrapper")
        self._low = low.astype(np.int64)
        self._sizes = high.astype(np.int64) - self._low + 1
        width = int(self._sizes.sum())
        if width > MAX_ONE_HOT_WIDTH:
            raise OneHotObservationError(f"OneHotObservation: {space} would encode to {width} entries (more than "
                                         f"{MAX_ONE_HOT_WIDTH}); remove the wrapper")
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]]).astype(np.int64)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (width,), np.float32)

    def observation(self, observation) -> np.ndarray:
        value = np.asarray(observation).astype(np.int64).ravel()
        index = value - self._low
        bad = np.flatnonzero((index < 0) | (index >= self._sizes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"OneHotObservation: dimension {i} is {int(value[i])}, outside "
                             f"{int(self._low[i])}..{int(self._low[i] + self._sizes[i] - 1)}")
        out = np.zeros(self.observation_space.shape, np.float32)
        out[self._offsets + index] = 1.0
        return out
