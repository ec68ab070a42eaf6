"""Behaviour-cloning hyperparameters (defaults follow CORL's ``any_percent_bc.py`` with all the data)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import OnlinePhaseConfig, ScheduleSpec

__all__ = ["BCConfig"]


class BCConfig(OnlinePhaseConfig):
    """Behaviour cloning: a deterministic tanh MLP policy regressed onto the dataset's actions (MSE)."""

    algo: Literal["bc"] = "bc"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of the policy, or a schedule over training progress."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    net_arch: list[int] = Field([256, 256], min_length=1)
    """Hidden layer widths of the policy (ReLU)."""
    action_noise_std: float = Field(0.0, ge=0.0)
    """Online phases: std of Gaussian exploration noise on [-1, 1] actions (0: act as cloned)."""
