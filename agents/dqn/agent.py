"""DQN agent: ε-greedy acting, one gradient step per ``update``, target syncs, and its state.

Axis letters: B batch of transitions, N envs, A discrete actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.offpolicy import flat_obs_dim, hard_update, polyak_update, require_scalar_reward, reward_tensor
from agents.common.optim import LeanAdam
from agents.common.torch_state import load_module_arrays, load_optimizer_state, module_arrays, optimizer_state
from agents.dqn.config import DQNConfig
from agents.dqn.loss import epsilon, q_target, td_loss
from agents.dqn.networks import DQNNetworks
from rl.core.seeding import generator_state, restore_generator

__all__ = ["DQNAgent"]


class DQNAgent:
    """(Double) DQN on a flat Box observation and a Discrete action space."""

    on_policy = False
    metric_keys = ["train/loss", "train/learning_rate", "train/n_updates", "rollout/exploration_rate"]

    def __init__(self, config: DQNConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.obs_dim = flat_obs_dim(obs_space, "dqn")
        if not isinstance(action_space, spaces.Discrete):
            raise AgentError(f"agent.algo=dqn needs a Discrete action space, got {action_space}")
        require_scalar_reward(reward_dim, "dqn")
        self.config = config
        self.reward_dim = reward_dim
        self.n_actions = int(action_space.n)
        self._start = int(action_space.start)
        self.action_shape = ()
        self.action_dtype = "int64"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = DQNNetworks(self.obs_dim, self.n_actions, list(config.net_arch))
        self.rng = np.random.default_rng([seed, 1])
        self.optimizer = LeanAdam(self.net.q.parameters(), lr=schedule_value(config.learning_rate, 0.0))
        self._params = list(self.net.q.parameters())
        self._target_params = list(self.net.q_target.parameters())
        self.progress = 0.0
        self.exploration_rate = epsilon(0.0, config.exploration_initial_eps, config.exploration_final_eps,
                                        config.exploration_fraction)
        self.target_syncs = 0
        self.updates = 0

    def advance(self, env_steps: int, progress: float) -> None:
        """Called by the loop after every vector step: moves ε and syncs the target network.

        The target is updated each time ``env_steps`` passes a multiple of ``target_update_interval``
        (SB3 counts the same interval in env steps).
        """
        cfg = self.config
        self.progress = progress
        self.exploration_rate = epsilon(progress, cfg.exploration_initial_eps, cfg.exploration_final_eps,
                                        cfg.exploration_fraction)
        syncs = env_steps // cfg.target_update_interval
        if syncs > self.target_syncs:
            self.target_syncs = syncs
            if cfg.tau >= 1.0:
                hard_update(self._target_params, self._params)
            else:
                polyak_update(self._target_params, self._params, cfg.tau)

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Greedy actions, each replaced by a uniform one with probability ε unless ``deterministic``."""
        greedy_n = self.net.q(torch.from_numpy(np.asarray(obs_n, dtype=np.float32))).argmax(dim=1).numpy()
        if not deterministic:
            # Both draws are always made so the generator's position does not depend on the outcome.
            explore_n = self.rng.random(len(greedy_n)) < self.exploration_rate
            random_n = self.rng.integers(0, self.n_actions, len(greedy_n))
            greedy_n = np.where(explore_n, random_n, greedy_n)
        return greedy_n + self._start, {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One Huber-loss gradient step with gradient-norm clipping.

        ``batch``: obs, action ``[B]`` (env ids), reward ``[B, 1]``, next_obs, terminated ``[B]``,
        truncated ``[B]`` and optionally discount ``[B]`` (γ^m of m-step returns).
        """
        cfg = self.config
        lr = schedule_value(cfg.learning_rate, self.progress)
        if not isinstance(cfg.learning_rate, float):
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        obs = torch.from_numpy(batch["obs"])
        next_obs = torch.from_numpy(batch["next_obs"])
        action = torch.from_numpy(np.asarray(batch["action"], dtype=np.int64)) - self._start
        reward = reward_tensor(batch["reward"])
        terminated = torch.from_numpy(batch["terminated"]).float()
        discount = torch.from_numpy(batch["discount"]) if "discount" in batch else cfg.gamma
        with torch.no_grad():
            next_online = self.net.q(next_obs) if cfg.double_q else None
            target = q_target(reward, terminated, self.net.q_target(next_obs), next_online, discount)
        q = self.net.q(obs).gather(1, action[:, None]).squeeze(1)
        loss = td_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
        self.optimizer.fast_step()
        self.updates += 1
        return {"train/loss": loss.item(), "train/learning_rate": lr, "train/n_updates": float(self.updates),
                "rollout/exploration_rate": self.exploration_rate}

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights (target included) and optimizer as arrays; counters, ε and the ε generator as JSON."""
        arrays = module_arrays(self.net, "net/")
        opt_arrays, opt_meta = optimizer_state(self.optimizer, "optim/")
        arrays.update(opt_arrays)
        return arrays, {"updates": self.updates, "progress": self.progress, "target_syncs": self.target_syncs,
                        "exploration_rate": self.exploration_rate, "optimizer": opt_meta,
                        "rng": generator_state(self.rng)}

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Restore everything :meth:`state` saved, or only the Q-network from :meth:`policy_state`."""
        if json_state.get("policy_only"):
            load_module_arrays(self.net.q, arrays, "net/q.")
            return
        load_module_arrays(self.net, arrays, "net/")
        if "optimizer" not in json_state or "rng" not in json_state:
            raise AgentError("checkpoint has no DQN optimizer or generator state: it was written by another agent")
        load_optimizer_state(self.optimizer, arrays, json_state["optimizer"], "optim/")
        restore_generator(self.rng, json_state["rng"])
        self.updates = int(json_state.get("updates", 0))
        self.progress = float(json_state.get("progress", 0.0))
        self.target_syncs = int(json_state.get("target_syncs", 0))
        self.exploration_rate = float(json_state.get("exploration_rate", self.exploration_rate))

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: the Q-network's weights."""
        return module_arrays(self.net.q, "net/q."), {"policy_only": True}
