"""The rich progress display of a training run."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["TrainingProgress"]


class TrainingProgress:
    """Env steps done, steps/s and the recent return; silent when disabled or not a terminal."""

    def __init__(self, total_steps: int, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total_steps
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> TrainingProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("env steps"),
                TextColumn("{task.fields[fps]:>7.0f} steps/s"), TextColumn("return {task.fields[ret]}"),
                TimeRemainingColumn(), console=self.console, transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, fps=0.0, ret="—")
        return self

    def __call__(self, session, row: dict) -> None:
        if self._progress is None:
            return
        ret = row.get("rollout/ep_rew_mean")
        self._progress.update(self._task, completed=min(session.counters.env_steps, self.total),
                              fps=row.get("time/fps", 0.0), ret="—" if ret is None else f"{ret:.1f}")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
