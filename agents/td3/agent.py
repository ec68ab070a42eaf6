"""TD3 agent: acting with Gaussian exploration noise, one gradient step per ``update``, its state.

Axis letters: B batch of transitions, N envs, A action dimensions, C critics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.offpolicy import (
    box_action_bounds,
    flat_obs_dim,
    polyak_update,
    require_scalar_reward,
    reward_tensor,
)
from agents.common.torch_state import (
    generator_arrays,
    load_generator_arrays,
    load_module_arrays,
    load_optimizer_state,
    module_arrays,
    optimizer_state,
)
from agents.td3.config import TD3Config
from agents.td3.loss import actor_loss, clipped_double_q_target, critic_loss
from agents.td3.networks import TD3Networks

__all__ = ["TD3Agent"]


class TD3Agent:
    """Twin Delayed DDPG on a flat Box observation and a bounded flat Box action space."""

    on_policy = False
    metric_keys = ["train/actor_loss", "train/critic_loss", "train/learning_rate", "train/n_updates"]

    def __init__(self, config: TD3Config, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.obs_dim = flat_obs_dim(obs_space, "td3")
        low, high = box_action_bounds(action_space, "td3")
        require_scalar_reward(reward_dim, "td3")
        self.config = config
        self.reward_dim = reward_dim
        act_dim = int(low.shape[0])
        self.action_shape = (act_dim,)
        self.action_dtype = "float32"
        self._scale_a = (high - low) / 2
        self._center_a = (high + low) / 2
        self._scale_t, self._center_t = torch.from_numpy(self._scale_a), torch.from_numpy(self._center_a)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = TD3Networks(self.obs_dim, act_dim, list(config.net_arch))
        self.gen = torch.Generator().manual_seed(seed + 1)
        lr = schedule_value(config.learning_rate, 0.0)
        self.actor_opt = torch.optim.Adam(self.net.actor.parameters(), lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.net.critic.parameters(), lr=lr, fused=True)
        self._online_params = list(self.net.critic.parameters()) + list(self.net.actor.parameters())
        self._target_params = list(self.net.critic_target.parameters()) + list(self.net.actor_target.parameters())
        self._last_actor_loss: torch.Tensor | None = None
        self.progress = 0.0
        self.updates = 0

    def advance(self, env_steps: int, progress: float) -> None:
        """Called by the loop after every vector step; ``progress`` in [0, 1] drives the lr schedule."""
        self.progress = progress

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``clip(μ(s) + N(0, σ²), −1, 1)`` (or ``μ(s)``), rescaled to the env's Box bounds."""
        action_na = self.net.actor(torch.from_numpy(np.asarray(obs_n, dtype=np.float32)))
        if not deterministic and self.config.action_noise_std > 0:
            noise = torch.randn(action_na.shape, generator=self.gen) * self.config.action_noise_std
            action_na = (action_na + noise).clamp(-1.0, 1.0)
        return action_na.numpy() * self._scale_a + self._center_a, {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step; every ``policy_delay``-th call also an actor step and the target updates.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``,
        truncated ``[B]`` and optionally discount ``[B]`` (γ^m of m-step returns).
        """
        cfg = self.config
        lr = self._set_learning_rate()
        obs = torch.from_numpy(batch["obs"])
        next_obs = torch.from_numpy(batch["next_obs"])
        action = (torch.from_numpy(batch["action"]) - self._center_t) / self._scale_t
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
        self.critic_opt.step()
        if self.updates % cfg.policy_delay == 0:
            pi_loss = actor_loss(net.critic(obs, net.actor(obs), detach_params=True, first_only=True)[0])
            self.actor_opt.zero_grad(set_to_none=True)
            pi_loss.backward()
            self.actor_opt.step()
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

    def _set_learning_rate(self) -> float:
        lr = schedule_value(self.config.learning_rate, self.progress)
        if not isinstance(self.config.learning_rate, float):
            for opt in (self.actor_opt, self.critic_opt):
                for group in opt.param_groups:
                    group["lr"] = lr
        return lr

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights (targets included), optimizers and generator as arrays; counters as JSON."""
        arrays = module_arrays(self.net, "net/")
        meta = {}
        for name, opt in (("actor", self.actor_opt), ("critic", self.critic_opt)):
            opt_arrays, meta[name] = optimizer_state(opt, f"optim/{name}/")
            arrays.update(opt_arrays)
        arrays.update(generator_arrays(self.gen, "rng/torch"))
        last = None if self._last_actor_loss is None else float(self._last_actor_loss)
        last = last if last is not None and math.isfinite(last) else None
        return arrays, {"updates": self.updates, "progress": self.progress, "optimizers": meta,
                        "last_actor_loss": last}

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Restore everything :meth:`state` saved, or only the actor from :meth:`policy_state`."""
        if json_state.get("policy_only"):
            load_module_arrays(self.net.actor, arrays, "net/actor.")
            return
        load_module_arrays(self.net, arrays, "net/")
        meta = json_state.get("optimizers", {})
        for name, opt in (("actor", self.actor_opt), ("critic", self.critic_opt)):
            if name not in meta:
                raise AgentError(f"checkpoint has no state for the {name} optimizer: it was written by another agent")
            load_optimizer_state(opt, arrays, meta[name], f"optim/{name}/")
        load_generator_arrays(self.gen, arrays, "rng/torch")
        self.updates = int(json_state.get("updates", 0))
        self.progress = float(json_state.get("progress", 0.0))
        last = json_state.get("last_actor_loss")
        self._last_actor_loss = None if last is None else torch.tensor(last, dtype=torch.float32)

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: the actor's weights."""
        return module_arrays(self.net.actor, "net/actor."), {"policy_only": True}
