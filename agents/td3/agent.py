"""TD3 agent: acting with Gaussian exploration noise, one gradient step per ``update``, its state.

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
from agents.td3.config import TD3Config
from agents.td3.loss import actor_loss, clipped_double_q_target, critic_loss
from agents.td3.networks import TD3Networks

__all__ = ["TD3Agent"]


class TD3Agent(BoxActorCritic):
    """Twin Delayed DDPG on a flat Box observation and a bounded flat Box action space."""

    algo = "td3"
    metric_keys = ["train/actor_loss", "train/critic_loss", "train/learning_rate", "train/n_updates"]

    def __init__(self, config: TD3Config, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self._setup(config, obs_space, action_space, reward_dim, seed,
                    lambda obs_dim, act_dim: TD3Networks(obs_dim, act_dim, list(config.net_arch)))
        lr = schedule_value(config.learning_rate, 0.0)
        self.actor_opt = LeanAdam(self.net.actor.parameters(), lr=lr)
        self.critic_opt = LeanAdam(self.net.critic.parameters(), lr=lr)
        self._online_params = list(self.net.critic.parameters()) + list(self.net.actor.parameters())
        self._target_params = list(self.net.critic_target.parameters()) + list(self.net.actor_target.parameters())
        self._last_actor_loss: torch.Tensor | None = None

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``clip(μ(s) + N(0, σ²), −1, 1)`` (or ``μ(s)``), rescaled to the env's Box bounds."""
        action_na = self.net.actor(torch.from_numpy(np.asarray(obs_n, dtype=np.float32)))
        if not deterministic and self.config.action_noise_std > 0:
            noise = torch.randn(action_na.shape, generator=self.gen) * self.config.action_noise_std
            action_na = (action_na + noise).clamp(-1.0, 1.0)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step; every ``policy_delay``-th call also an actor step and the target updates.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``,
        truncated ``[B]`` and optionally discount ``[B]`` (γ^m of m-step returns).
        """
        cfg = self.config
        lr = self._set_learning_rate()
        obs = torch.from_numpy(batch["obs"])
        next_obs = torch.from_numpy(batch["next_obs"])
        action = self.unit_action(batch["action"])
        reward = reward_tensor(batch["reward"])
        terminated = torch.from_numpy(batch["terminated"]).float()
        discount = torch.from_numpy(batch["discount"]) if "discount" in batch else cfg.gamma
        net = self.net
        self.updates += 1
        with torch.no_grad():
            noise = torch.randn(action.shape, generator=self.gen) * cfg.target_policy_noise
            next_action = net.smoothed_target_action(next_obs, noise, cfg.target_noise_clip)
            target = clipped_double_q_target(reward, terminated, net.critic_target(next_obs, next_action), discount)
        q_loss = critic_loss(net.critic(obs, action), target)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.fast_step()
        if self.updates % cfg.policy_delay == 0:
            pi_loss = actor_loss(net.critic(obs, net.actor(obs), detach_params=True, first_only=True)[0])
            self.actor_opt.zero_grad(set_to_none=True)
            pi_loss.backward()
            self.actor_opt.fast_step()
            polyak_update(self._target_params, self._online_params, cfg.tau)
            self._last_actor_loss = pi_loss.detach()
        out = {"train/critic_loss": q_loss.detach()}
        if self._last_actor_loss is not None:
            out["train/actor_loss"] = self._last_actor_loss
        values = torch.stack(list(out.values())).tolist()
        metrics = dict(zip(out, values, strict=True))
        metrics["train/learning_rate"] = lr
        metrics["train/n_updates"] = float(self.updates)
        return metrics

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def _extra_json(self) -> dict:
        last = None if self._last_actor_loss is None else float(self._last_actor_loss)
        return {"last_actor_loss": last if last is not None and math.isfinite(last) else None}

    def _load_extra_json(self, json_state: dict) -> None:
        last = json_state.get("last_actor_loss")
        self._last_actor_loss = None if last is None else torch.tensor(last, dtype=torch.float32)
