"""SAC agent: acting, one gradient step per ``update``, and its checkpointable state.

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
from agents.sac.config import SACConfig
from agents.sac.loss import actor_loss, critic_loss, ent_coef_loss, soft_q_target
from agents.sac.networks import SACNetworks

__all__ = ["SACAgent"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/ent_coef", "train/ent_coef_loss"]


class SACAgent:
    """Soft Actor-Critic on a flat Box observation and a bounded flat Box action space."""

    on_policy = False
    metric_keys = [*_STAT_KEYS, "train/learning_rate", "train/n_updates"]

    def __init__(self, config: SACConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.obs_dim = flat_obs_dim(obs_space, "sac")
        low, high = box_action_bounds(action_space, "sac")
        require_scalar_reward(reward_dim, "sac")
        self.config = config
        self.reward_dim = reward_dim
        act_dim = int(low.shape[0])
        self.action_shape = (act_dim,)
        self.action_dtype = "float32"
        self._scale_a = (high - low) / 2
        self._center_a = (high + low) / 2
        self._scale_t, self._center_t = torch.from_numpy(self._scale_a), torch.from_numpy(self._center_a)
        self.learn_ent_coef = config.ent_coef == "auto"
        init = config.ent_coef_init if self.learn_ent_coef else float(config.ent_coef)
        self.target_entropy = -float(act_dim) if config.target_entropy == "auto" else float(config.target_entropy)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = SACNetworks(self.obs_dim, act_dim, list(config.net_arch), math.log(init), self.learn_ent_coef)
        self.gen = torch.Generator().manual_seed(seed + 1)
        lr = schedule_value(config.learning_rate, 0.0)
        # log α shares the actor's fused Adam (same lr, per-element state): α's step is taken with the
        # actor's, which SB3 takes earlier in the same update, but α for this update is read before both.
        actor_params = list(self.net.actor.parameters()) + ([self.net.log_ent_coef] if self.learn_ent_coef else [])
        self.actor_opt = torch.optim.Adam(actor_params, lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.net.critic.parameters(), lr=lr, fused=True)
        self._critic_params = list(self.net.critic.parameters())
        self._target_params = list(self.net.critic_target.parameters())
        self.progress = 0.0
        self.updates = 0

    def advance(self, env_steps: int, progress: float) -> None:
        """Called by the loop after every vector step; ``progress`` in [0, 1] drives the lr schedule."""
        self.progress = progress

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sampled (or mean) squashed actions, rescaled to the env's Box bounds."""
        obs = torch.from_numpy(np.asarray(obs_n, dtype=np.float32))
        action_na, _ = self.net.actor.sample(obs, self.gen, deterministic)
        return action_na.numpy() * self._scale_a + self._center_a, {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step on α, the critics and the actor, then the target critics.

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

        action_pi, logp_pi = net.actor.sample(obs, self.gen)
        alpha = net.log_ent_coef.detach().exp()
        with torch.no_grad():
            next_action, next_logp = net.actor.sample(next_obs, self.gen)
            target = soft_q_target(reward, terminated, net.critic_target(next_obs, next_action), next_logp,
                                   alpha, discount)
        q_loss = critic_loss(net.critic(obs, action), target)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.step()

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
        self.actor_opt.step()

        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            polyak_update(self._target_params, self._critic_params, cfg.tau)
        stats = torch.stack([pi_loss.detach(), q_loss.detach(), alpha[0], ent_loss.detach()]).tolist()
        out = dict(zip(_STAT_KEYS, stats, strict=True))
        out["train/learning_rate"] = lr
        out["train/n_updates"] = float(self.updates)
        return out

    def _set_learning_rate(self) -> float:
        lr = schedule_value(self.config.learning_rate, self.progress)
        if not isinstance(self.config.learning_rate, float):
            for opt in (self.actor_opt, self.critic_opt):
                for group in opt.param_groups:
                    group["lr"] = lr
        return lr

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights (targets included), optimizers and generator as arrays; counters as JSON."""
        arrays = module_arrays(self.net, "net/")
        meta = {}
        for name, opt in self._optimizers().items():
            opt_arrays, meta[name] = optimizer_state(opt, f"optim/{name}/")
            arrays.update(opt_arrays)
        arrays.update(generator_arrays(self.gen, "rng/torch"))
        return arrays, {"updates": self.updates, "progress": self.progress, "optimizers": meta}

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Restore everything :meth:`state` saved, or only the actor from :meth:`policy_state`."""
        if json_state.get("policy_only"):
            load_module_arrays(self.net.actor, arrays, "net/actor.")
            return
        load_module_arrays(self.net, arrays, "net/")
        meta = json_state.get("optimizers", {})
        for name, opt in self._optimizers().items():
            if name not in meta:
                raise AgentError(f"checkpoint has no state for the {name} optimizer: it was written by another agent")
            load_optimizer_state(opt, arrays, meta[name], f"optim/{name}/")
        load_generator_arrays(self.gen, arrays, "rng/torch")
        self.updates = int(json_state.get("updates", 0))
        self.progress = float(json_state.get("progress", 0.0))

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: the actor's weights."""
        return module_arrays(self.net.actor, "net/actor."), {"policy_only": True}

