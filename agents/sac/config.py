"""SAC hyperparameters (defaults and names follow stable-baselines3's SAC)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import ScheduleSpec, StrictModel

__all__ = ["SACConfig"]


class SACConfig(StrictModel):
    """Soft Actor-Critic, Haarnoja et al. 2018 (twin critics, automatic entropy tuning)."""

    algo: Literal["sac"] = "sac"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of actor, critics and entropy coefficient, or a schedule over training progress."""
    buffer_size: int = Field(1_000_000, ge=1)
    """Replay capacity in transitions (rounded up to whole rows of num_envs)."""
    learning_starts: int = Field(100, ge=0)
    """Env steps of uniformly random actions before the policy acts and updates begin."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target critics (1 = hard copy)."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    train_freq: int = Field(1, ge=1)
    """Vector steps (each num_envs env steps) between training phases."""
    gradient_steps: int = Field(1, ge=0)
    """Gradient steps per training phase."""
    replay_ratio: float | None = Field(None, gt=0.0)
    """Gradient steps per env step; when set, it replaces gradient_steps (fractions carry over)."""
    ent_coef: Literal["auto"] | float = "auto"
    """Entropy coefficient α, or "auto" to learn it towards target_entropy."""
    ent_coef_init: float = Field(1.0, gt=0.0)
    """Initial α when ent_coef is "auto" (SB3's "auto_<value>")."""
    target_entropy: Literal["auto"] | float = "auto"
    """Target policy entropy in nats; "auto" is −(action dimensions)."""
    target_update_interval: int = Field(1, ge=1)
    """Gradient steps between target-critic updates."""
    net_arch: list[int] = Field([256, 256], min_length=1)
    """Hidden layer widths of the actor and of each critic (ReLU)."""
    matmul_dtype: Literal["float32", "bfloat16"] = "float32"
    """Precision of the update's matrix products. ``bfloat16`` runs them under CPU autocast (bf16
    inputs, fp32 accumulation, fp32 weights, optimizer state, losses and targets' reductions), about
    1.5x faster per update on CPUs with AVX512-BF16 or AMX and slower on CPUs without; acting stays in
    float32. SB3 has no such option."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints (exact resume); false keeps checkpoints small and
    makes a resume approximate (it restarts with an empty buffer)."""
