"""The curriculum wrapper: each reset asks a task source for the next task of this sub-env, and each
finished episode is reported back with its task, return and success.

The wrapper fetches the task itself because a vector env's SAME_STEP autoreset calls ``reset()``
without options. Reporting happens inside ``step`` on the step that ends the episode, so in a
``SyncVectorEnv`` the order of reports and samples is fixed (sub-env 0 first, then 1, ...), which
keeps a run with a learning teacher deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from envs.curriculum.spaces import CurriculumError, Task, TaskSpace

__all__ = ["CurriculumWrapper", "FixedTasks", "TaskSource", "resolve_task", "task_space_of"]


class TaskSource(Protocol):
    """Who hands out tasks to sub-envs and hears how their episodes went (a teacher's front end)."""

    def next_task(self, index: int) -> Task:
        """The task of the next episode of sub-env ``index``."""
        ...

    def episode_end(self, index: int, task: Task, ret: float, success: bool | None, length: int) -> None:
        """Sub-env ``index`` finished an episode of ``task`` with return ``ret`` after ``length`` steps."""
        ...


class FixedTasks:
    """A task source that gives sub-env ``i`` the task ``tasks[i % len(tasks)]`` every time and records
    outcomes in ``outcomes`` as ``(index, task, return, success, length)`` tuples."""

    def __init__(self, tasks: Sequence[Task]):
        if not tasks:
            raise CurriculumError("FixedTasks: tasks must not be empty")
        self.tasks = [dict(t) for t in tasks]
        self.outcomes: list[tuple[int, Task, float, bool | None, int]] = []

    def next_task(self, index: int) -> Task:
        return dict(self.tasks[index % len(self.tasks)])

    def episode_end(self, index: int, task: Task, ret: float, success: bool | None, length: int) -> None:
        self.outcomes.append((index, task, ret, success, length))


def task_space_of(env: gym.Env) -> TaskSpace:
    """The ``task_space`` of a task-parameterised env (through any wrappers)."""
    space = getattr(env.unwrapped, "task_space", None)
    if not isinstance(space, TaskSpace):
        raise CurriculumError(f"env.id: {env.unwrapped.__class__.__name__} has no task space; a curriculum needs a "
                              "task env such as rlsuite/TaskCartPole-v0, rlsuite/PointGoal-v0 or rlsuite/GridMaze-v0")
    return space


def resolve_task(space: TaskSpace, defaults: Task, options: Mapping[str, Any] | None) -> Task:
    """The full task of a reset: ``options["task"]`` (validated, may be partial) over ``defaults``."""
    given = (options or {}).get("task")
    if given is None:
        return dict(defaults)
    return {**defaults, **space.validate(given, partial=True)}


class CurriculumWrapper(gym.Wrapper, RecordConstructorArgs):
    """Puts the task from ``source.next_task(index)`` into every reset and reports finished episodes.

    An explicit ``reset(options={"task": ...})`` overrides the source for that episode. Episodes cut
    by a reset before they end (e.g. at a checkpoint boundary) are not reported.

    Example:
        >>> env = CurriculumWrapper(gym.make("rlsuite/PointGoal-v0"), FixedTasks([{"distance": 0.1, "angle": 0.0}]))
        >>> _ = env.reset(seed=0)
        >>> env.unwrapped.task["distance"]
        0.1
    """

    def __init__(self, env: gym.Env, source: TaskSource, index: int = 0):
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise CurriculumError(f"CurriculumWrapper: index must be a non-negative int, got {index!r}")
        if not callable(getattr(source, "next_task", None)) or not callable(getattr(source, "episode_end", None)):
            raise CurriculumError("CurriculumWrapper: source must have next_task(index) and episode_end(...)")
        task_space_of(env)
        RecordConstructorArgs.__init__(self, source=source, index=index)
        gym.Wrapper.__init__(self, env)
        self.source = source
        self.index = index
        self._task: Task | None = None
        self._ret = 0.0
        self._length = 0
        self._open = False

    @property
    def task(self) -> Task | None:
        """The task of the current episode."""
        return None if self._task is None else dict(self._task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        opts = dict(options or {})
        if "task" not in opts:
            opts["task"] = self.source.next_task(self.index)
        obs, info = self.env.reset(seed=seed, options=opts)
        self._task = dict(opts["task"])
        self._ret, self._length, self._open = 0.0, 0, True
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(np.sum(reward))
        self._length += 1
        if (terminated or truncated) and self._open:
            self._open = False
            success = info.get("is_success")
            self.source.episode_end(self.index, dict(self._task), self._ret,
                                    None if success is None else bool(success), self._length)
        return obs, reward, terminated, truncated, info
