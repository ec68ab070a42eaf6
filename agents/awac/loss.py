"""AWAC's losses as pure functions of tensors (B batch, C critics).

The critic loss and its target are TD3's form (:mod:`agents.td3.loss`) with the next action drawn
from the current policy: ``y = r + γ (1 − terminated) min_c Q'_c(s', a')``, ``a' ~ π(·|s')``. Only
``terminated`` stops the bootstrap: a truncated transition's next observation still has a value.
"""

from __future__ import annotations

import torch

__all__ = ["actor_loss", "advantage_weights"]


def advantage_weights(q_data_cb: torch.Tensor, q_pi_cb: torch.Tensor, awac_lambda: float,
                      exp_adv_max: float) -> torch.Tensor:
    """``min(exp(A / λ), exp_adv_max)`` with ``A = min_c Q_c(s, a) − min_c Q_c(s, a_π)``, ``a_π ~ π(·|s)``
    (AWAC eq. 12; V(s) estimated by one policy sample, as CORL)."""
    adv_b = q_data_cb.min(dim=0).values - q_pi_cb.min(dim=0).values
    return torch.exp(adv_b / awac_lambda).clamp(max=exp_adv_max)


def actor_loss(logp_b: torch.Tensor, weight_b: torch.Tensor) -> torch.Tensor:
    """``−mean_b w log π(a|s)`` over dataset actions (weights carry no gradient)."""
    return -(weight_b.detach() * logp_b).mean()
