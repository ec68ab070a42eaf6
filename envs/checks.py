"""The env contract, enforced at run time on every vector step, and a strict one-shot env check.

`ContractCheck` wraps a ``gymnasium.vector.VectorEnv`` and checks every ``reset`` and ``step``:
observations (and ``info["final_obs"]`` under SAME_STEP autoreset) are finite, have the single
observation space's dtype and shape and lie in it; rewards are finite numbers shaped [N] or [N, K];
``terminated`` / ``truncated`` are bool arrays shaped [N]. A violation names the env index, the
episode, the step in the episode and the vector step, e.g.::

    env 3, episode 12, step 57 (vector step 1043): reward is nan; the env returned a non-finite
    reward — fix the env or add a reward-clipping wrapper

Counting (shared with `envs.testing`): env indices and episodes count from 0; ``reset()`` gives
step 0 of an episode and the k-th ``step()`` in it is step k; the vector step counts ``step()``
calls on the vector env. The batch is checked with vectorised numpy first; the per-env loop that
locates the offender runs only when that fast check fails.

Actions: for a float ``Box`` action space every action batch is checked for NaN/inf before it
reaches the envs (one vectorised ``isfinite`` over the batch), so a diverged policy is named as
such (kind ``action_nonfinite``) instead of coming back as a non-finite reward blamed on the env.

Sub-env observations: ``SyncVectorEnv`` / ``AsyncVectorEnv`` copy sub-env observations into a batch
array of the declared dtype and shape, so a sub-env's wrong dtype would be cast silently and a
wrong shape would raise inside gymnasium before this wrapper sees the step. `SubEnvObsCheck`, the
outermost wrapper of each sub-env the suite builds (``experiments.session.build_envs``), checks
shape and (``Box``) dtype before the batching; `ContractCheck` turns its finding into the usual
error naming env, episode and step. In ``mode="warn"`` a wrong dtype warns and is cast; a wrong
shape always raises (the batch cannot hold it).

`check_env_strict` runs gymnasium's ``check_env`` and returns every warning and error as text, for
``rl check-env``, which fails on any.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

__all__ = ["ADVISORY_WARNINGS", "ContractCheck", "EnvContractError", "EnvContractWarning", "SubEnvObsCheck",
           "check_env_strict"]

_HINTS = {
    "obs": "the env returned an observation that breaks its observation space — fix the env or its space",
    "obs_nonfinite": "the env returned a non-finite observation — fix the env or add an observation-clipping wrapper",
    "final_obs_missing": "a SAME_STEP vector env must put the last observation of an ended episode in "
    'info["final_obs"] with info["_final_obs"] as the mask',
    "reward": "a vector env must return rewards as a numeric array shaped [num_envs] or [num_envs, K]",
    "reward_nonfinite": "the env returned a non-finite reward — fix the env or add a reward-clipping wrapper",
    "flags": "terminated and truncated must be bool arrays shaped [num_envs]",
    "api": "step() must return (obs, reward, terminated, truncated, info) with info a dict",
    "action_nonfinite": "the policy returned a non-finite action: training diverged (lower the learning rate, "
    "clip gradients) or the agent has a bug; the env is not to blame",
}


class EnvContractError(ValueError):
    """An env broke its contract; the message is one line naming where and what to do.

    Attributes ``kind`` (e.g. ``"reward_nonfinite"``), ``env_index`` (None when the whole batch is
    wrong), ``episode``, ``step`` and ``vector_step`` say where, for code that records it.
    """

    def __init__(
        self,
        message: str,
        kind: str,
        env_index: int | None = None,
        episode: int | None = None,
        step: int | None = None,
        vector_step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.env_index = env_index
        self.episode = episode
        self.step = step
        self.vector_step = vector_step


class EnvContractWarning(UserWarning):
    """`ContractCheck` in ``mode="warn"`` warns with this category, once per kind of violation."""


class _SubEnvObsError(Exception):
    """Raised by `SubEnvObsCheck` through the vector env; `ContractCheck` reports it with env, episode, step."""

    def __init__(self, index: int, kind: str, what: str, during: str):
        super().__init__(f"env {index}: {what}")
        self.index, self.kind, self.what, self.during = index, kind, what, during


class SubEnvObsCheck(gymnasium.Wrapper):
    """Checks the shape (and, for a ``Box``, the dtype) of one sub-env's observations before a vector
    env batches them; wrap each sub-env with it outermost and the vector env with `ContractCheck`.

    ``strict_dtype=False`` (``ContractCheck(mode="warn")``) warns once about a wrong dtype and lets
    the vector env cast it. Cost: a shape and a dtype comparison per sub-env step.
    """

    def __init__(self, env: gymnasium.Env, index: int, strict_dtype: bool = True) -> None:
        super().__init__(env)
        self.index = index
        space = env.observation_space
        known = isinstance(space, spaces.Box | spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary)
        self._shape = space.shape if known else None
        self._dtype = space.dtype if isinstance(space, spaces.Box) else None
        self._strict_dtype = strict_dtype
        self._warned = False

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._check(obs, "reset")
        return obs, info

    def step(self, action):
        result = self.env.step(action)
        self._check(result[0], "step")
        return result

    def _check(self, obs: Any, during: str) -> None:
        if self._shape is None:
            return
        if np.shape(obs) != self._shape:
            raise _SubEnvObsError(self.index, "obs_shape", f"observation shape is {np.shape(obs)}, expected "
                                  f"{self._shape} (the vector env cannot batch it)", during)
        if self._dtype is not None and isinstance(obs, np.ndarray | np.generic) and obs.dtype != self._dtype:
            what = f"observation dtype is {obs.dtype}, expected {self._dtype}"
            if self._strict_dtype:
                raise _SubEnvObsError(self.index, "obs_dtype", f"{what} (the vector env would cast it silently)",
                                      during)
            if not self._warned:
                self._warned = True
                warnings.warn(f"env {self.index}: {what}; the vector env casts it", EnvContractWarning, stacklevel=3)


class ContractCheck(VectorWrapper, gymnasium.utils.RecordConstructorArgs):
    """Check every reset and step of a vector env against the env contract; raise or warn.

    ``mode="error"`` (the default) raises `EnvContractError` before the bad value is returned;
    ``mode="warn"`` warns with `EnvContractWarning` once per kind and counts every violation in
    ``violation_counts`` (kind -> number of env-steps). Structural violations (a step that is not a
    5-tuple, an info that is not a dict) raise in both modes. Results pass through unchanged.
    Counters: ``episode_n`` and ``step_in_episode_n`` ([N] int64) and ``vector_step``.

    Example:
        >>> import gymnasium
        >>> import envs
        >>> vec = gymnasium.vector.SyncVectorEnv(
        ...     [lambda: gymnasium.make("rlsuite/FaultyEnv-v0", fault="nan_reward", fault_step=2)],
        ...     autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
        >>> vec = ContractCheck(vec)
        >>> _ = vec.reset(seed=0)
        >>> _ = vec.step(vec.action_space.sample())
        >>> try:
        ...     vec.step(vec.action_space.sample())
        ... except EnvContractError as err:
        ...     print(str(err).split(";")[0])
        env 0, episode 0, step 2 (vector step 2): reward is nan
    """

    def __init__(self, env: VectorEnv, mode: str = "error") -> None:
        if mode not in ("error", "warn"):
            raise ValueError(f"mode must be 'error' or 'warn', got {mode!r}")
        gymnasium.utils.RecordConstructorArgs.__init__(self, mode=mode)
        VectorWrapper.__init__(self, env)
        self.mode = mode
        mode_tag = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.autoreset_mode = AutoresetMode(mode_tag)
        self.episode_n = np.full(self.num_envs, -1, dtype=np.int64)
        self.step_in_episode_n = np.zeros(self.num_envs, dtype=np.int64)
        self.vector_step = 0
        self.violation_counts: dict[str, int] = {}
        self._warned: set[str] = set()
        self._ended_n = np.zeros(self.num_envs, dtype=bool)
        self._space = self.single_observation_space
        self._in_bounds = _bounds_check(self._space)
        act = self.single_action_space
        self._float_actions = isinstance(act, spaces.Box) and np.issubdtype(act.dtype, np.floating)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        # SyncVectorEnv pops "reset_mask" from options, so read it first.
        mask = None if options is None else options.get("reset_mask")
        try:
            obs, info = self.env.reset(seed=seed, options=options)
        except _SubEnvObsError as err:
            self._sub_env_failed(err, in_step=False)
        reset_n = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self._start_episodes(reset_n)
        self._ended_n = self._ended_n & ~reset_n
        if not isinstance(info, dict):
            self._fail("api", None, f"reset() returned info of type {type(info).__name__}", force=True)
        self._check_obs_batch(obs)
        return obs, info

    def step(self, actions):
        if self._float_actions and not np.isfinite(actions).all():  # one vectorised pass over the batch
            self._check_actions(actions)
        try:
            result = self.env.step(actions)
        except _SubEnvObsError as err:
            self._sub_env_failed(err, in_step=True)
        self.vector_step += 1
        if not isinstance(result, tuple) or len(result) != 5:
            got = f"a {len(result)}-tuple" if isinstance(result, tuple) else f"a {type(result).__name__}"
            self._fail("api", None, f"step() returned {got}", force=True)
        obs, reward, terminated, truncated, info = result
        if not isinstance(info, dict):
            self._fail("api", None, f"step() returned info of type {type(info).__name__}", force=True)
        self.step_in_episode_n += 1
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # This step only reset the envs that ended on the previous one.
            self._start_episodes(self._ended_n)
        ended_n = self._check_flags(terminated, truncated)
        self._check_reward(reward)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._check_final_obs(info, ended_n)
            # The returned obs of an ended env is step 0 of its next episode.
            self._start_episodes(ended_n)
        else:
            self._ended_n = ended_n
        self._check_obs_batch(obs)
        return result

    def _check_actions(self, actions: Any) -> None:
        """Name the first env whose action is non-finite (the slow path, after the batch check failed)."""
        act_n = np.asarray(actions).reshape(self.num_envs, -1)
        bad_n = ~np.isfinite(act_n).all(axis=1)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            bad_n &= ~self._ended_n  # these envs only reset on this step and ignore their action
        for i in np.flatnonzero(bad_n):
            action = np.asarray(actions)[i]
            index = tuple(int(k) for k in np.argwhere(~np.isfinite(action))[0]) if action.ndim else ()
            self._fail("action_nonfinite", int(i), f"action{_index(index)} is {_fmt(action[index])}", ahead=1)

    def _sub_env_failed(self, err: _SubEnvObsError, in_step: bool) -> None:
        """Report what `SubEnvObsCheck` found in sub-env ``err.index`` (the vector step did not finish)."""
        i = err.index
        vector_step = self.vector_step + in_step
        if err.during == "reset":  # a reset, or an autoreset inside a step: step 0 of the next episode
            episode, step = int(self.episode_n[i]) + 1, 0
        else:
            episode, step = int(self.episode_n[i]), int(self.step_in_episode_n[i]) + 1
        message = f"env {i}, episode {episode}, step {step} (vector step {vector_step}): {err.what}; {_HINTS['obs']}"
        self.violation_counts[err.kind] = self.violation_counts.get(err.kind, 0) + 1
        raise EnvContractError(message, err.kind, i, episode, step, vector_step) from None

    def _start_episodes(self, start_n: np.ndarray) -> None:
        # Arithmetic on the [N] masks rather than fancy indexing: this runs on every step.
        self.episode_n += start_n
        self.step_in_episode_n *= ~start_n

    def _where(self, i: int | None, ahead: int = 0) -> str:
        if i is None:
            return f"all envs (vector step {self.vector_step + ahead})"
        return (f"env {i}, episode {self.episode_n[i]}, step {self.step_in_episode_n[i] + ahead} "
                f"(vector step {self.vector_step + ahead})")

    def _fail(self, kind: str, i: int | None, what: str, force: bool = False, ahead: int = 0) -> None:
        """``ahead=1``: about the step that is to come (an action), not the one that was returned."""
        self.violation_counts[kind] = self.violation_counts.get(kind, 0) + 1
        hint = _HINTS.get(kind) or _HINTS["obs_nonfinite" if kind.endswith("nonfinite") else "obs"]
        message = f"{self._where(i, ahead)}: {what}; {hint}"
        if self.mode == "error" or force:
            episode = None if i is None else int(self.episode_n[i])
            step = None if i is None else int(self.step_in_episode_n[i]) + ahead
            raise EnvContractError(message, kind, i, episode, step, self.vector_step + ahead)
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, EnvContractWarning, stacklevel=4)

    def _check_flags(self, terminated: Any, truncated: Any) -> np.ndarray:
        for name, flags in (("terminated", terminated), ("truncated", truncated)):
            if not isinstance(flags, np.ndarray) or flags.dtype != np.bool_ or flags.shape != (self.num_envs,):
                got = (
                    f"{flags.dtype} array of shape {flags.shape}"
                    if isinstance(flags, np.ndarray)
                    else type(flags).__name__
                )
                self._fail("flags", None, f"{name} is {got}", force=True)
        return np.logical_or(terminated, truncated)

    def _check_reward(self, reward: Any) -> None:
        reward = np.asarray(reward)
        n = self.num_envs
        if reward.ndim not in (1, 2) or reward.shape[0] != n or reward.dtype.kind not in "iuf":
            self._fail("reward", None, f"reward has shape {reward.shape} and dtype {reward.dtype}")
            return
        if np.isfinite(reward).all():
            return
        bad_n = ~np.isfinite(reward.reshape(n, -1)).all(axis=1)
        for i in np.flatnonzero(bad_n):
            self._fail("reward_nonfinite", int(i), f"reward is {_fmt(reward[i])}")

    def _check_final_obs(self, info: dict, ended_n: np.ndarray) -> None:
        if not ended_n.any():
            return
        has_n = np.asarray(info.get("_final_obs", np.zeros(self.num_envs, dtype=bool)), dtype=bool)
        for i in np.flatnonzero(ended_n & ~has_n):
            self._fail("final_obs_missing", int(i), 'the episode ended but info has no "final_obs"')
        for i in np.flatnonzero(has_n):
            problem = _obs_problem(info["final_obs"][i], self._space, 'info["final_obs"]')
            if problem is not None:
                self._fail(f"final_obs_{problem[0]}", int(i), problem[1])

    def _check_obs_batch(self, obs: Any) -> None:
        space = self._space
        if self._in_bounds is not None:
            expected = (self.num_envs, *space.shape)
            if not isinstance(obs, np.ndarray):
                return self._fail("obs_type", None, f"observation batch is a {type(obs).__name__}, not an array")
            if obs.dtype != space.dtype:
                return self._fail("obs_dtype", None, f"observation batch dtype is {obs.dtype}, expected {space.dtype}")
            if obs.shape != expected:
                return self._fail("obs_shape", None, f"observation batch shape is {obs.shape}, expected {expected}")
            if self._in_bounds(obs):
                return
            batch_n: Iterator[Any] = iter(obs)
        else:
            batch_n = gymnasium.vector.utils.iterate(self.observation_space, obs)
        for i, obs_i in enumerate(batch_n):
            problem = _obs_problem(obs_i, space, "observation")
            if problem is not None:
                self._fail(f"obs_{problem[0]}", i, problem[1])


def _bounds_check(space: spaces.Space):
    """The vectorised fast path: a function telling whether a dtype- and shape-checked batch is in space.

    For a float Box, infinite bounds are replaced by the dtype's largest finite value, so the two
    comparisons also reject NaN (it compares False) and ±inf: one pass checks finiteness and bounds.
    """
    if isinstance(space, spaces.Box):
        if np.issubdtype(space.dtype, np.floating):
            big = np.finfo(space.dtype).max
            low, high = np.maximum(space.low, -big), np.minimum(space.high, big)
        else:
            low, high = space.low, space.high
        return lambda obs: bool(((obs >= low) & (obs <= high)).all())
    if isinstance(space, spaces.Discrete):
        start, stop = space.start, space.start + space.n
        return lambda obs: bool(((obs >= start) & (obs < stop)).all())
    if isinstance(space, spaces.MultiDiscrete):
        start, stop = space.start, space.start + space.nvec
        return lambda obs: bool(((obs >= start) & (obs < stop)).all())
    if isinstance(space, spaces.MultiBinary):
        return lambda obs: bool(((obs == 0) | (obs == 1)).all())
    return None


def _obs_problem(obs: Any, space: spaces.Space, name: str) -> tuple[str, str] | None:
    """(kind, what is wrong) for one env's observation called ``name``, or None when it is fine."""
    if isinstance(space, spaces.Box):
        if not isinstance(obs, np.ndarray | np.generic):
            return "type", f"{name} is a {type(obs).__name__}, expected a numpy array"
        obs = np.asarray(obs)  # a numpy scalar for a shape-() Box; Box.contains wants an array
        if obs.dtype != space.dtype:
            return "dtype", f"{name} dtype is {obs.dtype}, expected {space.dtype}"
        if obs.shape != space.shape:
            return "shape", f"{name} shape is {obs.shape}, expected {space.shape}"
    for path, leaf in _leaves(obs, name):
        if np.issubdtype(leaf.dtype, np.inexact) and not np.isfinite(leaf).all():
            index = tuple(int(k) for k in np.argwhere(~np.isfinite(leaf))[0])
            return "nonfinite", f"{path}{_index(index)} is {_fmt(leaf[index])}"
    if space.contains(obs):
        return None
    outside = np.argwhere((obs < space.low) | (obs > space.high)) if isinstance(space, spaces.Box) else []
    if len(outside):
        index = tuple(int(k) for k in outside[0])
        bounds = f"[{_fmt(space.low[index])}, {_fmt(space.high[index])}]"
        return "out_of_space", f"{name}{_index(index)} = {_fmt(obs[index])} is outside {bounds} of {space}"
    return "out_of_space", f"{name} = {_fmt(obs)} is not in {space}"


def _index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]" if index else ""


