"""TD3+BC's actor loss as a pure function of tensors (B batch, A action dimensions).

The critic loss and its target are TD3's (:mod:`agents.td3.loss`), bootstrapping with
``(1 − terminated)`` only.
"""

from __future__ import annotations

import torch

__all__ = ["td3bc_actor_loss"]


def td3bc_actor_loss(q1_b: torch.Tensor, pi_action_ba: torch.Tensor, data_action_ba: torch.Tensor,
                     alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``−λ mean_b Q_1(s, π(s)) + mean_b ‖π(s) − a‖²`` with ``λ = α / mean_b |Q_1|`` (detached).

    Returns ``(loss, λ)``. The normalisation makes α independent of the reward scale
    (Fujimoto & Gu 2021, eq. 3).
    """
    lam = alpha / q1_b.abs().mean().detach().clamp(min=1e-6)
    bc = (pi_action_ba - data_action_ba).square().sum(-1).mean()
    return -lam * q1_b.mean() + bc, lam
