"""IQL hyperparameters (defaults follow the paper's locomotion settings and CORL's implementation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import OnlinePhaseConfig, ScheduleSpec

__all__ = ["IQLConfig"]


class IQLConfig(OnlinePhaseConfig):
    """Implicit Q-Learning, Kostrikov et al. 2022: expectile V, SARSA-style Q, advantage-weighted actor."""

    algo: Literal["iql"] = "iql"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of actor, critics and value net, or a schedule over training progress."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target critics."""
    expectile: float = Field(0.7, gt=0.0, lt=1.0)
    """Expectile τ of the value loss: 0.5 is the mean; towards 1 approaches max_a Q over the data."""
    beta: float = Field(3.0, gt=0.0)
    """Inverse temperature of advantage weighting: weight = exp(β (Q − V))."""
    max_weight: float = Field(100.0, gt=0.0)
    """Clip of the advantage weights (numerical safety)."""
    log_std_init: float = Field(0.0)
    """Initial log std of the state-independent Gaussian policy (in [-1, 1] action units)."""
    net_arch: list[int] = Field([256, 256], min_length=1)
    """Hidden layer widths of actor, critics and value net (ReLU)."""
