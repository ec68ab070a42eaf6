"""PPO's actor and critic: separate MLPs (as SB3's MlpPolicy), categorical or diagonal Gaussian.

Axis letters: B batch, A action dimensions (or discrete actions), K reward objectives, M the two
stacked hidden stacks (0 the actor's, 1 the critic's).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.networks import orthogonal_stacked_

__all__ = ["ActorCritic"]

_LOG_2PI = math.log(2 * math.pi)


class ActorCritic(nn.Module):
    """An actor MLP (obs → logits or means) and a critic MLP (obs → K values) with no shared layer.

    The two networks' hidden layers have the same widths, so their weights are stacked
    ``w{i}: [M=2, in, out]`` and both hidden stacks cost one ``baddbmm`` per layer; the output layers
    (``pi_head``, ``vf_head``) are ordinary ``nn.Linear``. The function and the initialisation's
    distribution are those of two separate ``nn.Sequential`` MLPs (the random draws come in another
    order, so a seed gives other initial weights than the earlier layout did, and checkpoints of
    that layout, ``net/pi.*`` and ``net/vf.*``, do not load); on PPO's CartPole minibatch (256 rows, [64, 64])
    a forward-backward step took ~15% less time than with separate Sequentials (per-op overhead
    dominates at this size).

    ``tanh`` is computed as ``2 σ(2z) − 1`` with the 2 folded into ``baddbmm``'s ``alpha``/``beta``:
    the same function, but torch's CPU ``tanh`` kernel took 45 µs on a [256, 64] tensor where
    ``sigmoid`` took 8 µs (torch 2.13, AVX-512). The result differs from ``torch.tanh`` by at most
    a few float32 ulps of 1 (absolute, ~1e-7).
    """

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, reward_dim: int, net_arch: list[int],
                 activation: str, ortho_init: bool, log_std_init: float):
        super().__init__()
        self.discrete = discrete
        self.tanh = activation == "tanh"
        dims = [obs_dim, *net_arch]
        self.num_hidden = len(net_arch)
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            self.register_parameter(f"w{i}", nn.Parameter(torch.empty(2, d_in, d_out)))
            self.register_parameter(f"b{i}", nn.Parameter(torch.empty(2, 1, d_out)))
        self.pi_head = nn.Linear(dims[-1], act_dim)
        self.vf_head = nn.Linear(dims[-1], reward_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)), requires_grad=not discrete)
        self._init_hidden(ortho_init)
        if ortho_init:  # SB3's: orthogonal weights, gain √2 hidden, 0.01 policy output, 1 value output
            for head, gain in ((self.pi_head, 0.01), (self.vf_head, 1.0)):
                nn.init.orthogonal_(head.weight, gain=gain)
                nn.init.zeros_(head.bias)

    @torch.no_grad()
    def _init_hidden(self, ortho: bool) -> None:
        """Each member's layers as ``nn.Linear`` would be (orthogonal with gain √2 and zero bias, or
        torch's default uniform in ±1/√fan_in)."""
        for m in range(2):
            for i in range(self.num_hidden):
                w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
                layer = nn.Linear(w.shape[1], w.shape[2])  # torch's default draws, in both cases
                if ortho:
                    orthogonal_stacked_(w[m], math.sqrt(2))
                    b[m, 0].zero_()
                else:
                    w[m].copy_(layer.weight.T)
                    b[m, 0].copy_(layer.bias)

    def layers(self, m: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Member ``m``'s (0 actor, 1 critic) layers as ``nn.Linear`` tensors ``(weight [out, in], bias [out])``,
        output layer last (views: writing into them writes the network)."""
        head = self.pi_head if m == 0 else self.vf_head
        return [*((getattr(self, f"w{i}")[m].T, getattr(self, f"b{i}")[m, 0]) for i in range(self.num_hidden)),
                (head.weight, head.bias)]

    def hidden(self, obs_ba: torch.Tensor, keep: bool = False) -> list[torch.Tensor]:
        """The stacked hidden activations ``[M, B, H_i]``, input (``obs`` expanded) first; only the
        last one unless ``keep``. Under ``torch.no_grad`` the activation is applied in place."""
        h = obs_ba.expand(2, *obs_ba.shape)
        out = [h]
        inplace = not torch.is_grad_enabled()
        for i in range(self.num_hidden):
            w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
            if self.tanh:  # tanh(z) = 2σ(2z) − 1 (see the class docstring)
                z = torch.baddbmm(b, h, w, beta=2.0, alpha=2.0)
                # with autograd, sigmoid's backward needs its output, so only the last step is in place
                h = z.sigmoid_().mul_(2.0).sub_(1.0) if inplace else z.sigmoid().mul(2.0).sub_(1.0)
            else:
                h = torch.baddbmm(b, h, w).relu_()  # in place: baddbmm's backward does not need its output
            out.append(h)
        return out if keep else out[-1:]

    def forward(self, obs_ba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits or means ``[B, A]``, values ``[B, K]``)."""
        h = self.hidden(obs_ba)[-1]
        return self.pi_head(h[0]), self.vf_head(h[1])

    def value(self, obs_ba: torch.Tensor) -> torch.Tensor:
        """Values ``[B, K]``."""
        return self.vf_head(self.hidden(obs_ba)[-1][1])

    def sample(self, obs_ba: torch.Tensor, gen: torch.Generator, deterministic: bool):
        """(action, logprob_b, value_bk) for acting."""
        out, value_bk = self(obs_ba)
        if self.discrete:
            logp_ba = torch.log_softmax(out, dim=-1)
            if deterministic:
                action = out.argmax(dim=-1)
            else:
                # Gumbel-max with an explicit generator: the same draw as sampling the categorical.
                u = torch.rand(out.shape, generator=gen).clamp_(1e-20, 1.0)
                action = (logp_ba - torch.log(-torch.log(u))).argmax(dim=-1)
            logp_b = logp_ba.gather(-1, action[:, None]).squeeze(-1)
            return action, logp_b, value_bk
        std = self.log_std.exp()
        if deterministic:
            action = out
        else:
            action = out + std * torch.randn(out.shape, generator=gen)
        logp_b = self._gaussian_logp(out, action)
        return action, logp_b, value_bk

    def _gaussian_logp(self, mean_ba: torch.Tensor, action_ba: torch.Tensor) -> torch.Tensor:
        z = (action_ba - mean_ba) * torch.exp(-self.log_std)
        return -(0.5 * z.pow(2) + self.log_std + 0.5 * _LOG_2PI).sum(-1)

    def evaluate(self, obs_ba: torch.Tensor, action: torch.Tensor, entropy_grad: bool = True):
        """(logprob_b, entropy_b, value_bk) of stored actions under the current parameters.

        ``entropy_grad=False`` computes the entropy outside the autograd graph (for a loss that does
        not use it, ``ent_coef = 0``).
        """
        out, value_bk = self(obs_ba)
        if self.discrete:
            logp_ba = torch.log_softmax(out, dim=-1)
            logp_b = logp_ba.gather(-1, action[:, None]).squeeze(-1)
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy_b = -(logp_ba.exp() * logp_ba).sum(-1)
            return logp_b, entropy_b, value_bk
        logp_b = self._gaussian_logp(out, action)
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            entropy = (0.5 + 0.5 * _LOG_2PI + self.log_std).sum()
        return logp_b, entropy.expand(obs_ba.shape[0]), value_bk
