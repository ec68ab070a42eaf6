"""Uni-O4's losses as pure functions of tensors (E ensemble members, B batch, C critics).

The critics reuse IQL's (``q_target`` bootstraps with ``1 − terminated`` only, so a truncated
transition's true next state keeps its value); the improvement step is PPO's clipped surrogate from
:mod:`agents.ppo.loss`, the same function the online phase trains with.
"""

from __future__ import annotations

import torch

from agents.iql.loss import expectile_loss, q_loss, q_target
from agents.ppo.loss import ppo_loss

__all__ = ["ensemble_bc_loss", "expectile_loss", "improvement_loss", "normalized_advantage", "ope_gate", "q_loss",
           "q_target"]


def ensemble_bc_loss(logp_eb: torch.Tensor) -> torch.Tensor:
    """``Σ_e −mean_b log π_e(a|s)`` over dataset actions: each member's own behaviour-cloning
    negative log-likelihood (summed, so a member's gradient is that of its own loss)."""
    return -logp_eb.mean(-1).sum()


def normalized_advantage(adv_eb: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(A − mean_b A) / (std_b A + eps)`` per member, as the authors' code normalises ``Q − V``."""
    return (adv_eb - adv_eb.mean(-1, keepdim=True)) / (adv_eb.std(-1, keepdim=True) + eps)


def improvement_loss(logp_eb: torch.Tensor, ref_logp_eb: torch.Tensor, adv_eb: torch.Tensor,
                     entropy_e: torch.Tensor, clip: float, ent_coef: float) -> tuple[torch.Tensor, dict]:
    """``Σ_e −mean_b [min(ρA, clip(ρ, 1−ε, 1+ε)A)] − c_e Σ_e H_e`` with ``ρ = π_e(a|s) / π_e^ref(a|s)`` on
    actions drawn from the reference ``π_e^ref`` (Uni-O4 eq. 7, the offline multi-step PPO objective).

    PPO's loss over the flattened ``E·B`` samples (no value term), times E so that each member's
    gradient is that of its own mean. Statistics are PPO's, averaged over members.
    """
    members, batch = logp_eb.shape
    zeros = torch.zeros(members * batch)
    loss, stats = ppo_loss(logp_eb.reshape(-1), ref_logp_eb.reshape(-1), adv_eb.reshape(-1), zeros, zeros, zeros,
                           entropy_e.repeat_interleave(batch), None, clip, None, 0.0, ent_coef)
    return loss * members, stats


def ope_gate(score_e: torch.Tensor, best_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(replace_e, best_e')``: a member's reference moves to its current policy only where the offline
    evaluation beats the best it has accepted so far (``score > best``); ``best' = max(score, best)``
    there and unchanged elsewhere (Uni-O4 Alg. 1: multi-step improvement gated by OPE)."""
    replace_e = score_e > best_e
    return replace_e, torch.where(replace_e, score_e, best_e)
