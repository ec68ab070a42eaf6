"""PPO's actor and critic: separate MLPs (as SB3's MlpPolicy), categorical or diagonal Gaussian.

Axis letters: B batch, A action dimensions (or discrete actions), K reward objectives.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agents.common.networks import mlp, orthogonal_init

__all__ = ["ActorCritic"]

_LOG_2PI = math.log(2 * math.pi)


class ActorCritic(nn.Module):
    """``pi`` maps obs to logits (discrete) or means (continuous); ``vf`` to K values."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, reward_dim: int, net_arch: list[int],
                 activation: str, ortho_init: bool, log_std_init: float):
        super().__init__()
        self.discrete = discrete
        self.pi = mlp(obs_dim, net_arch, act_dim, activation)
        self.vf = mlp(obs_dim, net_arch, reward_dim, activation)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)), requires_grad=not discrete)
        if ortho_init:
            orthogonal_init(self.pi, 0.01)
            orthogonal_init(self.vf, 1.0)

    def sample(self, obs_ba: torch.Tensor, gen: torch.Generator, deterministic: bool):
        """(action, logprob_b, value_bk) for acting."""
        out = self.pi(obs_ba)
        value_bk = self.vf(obs_ba)
        if self.discrete:
            logp_ba = torch.log_softmax(out, dim=-1)
            if deterministic:
                action = out.argmax(dim=-1)
            else:
                # Gumbel-max with an explicit generator: the same draw as sampling the categorical.
                u = torch.rand(out.shape, generator=gen).clamp_(1e-20, 1.0)
                action = (logp_ba - torch.log(-torch.log(u))).argmax(dim=-1)
            logp_b = logp_ba.gather(-1, action[:, None]).squeeze(-1)
            return action, logp_b, value_bk
        std = self.log_std.exp()
        if deterministic:
            action = out
        else:
            action = out + std * torch.randn(out.shape, generator=gen)
        logp_b = self._gaussian_logp(out, action)
        return action, logp_b, value_bk

    def _gaussian_logp(self, mean_ba: torch.Tensor, action_ba: torch.Tensor) -> torch.Tensor:
        z = (action_ba - mean_ba) * torch.exp(-self.log_std)
        return -(0.5 * z.pow(2) + self.log_std + 0.5 * _LOG_2PI).sum(-1)

    def evaluate(self, obs_ba: torch.Tensor, action: torch.Tensor):
        """(logprob_b, entropy_b, value_bk) of stored actions under the current parameters."""
        out = self.pi(obs_ba)
        value_bk = self.vf(obs_ba)
        if self.discrete:
            logp_ba = torch.log_softmax(out, dim=-1)
            logp_b = logp_ba.gather(-1, action[:, None]).squeeze(-1)
            entropy_b = -(logp_ba.exp() * logp_ba).sum(-1)
            return logp_b, entropy_b, value_bk
        logp_b = self._gaussian_logp(out, action)
        entropy = (0.5 + 0.5 * _LOG_2PI + self.log_std).sum()
        return logp_b, entropy.expand(obs_ba.shape[0]), value_bk
