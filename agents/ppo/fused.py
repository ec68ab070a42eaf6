"""PPO's minibatch loss and gradients in one pass, without autograd.

Axis letters: B minibatch rows, A action dimensions (or discrete actions), K value outputs,
M the two stacked hidden stacks of `ActorCritic` (0 actor, 1 critic), H hidden width.

Why: at PPO's usual sizes (a [64, 64] MLP, minibatches of 64-512 rows) a minibatch step is almost
all per-op overhead. Measured on CartPole's 256-row minibatch with one thread: a forward-backward
through autograd took about the same time at 8 rows as at 256, and the backward pass alone was
~0.5 ms, most of it the engine walking ~40 graph nodes. The gradients of an MLP under PPO's loss
have a short closed form, so this module computes the forward pass once (keeping the activations)
and writes every parameter's ``.grad`` directly: about half the ops and no graph.

`fused_ppo_grads` computes exactly the loss of :func:`agents.ppo.loss.ppo_loss` on the outputs of
:meth:`ActorCritic.evaluate`; ``tests/unit/test_ppo_fused.py`` checks the loss, every statistic and
every gradient against autograd through those two functions, for discrete and Gaussian policies,
tanh and ReLU, value clipping, entropy, masked rows and K > 1. ``agent.fused_update: false``
trains through autograd instead.
"""

from __future__ import annotations

import math

import torch

from agents.ppo.networks import ActorCritic

__all__ = ["fused_ppo_grads"]

_LOG_2PI = math.log(2 * math.pi)


@torch.no_grad()
def fused_ppo_grads(net: ActorCritic, obs_bo: torch.Tensor, action: torch.Tensor, adv_b: torch.Tensor,
                    old_logp_b: torch.Tensor, old_value_bk: torch.Tensor, return_bk: torch.Tensor,
                    weight_b: torch.Tensor | None, clip: float, clip_vf: float | None, vf_coef: float,
                    ent_coef: float) -> torch.Tensor:
    """Set ``.grad`` of every trainable parameter of ``net`` to ∂L/∂θ of PPO's loss on one minibatch.

    Returns the statistics ``[policy_gradient_loss, value_loss, entropy_loss, clip_fraction,
    approx_kl, loss]`` (``ppo_loss``'s keys, in its order) as one tensor.
    """
    rows = obs_bo.shape[0]
    hs = net.hidden(obs_bo, keep=True)
    h_pi, h_vf = hs[-1][0], hs[-1][1]
    out = torch.addmm(net.pi_head.bias, h_pi, net.pi_head.weight.t())
    value_bk = torch.addmm(net.vf_head.bias, h_vf, net.vf_head.weight.t())
    # per-row weight of every mean: 1/B, or w_b / max(Σw, 1) for masked rows
    if weight_b is None:
        g_b = torch.full((rows,), 1.0 / rows)
    else:
        g_b = weight_b / weight_b.sum().clamp(min=1.0)

    # policy: log π(a|s) and entropy per row
    if net.discrete:
        logp_ba = torch.log_softmax(out, dim=-1)
        logp_b = logp_ba.gather(-1, action[:, None]).squeeze(-1)
        p_ba = logp_ba.exp()
        entropy_b = -(p_ba * logp_ba).sum(-1)
    else:
        inv_std = torch.exp(-net.log_std)
        z_ba = (action - out) * inv_std
        logp_b = -(0.5 * z_ba.square() + net.log_std + 0.5 * _LOG_2PI).sum(-1)
        entropy_b = (0.5 + 0.5 * _LOG_2PI + net.log_std).sum().expand(rows)
    log_ratio_b = logp_b - old_logp_b
    ratio_b = log_ratio_b.exp()
    surr1_b = adv_b * ratio_b
    surr2_b = adv_b * ratio_b.clamp(1.0 - clip, 1.0 + clip)
    # d min(ρA, clip(ρ)A)/dρ is A where ρA <= clip(ρ)A and 0 elsewhere (ties split by torch's
    # minimum backward add back up to A; a tie outside the clip range needs A = 0)
    unclipped_b = surr1_b <= surr2_b
    surrogate_b = torch.minimum(surr1_b, surr2_b)

    # value: optional clip around the old estimate, squared error averaged over K
    if clip_vf is not None:
        delta_bk = value_bk - old_value_bk
        v_bk = old_value_bk + delta_bk.clamp(-clip_vf, clip_vf)
    else:
        v_bk = value_bk
    diff_bk = v_bk - return_bk
    value_err_b = diff_bk.square().mean(-1)

    kl_b = (ratio_b - 1.0) - log_ratio_b
    clipped_b = ((ratio_b - 1.0).abs() > clip).float()
    per_row = torch.stack([-surrogate_b, value_err_b, entropy_b, clipped_b, kl_b], dim=1)
    pg, vloss, entropy, clip_frac, approx_kl = (g_b @ per_row).unbind()
    loss = pg + vf_coef * vloss
    if ent_coef != 0.0:
        loss = loss - ent_coef * entropy

    # ∂L/∂logπ_b = -g_b A_b ρ_b [unclipped]
    g_logp_b = -(g_b * surr1_b) * unclipped_b
    if net.discrete:  # ∂logπ(a)/∂logits = onehot(a) - p
        d_out = (-g_logp_b)[:, None] * p_ba
        d_out.scatter_add_(1, action[:, None], g_logp_b[:, None])
        if ent_coef != 0.0:  # ∂H/∂logits = -p (log p + H), and L has -ent_coef H
            d_out.addcmul_((ent_coef * g_b)[:, None] * p_ba, logp_ba + entropy_b[:, None])
        d_log_std = None
    else:  # ∂logπ/∂μ = z/σ, ∂logπ/∂log σ = z² - 1, ∂H/∂log σ = 1 per dimension
        d_out = g_logp_b[:, None] * z_ba * inv_std
        d_log_std = (g_logp_b[:, None] * (z_ba.square() - 1.0)).sum(0)
        if ent_coef != 0.0:
            d_log_std = d_log_std - ent_coef * g_b.sum()
    # ∂L/∂V = vf_coef g_b 2 (V_clipped - R)/K, through the clip's pass-through region
    d_value_bk = diff_bk * ((2.0 * vf_coef / diff_bk.shape[-1]) * g_b)[:, None]
    if clip_vf is not None:
        d_value_bk = d_value_bk * (delta_bk.abs() <= clip_vf)

    net.pi_head.weight.grad = d_out.t() @ h_pi
    net.pi_head.bias.grad = d_out.sum(0)
    net.vf_head.weight.grad = d_value_bk.t() @ h_vf
    net.vf_head.bias.grad = d_value_bk.sum(0)
    if net.log_std.requires_grad:
        net.log_std.grad = d_log_std if d_log_std is not None else torch.zeros_like(net.log_std)
    if net.num_hidden:
        d_h = torch.stack([d_out @ net.pi_head.weight, d_value_bk @ net.vf_head.weight])
        for i in reversed(range(net.num_hidden)):
            h = hs[i + 1]
            if net.tanh:
                d_z = torch.ops.aten.tanh_backward(d_h, h)
            else:
                d_z = torch.ops.aten.threshold_backward(d_h, h, 0.0)
            w, b = getattr(net, f"w{i}"), getattr(net, f"b{i}")
            w.grad = torch.bmm(hs[i].transpose(1, 2), d_z)
            b.grad = d_z.sum(1, keepdim=True)
            if i:
                d_h = torch.bmm(d_z, w.transpose(1, 2))
    return torch.stack([pg, vloss, -entropy, clip_frac, approx_kl, loss])
