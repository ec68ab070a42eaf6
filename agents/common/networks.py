"""Small torch networks shared by agents."""

from __future__ import annotations

import math

from torch import nn

__all__ = ["mlp", "orthogonal_init"]

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


def orthogonal_init(net: nn.Sequential, out_gain: float) -> None:
    """SB3's initialisation: orthogonal weights (gain √2, ``out_gain`` on the last layer), zero bias."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        gain = out_gain if i == len(linears) - 1 else math.sqrt(2)
        nn.init.orthogonal_(layer.weight, gain=gain)
        nn.init.zeros_(layer.bias)
