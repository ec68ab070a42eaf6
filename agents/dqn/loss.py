"""DQN's target, loss and exploration schedule as pure functions (B batch, A discrete actions).

Targets use ``(1 − terminated)`` only: a truncated (time-limit) transition bootstraps from its true
next observation, a terminated one does not.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["epsilon", "q_target", "td_loss"]


def q_target(reward_b: torch.Tensor, terminated_b: torch.Tensor, next_q_target_ba: torch.Tensor,
             next_q_online_ba: torch.Tensor | None, discount: float | torch.Tensor) -> torch.Tensor:
    """``y = r + γ (1 − term) Q'(s', a*)``.

    Double DQN (van Hasselt et al. 2016) picks ``a* = argmax_a Q(s', a)`` with the online network
    (pass ``next_q_online_ba``); plain DQN uses ``max_a Q'(s', a)`` (pass None). ``discount`` is γ,
    or per-transition ``γ^m`` for m-step returns.
    """
    if next_q_online_ba is None:
        next_v_b = next_q_target_ba.max(dim=1).values
    else:
        best_b = next_q_online_ba.argmax(dim=1, keepdim=True)
        next_v_b = next_q_target_ba.gather(1, best_b).squeeze(1)
    return reward_b + discount * (1.0 - terminated_b) * next_v_b


def td_loss(q_b: torch.Tensor, target_b: torch.Tensor) -> torch.Tensor:
    """Huber (smooth L1, δ = 1) loss between ``Q(s, a)`` and the target, as SB3."""
    return F.smooth_l1_loss(q_b, target_b)


def epsilon(progress: float, initial: float, final: float, fraction: float) -> float:
    """ε-greedy rate: linear from ``initial`` to ``final`` over the first ``fraction`` of training."""
    if fraction <= 0.0 or progress >= fraction:
        return final
    return initial + (final - initial) * max(progress, 0.0) / fraction
