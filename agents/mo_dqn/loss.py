"""Envelope and weight-conditioned vector Q targets, and the envelope loss (pure torch functions).

Axis letters: B batch, M weights per transition (the transition's own first), A actions, K objectives.

Targets use ``(1 − terminated)`` only: a truncated transition bootstraps from its true next observation.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["envelope_loss", "vector_target"]


def vector_target(reward_bk: torch.Tensor, terminated_b: torch.Tensor, discount: float | torch.Tensor,
                  w_bmk: torch.Tensor, next_q_target_bmak: torch.Tensor, next_q_select_bmak: torch.Tensor,
                  envelope: bool) -> torch.Tensor:
    """The vector target ``y_bm = r_b + γ (1 − term_b) Q'(s'_b, a*, w*)`` for each weight ``w_bm``.

    Envelope (Yang et al. 2019): ``(a*, w*) = argmax_{a, w' ∈ W_b} w_bm · Q_sel(s'_b, a, w')`` over the
    transition's M weights ``W_b``; conditioned (Abels et al. 2019): ``w* = w_bm`` and
    ``a* = argmax_a w_bm · Q_sel(s'_b, a, w_bm)``. ``Q_sel`` is the online network for double
    Q-learning, else the target network. Returns ``[B, M, K]``.
    """
    b, m, a, k = next_q_target_bmak.shape
    if envelope:
        # u[b, m, m', a] = w_bm · Q_sel(s'_b, a, w_bm')
        u_bmna = torch.einsum("bmk,bnak->bmna", w_bmk, next_q_select_bmak)
        best_bm = u_bmna.reshape(b, m, m * a).argmax(-1)
        flat_target_bnk = next_q_target_bmak.reshape(b, m * a, k)
        next_bmk = torch.gather(flat_target_bnk, 1, best_bm[..., None].expand(b, m, k))
    else:
        u_bma = torch.einsum("bmk,bmak->bma", w_bmk, next_q_select_bmak)
        best_bm = u_bma.argmax(-1)
        next_bmk = torch.gather(next_q_target_bmak, 2, best_bm[..., None, None].expand(b, m, 1, k)).squeeze(2)
    if isinstance(discount, torch.Tensor):
        discount = discount[:, None, None]
    return reward_bk[:, None, :] + discount * (1.0 - terminated_b)[:, None, None] * next_bmk


def envelope_loss(q_bmk: torch.Tensor, target_bmk: torch.Tensor, w_bmk: torch.Tensor,
                  utility_coef: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(1 − λ) Huber(Q, y) + λ Huber(w · Q, w · y)``; returns (loss, vector loss, utility loss).

    The vector term (Yang et al.'s L_A) fits every objective; the utility term (L_B) fits the
    scalarised value the policy acts on, whose landscape is smoother.
    """
    vector = F.smooth_l1_loss(q_bmk, target_bmk)
    utility = F.smooth_l1_loss((w_bmk * q_bmk).sum(-1), (w_bmk * target_bmk).sum(-1))
    return (1.0 - utility_coef) * vector + utility_coef * utility, vector, utility
