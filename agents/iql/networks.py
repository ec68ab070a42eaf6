"""Networks of the offline agents: a Gaussian policy over [-1, 1] actions, a state-value MLP.

Axis letters: B batch, A action dimensions, O observation features. Actions live in [-1, 1];
agents rescale them to the env's Box bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.networks import mlp
from agents.common.offpolicy import TwinQ

__all__ = ["GaussianActor", "IQLNetworks", "ValueNet"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class GaussianActor(nn.Module):
    """``π(a|s) = N(tanh(MLP(s)), σ²)`` with a state-independent learned log σ (IQL, CORL).

    The mean is squashed, the sample is not: log-likelihoods of dataset actions in [-1, 1] need no
    change-of-variables term; samples are clipped to [-1, 1] when acting.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], log_std_init: float):
        super().__init__()
        self.mean = nn.Sequential(mlp(obs_dim, hidden, act_dim, "relu"), nn.Tanh())
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def log_prob(self, obs_bo: torch.Tensor, action_ba: torch.Tensor) -> torch.Tensor:
        """``log π(a|s)`` summed over action dimensions, ``[B]``."""
        log_std = self.log_std.clamp(-5.0, 2.0)
        z = (action_ba - self.mean(obs_bo)) / log_std.exp()
        return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)

    def act(self, obs_bo: torch.Tensor, gen: torch.Generator, deterministic: bool) -> torch.Tensor:
        """The mean, or a sample clipped to [-1, 1]."""
        mean = self.mean(obs_bo)
        if deterministic:
            return mean
        noise = torch.randn(mean.shape, generator=gen) * self.log_std.clamp(-5.0, 2.0).exp()
        return (mean + noise).clamp(-1.0, 1.0)


class ValueNet(nn.Module):
    """``V(s)``: a ReLU MLP with one output, ``[B]``."""

    def __init__(self, obs_dim: int, hidden: list[int]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1, "relu")

    def forward(self, obs_bo: torch.Tensor) -> torch.Tensor:
        return self.net(obs_bo).squeeze(-1)


class IQLNetworks(nn.Module):
    """Actor, V, twin critics and their Polyak target, saved together."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], log_std_init: float):
        super().__init__()
        self.actor = GaussianActor(obs_dim, act_dim, hidden, log_std_init)
        self.value = ValueNet(obs_dim, hidden)
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