def _leaves(obs: Any, path: str) -> Iterator[tuple[str, np.ndarray]]:
    if isinstance(obs, dict):
        for key, value in obs.items():
            yield from _leaves(value, f"{path}[{key!r}]")
    elif isinstance(obs, tuple):
        for k, value in enumerate(obs):
            yield from _leaves(value, f"{path}[{k}]")
    else:
        yield path, np.asarray(obs)


def _fmt(value: Any, limit: int = 80) -> str:
    if isinstance(value, np.ndarray | np.generic) and np.size(value) <= 8:
        text = str(np.asarray(value).tolist())
    elif isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=8, separator=", ").replace("\n", " ")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ANSI = re.compile(r"\x1b\[[0-9;]*m")

ADVISORY_WARNINGS = (
    "A Box observation space minimum value is -infinity. This is probably too low.",
    "A Box observation space maximum value is infinity. This is probably too high.",
    "For Box action spaces, we recommend using a symmetric and normalized space (range=[-1, 1] or [0, 1]). "
    "See https://stable-baselines3.readthedocs.io/en/master/guide/rl_tips.html for more information.",
)
"""``check_env`` advice about space design that `check_env_strict` does not count as a failure: the
list gymnasium's own ``tests/envs/test_envs.py::test_all_env_api`` ignores (CartPole's velocities
are unbounded by design)."""


