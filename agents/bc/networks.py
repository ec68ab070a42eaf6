"""BC's network: a deterministic ``tanh(MLP(s))`` policy over [-1, 1] actions (CORL's BC actor).

Axis letters: B batch, O observation features, A action dimensions.
"""

from __future__ import annotations

from torch import nn

from agents.common.networks import mlp

__all__ = ["BCNetworks"]


class BCNetworks(nn.Module):
    """The policy alone, saved under ``actor``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.actor = nn.Sequential(mlp(obs_dim, hidden, act_dim, "relu"), nn.Tanh())
