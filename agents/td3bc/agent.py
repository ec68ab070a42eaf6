"""TD3+BC agent: TD3's acting, critic step and state; the actor step adds behaviour cloning.

Axis letters: B batch of transitions, A action dimensions, C critics.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.common.offpolicy import DatasetNormalizedObs, polyak_update
from agents.td3.agent import TD3Agent
from agents.td3.loss import clipped_double_q_target, critic_loss
from agents.td3bc.config import TD3BCConfig
from agents.td3bc.loss import td3bc_actor_loss

__all__ = ["TD3BCAgent"]


class TD3BCAgent(DatasetNormalizedObs, TD3Agent):
    """TD3+BC on a flat Box observation and a bounded flat Box action space."""

    algo = "td3bc"
    offline = True
    metric_keys = ["train/actor_loss", "train/critic_loss", "train/bc_lambda", "train/learning_rate",
                   "train/n_updates"]

    def __init__(self, config: TD3BCConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        super().__init__(config, obs_space, action_space, reward_dim, seed)
        self._last_lambda: torch.Tensor | None = None
        self._init_obs_norm()


    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """TD3's acting on the normalised observation."""
        obs = self._acting_obs(obs_n)
        return super().act(obs.numpy(), deterministic)

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step; every ``policy_delay``-th call also the TD3+BC actor step and target updates."""
        cfg = self.config
        lr = self._set_learning_rate()
        obs, next_obs, action, reward, terminated = self._offline_batch(batch)
        net = self.net
        self.updates += 1
        with torch.no_grad():
            noise = torch.randn(action.shape, generator=self.gen) * cfg.target_policy_noise
            next_action = net.smoothed_target_action(next_obs, noise, cfg.target_noise_clip)
            target = clipped_double_q_target(reward, terminated, net.critic_target(next_obs, next_action), cfg.gamma)
        q_loss = critic_loss(net.critic(obs, action), target)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.step()
        if self.updates % cfg.policy_delay == 0:
            pi = net.actor(obs)
            q1 = net.critic(obs, pi, detach_params=True, first_only=True)[0]
            pi_loss, lam = td3bc_actor_loss(q1, pi, action, cfg.alpha)
            self.actor_opt.zero_grad(set_to_none=True)
            pi_loss.backward()
            self.actor_opt.step()
            polyak_update(self._target_params, self._online_params, cfg.tau)
            self._last_actor_loss, self._last_lambda = pi_loss.detach(), lam
        out = {"train/critic_loss": q_loss.detach()}
        if self._last_actor_loss is not None:
            out["train/actor_loss"] = self._last_actor_loss
        if self._last_lambda is not None:
            out["train/bc_lambda"] = self._last_lambda
        values = torch.stack(list(out.values())).tolist()
        metrics = dict(zip(out, values, strict=True))
        metrics["train/learning_rate"] = lr
        metrics["train/n_updates"] = float(self.updates)
        return metrics


    def _extra_json(self) -> dict:
        """TD3's counters plus the last λ (so a resumed run logs the same metrics)."""
        lam = None if self._last_lambda is None else float(self._last_lambda)
        return {**super()._extra_json(), "last_bc_lambda": lam}

    def _load_extra_json(self, json_state: dict) -> None:
        super()._load_extra_json(json_state)
        lam = json_state.get("last_bc_lambda")
        self._last_lambda = None if lam is None else torch.tensor(lam, dtype=torch.float32)
