"""PPO hyperparameters (defaults follow stable-baselines3's PPO)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from agents.common.config import ScheduleSpec, StrictModel

__all__ = ["PPOConfig"]


class PPOConfig(StrictModel):
    """Proximal Policy Optimization, Schulman et al. 2017 (clipped surrogate objective)."""

    algo: Literal["ppo"] = "ppo"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size, or a schedule over training progress."""
    n_steps: int = Field(2048, ge=1)
    """Rollout length per env (rows T of the rollout storage)."""
    batch_size: int = Field(64, ge=1)
    """Minibatch size in transitions."""
    n_epochs: int = Field(10, ge=1)
    """Passes over each rollout."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor."""
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    """GAE λ."""
    clip_range: float | ScheduleSpec = Field(0.2)
    """Policy ratio clip ε, or a schedule."""
    clip_range_vf: float | None = Field(None, gt=0.0)
    """Value clip around the old value estimate; None disables value clipping."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    ent_coef: float = Field(0.0, ge=0.0)
    """Entropy bonus weight."""
    vf_coef: float = Field(0.5, ge=0.0)
    """Value loss weight."""
    max_grad_norm: float = Field(0.5, gt=0.0)
    """Global gradient-norm clip."""
    target_kl: float | None = Field(None, gt=0.0)
    """Stop the epoch loop early once the approximate KL exceeds this."""
    fused_update: bool = True
    """Compute each minibatch's loss and gradients in one pass without autograd (`agents.ppo.fused`,
    tested against autograd); false trains through autograd on the same loss."""
    net_arch: list[int] = [64, 64]
    """Hidden layer widths, shared by the separate policy and value MLPs."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden activation."""
    ortho_init: bool = True
    """Orthogonal initialisation as in SB3 (gains √2, 0.01 policy, 1 value)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions)."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (saved in checkpoints)."""
    objective_weights: list[float] | None = None
    """Multi-objective envs: fixed weights combining the K per-objective GAE advantages into one
    (``A = Σ_k w_k A_k``); None sums them (equal weights). Ignored with ``weights_from_obs``."""
    weights_from_obs: bool = False
    """Weight-conditioned PPO: each transition's advantage weights are the last K entries of its
    observation, as `envs.mo.WeightConditionedObservation` appends them."""

    @field_validator("objective_weights")
    @classmethod
    def _weights(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (any(w < 0 for w in v) or not any(w > 0 for w in v)):
            raise ValueError(f"objective weights must be >= 0 with at least one > 0, got {v}")
        return v
