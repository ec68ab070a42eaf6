"""The fused PPO step computes ppo_loss's loss, statistics and autograd's gradients."""

from __future__ import annotations

import itertools

import pytest
import torch

from agents.ppo.fused import fused_ppo_grads
from agents.ppo.loss import ppo_loss
from agents.ppo.networks import ActorCritic

CASES = list(itertools.product(
    [True, False],          # discrete
    ["tanh", "relu"],       # activation
    [None, 0.05],           # clip_vf (small, so some rows clip)
    [0.0, 0.01],            # ent_coef
    [False, True],          # masked rows
))


def _batch(discrete: bool, k: int, rows: int = 96, obs_dim: int = 5, act: int = 3):
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(rows, obs_dim, generator=g)
    action = torch.randint(0, act, (rows,), generator=g) if discrete else torch.randn(rows, act, generator=g)
    adv = torch.randn(rows, generator=g)
    old_value = torch.randn(rows, k, generator=g) * 0.1
    returns = torch.randn(rows, k, generator=g)
    weight = (torch.rand(rows, generator=g) > 0.2).float()
    return obs, action, adv, old_value, returns, weight


@pytest.mark.parametrize(("discrete", "activation", "clip_vf", "ent_coef", "masked"), CASES)
@pytest.mark.parametrize("k", [1, 3])
def test_fused_matches_autograd(discrete, activation, clip_vf, ent_coef, masked, k):
    torch.manual_seed(0)
    net = ActorCritic(5, 3, discrete, k, [16, 8], activation, True, -0.3)
    with torch.no_grad():  # move away from the initialisation so every term is non-trivial
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs, action, adv, old_value, returns, weight = _batch(discrete, k)
    with torch.no_grad():  # old log-probs near the current ones: some ratios inside the clip, some out
        old_logp = net.evaluate(obs, action)[0] + 0.3 * torch.randn(len(obs))
    w = weight if masked else None
    params = [p for p in net.parameters() if p.requires_grad]

    logp, entropy, value = net.evaluate(obs, action)
    loss, stats = ppo_loss(logp, old_logp, adv, value, old_value, returns, entropy, w, 0.2, clip_vf, 0.5, ent_coef)
    ref = torch.autograd.grad(loss, params)
    clipped = stats["train/clip_fraction"].item()
    assert 0.05 < clipped < 0.95  # both branches of the surrogate are exercised

    for p in params:
        p.grad = None
    fused = fused_ppo_grads(net, obs, action, adv, old_logp, old_value, returns, w, 0.2, clip_vf, 0.5, ent_coef)
    torch.testing.assert_close(fused, torch.stack(list(stats.values())).detach(), atol=1e-5, rtol=1e-5)
    for (name, p), g in zip(((n, p) for n, p in net.named_parameters() if p.requires_grad), ref, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_no_hidden_layers():
    torch.manual_seed(0)
    net = ActorCritic(5, 3, True, 1, [], "tanh", True, 0.0)
    obs, action, adv, old_value, returns, _ = _batch(True, 1)
    old_logp = torch.full((len(obs),), -1.0)
    logp, entropy, value = net.evaluate(obs, action)
    loss, _ = ppo_loss(logp, old_logp, adv, value, old_value, returns, entropy, None, 0.2, None, 0.5, 0.0)
    loss.backward()
    ref = {n: p.grad.clone() for n, p in net.named_parameters() if p.requires_grad}
    fused_ppo_grads(net, obs, action, adv, old_logp, old_value, returns, None, 0.2, None, 0.5, 0.0)
    for n, p in net.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, ref[n])
