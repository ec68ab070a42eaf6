"""IQL agent: acting, one gradient step per ``update`` (V, then Q, then the actor), its state.

Axis letters: B batch of transitions, N envs, A action dimensions, C critics.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, polyak_update, reward_tensor
from agents.iql.config import IQLConfig
from agents.iql.loss import actor_loss, advantage_weights, expectile_loss, q_loss, q_target
from agents.iql.networks import IQLNetworks
from agents.td3bc.networks import ObsNormalizer

__all__ = ["IQLAgent"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/value_loss", "train/mean_advantage"]


class IQLAgent(BoxActorCritic):
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
        self.obs_norm = ObsNormalizer(self.obs_dim)

    def fit_obs_normalizer(self, obs_mo: np.ndarray) -> None:
        """Fix the state normaliser to the dataset's mean and std (as CORL's IQL does).

        Call with the whole offline dataset before the first update. Without it, the first update
        fits it to that batch's ``obs`` and ``next_obs`` (an estimate from 2·B states).
        """
        self.obs_norm.fit(obs_mo)

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The policy mean (or a clipped Gaussian sample), rescaled to the env's Box bounds."""
        obs = self.obs_norm(torch.from_numpy(np.asarray(obs_n, dtype=np.float32)))
        action_na = self.net.actor.act(obs, self.gen, deterministic)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One step on V (expectile of Q' − V), Q (target r + γ(1−term)V(s')), the actor, then Q'.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``, truncated ``[B]``.
        """
        cfg = self.config
        lr = self._set_learning_rate()
        if not bool(self.obs_norm.fitted):
            self.obs_norm.fit(np.concatenate([batch["obs"], batch["next_obs"]]))
        obs = self.obs_norm(torch.from_numpy(batch["obs"]))
        next_obs = self.obs_norm(torch.from_numpy(batch["next_obs"]))
        action = self.unit_action(batch["action"]).clamp(-1.0, 1.0)
        reward = reward_tensor(batch["reward"])
        terminated = torch.from_numpy(batch["terminated"]).float()
        net = self.net

        with torch.no_grad():
            target_q = net.critic_target(obs, action).min(dim=0).values
            next_v = net.value(next_obs)
        v = net.value(obs)
        adv = target_q - v
        v_loss = expectile_loss(adv, cfg.expectile)
        self.value_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.value_opt.step()

        critic_l = q_loss(net.critic(obs, action), q_target(reward, terminated, next_v, cfg.gamma))
        self.critic_opt.zero_grad(set_to_none=True)
        critic_l.backward()
        self.critic_opt.step()

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

    def _policy_modules(self) -> dict:
        return {"obs_norm/": self.obs_norm}
