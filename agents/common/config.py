"""Shared pieces of agent configs: strict frozen pydantic models and typed schedules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConstantSchedule", "LinearSchedule", "OnlinePhaseConfig", "ScheduleSpec", "StrictModel"]


class StrictModel(BaseModel):
    """Unknown keys, coercions and non-finite floats are errors; instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ConstantSchedule(StrictModel):
    """The same value throughout training."""

    kind: Literal["constant"] = "constant"
    value: float
    """The value."""


class LinearSchedule(StrictModel):
    """Linear from ``start`` to ``end`` over the first ``fraction`` of training, then held."""

    kind: Literal["linear"] = "linear"
    start: float
    """Value at the first update."""
    end: float = 0.0
    """Value once ``fraction`` of training is done."""
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    """Share of training over which the value moves."""


ScheduleSpec = Annotated[ConstantSchedule | LinearSchedule, Field(discriminator="kind")]


def schedule_value(spec: float | ConstantSchedule | LinearSchedule, progress: float) -> float:
    """Value of a float-or-schedule at ``progress`` in [0, 1]."""
    if isinstance(spec, float | int):
        return float(spec)
    if isinstance(spec, ConstantSchedule):
        return spec.value
    p = min(max(progress / spec.fraction, 0.0), 1.0)
    return spec.start + p * (spec.end - spec.start)


class OnlinePhaseConfig(StrictModel):
    """The replay settings every offline agent (BC, IQL, CQL, AWAC) uses in the online phases of an
    offline-to-online run; its own fields follow in each subclass."""

    buffer_size: int = Field(1_000_000, ge=1)
    """Online phases: replay capacity in transitions (rounded up to whole rows of num_envs)."""
    learning_starts: int = Field(0, ge=0)
    """Online phases: env steps before the first online update (the offline data serves before)."""
    train_freq: int = Field(1, ge=1)
    """Online phases: vector steps between training phases."""
    gradient_steps: int = Field(1, ge=0)
    """Online phases: gradient steps per training phase."""
    replay_ratio: float | None = Field(None, gt=0.0)
    """Online phases: gradient steps per env step; replaces gradient_steps when set."""
    save_buffer: bool = True
    """Store the online buffer in checkpoints (exact resume). The offline dataset is never stored."""
