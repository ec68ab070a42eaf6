"""The manifest's ``dataset`` and ``phases`` sections (offline data and offline-to-online schedules).

```yaml
dataset:
  id: pendulum/medium-v0        # a Minari dataset id under root (or path: a dataset directory)
  sha256: 3f1c...               # what `rl collect` printed; a mismatch stops the run before it starts
  weighting: {kind: return, temperature: 0.2}   # optional: return-weighted trajectory sampling
  reward_scale: return_range    # optional: scale every training batch's rewards (see DatasetSpec)
phases:
  - offline: {updates: 20000}
  - online: {steps: 20000, offline_fraction: {kind: linear, start: 0.5, end: 0.0}, lr_policy: rewarm}
```

Learning rate per phase (``lr_policy``): ``keep`` (default) runs the agent's ``learning_rate``
schedule over the whole run, as if there were no phases; ``redecay`` restarts the schedule at the
phase's first step and runs it over the phase; ``rewarm`` does the same after a linear warm-up from
0 over the first ``lr_warmup`` (a fraction, default 0.1) of the phase. A constant learning rate is
the same under ``keep`` and ``redecay``.

Steps of a phased run: the run's step counter (the ``step`` column of ``metrics.csv``, checkpoint
names, ``evaluation.every_steps``, ``checkpoint.every_steps``) counts offline gradient updates plus
online env steps, so it grows monotonically across phases; ``train.total_steps`` must equal the sum
of the phases' lengths. ``time/total_timesteps`` stays env steps only and ``time/offline_updates``
counts updates. Without ``phases``, a run with a dataset is one offline phase of
``train.total_steps`` updates.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agents.common.config import ScheduleSpec, StrictModel, schedule_value

__all__ = ["DatasetSpec", "OfflinePhase", "OnlinePhase", "PhaseSpec", "ReturnWeighting", "fraction_at",
           "lr_progress", "phase_length", "resolved_phases"]

_SHA256 = re.compile(r"[0-9a-f]{64}")

LRPolicy = Literal["keep", "redecay", "rewarm"]


class ReturnWeighting(StrictModel):
    """Draw offline transitions in proportion to a transform of their trajectory's return
    (Hong et al. 2023, "Harnessing Mixed Offline RL Datasets via Trajectory Weighting")."""

    kind: Literal["return"] = "return"
    temperature: float = Field(0.2, gt=0.0)
    """p(τ) ∝ exp(Ĝ_τ / temperature), Ĝ = (G − max G)/(max G − min G) ∈ [−1, 0]; smaller is greedier.
    On the suite's mixed Pendulum set 0.2 suits TD3+BC and 1.0 suits IQL (benchmarks/offline_agents.py)."""


class DatasetSpec(StrictModel):
    """An offline dataset in Minari's format, named by id (under ``root``) or by path, plus its sha256."""

    id: str | None = None
    """Minari dataset id, e.g. ``pendulum/medium-v0``, looked up under ``root``."""
    path: str | None = None
    """A dataset directory (the one holding ``data/``), instead of ``id``."""
    root: str | None = None
    """Where ids are looked up; default ``$MINARI_DATASETS_PATH`` or ``data/datasets``."""
    sha256: str
    """sha256 of the dataset (printed by ``rl collect`` and in its card.json)."""
    weighting: ReturnWeighting | None = None
    """Return-weighted trajectory sampling of the offline data; None = uniform."""
    reward_scale: float | Literal["return_range"] | None = None
    """Multiply the rewards of every training batch, offline and online alike (the stored data and
    the logged returns stay in env units). ``return_range`` is IQL's locomotion setting,
    ``1000 / (max − min episode return of the dataset)``; None (default) leaves rewards as they are.
    Runs of agents whose online phase is on-policy (``unio4``) refuse it."""

    @field_validator("reward_scale")
    @classmethod
    def _scale(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, float) and not (v > 0.0 and v < float("inf")):
            raise ValueError("must be a positive finite number, 'return_range' or null")
        return v

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not _SHA256.fullmatch(v):
            raise ValueError("must be 64 lowercase hex digits (see the dataset's card.json)")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        if (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of dataset.id and dataset.path")
        return self


class OfflinePhase(StrictModel):
    """Gradient updates on stored data only (no env steps)."""

    updates: int = Field(ge=1)
    """Gradient updates in this phase."""
    offline_fraction: float | ScheduleSpec = Field(1.0)
    """Share of each batch from the offline dataset (the rest from earlier online data, when any)."""
    lr_policy: LRPolicy = "keep"
    """The learning rate in this phase: keep the run-wide schedule, redecay it over the phase, or
    rewarm (linear warm-up over ``lr_warmup`` of the phase, then redecay)."""
    lr_warmup: float = Field(0.1, gt=0.0, le=1.0)
    """Fraction of the phase the ``rewarm`` warm-up takes."""


class OnlinePhase(StrictModel):
    """Env steps with the current policy, updating from a mix of offline and online data."""

    steps: int = Field(ge=1)
    """Env steps in this phase (all sub-envs together)."""
    offline_fraction: float | ScheduleSpec = Field(0.5)
    """Share of each batch from the offline dataset, a float or a schedule over this phase
    (0.5 is RLPD's symmetric sampling; ``{kind: linear, start: 0.5, end: 0.0}`` anneals it away)."""
    keep_online_data: bool = True
    """Keep the online data of earlier phases; false starts this phase with an empty online buffer."""
    lr_policy: LRPolicy = "keep"
    """As for offline phases: keep, redecay or rewarm the learning rate."""
    lr_warmup: float = Field(0.1, gt=0.0, le=1.0)
    """Fraction of the phase the ``rewarm`` warm-up takes."""


class PhaseSpec(StrictModel):
    """One phase: exactly one of ``offline`` and ``online``."""

    offline: OfflinePhase | None = None
    online: OnlinePhase | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.offline is None) == (self.online is None):
            raise ValueError("a phase is either {offline: {...}} or {online: {...}}")
        return self


def phase_length(phase: PhaseSpec) -> int:
    """Steps of the run's step counter the phase takes (updates or env steps)."""
    return phase.offline.updates if phase.offline is not None else phase.online.steps


def resolved_phases(phases: list[PhaseSpec] | None, total_steps: int) -> list[PhaseSpec]:
    """The manifest's phases, or one offline phase of ``total_steps`` updates when none are given."""
    return list(phases) if phases else [PhaseSpec(offline=OfflinePhase(updates=total_steps))]


def lr_progress(phase: PhaseSpec, done: int, run_progress: float) -> tuple[float, float]:
    """(schedule progress, multiplier) of the learning rate after ``done`` of the phase's steps."""
    spec = phase.offline or phase.online
    if spec.lr_policy == "keep":
        return run_progress, 1.0
    frac = min(done / phase_length(phase), 1.0)
    if spec.lr_policy == "redecay":
        return frac, 1.0
    return frac, min(frac / spec.lr_warmup, 1.0)


def fraction_at(phase: PhaseSpec, done: int) -> float:
    """The phase's offline fraction after ``done`` of its steps."""
    spec = phase.offline or phase.online
    return schedule_value(spec.offline_fraction, done / phase_length(phase))
