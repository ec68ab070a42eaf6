"""CartPole with its physics as task parameters: pole half-length, pole mass and gravity."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from envs.curriculum.spaces import Task, TaskSpace
from envs.curriculum.wrapper import resolve_task

__all__ = ["TaskCartPoleEnv"]


class TaskCartPoleEnv(CartPoleEnv):
    """gymnasium's CartPole whose ``length`` (pole half-length, m), ``masspole`` (kg) and ``gravity``
    (m/s²) are set per episode by ``reset(options={"task": {...}})``; keys left out (or a reset
    without a task) take the constructor's defaults, which are CartPole-v1's physics.

    Example:
        >>> env = TaskCartPoleEnv()
        >>> _ = env.reset(seed=0, options={"task": {"length": 1.5}})
        >>> env.task["length"], env.task["gravity"]
        (1.5, 9.8)
    """

    task_space = TaskSpace({"length": (0.1, 2.0), "masspole": (0.02, 1.0), "gravity": (2.0, 20.0)},
                           where="TaskCartPole")

    def __init__(self, length: float = 0.5, masspole: float = 0.1, gravity: float = 9.8,
                 render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.default_task = self.task_space.validate({"length": length, "masspole": masspole, "gravity": gravity})
        self._apply(self.default_task)

    @property
    def task(self) -> Task:
        """The current episode's task."""
        return dict(self._task)

    def _apply(self, task: Task) -> None:
        self._task = dict(task)
        self.length = task["length"]
        self.masspole = task["masspole"]
        self.gravity = task["gravity"]
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._apply(resolve_task(self.task_space, self.default_task, options))
        return super().reset(seed=seed, options=options)
