"""Weight-conditioned multi-objective DQN: ε-greedy on ``w · Q(s ‖ w)``, envelope targets, its state.

Axis letters: B batch, N envs, M weights per transition, A actions, K objectives, D observation
features (the last K of which are the weights, as `envs.mo.WeightConditionedObservation` appends).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.offpolicy import flat_obs_dim, hard_update, polyak_update
from agents.common.torch_state import load_module_arrays, load_optimizer_state, module_arrays, optimizer_state
from agents.dqn.loss import epsilon
from agents.mo_dqn.config import MODQNConfig
from agents.mo_dqn.loss import envelope_loss, vector_target
from agents.mo_dqn.networks import MOQNetworks
from rl.core.seeding import generator_state, restore_generator

__all__ = ["MODQNAgent"]


class MODQNAgent:
    """One network for every linear trade-off: ``Q(s ‖ w) -> [A, K]``, acting greedily on ``w · Q``.

    Each sampled transition is trained under its own weights and ``num_weight_samples − 1`` others
    drawn uniformly from the simplex (the weights in its observations are replaced), so one
    experience teaches every trade-off.
    """

    on_policy = False
    metric_keys = ["train/loss", "train/vector_loss", "train/utility_loss", "train/learning_rate",
                   "train/n_updates", "rollout/exploration_rate"]

    def __init__(self, config: MODQNConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.obs_dim = flat_obs_dim(obs_space, "mo_dqn")
        if not isinstance(action_space, spaces.Discrete):
            raise AgentError(f"agent.algo=mo_dqn needs a Discrete action space, got {action_space}")
        if reward_dim < 2:
            raise AgentError(f"agent.algo=mo_dqn needs a multi-objective env (K >= 2); this env has K={reward_dim}")
        k = reward_dim
        if self.obs_dim <= k or not (np.all(obs_space.low[-k:] == 0) and np.all(obs_space.high[-k:] == 1)):
            raise AgentError("agent.algo=mo_dqn reads the objective weights from the last K observation entries; "
                             "add {name: WeightConditionedObservation} to env.wrappers")
        self.config = config
        self.reward_dim = k
        self.n_actions = int(action_space.n)
        self._start = int(action_space.start)
        self.action_shape = ()
        self.action_dtype = "int64"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                self.net = MOQNetworks(self.obs_dim, self.n_actions, k, list(config.net_arch),
                                       config.weight_features, config.weight_feature_scale,
                                       config.weight_feature_basis)
            except ValueError as err:  # the weight features' frequencies do not fit this env
                raise AgentError(f"agent.{err}") from None
        self.rng = np.random.default_rng([seed, 1])
        self.optimizer = torch.optim.Adam(self.net.q.parameters(), lr=schedule_value(config.learning_rate, 0.0))
        self._params = list(self.net.q.parameters())
        self._target_params = list(self.net.q_target.parameters())
        self.progress = 0.0
        self.exploration_rate = epsilon(0.0, config.exploration_initial_eps, config.exploration_final_eps,
                                        config.exploration_fraction)
        self.target_syncs = 0
        self.updates = 0

    def advance(self, env_steps: int, progress: float) -> None:
        """After every vector step: move ε and sync the target every ``target_update_interval`` env steps."""
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
        """``argmax_a w · Q(s ‖ w)[a]`` with w the observation's weights; ε-greedy unless ``deterministic``."""
        obs = torch.from_numpy(np.asarray(obs_n, dtype=np.float32))
        q_nak = self.net.q(obs)
        greedy_n = torch.einsum("nak,nk->na", q_nak, obs[:, -self.reward_dim:]).argmax(dim=1).numpy()
        if not deterministic:
            # Both draws are always made so the generator's position does not depend on the outcome.
            explore_n = self.rng.random(len(greedy_n)) < self.exploration_rate
            random_n = self.rng.integers(0, self.n_actions, len(greedy_n))
            greedy_n = np.where(explore_n, random_n, greedy_n)
        return greedy_n + self._start, {}

    def _weights(self, obs_bd: np.ndarray) -> torch.Tensor:
        """The M weights ``[B, M, K]`` each transition is trained under: its stored one first, then
        M − 1 drawn uniformly from the simplex (hindsight relabelling)."""
        k, m = self.reward_dim, self.config.num_weight_samples
        w_bmk = np.empty((len(obs_bd), m, k), np.float32)
        w_bmk[:, 0] = obs_bd[:, -k:]
        if m > 1:
            w_bmk[:, 1:] = self.rng.dirichlet(np.ones(k), size=(len(obs_bd), m - 1))
        return torch.from_numpy(w_bmk)

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step. ``batch``: obs, action ``[B]``, reward ``[B, K]``, next_obs, terminated ``[B]``,
        truncated ``[B]`` and optionally discount ``[B]`` (γ^m of m-step returns)."""
        cfg = self.config
        lr = schedule_value(cfg.learning_rate, self.progress)
        if not isinstance(cfg.learning_rate, float):
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        obs_np = np.asarray(batch["obs"], np.float32)
        w_bmk = self._weights(obs_np)
        obs_bd, next_bd = torch.from_numpy(obs_np), torch.from_numpy(np.asarray(batch["next_obs"], np.float32))
        action_b = torch.from_numpy(np.asarray(batch["action"], dtype=np.int64)) - self._start
        reward_bk = torch.from_numpy(np.asarray(batch["reward"], np.float32).reshape(len(action_b), -1))
        terminated_b = torch.from_numpy(batch["terminated"]).float()
        discount = torch.from_numpy(batch["discount"]) if "discount" in batch else cfg.gamma
        with torch.no_grad():
            next_target = self.net.q_target(next_bd, w_bmk)
            next_select = self.net.q(next_bd, w_bmk) if cfg.double_q else next_target
            y_bmk = vector_target(reward_bk, terminated_b, discount, w_bmk, next_target, next_select,
                                  cfg.target == "envelope")
        q_bmak = self.net.q(obs_bd, w_bmk)
        b, m, _, k = q_bmak.shape
        q_bmk = torch.gather(q_bmak, 2, action_b[:, None, None, None].expand(b, m, 1, k)).squeeze(2)
        loss, vector, utility = envelope_loss(q_bmk, y_bmk, w_bmk, cfg.utility_loss_coef)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.updates += 1
        return {"train/loss": loss.item(), "train/vector_loss": vector.item(), "train/utility_loss": utility.item(),
                "train/learning_rate": lr, "train/n_updates": float(self.updates),
                "rollout/exploration_rate": self.exploration_rate}

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights (target included) and optimizer as arrays; counters, ε and the generator as JSON."""
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
            raise AgentError("checkpoint has no mo_dqn optimizer or generator state: it was written by another agent")
        load_optimizer_state(self.optimizer, arrays, json_state["optimizer"], "optim/")
        restore_generator(self.rng, json_state["rng"])
        self.updates = int(json_state.get("updates", 0))
        self.progress = float(json_state.get("progress", 0.0))
        self.target_syncs = int(json_state.get("target_syncs", 0))
        self.exploration_rate = float(json_state.get("exploration_rate", self.exploration_rate))

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: the Q-network's weights."""
        return module_arrays(self.net.q, "net/q."), {"policy_only": True}
