"""Building the vector envs a run trains and evaluates on.

By default the suite builds a gymnasium ``SyncVectorEnv`` with ``autoreset_mode=SAME_STEP``: a step
that ends an episode carries the true last observation in ``info["final_obs"]``. On request
(``env.vectorization: vector``) on-policy training uses the env's own batched implementation, with
NEXT_STEP autoreset (:func:`make_native_vector_env`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper

__all__ = ["EnvBuildError", "check_env_id", "make_native_vector_env", "make_vector_env", "reward_dim_of",
           "resolve_wrapper"]

MO_GYMNASIUM_IDS = frozenset({
    "breakable-bottles-v0", "deep-sea-treasure-v0", "deep-sea-treasure-concave-v0", "deep-sea-treasure-mirrored-v0",
    "fishwood-v0", "four-room-v0", "fruit-tree-v0", "minecart-v0", "minecart-deterministic-v0", "minecart-rgb-v0",
    "resource-gathering-v0", "water-reservoir-v0",
})
"""MO-Gymnasium ids without the ``mo-`` prefix (they register when ``mo_gymnasium`` is imported)."""

_EXTRA_WRAPPERS: dict[str, Callable[..., gym.Env]] = {}


class EnvBuildError(ValueError):
    """The env or a wrapper cannot be built; the message names the field."""


def register_wrapper(name: str, cls: Callable[..., gym.Env]) -> None:
    """Make an rlsuite wrapper available to manifests under ``name``."""
    _EXTRA_WRAPPERS[name] = cls


def check_env_id(env_id: str) -> None:
    """Raise EnvBuildError listing close ids if ``env_id`` is not registered."""
    _import_optional_env_packages(env_id)
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f"; close ids: {', '.join(close)}" if close else ""
    raise EnvBuildError(f"env.id: unknown env id {env_id!r}{hint}")


def _import_optional_env_packages(env_id: str) -> None:
    # Multi-objective envs register on import of mo_gymnasium; only import it when asked for.
    if env_id.startswith("mo-") or env_id in MO_GYMNASIUM_IDS:
        try:
            import mo_gymnasium  # noqa: F401
        except ImportError:
            pass


def resolve_wrapper(name: str) -> Callable[..., gym.Env]:
    """A wrapper class by name: rlsuite's own first, then ``gymnasium.wrappers``."""
    if name in _EXTRA_WRAPPERS:
        return _EXTRA_WRAPPERS[name]
    cls = getattr(gym.wrappers, name, None)
    if isinstance(cls, type) and issubclass(cls, gym.Wrapper):
        return cls
    known = sorted(set(_EXTRA_WRAPPERS) | {n for n in dir(gym.wrappers) if n[0].isupper()})
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EnvBuildError(f"env.wrappers: unknown wrapper {name!r}{hint}")


def make_vector_env(
    env_id: str,
    num_envs: int,
    kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    sub_env_hook: Callable[[gym.Env, int], gym.Env] | None = None,
) -> VectorEnv:
    """A ``SyncVectorEnv`` of ``num_envs`` copies with the wrapper chain, SAME_STEP autoreset.

    ``sub_env_hook(env, index)`` may wrap sub-env ``index`` further (e.g. a curriculum wrapper
    that needs to know which sub-env asks for a task).
    """
    check_env_id(env_id)
    chain = [partial(resolve_wrapper(name), **dict(wkw)) for name, wkw in wrappers]

    def make_one(index: int) -> gym.Env:
        env = gym.make(env_id, **dict(kwargs or {}))
        for wrap in chain:
            env = wrap(env)
        return sub_env_hook(env, index) if sub_env_hook is not None else env

    try:
        vec = SyncVectorEnv([partial(make_one, i) for i in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)
    except (TypeError, ValueError) as err:
        raise EnvBuildError(f"env.kwargs or env.wrappers: {env_id} rejected an argument: {err}") from None
    k = reward_dim_of(vec)
    if k > 1:
        # SyncVectorEnv stores rewards in an [N] array; vector rewards need [N, K] (MO-Gymnasium's
        # MOSyncVectorEnv makes the same swap but supports only NEXT_STEP autoreset).
        vec._rewards = np.zeros((num_envs, k), np.float64)
    return vec


class _SeedList(VectorWrapper):
    """Lets a native vector env take the list of per-sub-env seeds the suite resets with.

    Its sub-envs share one generator, so the first seed of the list seeds it (the seeds are split from
    the run seed, so runs stay reproducible); a plain int or None passes through.
    """

    def reset(self, *, seed=None, options=None):
        if isinstance(seed, list | tuple):
            seed = None if not seed else seed[0]
        return self.env.reset(seed=seed, options=options)


def make_native_vector_env(env_id: str, num_envs: int, kwargs: Mapping[str, Any] | None = None) -> VectorEnv:
    """The env's own batched implementation (its ``vector_entry_point``), NEXT_STEP autoreset.

    Much faster than ``num_envs`` Python envs for envs that have one (CartPole-v1: one numpy step
    for all sub-envs); see ``env.vectorization`` in the manifest reference.
    """
    check_env_id(env_id)
    if gym.spec(env_id).vector_entry_point is None:
        raise EnvBuildError(f"env.vectorization=vector: {env_id} has no vectorised implementation "
                            "(vector_entry_point); use vectorization: sync")
    try:
        vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **dict(kwargs or {}))
    except (TypeError, ValueError) as err:
        raise EnvBuildError(f"env.kwargs: {env_id}'s vectorised implementation rejected an argument: {err}") from None
    return _SeedList(vec)


def reward_dim_of(envs: VectorEnv) -> int:
    """K: the number of reward objectives (1 for scalar-reward envs)."""
    space = getattr(envs.unwrapped, "reward_space", None)
    if space is None:
        try:
            # The base vector env: vector wrappers (e.g. envs.checks.ContractCheck) have no get_attr.
            space = envs.unwrapped.get_attr("reward_space")[0]
        except AttributeError:
            space = None
    if space is None:
        return 1
    return int(np.prod(space.shape)) if space.shape else 1
