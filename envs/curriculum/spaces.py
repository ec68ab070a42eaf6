"""Task spaces: a box of named continuous parameters, a set of discrete levels, or both.

A *task* is a plain dict, e.g. ``{"distance": 0.4, "angle": 1.2}`` or ``{"level": 17}``; it goes
into an env through ``reset(options={"task": task})``, never through the seed. Discrete levels use
the key ``"level"`` and are integers in ``[0, levels)``.

Axis letters: D box dimensions, G grid points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LEVEL_KEY", "CurriculumError", "Task", "TaskSpace"]

LEVEL_KEY = "level"
"""The task key of a discrete level."""

Task = dict[str, float | int]


class CurriculumError(ValueError):
    """A user mistake in a task, a task space or a teacher; the message is one line naming the field."""


@dataclass(frozen=True)
class TaskSpace:
    """Named continuous parameters ``box = {name: (low, high)}`` and/or ``levels`` discrete levels.

    ``where`` prefixes error messages (e.g. ``"curriculum.space"``) so they name the field.

    Example:
        >>> space = TaskSpace({"distance": (0.0, 1.0)})
        >>> space.validate({"distance": 0.5})
        {'distance': 0.5}
        >>> space.from_unit(np.array([0.25]))
        {'distance': 0.25}
    """

    box: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    levels: int = 0
    where: str = "task space"

    def __post_init__(self) -> None:
        box = {}
        for name, bounds in dict(self.box).items():
            box[name] = _check_bounds(name, bounds, self.where)
        if LEVEL_KEY in box:
            raise CurriculumError(f"{self.where}.box: {LEVEL_KEY!r} is reserved for discrete levels; rename it")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 0:
            raise CurriculumError(f"{self.where}.levels: must be a non-negative integer, got {self.levels!r}")
        if not box and self.levels == 0:
            raise CurriculumError(f"{self.where}: empty task space; give box parameters, levels >= 1, or both")
        object.__setattr__(self, "box", box)

    @property
    def names(self) -> list[str]:
        """Box parameter names in their fixed order (the order of unit vectors)."""
        return list(self.box)

    @property
    def dim(self) -> int:
        """D, the number of box parameters."""
        return len(self.box)

    @property
    def low_d(self) -> np.ndarray:
        return np.array([lo for lo, _ in self.box.values()], np.float64)

    @property
    def high_d(self) -> np.ndarray:
        return np.array([hi for _, hi in self.box.values()], np.float64)

    def validate(self, task: Any, partial: bool = False) -> Task:
        """A clean copy of ``task``; raises CurriculumError naming the offending key.

        ``partial=True`` allows missing keys (an env fills them with its defaults).
        """
        if not isinstance(task, Mapping):
            raise CurriculumError(f"{self.where}: a task must be a mapping of parameter to value, got {task!r}")
        allowed = self.names + ([LEVEL_KEY] if self.levels else [])
        unknown = [k for k in task if k not in allowed]
        if unknown:
            raise CurriculumError(f"task.{unknown[0]}: unknown task parameter; this space has {', '.join(allowed)}")
        missing = [k for k in allowed if k not in task]
        if missing and not partial:
            raise CurriculumError(f"task.{missing[0]}: missing; a task needs {', '.join(allowed)}")
        out: Task = {}
        for name, (lo, hi) in self.box.items():
            if name not in task:
                continue
            v = task[name]
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not math.isfinite(v):
                raise CurriculumError(f"task.{name}: must be a finite number, got {v!r}")
            if not lo <= v <= hi:
                raise CurriculumError(f"task.{name}: {v!r} is outside [{lo}, {hi}]")
            out[name] = float(v)
        if self.levels and LEVEL_KEY in task:
            v = task[LEVEL_KEY]
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 0 <= v < self.levels:
                raise CurriculumError(f"task.{LEVEL_KEY}: must be an integer in [0, {self.levels}), got {v!r}")
            out[LEVEL_KEY] = int(v)
        return out

    def contains_space(self, other: TaskSpace) -> None:
        """Raise CurriculumError unless every task of ``other`` is a valid (partial) task here."""
        for name, (lo, hi) in other.box.items():
            if name not in self.box:
                raise CurriculumError(f"{other.where}.box.{name}: the env has no task parameter {name!r}; "
                                      f"it has {', '.join(self.names) or 'none'}")
            elo, ehi = self.box[name]
            if lo < elo or hi > ehi:
                raise CurriculumError(f"{other.where}.box.{name}: [{lo}, {hi}] is outside the env's range "
                                      f"[{elo}, {ehi}]")
        if other.levels > self.levels:
            raise CurriculumError(f"{other.where}.levels: {other.levels} levels, but the env has "
                                  f"{self.levels or 'no'} levels")

    def sample_uniform(self, rng: np.random.Generator) -> Task:
        """A task drawn uniformly (box uniform, level uniform)."""
        task: Task = self.from_unit(rng.random(self.dim)) if self.dim else {}
        if self.levels:
            task[LEVEL_KEY] = int(rng.integers(self.levels))
        return task

    def to_unit(self, task: Mapping[str, float]) -> np.ndarray:
        """Box parameters of ``task`` scaled to [0, 1]^D."""
        x_d = np.array([task[n] for n in self.names], np.float64)
        return (x_d - self.low_d) / (self.high_d - self.low_d)

    def from_unit(self, u_d: np.ndarray) -> Task:
        """The box task at unit coordinates ``u_d`` (clipped to [0, 1])."""
        x_d = self.low_d + np.clip(u_d, 0.0, 1.0) * (self.high_d - self.low_d)
        return {n: float(v) for n, v in zip(self.names, x_d, strict=True)}

    def grid(self, points: int, levels: Sequence[int] = ()) -> list[Task]:
        """A held-out grid: ``points`` evenly spaced values per box parameter (cell centres, so no
        training task is a grid point by construction) times the given ``levels``."""
        if points < 1:
            raise CurriculumError(f"{self.where}: grid points must be >= 1, got {points}")
        centres = (np.arange(points) + 0.5) / points
        box_tasks: list[Task] = [{}]
        if self.dim:
            mesh = np.stack(np.meshgrid(*[centres] * self.dim, indexing="ij"), -1).reshape(-1, self.dim)
            box_tasks = [self.from_unit(u) for u in mesh]
        if not levels:
            return box_tasks
        return [{**t, LEVEL_KEY: int(lv)} for t in box_tasks for lv in levels]

    def to_json(self) -> dict[str, Any]:
        return {"box": {k: list(v) for k, v in self.box.items()}, "levels": self.levels}


def _check_bounds(name: Any, bounds: Any, where: str) -> tuple[float, float]:
    if not isinstance(name, str) or not name.isidentifier():
        raise CurriculumError(f"{where}.box: parameter names must be identifiers, got {name!r}")
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise CurriculumError(f"{where}.box.{name}: expected [low, high], got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CurriculumError(f"{where}.box.{name}: bounds must be finite, got [{lo}, {hi}]")
    if not lo < hi:
        raise CurriculumError(f"{where}.box.{name}: degenerate range [{lo}, {hi}]; low must be < high "
                              "(fix a parameter through env.kwargs instead)")
    return lo, hi
