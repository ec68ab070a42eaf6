"""Lean optimizer helpers for the update path (small MLPs spend most of their time in overhead)."""

from __future__ import annotations

import torch

__all__ = ["clip_grad_norm", "zero_grad"]


def zero_grad(params: list[torch.Tensor]) -> None:
    """Drop gradients (``set_to_none``) without the optimizer's profiling hooks."""
    for p in params:
        p.grad = None


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most ``max_norm``; returns the norm (no sync).

    The same arithmetic as ``torch.nn.utils.clip_grad_norm_`` (coefficient ``max_norm / (norm + 1e-6)``
    clamped to 1), on a parameter list built once instead of walking the module tree per call.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_(max=1.0))
    return total
