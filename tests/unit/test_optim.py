"""LeanAdam.fast_step is bit-identical to torch.optim.Adam(fused=True).step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agents.common.optim import LeanAdam, clip_grad_norm


def _nets():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    b = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    b.load_state_dict(a.state_dict())
    return a, b


def _grads(net: nn.Module, step: int) -> None:
    g = torch.Generator().manual_seed(step)
    x = torch.randn(32, 4, generator=g)
    net.zero_grad(set_to_none=True)
    net(x).square().mean().backward()


def test_fast_step_matches_torch_adam_bit_for_bit_across_lr_changes_and_reload():
    ref_net, net = _nets()
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-3, eps=1e-5, fused=True)
    lean = LeanAdam(net.parameters(), lr=1e-3, eps=1e-5)
    for step in range(12):
        lr = 1e-3 * (1 - step / 12)
        for opt in (ref, lean):
            opt.param_groups[0]["lr"] = lr
        _grads(ref_net, step)
        _grads(net, step)
        ref.step()
        lean.fast_step()
        if step == 5:  # a checkpoint restore replaces the state tensors
            lean.load_state_dict(lean.state_dict())
    for p, q in zip(ref_net.parameters(), net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert lean.state_dict()["state"][0]["step"].item() == 12
    assert torch.equal(ref.state_dict()["state"][0]["exp_avg_sq"], lean.state_dict()["state"][0]["exp_avg_sq"])


def test_fast_step_skips_parameters_without_gradients_like_step():
    ref_net, net = _nets()
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-2, fused=True)
    lean = LeanAdam(net.parameters(), lr=1e-2)
    for step in range(3):
        for n in (ref_net, net):
            _grads(n, step)
            n[2].bias.grad = None if step == 1 else n[2].bias.grad
        ref.step()
        lean.fast_step()
    for p, q in zip(ref_net.parameters(), net.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("max_norm", [0.05, 100.0])
def test_clip_grad_norm_matches_torch_bit_for_bit(max_norm):
    """Clipping (0.05) and not clipping (100): the same gradients and norm as torch's clip_grad_norm_."""
    ref_net, net = _nets()
    _grads(ref_net, 0)
    _grads(net, 0)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref_net.parameters(), max_norm)
    norm = clip_grad_norm(list(net.parameters()), max_norm)
    assert norm == ref_norm.item()
    for a, b in zip(ref_net.parameters(), net.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


def test_clip_grad_norm_of_a_nan_norm_is_nan_like_torchs():
    ref_net, net = _nets()
    for n in (ref_net, net):
        _grads(n, 0)
        with torch.no_grad():
            next(n.parameters()).grad[0, 0] = float("nan")
    torch.nn.utils.clip_grad_norm_(ref_net.parameters(), 0.5)
    clip_grad_norm(list(net.parameters()), 0.5)
    for a, b in zip(ref_net.parameters(), net.parameters(), strict=True):
        assert torch.equal(a.grad.isnan(), b.grad.isnan()) and b.grad.isnan().all()
