"""SAC's networks: a tanh-squashed Gaussian actor and batched twin critics with targets.

Axis letters: B batch, A action dimensions, C critics. Actions here live in [-1, 1]; the agent
rescales them to the env's Box bounds.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.common.networks import mlp, tanh_gaussian_sample
from agents.common.offpolicy import TwinQ

__all__ = ["SACNetworks", "SquashedGaussianActor"]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class SquashedGaussianActor(nn.Module):
    """``a = tanh(μ(s) + σ(s) ε)``; μ and log σ come from one output layer of a ReLU MLP."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.act_dim = act_dim
        self.trunk = nn.Sequential(mlp(obs_dim, hidden[:-1], hidden[-1], "relu"), nn.ReLU())
        self.head = nn.Linear(hidden[-1], 2 * act_dim)

    def sample(self, obs_bo: torch.Tensor, gen: torch.Generator, deterministic: bool = False):
        """(action_ba in [-1, 1], logprob_b) with the tanh change of variables.

        ``log π(a|s) = Σ_a [log N(u; μ, σ) − log(1 − tanh²u)]`` and
        ``log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u))`` (stable for large |u|).
        """
        mean_ba, log_std_ba = self.head(self.trunk(obs_bo)).split(self.act_dim, dim=-1)
        log_std_ba = log_std_ba.clamp(LOG_STD_MIN, LOG_STD_MAX)
        return tanh_gaussian_sample(mean_ba, log_std_ba, gen, deterministic)


class SACNetworks(nn.Module):
    """Actor, twin critics, their Polyak target and (when learned) log α, saved together."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], log_ent_coef: float, learn_ent_coef: bool):
        super().__init__()
        self.actor = SquashedGaussianActor(obs_dim, act_dim, hidden)
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_ent_coef = nn.Parameter(torch.tensor([log_ent_coef]), requires_grad=learn_ent_coef)
