"""TD3's networks: a deterministic tanh actor and batched twin critics, each with a Polyak target.

Axis letters: B batch, A action dimensions, C critics. Actions live in [-1, 1]; the agent rescales
them to the env's Box bounds.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.common.networks import mlp
from agents.common.offpolicy import TwinQ

__all__ = ["TD3Networks"]


class TD3Networks(nn.Module):
    """``actor(s) = tanh(MLP(s))``, twin critics, and target copies of both, saved together."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.actor = nn.Sequential(mlp(obs_dim, hidden, act_dim, "relu"), nn.Tanh())
        self.actor_target = nn.Sequential(mlp(obs_dim, hidden, act_dim, "relu"), nn.Tanh())
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        for online, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
            target.load_state_dict(online.state_dict())
            target.requires_grad_(False)

    def smoothed_target_action(self, next_obs_bo: torch.Tensor, noise_ba: torch.Tensor, noise_clip: float):
        """Target policy smoothing: ``clip(μ'(s') + clip(ε, −c, c), −1, 1)``."""
        return (self.actor_target(next_obs_bo) + noise_ba.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)
