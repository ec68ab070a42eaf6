"""PPO's stacked actor-critic computes what two separate SB3-style MLPs compute."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from agents.ppo.networks import ActorCritic


def _sequential(layers: list[tuple[torch.Tensor, torch.Tensor]], activation: str) -> nn.Sequential:
    """The plain ``Linear → act → ... → Linear`` network with the given layers' tensors."""
    mods: list[nn.Module] = []
    for i, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(nn.Tanh() if activation == "tanh" else nn.ReLU())
    return nn.Sequential(*mods)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("net_arch", [[64, 64], [32], []])
def test_matches_two_separate_mlps(activation, net_arch):
    torch.manual_seed(0)
    net = ActorCritic(5, 3, True, 2, net_arch, activation, True, 0.0)
    with torch.no_grad():  # non-zero biases, so a bias applied twice or not at all would show
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    pi, vf = _sequential(net.layers(0), activation), _sequential(net.layers(1), activation)
    obs = 3.0 * torch.randn(64, 5)
    out, value = net(obs)
    torch.testing.assert_close(out, pi(obs), atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(value, vf(obs), atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(net.value(obs), value)
    # gradients agree too (tanh through 2σ(2z) − 1 has tanh's derivative)
    (out.square().sum() + value.sum()).backward()
    (pi(obs).square().sum() + vf(obs).sum()).backward()
    for m, seq in ((0, pi), (1, vf)):
        linears = [x for x in seq if isinstance(x, nn.Linear)]
        for i, lin in enumerate(linears[:-1]):
            torch.testing.assert_close(getattr(net, f"w{i}").grad[m].T, lin.weight.grad, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(getattr(net, f"b{i}").grad[m, 0], lin.bias.grad, atol=1e-4, rtol=1e-4)


def test_initialisation_is_sb3s():
    """Orthogonal hidden layers with gain √2 and zero biases; output gains 0.01 (policy) and 1 (value);
    actor and critic start from different weights."""
    torch.manual_seed(0)
    net = ActorCritic(4, 2, True, 1, [64, 64], "tanh", True, 0.0)
    for m in range(2):
        for i, (w, b) in enumerate(net.layers(m)):
            gain = math.sqrt(2) if i < 2 else (0.01 if m == 0 else 1.0)
            rows = min(w.shape)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, gain**2 * torch.eye(rows), atol=1e-5, rtol=1e-4)
            assert not b.any()
    assert not torch.equal(net.w1[0], net.w1[1])


def test_layers_are_views_that_write_the_network():
    net = ActorCritic(4, 2, False, 1, [8], "tanh", False, 0.0)
    with torch.no_grad():
        for w, b in net.layers(1):
            w.fill_(0.5)
            b.fill_(-1.0)
    assert torch.all(net.w0[1] == 0.5) and torch.all(net.b0[1] == -1.0)
    assert torch.all(net.vf_head.weight == 0.5) and not torch.all(net.w0[0] == 0.5)


def test_checkpoint_of_the_separate_layout_is_refused_with_its_cause():
    from gymnasium import spaces

    from agents.base import AgentError
    from agents.ppo.agent import PPOAgent
    from agents.ppo.config import PPOConfig

    agent = PPOAgent(PPOConfig(), spaces.Box(-1, 1, (4,)), spaces.Discrete(2), 1, 0)
    arrays, meta = agent.state()
    old = {k: v for k, v in arrays.items() if not k.startswith("net/")}
    old.update({"net/pi.0.weight": arrays["net/w0"][0].T.copy(), "net/pi.0.bias": arrays["net/b0"][0, 0].copy()})
    with pytest.raises(AgentError, match="separate pi.\\*/vf.\\* layers"):
        agent.load_state(old, meta)
    agent.load_state(arrays, meta)  # its own layout loads
