"""AWAC agent: acting, one critic and one actor step per ``update``, its state.

Axis letters: B batch of transitions, N envs, A action dimensions, C critics.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.awac.config import AWACConfig
from agents.awac.loss import actor_loss, advantage_weights
from agents.awac.networks import AWACNetworks
from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, DatasetNormalizedObs, polyak_update
from agents.td3.loss import clipped_double_q_target, critic_loss

__all__ = ["AWACAgent"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/mean_weight"]


class AWACAgent(DatasetNormalizedObs, BoxActorCritic):
    """Advantage-Weighted Actor-Critic on a flat Box observation and a bounded flat Box action space."""

    algo = "awac"
    offline = True
    metric_keys = [*_STAT_KEYS, "train/learning_rate", "train/n_updates"]

    def __init__(self, config: AWACConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self._setup(config, obs_space, action_space, reward_dim, seed,
                    lambda obs_dim, act_dim: AWACNetworks(obs_dim, act_dim, list(config.net_arch)))
        lr = schedule_value(config.learning_rate, 0.0)
        self.actor_opt = torch.optim.Adam(self.net.actor.parameters(), lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.net.critic.parameters(), lr=lr, fused=True)
        self._critic_params = list(self.net.critic.parameters())
        self._target_params = list(self.net.critic_target.parameters())
        self._init_obs_norm()


    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The clipped policy mean (or a clipped Gaussian sample), rescaled to the env's Box bounds."""
        obs = self._acting_obs(obs_n)
        return self.env_action(self.net.actor.act(obs, self.gen, deterministic)), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One step on the critics, then one on the actor (it weighs with the updated critics), then Q'.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``, truncated ``[B]``.
        """
        cfg = self.config
        lr = self._set_learning_rate()
        obs, next_obs, action, reward, terminated = self._offline_batch(batch)
        net = self.net

        with torch.no_grad():
            next_action = net.actor.sample(next_obs, self.gen)
            target = clipped_double_q_target(reward, terminated, net.critic_target(next_obs, next_action), cfg.gamma)
        q_loss = critic_loss(net.critic(obs, action), target)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.step()

        with torch.no_grad():
            pi_action = net.actor.sample(obs, self.gen)
            q_data, q_pi = net.critic(torch.cat([obs, obs]), torch.cat([action, pi_action])).chunk(2, dim=1)
            weight = advantage_weights(q_data, q_pi, cfg.awac_lambda, cfg.exp_adv_max)
        pi_loss = actor_loss(net.actor.log_prob(obs, action), weight)
        self.actor_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        self.actor_opt.step()

        polyak_update(self._target_params, self._critic_params, cfg.tau)
        self.updates += 1
        stats = torch.stack([pi_loss.detach(), q_loss.detach(), weight.mean()]).tolist()
        out = dict(zip(_STAT_KEYS, stats, strict=True))
        out["train/learning_rate"] = lr
        out["train/n_updates"] = float(self.updates)
        return out

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

