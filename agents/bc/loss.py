"""BC's loss as a pure function of tensors (B batch, A action dimensions)."""

from __future__ import annotations

import torch

__all__ = ["bc_loss"]


def bc_loss(pi_action_ba: torch.Tensor, data_action_ba: torch.Tensor) -> torch.Tensor:
    """``mean_{b,a} (π(s) − a)²``: the mean squared error over batch and action dimensions
    (``F.mse_loss``, as CORL's BC), in the [-1, 1] action units."""
    return (pi_action_ba - data_action_ba).square().mean()
