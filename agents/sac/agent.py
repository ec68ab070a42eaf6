"""SAC agent: acting, one gradient step per ``update``, and its checkpointable state.

Axis letters: B batch of transitions, N envs, A action dimensions, C critics.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, polyak_update, reward_tensor
from agents.common.optim import LeanAdam
from agents.sac.config import SACConfig
from agents.sac.loss import actor_loss, critic_loss, ent_coef_loss, soft_q_target
from agents.sac.networks import SACNetworks

__all__ = ["SACAgent"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/ent_coef", "train/ent_coef_loss"]


class SACAgent(BoxActorCritic):
    """Soft Actor-Critic on a flat Box observation and a bounded flat Box action space."""

    algo = "sac"
    metric_keys = [*_STAT_KEYS, "train/learning_rate", "train/n_updates"]

    def __init__(self, config: SACConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.learn_ent_coef = config.ent_coef == "auto"
        init = config.ent_coef_init if self.learn_ent_coef else float(config.ent_coef)
        act_dim = self._setup(config, obs_space, action_space, reward_dim, seed, lambda obs_dim, act_dim: SACNetworks(
            obs_dim, act_dim, list(config.net_arch), math.log(init), self.learn_ent_coef))
        self.target_entropy = -float(act_dim) if config.target_entropy == "auto" else float(config.target_entropy)
        lr = schedule_value(config.learning_rate, 0.0)
        # log α shares the actor's fused Adam (same lr, per-element state): α's step is taken with the
        # actor's, which SB3 takes earlier in the same update, but α for this update is read before both.
        actor_params = list(self.net.actor.parameters()) + ([self.net.log_ent_coef] if self.learn_ent_coef else [])
        self.actor_opt = LeanAdam(actor_params, lr=lr)
        self.critic_opt = LeanAdam(self.net.critic.parameters(), lr=lr)
        self._critic_params = list(self.net.critic.parameters())
        self._target_params = list(self.net.critic_target.parameters())

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sampled (or mean) squashed actions, rescaled to the env's Box bounds."""
        obs = torch.from_numpy(np.asarray(obs_n, dtype=np.float32))
        action_na, _ = self.net.actor.sample(obs, self.gen, deterministic)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step on α, the critics and the actor, then the target critics.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``,
        truncated ``[B]`` and optionally discount ``[B]`` (γ^m of m-step returns).
        """
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.matmul_dtype == "bfloat16"):
            return self._update(batch)

    def _update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        cfg = self.config
        lr = self._set_learning_rate()
        obs = torch.from_numpy(batch["obs"])
        next_obs = torch.from_numpy(batch["next_obs"])
        action = self.unit_action(batch["action"])
        reward = reward_tensor(batch["reward"])
        terminated = torch.from_numpy(batch["terminated"]).float()
        discount = torch.from_numpy(batch["discount"]) if "discount" in batch else cfg.gamma
        net = self.net

        action_pi, logp_pi = net.actor.sample(obs, self.gen)
        alpha = net.log_ent_coef.detach().exp()
        with torch.no_grad():
            next_action, next_logp = net.actor.sample(next_obs, self.gen)
            target = soft_q_target(reward, terminated, net.critic_target(next_obs, next_action), next_logp,
                                   alpha, discount)
        q_loss = critic_loss(net.critic(obs, action), target)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.fast_step()

        # SB3's order: the actor sees the critics after their step; their weights get no gradient.
        pi_loss = actor_loss(net.critic(obs, action_pi, detach_params=True), logp_pi, alpha)
        if self.learn_ent_coef:
            ent_loss = ent_coef_loss(net.log_ent_coef, logp_pi, self.target_entropy)
            total = pi_loss + ent_loss  # disjoint parameters: one backward serves both
        else:
            ent_loss = torch.zeros(())
            total = pi_loss
        self.actor_opt.zero_grad(set_to_none=True)
        total.backward()
        self.actor_opt.fast_step()

        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            polyak_update(self._target_params, self._critic_params, cfg.tau)
        stats = torch.stack([pi_loss.detach(), q_loss.detach(), alpha[0], ent_loss.detach()]).tolist()
        out = dict(zip(_STAT_KEYS, stats, strict=True))
        out["train/learning_rate"] = lr
        out["train/n_updates"] = float(self.updates)
        return out

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}
