"""AWAC hyperparameters (defaults follow CORL's ``awac.py`` and its D4RL configs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import OnlinePhaseConfig, ScheduleSpec

__all__ = ["AWACConfig"]


class AWACConfig(OnlinePhaseConfig):
    """Advantage-Weighted Actor-Critic, Nair et al. 2020: twin critics with a policy-action target,
    and an actor that maximises the advantage-weighted log-likelihood of the dataset's actions."""

    algo: Literal["awac"] = "awac"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of actor and critics, or a schedule over training progress."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target critics."""
    awac_lambda: float = Field(1.0 / 3.0, gt=0.0)
    """Temperature λ of the advantage weights exp(A / λ) (CORL's D4RL configs and the paper: 1/3)."""
    exp_adv_max: float = Field(100.0, gt=0.0)
    """Clip of the weights exp(A / λ) (numerical safety)."""
    net_arch: list[int] = Field([256, 256, 256], min_length=1)
    """Hidden layer widths of the actor and of each critic (ReLU; CORL: three of 256)."""
