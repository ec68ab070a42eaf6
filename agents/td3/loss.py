"""TD3's losses as pure functions of tensors (B batch, C critics).

Targets use ``(1 − terminated)`` only: a truncated (time-limit) transition bootstraps from its true
next observation, a terminated one does not.
"""

from __future__ import annotations

import torch

__all__ = ["actor_loss", "critic_loss", "clipped_double_q_target"]


def clipped_double_q_target(reward_b: torch.Tensor, terminated_b: torch.Tensor, next_q_cb: torch.Tensor,
                            discount: float | torch.Tensor) -> torch.Tensor:
    """``y = r + γ (1 − term) min_c Q'_c(s', ã')`` with ``ã'`` the smoothed target action.

    ``discount`` is γ, or per-transition ``γ^m`` for m-step returns.
    """
    return reward_b + discount * (1.0 - terminated_b) * next_q_cb.min(dim=0).values


def critic_loss(q_cb: torch.Tensor, target_b: torch.Tensor) -> torch.Tensor:
    """``Σ_c mean_b (Q_c(s, a) − y)²`` (SB3's scaling)."""
    return (q_cb - target_b).square().mean(dim=1).sum()


def actor_loss(q1_b: torch.Tensor) -> torch.Tensor:
    """``−mean_b Q_1(s, μ(s))``: deterministic policy gradient through the first critic."""
    return -q1_b.mean()
