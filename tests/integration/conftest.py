"""Helpers for running the ``rl`` CLI in a subprocess on tiny budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = [
    "--set", "train.total_steps=3072",
    "--set", "checkpoint.every_steps=1024",
    "--set", "evaluation.every_steps=1024",
    "--set", "evaluation.episodes=3",
]
MANIFESTS = Path(__file__).resolve().parents[2] / "experiments" / "manifests"


def rl(*args: str, cwd: Path | None = None, env: dict | None = None,
       timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m experiments.cli ARGS`` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"
