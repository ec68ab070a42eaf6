"""Small torch networks shared by agents."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["mlp", "orthogonal_stacked_", "tanh_gaussian_sample"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(in_dim: int, hidden: list[int], out_dim: int, activation: str = "tanh") -> nn.Sequential:
    """``Linear → act → ... → Linear`` with the given hidden widths."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), _ACTIVATIONS[activation]()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


def orthogonal_stacked_(w_io: torch.Tensor, gain: float) -> None:
    """Write an orthogonal matrix (gain ``gain``, torch's global generator) into one member's
    ``[in, out]`` slice of a stacked layer, drawn in ``nn.Linear``'s ``[out, in]`` layout so a member
    is initialised exactly as a separate ``nn.Linear`` would be."""
    weight_oi = torch.empty(w_io.shape[1], w_io.shape[0])
    nn.init.orthogonal_(weight_oi, gain=gain)
    with torch.no_grad():
        w_io.copy_(weight_oi.T)


def tanh_gaussian_sample(mean_ba: torch.Tensor, log_std_ba: torch.Tensor, gen: torch.Generator,
                         deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = tanh(u)``, ``u ~ N(μ, σ²)`` (or ``u = μ``), and ``log π(a|s)`` with the tanh correction:
    ``Σ_a [log N(u; μ, σ) − log(1 − tanh²u)]``, where ``log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u))``
    stays finite for large |u|. Noise comes only from ``gen``."""
    if deterministic:
        u_ba = mean_ba
        logp_b = (-log_std_ba - _HALF_LOG_2PI).sum(-1)
    else:
        eps_ba = torch.randn(mean_ba.shape, generator=gen)
        u_ba = mean_ba + log_std_ba.exp() * eps_ba
        logp_b = (-0.5 * eps_ba.square() - log_std_ba - _HALF_LOG_2PI).sum(-1)
    squash_b = (2.0 * (_LOG_2 - u_ba - nn.functional.softplus(-2.0 * u_ba))).sum(-1)
    return torch.tanh(u_ba), logp_b - squash_b
