"""Procedurally generated grid mazes, one per integer level, for Prioritized Level Replay.

Level ``k`` always produces the same maze (walls, start, goal): the layout comes from a generator
seeded by the level, never by the reset seed, so a level is a task and not an accident of seeding.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from envs.curriculum.spaces import LEVEL_KEY, Task, TaskSpace
from envs.curriculum.wrapper import resolve_task

__all__ = ["MAX_LEVELS", "GridMazeEnv", "generate_maze"]

MAX_LEVELS = 2**31 - 1
_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # up, right, down, left


def generate_maze(level: int, size: int, wall_density: float) -> tuple[np.ndarray, tuple, tuple]:
    """(walls ``[size, size]`` bool, start cell, goal cell) of ``level``; the goal is reachable.

    Each interior cell is a wall with probability ``wall_density``; start and goal are distinct free
    cells. Layouts without a path are redrawn from the same level generator.
    """
    rng = np.random.default_rng(np.random.SeedSequence(level, spawn_key=(0x6D617A65,)))
    for _ in range(100):
        walls = rng.random((size, size)) < wall_density
        free = np.argwhere(~walls)
        if len(free) < 2:
            continue
        i, j = rng.choice(len(free), size=2, replace=False)
        start, goal = tuple(int(v) for v in free[i]), tuple(int(v) for v in free[j])
        if _reachable(walls, start, goal):
            return walls, start, goal
    walls = np.zeros((size, size), bool)
    return walls, (0, 0), (size - 1, size - 1)


def _reachable(walls: np.ndarray, start: tuple, goal: tuple) -> bool:
    seen, todo = {start}, deque([start])
    while todo:
        cell = todo.popleft()
        if cell == goal:
            return True
        for dr, dc in _MOVES:
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < walls.shape[0] and 0 <= nxt[1] < walls.shape[1] and not walls[nxt] and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


class GridMazeEnv(gymnasium.Env):
    """A ``size`` x ``size`` grid maze of level ``task["level"]``; four moves (up, right, down, left),
    a move into a wall or the border does nothing. Reaching the goal gives ``1 - 0.9 * t / max_steps``
    (t = steps taken, as in MiniGrid) and ends the episode (``info["is_success"]``); otherwise the
    episode is truncated after ``max_steps`` (default ``4 * size**2``). Observation: three flattened
    ``size x size`` planes (walls, agent, goal) of 0/1 float32.

    Task parameter: ``level`` in [0, 2**31 - 1).

    Example:
        >>> env = GridMazeEnv(size=5)
        >>> obs, _ = env.reset(options={"task": {"level": 3}})
        >>> obs.shape
        (75,)
    """

    metadata = {"render_modes": []}
    task_space = TaskSpace(levels=MAX_LEVELS, where="GridMaze")

    def __init__(self, level: int = 0, size: int = 5, wall_density: float = 0.3, max_steps: int | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ValueError(f"size must be an int >= 2, got {size!r}")
        if not 0.0 <= wall_density < 1.0:
            raise ValueError(f"wall_density must be in [0, 1), got {wall_density!r}")
        self.size, self.wall_density = size, float(wall_density)
        self.max_steps = 4 * size * size if max_steps is None else int(max_steps)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
        self.default_task = self.task_space.validate({LEVEL_KEY: level})
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3 * size * size,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self._task = dict(self.default_task)
        self._walls = np.zeros((size, size), bool)
        self._pos = self._goal = (0, 0)
        self._t = 0

    @property
    def task(self) -> Task:
        """The current episode's task."""
        return dict(self._task)

    def _obs(self) -> np.ndarray:
        planes = np.zeros((3, self.size, self.size), np.float32)
        planes[0] = self._walls
        planes[1][self._pos] = 1.0
        planes[2][self._goal] = 1.0
        return planes.reshape(-1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._task = resolve_task(self.task_space, self.default_task, options)
        self._walls, self._pos, self._goal = generate_maze(self._task[LEVEL_KEY], self.size, self.wall_density)
        self._t = 0
        return self._obs(), {"is_success": False}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in Discrete(4), got {action!r}")
        nxt = (self._pos[0] + int(_MOVES[action][0]), self._pos[1] + int(_MOVES[action][1]))
        if 0 <= nxt[0] < self.size and 0 <= nxt[1] < self.size and not self._walls[nxt]:
            self._pos = nxt
        self._t += 1
        reached = self._pos == self._goal
        reward = 1.0 - 0.9 * self._t / self.max_steps if reached else 0.0
        truncated = not reached and self._t >= self.max_steps
        return self._obs(), float(reward), reached, truncated, {"is_success": reached}
