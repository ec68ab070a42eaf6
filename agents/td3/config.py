"""TD3 hyperparameters (defaults and names follow stable-baselines3's TD3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import ScheduleSpec, StrictModel

__all__ = ["TD3Config"]


class TD3Config(StrictModel):
    """Twin Delayed DDPG, Fujimoto et al. 2018 (clipped double Q, target smoothing, delayed actor)."""

    algo: Literal["td3"] = "td3"
    learning_rate: float | ScheduleSpec = Field(1e-3)
    """Adam step size of actor and critics, or a schedule over training progress."""
    buffer_size: int = Field(1_000_000, ge=1)
    """Replay capacity in transitions (rounded up to whole rows of num_envs)."""
    learning_starts: int = Field(100, ge=0)
    """Env steps of uniformly random actions before the policy acts and updates begin."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target actor and critics."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    train_freq: int = Field(1, ge=1)
    """Vector steps (each num_envs env steps) between training phases."""
    gradient_steps: int = Field(1, ge=0)
    """Gradient steps per training phase."""
    replay_ratio: float | None = Field(None, gt=0.0)
    """Gradient steps per env step; when set, it replaces gradient_steps (fractions carry over)."""
    policy_delay: int = Field(2, ge=1)
    """Critic steps per actor (and target) step."""
    target_policy_noise: float = Field(0.2, ge=0.0)
    """Std of the Gaussian noise added to target actions, in units of the [-1, 1] action scale."""
    target_noise_clip: float = Field(0.5, ge=0.0)
    """Clip of that noise, same units."""
    action_noise_std: float = Field(0.1, ge=0.0)
    """Std of the Gaussian exploration noise on [-1, 1] actions (the TD3 paper's 0.1; SB3 has none
    unless given an action_noise object)."""
    net_arch: list[int] = Field([400, 300], min_length=1)
    """Hidden layer widths of the actor and of each critic (ReLU)."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints (exact resume); false keeps checkpoints small and
    makes a resume approximate (it restarts with an empty buffer)."""
