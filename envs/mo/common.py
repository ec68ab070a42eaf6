"""Shared checks for the multi-objective wrappers: reward dimension, weight vectors, wrapper lookup.

Axis letters: K reward objectives.

Conventions of every wrapper in `envs.mo`: the env's ``reward_space`` (MO-Gymnasium's convention) is
a Box of shape ``[K]``; a wrapper that changes the reward keeps the env's own vector reward in
``info["reward_vector"]`` (the innermost one wins, so an outer wrapper never overwrites it), and
never mutates the arrays it was given.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

__all__ = ["MOWrapperError", "check_point", "check_weights", "find_wrapper", "reward_space_of", "vector_reward_dim"]


class MOWrapperError(ValueError):
    """A multi-objective wrapper got a bad argument or a scalar-reward env; the message names the argument."""


def reward_space_of(env: gym.Env) -> gym.spaces.Space | None:
    """The ``reward_space`` an env (or a wrapper in its chain) declares, or None."""
    try:
        return env.get_wrapper_attr("reward_space")
    except AttributeError:
        return None


def vector_reward_dim(env: gym.Env, wrapper: str) -> int:
    """K of a multi-objective env, or MOWrapperError naming ``wrapper`` if the env has scalar rewards."""
    space = reward_space_of(env)
    shape = getattr(space, "shape", None)
    if space is None or shape is None or len(shape) != 1 or shape[0] < 2:
        env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise MOWrapperError(
            f"env: {wrapper} needs a multi-objective env (a reward_space of shape [K], K >= 2); "
            f"{env_id} has reward_space {space} — use an MO-Gymnasium env such as deep-sea-treasure-v0"
        )
    return int(shape[0])


def check_weights(weights: Sequence[float] | np.ndarray, k: int, name: str = "weights") -> np.ndarray:
    """``weights`` as a float64 ``[K]`` copy, or MOWrapperError: wrong length, non-finite, negative, all zero."""
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise MOWrapperError(f"{name}: expected {k} numbers, got {weights!r}") from None
    if w.ndim != 1 or w.shape[0] != k:
        raise MOWrapperError(f"{name}: expected {k} weights (one per objective), got {w.size}: {weights!r}")
    if not np.isfinite(w).all():
        raise MOWrapperError(f"{name}: weights must be finite, got {weights!r}")
    if (w < 0).any():
        raise MOWrapperError(f"{name}: weights must be >= 0, got {weights!r}")
    if not (w > 0).any():
        raise MOWrapperError(f"{name}: at least one weight must be > 0, got {weights!r}")
    return w


def check_point(point: Sequence[float] | np.ndarray, k: int, name: str) -> np.ndarray:
    """A finite float64 ``[K]`` point (e.g. a utopia point), or MOWrapperError naming ``name``."""
    try:
        p = np.array(point, dtype=np.float64)
    except (TypeError, ValueError):
        raise MOWrapperError(f"{name}: expected {k} numbers, got {point!r}") from None
    if p.ndim != 1 or p.shape[0] != k:
        raise MOWrapperError(f"{name}: expected {k} numbers (one per objective), got {p.size}: {point!r}")
    if not np.isfinite(p).all():
        raise MOWrapperError(f"{name}: values must be finite, got {point!r}")
    return p


def find_wrapper(env: gym.Env, cls: type) -> gym.Env | None:
    """The outermost wrapper of type ``cls`` in ``env``'s chain, or None."""
    while True:
        if isinstance(env, cls):
            return env
        if not isinstance(env, gym.Wrapper):
            return None
        env = env.env