def check_env_strict(env_id: str, **kwargs: Any) -> list[str]:
    """Run gymnasium's ``check_env`` on ``gymnasium.make(env_id, **kwargs).unwrapped``.

    Returns every warning raised while making and checking the env (except `ADVISORY_WARNINGS`) and,
    last, the exception ``check_env`` raised if any, one string each; an empty list means the env
    passed. Gymnasium's logger is set to WARN for the call so a quieter global level cannot hide
    warnings. The render check is skipped, as in gymnasium's own env tests, because it opens windows.
    Errors from ``gymnasium.make`` (unknown id, bad kwargs) propagate: the env could not be built,
    which is a different failure from breaking the contract. ``check_env`` takes only a few steps
    after ``reset``, so faults later in an episode need `ContractCheck`.

    Example:
        >>> check_env_strict("CartPole-v1")
        []
    """
    old_level = gymnasium.logger.min_level
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium.logger.min_level = gymnasium.logger.WARN
        try:
            env = gymnasium.make(env_id, **kwargs)
            try:
                check_env(env.unwrapped, skip_render_check=True)
            except Exception as exc:  # every failure of the env becomes a reported problem
                problems.append(_describe(exc))
            finally:
                env.close()
        finally:
            gymnasium.logger.min_level = old_level
    messages = [(w.category.__name__, _ANSI.sub("", str(w.message))) for w in caught]
    warned = [f"{name}: {text}" for name, text in messages if text.removeprefix("WARN: ") not in ADVISORY_WARNINGS]
    return warned + problems


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if not str(exc):
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text += f"(raised in {frame.name} at {frame.filename}:{frame.lineno})"
    return text
