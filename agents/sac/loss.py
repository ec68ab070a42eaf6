"""SAC's losses as pure functions of tensors (B batch, C critics).

Targets use ``(1 − terminated)`` only: a truncated (time-limit) transition bootstraps from its true
next observation, a terminated one does not.
"""

from __future__ import annotations

import torch

__all__ = ["actor_loss", "critic_loss", "ent_coef_loss", "soft_q_target"]


def soft_q_target(reward_b: torch.Tensor, terminated_b: torch.Tensor, next_q_cb: torch.Tensor,
                  next_logp_b: torch.Tensor, alpha: torch.Tensor, discount: float | torch.Tensor) -> torch.Tensor:
    """``y = r + γ (1 − term) (min_c Q'_c(s', a') − α log π(a'|s'))`` with ``a' ~ π(·|s')``.

    ``discount`` is γ, or per-transition ``γ^m`` for m-step returns.
    """
    soft_v_b = next_q_cb.min(dim=0).values - alpha * next_logp_b
    return reward_b + discount * (1.0 - terminated_b) * soft_v_b


def critic_loss(q_cb: torch.Tensor, target_b: torch.Tensor) -> torch.Tensor:
    """``½ Σ_c mean_b (Q_c(s, a) − y)²`` (SB3's scaling)."""
    return 0.5 * (q_cb - target_b).square().mean(dim=1).sum()


def actor_loss(q_pi_cb: torch.Tensor, logp_b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``mean_b (α log π(a|s) − min_c Q_c(s, a))`` with ``a ~ π(·|s)`` reparameterised."""
    return (alpha * logp_b - q_pi_cb.min(dim=0).values).mean()


def ent_coef_loss(log_alpha: torch.Tensor, logp_b: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """``−mean_b log α (log π(a|s) + H̄)``: raises α while the entropy is below the target ``H̄``."""
    return -(log_alpha * (logp_b.detach() + target_entropy)).mean()
