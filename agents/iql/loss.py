"""IQL's losses as pure functions of tensors (B batch, C critics).

The Q target bootstraps with ``(1 − terminated)`` only: a truncated transition's true next
observation still has a value.
"""

from __future__ import annotations

import torch

__all__ = ["actor_loss", "advantage_weights", "expectile_loss", "q_loss", "q_target"]


def expectile_loss(diff_b: torch.Tensor, expectile: float) -> torch.Tensor:
    """``mean_b |τ − 1(u < 0)| u²`` with ``u = Q'(s, a) − V(s)`` (asymmetric L2, IQL eq. 5)."""
    weight_b = torch.where(diff_b > 0, expectile, 1.0 - expectile)
    return (weight_b * diff_b.square()).mean()


def q_target(reward_b: torch.Tensor, terminated_b: torch.Tensor, next_v_b: torch.Tensor,
             gamma: float) -> torch.Tensor:
    """``y = r + γ (1 − term) V(s')`` (IQL eq. 6: no max over actions, no policy in the target)."""
    return reward_b + gamma * (1.0 - terminated_b) * next_v_b


def q_loss(q_cb: torch.Tensor, target_b: torch.Tensor) -> torch.Tensor:
    """``½ Σ_c mean_b (Q_c(s, a) − y)²``."""
    return 0.5 * (q_cb - target_b).square().mean(dim=1).sum()


def advantage_weights(adv_b: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """``min(exp(β A), max_weight)`` (AWR-style extraction, IQL eq. 7)."""
    return torch.exp(beta * adv_b).clamp(max=max_weight)


def actor_loss(logp_b: torch.Tensor, weight_b: torch.Tensor) -> torch.Tensor:
    """``−mean_b w log π(a|s)`` over dataset actions."""
    return -(weight_b * logp_b).mean()
