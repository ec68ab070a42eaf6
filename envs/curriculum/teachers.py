"""Teachers choose the next task. One small interface, several strategies:

- `UniformTeacher`: every task equally likely (the baseline every result is reported against);
- `LinearScheduleTeacher`: a sampling box that moves linearly from a start box to an end box over a
  number of env steps;
- `StagedTeacher`: a list of boxes, moving on when the recent success rate passes a threshold;
- `envs.curriculum.alp_gmm.ALPGMMTeacher` and `envs.curriculum.plr.PLRTeacher`.

Every teacher owns a ``np.random.Generator`` (the run's ``teacher`` stream) whose state is part of
``state_dict()``, and ``state_dict()`` is plain JSON, so a checkpointed run resumes exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from envs.curriculum.spaces import CurriculumError, Task, TaskSpace

__all__ = ["LinearScheduleTeacher", "StagedTeacher", "Teacher", "UniformTeacher", "rng_state", "set_rng_state"]

Box = Mapping[str, Sequence[float]]


class Teacher(Protocol):
    """What the curriculum extension needs from a teacher."""

    space: TaskSpace

    def sample(self, index: int) -> Task:
        """The next task for sub-env ``index``."""
        ...

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        """An episode of ``task`` ended with return ``ret`` (and success flag, if the env reports one)."""
        ...

    def stats(self) -> dict[str, float]:
        """Teacher-specific values for the metrics row (keys without the ``curriculum/`` prefix)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON state (including the generator)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


def rng_state(rng: np.random.Generator) -> dict:
    """The JSON state of a numpy Generator."""
    s = rng.bit_generator.state
    return {"bit_generator": s["bit_generator"], "state": {k: int(v) for k, v in s["state"].items()},
            "has_uint32": int(s["has_uint32"]), "uinteger": int(s["uinteger"])}


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


class UniformTeacher:
    """Tasks uniformly over the whole space.

    Example:
        >>> t = UniformTeacher(TaskSpace({"x": (0.0, 1.0)}), np.random.default_rng(0))
        >>> 0.0 <= t.sample(0)["x"] <= 1.0
        True
    """

    def __init__(self, space: TaskSpace, rng: np.random.Generator):
        self.space, self.rng = space, rng

    def sample(self, index: int) -> Task:
        return self.space.sample_uniform(self.rng)

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])


def _check_box(space: TaskSpace, box: Box, where: str) -> dict[str, tuple[float, float]]:
    out = {}
    for name, bounds in box.items():
        if name not in space.box:
            raise CurriculumError(f"{where}.{name}: not a box parameter of the task space "
                                  f"({', '.join(space.names) or 'none'})")
        if len(bounds) != 2:
            raise CurriculumError(f"{where}.{name}: expected [low, high], got {list(bounds)!r}")
        lo, hi = float(bounds[0]), float(bounds[1])
        slo, shi = space.box[name]
        if not slo <= lo <= hi <= shi:
            raise CurriculumError(f"{where}.{name}: [{lo}, {hi}] must satisfy {slo} <= low <= high <= {shi}")
        out[name] = (lo, hi)
    return out


def _sample_box(space: TaskSpace, box: dict[str, tuple[float, float]], rng: np.random.Generator) -> Task:
    """Uniform in ``box``; parameters the box leaves out are uniform over the whole space."""
    u_d = rng.random(space.dim)
    task = {}
    for (name, (slo, shi)), u in zip(space.box.items(), u_d, strict=True):
        lo, hi = box.get(name, (slo, shi))
        task[name] = float(lo + u * (hi - lo))
    return task


def _need_box(space: TaskSpace, teacher: str) -> None:
    if space.levels or not space.dim:
        raise CurriculumError(f"curriculum.teacher: {teacher} needs a task space of box parameters only; "
                              "use the plr or uniform teacher for discrete levels")


class LinearScheduleTeacher:
    """Uniform in a box that moves linearly from ``start`` to ``end`` (per parameter ``[low, high]``)
    over the first ``over_steps`` env steps of finished episodes, then stays at ``end``.

    Example:
        >>> space = TaskSpace({"distance": (0.0, 1.0)})
        >>> t = LinearScheduleTeacher(space, np.random.default_rng(0), {"distance": [0.0, 0.1]},
        ...                           {"distance": [0.0, 1.0]}, over_steps=100)
        >>> t.sample(0)["distance"] <= 0.1
        True
    """

    def __init__(self, space: TaskSpace, rng: np.random.Generator, start: Box, end: Box, over_steps: int):
        _need_box(space, "the linear schedule")
        self.space, self.rng = space, rng
        self.start = _check_box(space, start, "curriculum.teacher.start")
        self.end = _check_box(space, end, "curriculum.teacher.end")
        if set(self.start) != set(self.end):
            raise CurriculumError("curriculum.teacher.end: must name the same parameters as start "
                                  f"({', '.join(self.start)})")
        if over_steps < 1:
            raise CurriculumError(f"curriculum.teacher.over_steps: must be >= 1, got {over_steps}")
        self.over_steps = over_steps
        self.steps = 0

    @property
    def progress(self) -> float:
        """Fraction of the schedule done, in [0, 1]."""
        return min(1.0, self.steps / self.over_steps)

    def box(self) -> dict[str, tuple[float, float]]:
        """The current sampling box."""
        f = self.progress
        return {n: (s[0] + f * (self.end[n][0] - s[0]), s[1] + f * (self.end[n][1] - s[1]))
                for n, s in self.start.items()}

    def sample(self, index: int) -> Task:
        return _sample_box(self.space, self.box(), self.rng)

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        self.steps += int(length)

    def stats(self) -> dict[str, float]:
        return {"progress": self.progress}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.steps = int(state["steps"])


class StagedTeacher:
    """Uniform in ``stages[k]``; moves to stage k+1 once the last ``window`` episodes of stage k have a
    success rate (or, for envs without ``is_success``, a mean return) of at least ``threshold``.

    Episodes sampled in an earlier stage but finished after the switch do not count for the new one.
    """

    def __init__(self, space: TaskSpace, rng: np.random.Generator, stages: Sequence[Box], threshold: float,
                 window: int = 50):
        _need_box(space, "the staged schedule")
        if not stages:
            raise CurriculumError("curriculum.teacher.stages: give at least one stage")
        if window < 1:
            raise CurriculumError(f"curriculum.teacher.window: must be >= 1, got {window}")
        self.space, self.rng = space, rng
        self.stages = [_check_box(space, b, f"curriculum.teacher.stages.{i}") for i, b in enumerate(stages)]
        self.threshold, self.window = float(threshold), window
        self.stage = 0
        self.recent: deque[float] = deque(maxlen=window)

    def _in_stage(self, task: Task) -> bool:
        return all(lo <= task[n] <= hi for n, (lo, hi) in self.stages[self.stage].items())

    def sample(self, index: int) -> Task:
        return _sample_box(self.space, self.stages[self.stage], self.rng)

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        if not self._in_stage(task):
            return
        self.recent.append(float(success) if success is not None else float(ret))
        full = len(self.recent) == self.window
        if full and self.stage + 1 < len(self.stages) and np.mean(self.recent) >= self.threshold:
            self.stage += 1
            self.recent.clear()

    def stats(self) -> dict[str, float]:
        return {"stage": float(self.stage)}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "stage": self.stage, "recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.stage = int(state["stage"])
        self.recent = deque((float(x) for x in state["recent"]), maxlen=self.window)
