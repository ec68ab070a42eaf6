"""IQL agent: acting, one gradient step per ``update`` (V, then Q, then the actor), its state.

Axis letters: B batch of transitions, N envs, A action dimensions, C critics.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, DatasetNormalizedObs, polyak_update
from agents.iql.config import IQLConfig
from agents.iql.loss import actor_loss, advantage_weights, expectile_loss, q_loss, q_target
from agents.iql.networks import IQLNetworks

__all__ = ["IQLAgent", "value_and_critic_step"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/value_loss", "train/mean_advantage"]


class IQLAgent(DatasetNormalizedObs, BoxActorCritic):
    """Implicit Q-Learning on a flat Box observation and a bounded flat Box action space."""

    algo = "iql"
    offline = True
    metric_keys = [*_STAT_KEYS, "train/learning_rate", "train/n_updates"]

    def __init__(self, config: IQLConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self._setup(config, obs_space, action_space, reward_dim, seed, lambda obs_dim, act_dim: IQLNetworks(
            obs_dim, act_dim, list(config.net_arch), config.log_std_init))
        lr = schedule_value(config.learning_rate, 0.0)
        self.actor_opt = torch.optim.Adam(self.net.actor.parameters(), lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.net.critic.parameters(), lr=lr, fused=True)
        self.value_opt = torch.optim.Adam(self.net.value.parameters(), lr=lr, fused=True)
        self._critic_params = list(self.net.critic.parameters())
        self._target_params = list(self.net.critic_target.parameters())
        self._init_obs_norm()


    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The policy mean (or a clipped Gaussian sample), rescaled to the env's Box bounds."""
        obs = self._acting_obs(obs_n)
        action_na = self.net.actor.act(obs, self.gen, deterministic)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One step on V (expectile of Q' − V), Q (target r + γ(1−term)V(s')), the actor, then Q'.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``, truncated ``[B]``.
        """
        cfg = self.config
        lr = self._set_learning_rate()
        obs, next_obs, action, reward, terminated = self._offline_batch(batch)
        net = self.net

        adv, v_loss, critic_l = value_and_critic_step(net, self.value_opt, self.critic_opt, obs, next_obs, action,
                                                      reward, terminated, cfg.gamma, cfg.expectile)
        weight = advantage_weights(adv.detach(), cfg.beta, cfg.max_weight)
        pi_loss = actor_loss(net.actor.log_prob(obs, action), weight)
        self.actor_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        self.actor_opt.step()

        polyak_update(self._target_params, self._critic_params, cfg.tau)
        self.updates += 1
        stats = torch.stack([pi_loss.detach(), critic_l.detach(), v_loss.detach(), adv.detach().mean()]).tolist()
        out = dict(zip(_STAT_KEYS, stats, strict=True))
        out["train/learning_rate"] = lr
        out["train/n_updates"] = float(self.updates)
        return out

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "value": self.value_opt}


def value_and_critic_step(net, value_opt: torch.optim.Optimizer, critic_opt: torch.optim.Optimizer,
                          obs: torch.Tensor, next_obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                          terminated: torch.Tensor, gamma: float, expectile: float):
    """IQL's critic half of an update: one step on V (expectile of ``min Q'(s, a) − V(s)``), then one
    on Q (target ``r + γ(1−term)V(s')``); ``net`` has ``critic``, ``critic_target`` and ``value``.
    Returns ``(Q' − V`` with V's graph, V loss, Q loss``)``; the caller updates Q' (Polyak)."""
    with torch.no_grad():
        target_q = net.critic_target(obs, action).min(dim=0).values
        next_v = net.value(next_obs)
    adv = target_q - net.value(obs)
    v_loss = expectile_loss(adv, expectile)
    value_opt.zero_grad(set_to_none=True)
    v_loss.backward()
    value_opt.step()
    critic_l = q_loss(net.critic(obs, action), q_target(reward, terminated, next_v, gamma))
    critic_opt.zero_grad(set_to_none=True)
    critic_l.backward()
    critic_opt.step()
    return adv, v_loss, critic_l
