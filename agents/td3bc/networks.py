"""TD3+BC uses TD3's networks unchanged (a deterministic tanh actor and twin critics with targets),
plus the fixed state normaliser of Fujimoto & Gu 2021 (dataset mean and std)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from agents.td3.networks import TD3Networks

__all__ = ["ObsNormalizer", "TD3Networks"]


class ObsNormalizer(nn.Module):
    """``(s − μ) / (σ + eps)`` with μ, σ fixed from the offline data (identity until fitted).

    The statistics are buffers, so they travel with the checkpoint and the policy state; acting and
    evaluation normalise exactly as training did.
    """

    def __init__(self, obs_dim: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, obs_mo: np.ndarray) -> None:
        """Set μ, σ from observations ``[M, O]`` (the whole dataset, as in the paper)."""
        obs = torch.as_tensor(np.asarray(obs_mo, dtype=np.float64))
        self.mean.copy_(obs.mean(0).float())
        self.std.copy_(obs.std(0, correction=0).float() + self.eps)
        self.fitted.fill_(True)

    def forward(self, obs_bo: torch.Tensor) -> torch.Tensor:
        return (obs_bo - self.mean) / self.std
