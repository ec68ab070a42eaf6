"""Multi-objective Q-networks: ``q(s ‖ w) -> [B, A, K]`` and a target copy.

Axis letters: B batch, M weights per transition, A discrete actions, K reward objectives,
S state features (the observation without its last K entries, the weights), F Fourier features.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from agents.common.networks import mlp

__all__ = ["MOQNetworks", "VectorQ", "feature_frequencies"]


class VectorQ(nn.Module):
    """A ReLU MLP over ``[s, w, sin 2πBw, cos 2πBw]`` whose ``A * K`` outputs are read as ``[B, A, K]``.

    ``B`` (``[F, K]``, saved with the weights) holds the frequencies of Fourier features of the
    weights. ``basis="random"``: drawn once from ``N(0, scale²)`` (random Fourier features, Tancik et
    al. 2020). ``basis="fourier"``: the integer frequencies ``1 .. F/K`` along each objective's axis
    (the uncoupled Fourier basis of Konidaris et al. 2011), the same for every seed. A ReLU MLP fed
    only ``w`` is biased towards functions that vary slowly in ``w``, while the vector value of a
    weight-conditioned policy jumps wherever the best policy changes; with ``F = 0`` the input is
    ``[s, w]`` alone.

    Called with the weights apart (``forward(obs, w_bmk)``), the first layer's state part is computed
    once per observation and shared by its M weights.
    """

    def __init__(self, obs_dim: int, n_actions: int, reward_dim: int, hidden: list[int],
                 weight_features: int = 0, feature_scale: float = 1.0, basis: str = "random"):
        super().__init__()
        self.n_actions = n_actions
        self.reward_dim = reward_dim
        self.state_dim = obs_dim - reward_dim
        self.body = mlp(obs_dim + 2 * weight_features, hidden, n_actions * reward_dim, "relu")
        if weight_features:
            freqs = feature_frequencies(weight_features, reward_dim, feature_scale, basis)
            self.register_buffer("feature_freqs", freqs)
        else:
            self.feature_freqs = None

    def weight_inputs(self, w_k: torch.Tensor) -> torch.Tensor:
        """The network's weight inputs ``[..., K + 2F]``: the weights and their Fourier features."""
        if self.feature_freqs is None:
            return w_k
        z = (2.0 * math.pi) * (w_k @ self.feature_freqs.T)
        return torch.cat([w_k, torch.sin(z), torch.cos(z)], dim=-1)

    def forward(self, obs_bd: torch.Tensor, w_bmk: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, A, K]`` for observations that end in their weights; with ``w_bmk``, ``[B, M, A, K]``
        for each observation's state part under each of its M weights (its own weights are ignored)."""
        s = self.state_dim
        if w_bmk is None:
            if self.feature_freqs is None:  # the input is the observation itself: no copy on the acting path
                return self.body(obs_bd).view(*obs_bd.shape[:-1], self.n_actions, self.reward_dim)
            x = torch.cat([obs_bd[..., :s], self.weight_inputs(obs_bd[..., s:])], dim=-1)
            return self.body(x).view(*obs_bd.shape[:-1], self.n_actions, self.reward_dim)
        first = self.body[0]
        h_bh = F.linear(obs_bd[:, :s], first.weight[:, :s], first.bias)
        h_bmh = torch.relu(h_bh[:, None, :] + self.weight_inputs(w_bmk) @ first.weight[:, s:].T)
        out = self.body[2:](h_bmh)
        return out.view(*w_bmk.shape[:2], self.n_actions, self.reward_dim)


def feature_frequencies(features: int, reward_dim: int, scale: float, basis: str) -> torch.Tensor:
    """``B [F, K]``: ``N(0, scale²)`` draws from torch's generator (``random``), or row ``j·e_k`` for
    objective ``k`` and ``j = 1 .. F/K``, objective by objective (``fourier``; F a multiple of K)."""
    if basis == "random":
        return torch.randn(features, reward_dim) * scale
    if basis != "fourier":
        raise ValueError(f"weight_feature_basis={basis!r} is neither 'random' nor 'fourier'")
    if features % reward_dim:
        raise ValueError(f"weight_features={features} must be a multiple of the env's K={reward_dim} objectives "
                         "for weight_feature_basis=fourier (F/K frequencies per objective)")
    per_objective = torch.arange(1, features // reward_dim + 1, dtype=torch.float32)
    return torch.kron(torch.eye(reward_dim), per_objective[:, None])


class MOQNetworks(nn.Module):
    """``q`` and ``q_target`` (a periodically synchronised, gradient-free copy)."""

    def __init__(self, obs_dim: int, n_actions: int, reward_dim: int, hidden: list[int],
                 weight_features: int = 0, feature_scale: float = 1.0, basis: str = "random"):
        super().__init__()
        self.q = VectorQ(obs_dim, n_actions, reward_dim, hidden, weight_features, feature_scale, basis)
        self.q_target = VectorQ(obs_dim, n_actions, reward_dim, hidden, weight_features, feature_scale, basis)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
