"""Uni-O4 hyperparameters (offline defaults follow the authors' code, scaled to small datasets; online
defaults follow stable-baselines3's PPO)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import ScheduleSpec, StrictModel

__all__ = ["UniO4Config"]


class UniO4Config(StrictModel):
    """Uni-O4, Lei et al. 2024 ("Unifying Online and Offline Deep RL with Multi-Step On-Policy Optimization").

    Offline phase, one gradient step per update: the first ``pretrain_updates`` fit an ensemble of
    ``num_policies`` Gaussian policies by behaviour cloning and the behaviour's Q(s, a) and V(s);
    the rest improve every member with PPO's clipped objective against its reference policy, and
    every ``ope_every`` of them an offline policy evaluation decides which references move.
    Online phase: PPO, initialised from the best reference (actor) and V (critic).
    """

    algo: Literal["unio4"] = "unio4"
    num_policies: int = Field(4, ge=1, le=64)
    """Members of the behaviour-cloned ensemble (the paper uses 4)."""
    net_arch: list[int] = Field([256, 256], min_length=1)
    """Hidden widths (ReLU) of every policy member, both critics, the value net and the online actor-critic."""
    log_std_init: float = 0.0
    """Initial log std of each member's state-independent Gaussian (in [-1, 1] action units)."""
    offline_batch_size: int = Field(256, ge=2)
    """Dataset transitions per offline gradient step."""
    pretrain_updates: int = Field(5000, ge=1)
    """Offline updates of behaviour cloning and critic fitting before the policy improvement starts."""
    bc_learning_rate: float = Field(3e-4, gt=0.0)
    """Adam step size of the ensemble's behaviour cloning (negative log-likelihood)."""
    critic_learning_rate: float = Field(3e-4, gt=0.0)
    """Adam step size of Q and V."""
    expectile: float = Field(0.5, gt=0.0, lt=1.0)
    """Expectile of V's regression onto Q(s, a) over dataset actions: 0.5 is the mean (the behaviour's
    value, as the paper), above 0.5 leans towards the best dataset actions (IQL)."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target critics."""
    improve_learning_rate: float = Field(1e-4, gt=0.0)
    """Adam step size of the offline policy improvement (the paper's ``bppo_lr``)."""
    offline_clip_range: float = Field(0.25, gt=0.0)
    """Ratio clip ε of the offline improvement, ratio π_i / π_i^ref on actions drawn from π_i^ref."""
    offline_ent_coef: float = Field(0.0, ge=0.0)
    """Entropy bonus of the offline improvement."""
    ope_every: int = Field(100, ge=1)
    """Improvement steps between offline policy evaluations (the paper's ``eval_step``)."""
    ope_states: int = Field(1000, ge=1)
    """Dataset states (evenly spaced over the dataset) on which the evaluation averages Q(s, μ_i(s))."""
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Online PPO: Adam step size, or a schedule over the run's progress."""
    n_steps: int = Field(1000, ge=1)
    """Online PPO: rollout length per env (rows T of the rollout storage)."""
    batch_size: int = Field(64, ge=1)
    """Online PPO: minibatch size in transitions."""
    n_epochs: int = Field(10, ge=1)
    """Online PPO: passes over each rollout."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor of the offline critics and the online GAE."""
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    """Online PPO: GAE λ."""
    clip_range: float | ScheduleSpec = Field(0.2)
    """Online PPO: ratio clip ε, or a schedule."""
    ent_coef: float = Field(0.0, ge=0.0)
    """Online PPO: entropy bonus weight."""
    vf_coef: float = Field(0.5, ge=0.0)
    """Online PPO: value loss weight."""
    max_grad_norm: float = Field(0.5, gt=0.0)
    """Gradient-norm clip of the online PPO step and (per member) of the offline improvement."""
    target_kl: float | None = Field(None, gt=0.0)
    """Online PPO: stop the epoch loop early once the approximate KL exceeds this."""
