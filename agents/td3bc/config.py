"""TD3+BC hyperparameters (defaults follow Fujimoto & Gu 2021)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import ScheduleSpec
from agents.td3.config import TD3Config

__all__ = ["TD3BCConfig"]


class TD3BCConfig(TD3Config):
    """TD3+BC, Fujimoto & Gu 2021: TD3 whose actor loss adds a behaviour-cloning term."""

    algo: Literal["td3bc"] = "td3bc"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of actor and critics, or a schedule over training progress."""
    alpha: float = Field(2.5, gt=0.0)
    """α of λ = α / mean|Q(s, π(s))|: the weight of the Q term against the BC term."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    learning_starts: int = Field(0, ge=0)
    """Online phases: env steps before the first online update (the offline data serves before)."""
    net_arch: list[int] = Field([256, 256], min_length=1)
    """Hidden layer widths of the actor and of each critic (ReLU)."""
