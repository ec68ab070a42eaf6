"""Run extensions: optional features (a curriculum teacher, objective weights, ...) that take part
in a run without the loops knowing about them.

An extension can wrap each training sub-env, see every finished training episode, add columns to
the metrics, and put its state into checkpoints so ``--resume`` stays exact. Factories are
registered by name and asked, in order, whether the manifest needs them.

Optionally, ``log_sinks(run_dir, resume_step, tensorboard) -> list`` gives metric sinks of the
extension's own (``write(step, row)``, ``flush(durable)``, ``close()``, as in `rl.core.metrics`)
that receive every metrics row after ``metrics.csv`` and TensorBoard; ``resume_step`` is the
restored checkpoint's step (None for a new run), after which the sink must drop what it had
written. The curriculum's ``curriculum.csv`` and task histograms are written this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym

from rl.core.rollout import EpisodeRecord
from rl.core.seeding import SeedPlan

__all__ = ["Extension", "build_extensions", "register_extension"]


class Extension(Protocol):
    """What a run extension offers the session."""

    name: str
    columns: list[str]

    def wrap_env(self, env: gym.Env, index: int) -> gym.Env:
        """Wrap training sub-env ``index`` (return ``env`` unchanged if nothing to do)."""
        ...

    def on_episode(self, ep: EpisodeRecord) -> None:
        """A training episode finished."""
        ...

    def metrics(self) -> dict[str, float]:
        """Values for this row's ``columns`` (missing keys are left empty)."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON state for checkpoints."""
        ...

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        ...


_FACTORIES: dict[str, Callable[[Any, SeedPlan], Extension | None]] = {}


def register_extension(name: str, factory: Callable[[Any, SeedPlan], Extension | None]) -> None:
    """``factory(manifest, plan)`` returns an extension, or None when the manifest doesn't ask for it."""
    _FACTORIES[name] = factory


def build_extensions(manifest, plan: SeedPlan) -> list[Extension]:
    """The extensions this manifest uses, in registration order."""
    out = []
    for factory in _FACTORIES.values():
        ext = factory(manifest, plan)
        if ext is not None:
            out.append(ext)
    return out
