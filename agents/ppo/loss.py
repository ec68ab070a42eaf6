"""The PPO loss as a pure function of tensors (B = minibatch)."""

from __future__ import annotations

import torch

__all__ = ["STATS", "ppo_loss"]

STATS = ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/clip_fraction",
         "train/approx_kl", "train/loss")
"""The statistics ``ppo_loss`` returns, in order."""


def ppo_loss(
    logp_b: torch.Tensor,
    old_logp_b: torch.Tensor,
    adv_b: torch.Tensor,
    value_b: torch.Tensor,
    old_value_b: torch.Tensor,
    return_b: torch.Tensor,
    entropy_b: torch.Tensor,
    weight_b: torch.Tensor | None,
    clip: float,
    clip_vf: float | None,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate + value + entropy, Schulman et al. 2017.

    ``L = -E[min(ρA, clip(ρ, 1-ε, 1+ε)A)] + c_v E[(V - R)^2] - c_e E[H]`` with ``ρ = exp(logp - old_logp)``.
    With ``clip_vf`` the value prediction is clipped around ``old_value`` (PPO2's value clipping).
    ``value_b``/``return_b`` may carry a trailing objective axis K; the value loss averages over it.
    ``weight_b`` (1 = valid transition, 0 = a masked reset step) weights every mean.
    Returns the loss and detached statistics (no ``.item()`` here: the caller batches them).
    """
    log_ratio = logp_b - old_logp_b
    ratio = log_ratio.exp()
    surrogate = torch.min(adv_b * ratio, adv_b * ratio.clamp(1.0 - clip, 1.0 + clip))
    if clip_vf is not None:
        value_b = old_value_b + (value_b - old_value_b).clamp(-clip_vf, clip_vf)
    value_err = (value_b - return_b).pow(2)
    if value_err.dim() > 1:
        value_err = value_err.mean(-1)
    if weight_b is None:
        policy_loss = -surrogate.mean()
        value_loss = value_err.mean()
        entropy = entropy_b.mean()
    else:
        denom = weight_b.sum().clamp(min=1.0)
        policy_loss = -(surrogate * weight_b).sum() / denom
        value_loss = (value_err * weight_b).sum() / denom
        entropy = (entropy_b * weight_b).sum() / denom
    with torch.no_grad():  # diagnostics only: keep them out of the autograd graph
        ratio_d, log_ratio_d = ratio.detach(), log_ratio.detach()
        clipped = ((ratio_d - 1.0).abs() > clip).float()
        kl = (ratio_d - 1.0) - log_ratio_d
        if weight_b is None:
            clip_frac, approx_kl = clipped.mean(), kl.mean()
        else:
            clip_frac, approx_kl = (clipped * weight_b).sum() / denom, (kl * weight_b).sum() / denom
    loss = policy_loss + vf_coef * value_loss
    if ent_coef != 0.0:  # with 0 the entropy term adds nothing but a node to the backward pass
        loss = loss - ent_coef * entropy
    stats = dict(zip(STATS, (policy_loss.detach(), value_loss.detach(), -entropy.detach(), clip_frac.detach(),
                             approx_kl.detach(), loss.detach()), strict=True))
    return loss, stats
