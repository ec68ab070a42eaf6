"""AWAC's networks (CORL's ``awac.py``): an unsquashed Gaussian policy and twin critics with targets.

Axis letters: B batch, O observation features, A action dimensions, C critics. Actions live in
[-1, 1]; the agent rescales them to the env's Box bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.networks import mlp
from agents.common.offpolicy import TwinQ

__all__ = ["AWACActor", "AWACNetworks"]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class AWACActor(nn.Module):
    """``π(a|s) = N(MLP(s), σ²)`` with a state-independent learned log σ (initially 0).

    The mean is not squashed: the log-likelihood of dataset actions needs no change of variables.
    Samples are clipped to [-1, 1] (as CORL's ``Actor.forward``), and so is the mean when acting.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.mean = mlp(obs_dim, hidden, act_dim, "relu")
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def _log_std(self) -> torch.Tensor:
        return self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def log_prob(self, obs_bo: torch.Tensor, action_ba: torch.Tensor) -> torch.Tensor:
        """``log π(a|s)`` summed over action dimensions, ``[B]``."""
        log_std = self._log_std()
        z = (action_ba - self.mean(obs_bo)) / log_std.exp()
        return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)

    def sample(self, obs_bo: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clip(μ(s) + σ ε, −1, 1)``, ``[B, A]``."""
        mean = self.mean(obs_bo)
        noise = torch.randn(mean.shape, generator=gen) * self._log_std().exp()
        return (mean + noise).clamp(-1.0, 1.0)

    def act(self, obs_bo: torch.Tensor, gen: torch.Generator, deterministic: bool) -> torch.Tensor:
        """The mean clipped to [-1, 1], or a clipped sample."""
        return self.mean(obs_bo).clamp(-1.0, 1.0) if deterministic else self.sample(obs_bo, gen)


class AWACNetworks(nn.Module):
    """Actor, twin critics and their Polyak target, saved together."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.actor = AWACActor(obs_dim, act_dim, hidden)
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
