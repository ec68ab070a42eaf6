"""CQL's networks (CORL's ``cql.py``): a tanh-squashed Gaussian actor and batched twin critics.

Axis letters: B batch, O observation features, A action dimensions, C critics. Actions live in
[-1, 1]; the agent rescales them to the env's Box bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.networks import mlp, orthogonal_stacked_, tanh_gaussian_sample
from agents.common.offpolicy import TwinQ

__all__ = ["CQLNetworks", "TanhGaussianActor", "orthogonal_twin_q"]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhGaussianActor(nn.Module):
    """``a = tanh(μ(s) + σ(s) ε)`` with ``log σ = m · raw(s) + c``, where the multiplier m (1) and the
    offset c (−1) are learned scalars, and the output layer starts small (Xavier gain 1e-2), so the
    first policy is near ``tanh(N(0, e⁻²))`` whatever the state (CORL's ``TanhGaussianPolicy``)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.act_dim = act_dim
        self.net = mlp(obs_dim, hidden, 2 * act_dim, "relu")
        nn.init.xavier_uniform_(self.net[-1].weight, gain=1e-2)
        nn.init.zeros_(self.net[-1].bias)
        self.log_std_multiplier = nn.Parameter(torch.tensor(1.0))
        self.log_std_offset = nn.Parameter(torch.tensor(-1.0))

    def sample(self, obs_bo: torch.Tensor, gen: torch.Generator, deterministic: bool = False):
        """(action_ba in [-1, 1], logprob_b) with the tanh change of variables (``tanh μ`` when deterministic).

        ``log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u))`` keeps it finite for large |u|.
        """
        mean_ba, raw_ba = self.net(obs_bo).split(self.act_dim, dim=-1)
        log_std_ba = (self.log_std_multiplier * raw_ba + self.log_std_offset).clamp(LOG_STD_MIN, LOG_STD_MAX)
        return tanh_gaussian_sample(mean_ba, log_std_ba, gen, deterministic)


def orthogonal_twin_q(q: TwinQ) -> None:
    """CORL's critic initialisation on a :class:`TwinQ`: every critic's hidden layers orthogonal with
    gain √2, its output layer orthogonal with gain 1e-2, biases zero (uses torch's global generator)."""
    with torch.no_grad():
        for i in range(q.num_layers):
            w, b = getattr(q, f"w{i}"), getattr(q, f"b{i}")
            gain = 1e-2 if i == q.num_layers - 1 else math.sqrt(2)
            for c in range(w.shape[0]):
                orthogonal_stacked_(w[c], gain)
            b.zero_()


class CQLNetworks(nn.Module):
    """Actor, twin critics, their Polyak target, log α (SAC's entropy coefficient) and log α'
    (the Lagrange multiplier of the regulariser), saved together."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], log_ent_coef: float, learn_ent_coef: bool,
                 orthogonal_init: bool, lagrange: bool):
        super().__init__()
        self.actor = TanhGaussianActor(obs_dim, act_dim, hidden)
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        if orthogonal_init:
            orthogonal_twin_q(self.critic)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_ent_coef = nn.Parameter(torch.tensor([log_ent_coef]), requires_grad=learn_ent_coef)
        self.log_alpha_prime = nn.Parameter(torch.tensor([1.0]), requires_grad=lagrange)
