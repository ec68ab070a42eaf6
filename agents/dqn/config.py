"""DQN hyperparameters (defaults and names follow stable-baselines3's DQN)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import ScheduleSpec, StrictModel

__all__ = ["DQNConfig"]


class DQNConfig(StrictModel):
    """Deep Q-Network, Mnih et al. 2015, with double Q-learning (van Hasselt et al. 2016) and n-step returns."""

    algo: Literal["dqn"] = "dqn"
    learning_rate: float | ScheduleSpec = Field(1e-4)
    """Adam step size, or a schedule over training progress."""
    buffer_size: int = Field(1_000_000, ge=1)
    """Replay capacity in transitions (rounded up to whole rows of num_envs)."""
    learning_starts: int = Field(100, ge=0)
    """Env steps of uniformly random actions before the policy acts and updates begin."""
    batch_size: int = Field(32, ge=1)
    """Transitions per gradient step."""
    tau: float = Field(1.0, gt=0.0, le=1.0)
    """Target-network update coefficient (1 = hard copy)."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    train_freq: int = Field(4, ge=1)
    """Vector steps (each num_envs env steps) between training phases."""
    gradient_steps: int = Field(1, ge=0)
    """Gradient steps per training phase."""
    replay_ratio: float | None = Field(None, gt=0.0)
    """Gradient steps per env step; when set, it replaces gradient_steps (fractions carry over)."""
    target_update_interval: int = Field(10_000, ge=1)
    """Env steps between target-network updates."""
    exploration_fraction: float = Field(0.1, ge=0.0, le=1.0)
    """Share of training over which ε falls linearly from the initial to the final value."""
    exploration_initial_eps: float = Field(1.0, ge=0.0, le=1.0)
    """ε at the start of training."""
    exploration_final_eps: float = Field(0.05, ge=0.0, le=1.0)
    """ε once exploration_fraction of training is done."""
    max_grad_norm: float = Field(10.0, gt=0.0)
    """Global gradient-norm clip."""
    double_q: bool = True
    """Pick the next action with the online network and value it with the target network."""
    n_step: int = Field(1, ge=1)
    """Steps of the bootstrapped return (1 = one-step TD); episodes and checkpoint segments cut it short."""
    net_arch: list[int] = Field([64, 64], min_length=1)
    """Hidden layer widths of the Q-network (ReLU)."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints (exact resume); false keeps checkpoints small and
    makes a resume approximate (it restarts with an empty buffer)."""
