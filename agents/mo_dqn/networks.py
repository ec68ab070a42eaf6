"""Multi-objective Q-networks: ``q(s ‖ w) -> [B, A, K]`` and a target copy.

Axis letters: B batch, A discrete actions, K reward objectives.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.common.networks import mlp

__all__ = ["MOQNetworks"]


class VectorQ(nn.Module):
    """A ReLU MLP whose ``A * K`` outputs are read as ``[B, A, K]``."""

    def __init__(self, obs_dim: int, n_actions: int, reward_dim: int, hidden: list[int]):
        super().__init__()
        self.n_actions = n_actions
        self.reward_dim = reward_dim
        self.body = mlp(obs_dim, hidden, n_actions * reward_dim, "relu")

    def forward(self, obs_bd: torch.Tensor) -> torch.Tensor:
        return self.body(obs_bd).view(*obs_bd.shape[:-1], self.n_actions, self.reward_dim)


class MOQNetworks(nn.Module):
    """``q`` and ``q_target`` (a periodically synchronised, gradient-free copy)."""

    def __init__(self, obs_dim: int, n_actions: int, reward_dim: int, hidden: list[int]):
        super().__init__()
        self.q = VectorQ(obs_dim, n_actions, reward_dim, hidden)
        self.q_target = VectorQ(obs_dim, n_actions, reward_dim, hidden)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
