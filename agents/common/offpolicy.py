"""Pieces the off-policy agents share: a batched twin Q-network, Polyak averaging, space checks.

Axis letters: C critics, B batch, I input features, O output features, A action dimensions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.base import AgentError

__all__ = ["TwinQ", "box_action_bounds", "flat_obs_dim", "hard_update", "polyak_update", "require_scalar_reward",
           "reward_tensor"]


class TwinQ(nn.Module):
    """``C`` independent MLP critics ``Q_c(obs, action)``, evaluated together.

    Each layer's weights are stacked ``[C, in, out]`` so all critics cost one ``baddbmm`` per layer
    (clipped double Q-learning, Fujimoto et al. 2018, without the price of two forwards). Every
    critic is initialised like ``nn.Linear`` (uniform in ±1/√fan_in), as separate networks would be.
    """

    def __init__(self, in_dim: int, hidden: list[int], num_critics: int = 2):
        super().__init__()
        dims = [in_dim, *hidden, 1]
        self.num_layers = len(dims) - 1
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            bound = 1.0 / math.sqrt(d_in)
            w = torch.empty(num_critics, d_in, d_out).uniform_(-bound, bound)
            b = torch.empty(num_critics, 1, d_out).uniform_(-bound, bound)
            self.register_parameter(f"w{i}", nn.Parameter(w))
            self.register_parameter(f"b{i}", nn.Parameter(b))

    def forward(self, obs_bi: torch.Tensor, action_ba: torch.Tensor, detach_params: bool = False,
                first_only: bool = False) -> torch.Tensor:
        """Q-values ``[C, B]`` (``[1, B]`` with ``first_only``).

        ``detach_params`` lets gradients reach the action but not the critic's weights: the actor
        loss needs ∂Q/∂a only, so the critic's weight gradients are never computed for it.
        """
        x = torch.cat([obs_bi, action_ba], dim=-1)
        h = None
        for i in range(self.num_layers):
            w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
            if first_only:
                w, b = w[:1], b[:1]
            if detach_params:
                w, b = w.detach(), b.detach()
            h = torch.baddbmm(b, x.expand(w.shape[0], *x.shape) if h is None else h, w)
            if i < self.num_layers - 1:
                h = h.relu_()  # in place: baddbmm's backward does not need its output
        return h.squeeze(-1)


def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """``θ' ← (1 − τ) θ' + τ θ`` over whole parameter lists in two fused foreach kernels."""
    with torch.no_grad():
        torch._foreach_mul_(target, 1.0 - tau)
        torch._foreach_add_(target, source, alpha=tau)


def hard_update(target: list[torch.Tensor], source: list[torch.Tensor]) -> None:
    """``θ' ← θ`` (τ = 1)."""
    with torch.no_grad():
        torch._foreach_copy_(target, source)


def flat_obs_dim(space: spaces.Space, algo: str) -> int:
    """The observation size of a flat Box space, or an AgentError naming the algorithm."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise AgentError(f"agent.algo={algo} needs a flat Box observation space, got {space}")
    return int(space.shape[0])


def box_action_bounds(space: spaces.Space, algo: str) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float32 of a flat Box action space with finite bounds."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise AgentError(f"agent.algo={algo} needs a flat Box action space, got {space}")
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise AgentError(f"agent.algo={algo} squashes actions into the Box bounds, which must be finite; "
                         f"got {space} (add a RescaleAction or ClipAction wrapper)")
    return low, high


def require_scalar_reward(reward_dim: int, algo: str) -> None:
    """Off-policy agents learn one Q-function: K must be 1."""
    if reward_dim != 1:
        raise AgentError(f"agent.algo={algo} supports scalar rewards only (K=1); this env has K={reward_dim} "
                         "objectives (scalarise them with a wrapper)")


def reward_tensor(reward_bk: np.ndarray) -> torch.Tensor:
    """A batch's rewards ``[B, 1]`` (or ``[B]``) as a ``[B]`` tensor sharing the array's memory."""
    if reward_bk.ndim == 2:
        if reward_bk.shape[1] != 1:
            raise AgentError(f"off-policy agents need rewards shaped [B, 1], got {list(reward_bk.shape)}")
        reward_bk = reward_bk[:, 0]
    return torch.from_numpy(reward_bk)
