"""Uni-O4's networks: a batched ensemble of Gaussian policies, its reference copy, Q and V.

Axis letters: E ensemble members, B batch, O observation features, A action dimensions, C critics.
Actions live in [-1, 1] and observations are normalised with the dataset's statistics; the agent
folds both into plain PPO weights when the online phase starts (:func:`fold_member`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.offpolicy import TwinQ
from agents.iql.networks import ValueNet

__all__ = ["EnsembleGaussianPolicy", "UniO4Networks", "fold_linear_stack"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_STD_MIN, _LOG_STD_MAX = -5.0, 2.0


class EnsembleGaussianPolicy(nn.Module):
    """``π_e(a|s) = N(MLP_e(s), σ_e²)``: E ReLU MLPs evaluated together, state-independent log σ_e.

    Each layer's weights are stacked ``[E, in, out]`` (one ``baddbmm`` per layer for all members) and
    initialised like ``nn.Linear``, so members differ from their initialisation on. The mean is not
    squashed, as PPO's Gaussian policy: member ``e`` folds into PPO's actor exactly.
    """

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden: list[int], log_std_init: float):
        super().__init__()
        dims = [obs_dim, *hidden, act_dim]
        self.num_layers = len(dims) - 1
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            bound = 1.0 / math.sqrt(d_in)
            self.register_parameter(f"w{i}", nn.Parameter(torch.empty(members, d_in, d_out).uniform_(-bound, bound)))
            self.register_parameter(f"b{i}", nn.Parameter(torch.empty(members, 1, d_out).uniform_(-bound, bound)))
        self.log_std = nn.Parameter(torch.full((members, act_dim), float(log_std_init)))

    def mean(self, obs_bo: torch.Tensor) -> torch.Tensor:
        """Every member's mean action ``[E, B, A]``."""
        h = obs_bo.expand(self.w0.shape[0], *obs_bo.shape)
        for i in range(self.num_layers):
            h = torch.baddbmm(getattr(self, f"b{i}"), h, getattr(self, f"w{i}"))
            if i < self.num_layers - 1:
                h = h.relu()
        return h

    def _log_std(self) -> torch.Tensor:
        return self.log_std.clamp(_LOG_STD_MIN, _LOG_STD_MAX)

    def log_prob(self, obs_bo: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``log π_e(a|s)`` ``[E, B]`` of actions ``[B, A]`` (the same for every member) or ``[E, B, A]``."""
        log_std_ea = self._log_std()
        z = (action - self.mean(obs_bo)) * torch.exp(-log_std_ea)[:, None]
        return -(0.5 * z.square() + log_std_ea[:, None] + _HALF_LOG_2PI).sum(-1)

    def sample(self, obs_bo: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One action per member and state ``[E, B, A]``, noise from ``gen`` only (not clipped)."""
        mean = self.mean(obs_bo)
        return mean + torch.randn(mean.shape, generator=gen) * self._log_std().exp()[:, None]

    def entropy(self) -> torch.Tensor:
        """Each member's entropy ``[E]`` (the same in every state)."""
        return (self._log_std() + 0.5 + _HALF_LOG_2PI).sum(-1)

    def copy_members_(self, source: EnsembleGaussianPolicy, mask_e: torch.Tensor) -> None:
        """``θ_e ← θ_e^source`` for the members where ``mask_e`` is true."""
        with torch.no_grad():
            for mine, theirs in zip(self.parameters(), source.parameters(), strict=True):
                mine[mask_e] = theirs[mask_e]

    def member_layers(self, e: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Member ``e``'s layers as ``nn.Linear`` tensors ``(weight [out, in], bias [out])``."""
        return [(getattr(self, f"w{i}")[e].T.detach().clone(), getattr(self, f"b{i}")[e, 0].detach().clone())
                for i in range(self.num_layers)]


def fold_linear_stack(layers: list[tuple[torch.Tensor, torch.Tensor]], obs_mean_o: torch.Tensor,
                      obs_std_o: torch.Tensor, out_scale: torch.Tensor | float = 1.0,
                      out_shift: torch.Tensor | float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same function on raw inputs and output units: ``f(x) = scale · g((x − μ)/σ) + shift``.

    The first layer absorbs the normaliser (``W' = W / σ``, ``b' = b − W (μ / σ)``), the last the
    output affine map (``W' = scale W``, ``b' = scale b + shift``).
    """
    out = [(w.clone(), b.clone()) for w, b in layers]
    w, b = out[0]
    out[0] = (w / obs_std_o, b - w @ (obs_mean_o / obs_std_o))
    w, b = out[-1]
    scale = torch.as_tensor(out_scale, dtype=w.dtype)
    out[-1] = (w * scale.reshape(-1, 1) if scale.dim() else w * scale, b * scale + out_shift)
    return out


class UniO4Networks(nn.Module):
    """The ensemble (``policy``), its references (``reference``), twin Q with its Polyak target, and V."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden: list[int], log_std_init: float):
        super().__init__()
        self.policy = EnsembleGaussianPolicy(members, obs_dim, act_dim, hidden, log_std_init)
        self.reference = EnsembleGaussianPolicy(members, obs_dim, act_dim, hidden, log_std_init)
        self.reference.load_state_dict(self.policy.state_dict())
        self.reference.requires_grad_(False)
        self.critic = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target = TwinQ(obs_dim + act_dim, hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.value = ValueNet(obs_dim, hidden)
