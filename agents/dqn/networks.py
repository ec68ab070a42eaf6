"""DQN's networks: a Q-network over discrete actions and its target copy.

Axis letters: B batch, A discrete actions.
"""

from __future__ import annotations

from torch import nn

from agents.common.networks import mlp

__all__ = ["DQNNetworks"]


class DQNNetworks(nn.Module):
    """``q(s) -> [B, A]`` (ReLU MLP) and ``q_target``, a periodically synchronised copy."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int]):
        super().__init__()
        self.q = mlp(obs_dim, hidden, n_actions, "relu")
        self.q_target = mlp(obs_dim, hidden, n_actions, "relu")
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
