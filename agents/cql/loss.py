"""CQL's and Cal-QL's losses as pure functions of tensors.

Axis letters: C critics, B batch, N action samples per state, A action dimensions. The critics'
TD part is TD3's ``Σ_c mean_b (Q_c − y)²`` (:mod:`agents.td3.loss`) with the target
``y = r + γ (1 − terminated) min_c Q'_c(s', a')``, ``a' ~ π(·|s')``: only ``terminated`` stops the
bootstrap, a truncated transition's next observation still has a value.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cql_regularizer", "lagrange_losses"]


def cql_regularizer(q_data_cb: torch.Tensor, q_rand_cbn: torch.Tensor, q_cur_cbn: torch.Tensor,
                    q_next_cbn: torch.Tensor, logp_cur_bn: torch.Tensor, logp_next_bn: torch.Tensor,
                    act_dim: int, temperature: float = 1.0, importance_sample: bool = True,
                    lower_bound_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean_b [T · logsumexp_a(Q_c(s, a) / T) − Q_c(s, a_data)]`` per critic, ``[C]``; and the share of
    policy-action Q-values below ``lower_bound_b`` (0 without one).

    The logsumexp runs over N actions of each kind, all evaluated at the state ``s``: uniform in
    [-1, 1]^A (``q_rand``), sampled from π(·|s) (``q_cur``) and from π(·|s') (``q_next``; CQL's and
    CORL's choice). ``importance_sample`` subtracts each sample's log density (``A log ½`` for the
    uniform ones, A = ``act_dim``; the detached ``log π`` for the policy ones); otherwise the data
    action's Q joins the samples unweighted. Cal-QL: ``lower_bound_b`` (the Monte-Carlo return-to-go; ``-inf`` for
    none) replaces policy-action Q-values below it before the logsumexp.
    """
    if lower_bound_b is not None:
        bound = lower_bound_b[:, None].expand_as(q_cur_cbn[0])
        below = torch.cat([(q_cur_cbn < bound), (q_next_cbn < bound)]).float().mean()
        q_cur_cbn = torch.maximum(q_cur_cbn, bound)
        q_next_cbn = torch.maximum(q_next_cbn, bound)
    else:
        below = torch.zeros(())
    if importance_sample:
        log_uniform = act_dim * math.log(0.5)  # density of U[-1, 1]^A
        cat_cbk = torch.cat([q_rand_cbn - log_uniform, q_next_cbn - logp_next_bn.detach(),
                             q_cur_cbn - logp_cur_bn.detach()], dim=-1)
    else:
        cat_cbk = torch.cat([q_rand_cbn, q_data_cb[..., None], q_next_cbn, q_cur_cbn], dim=-1)
    soft_max_cb = temperature * torch.logsumexp(cat_cbk / temperature, dim=-1)
    return (soft_max_cb - q_data_cb).mean(dim=1), below


def lagrange_losses(gap_c: torch.Tensor, log_alpha_prime: torch.Tensor, cql_alpha: float,
                    target_action_gap: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CQL(H) with a Lagrange multiplier α' = clip(exp(log α'), 0, 1e6).

    Returns ``(critic term, α' loss, α')``: the critics minimise ``Σ_c α' cql_alpha (gap_c − τ)``
    (α' held fixed); α' minimises ``−½ Σ_c α' cql_alpha (gap_c − τ)`` (gaps held fixed), so it grows
    while the gap exceeds ``τ = target_action_gap`` and shrinks otherwise.
    """
    alpha_prime = log_alpha_prime.exp().clamp(0.0, 1e6)
    critic_term = (alpha_prime.detach() * cql_alpha * (gap_c - target_action_gap)).sum()
    alpha_prime_loss = -0.5 * (alpha_prime * cql_alpha * (gap_c.detach() - target_action_gap)).sum()
    return critic_term, alpha_prime_loss, alpha_prime.detach()
