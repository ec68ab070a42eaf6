"""PPO agent: acting, one update per rollout, and its checkpointable state.

Axis letters: B batch of transitions, K reward objectives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.normalization import RunningMeanStd
from agents.common.optim import LeanAdam, clip_grad_norm, zero_grad
from agents.common.torch_state import (
    generator_arrays,
    load_generator_arrays,
    load_module_arrays,
    load_optimizer_state,
    module_arrays,
    optimizer_state,
)
from agents.ppo.config import PPOConfig
from agents.ppo.fused import fused_ppo_grads
from agents.ppo.loss import STATS, ppo_loss
from agents.ppo.networks import ActorCritic

__all__ = ["PPOAgent"]

_APPROX_KL = STATS.index("train/approx_kl")
"""Index of ``train/approx_kl`` in the stacked statistics (`agents.ppo.loss.STATS`)."""


class PPOAgent:
    """Clipped-objective PPO on a flat Box observation, discrete or Box actions."""

    on_policy = True
    extra_fields = {"logprob": ((), "float32"), "value": (("K",), "float32")}
    metric_keys = ["train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/clip_fraction",
                   "train/approx_kl", "train/loss", "train/learning_rate", "train/clip_range",
                   "train/explained_variance", "train/n_updates"]

    def __init__(self, config: PPOConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
            raise AgentError(f"agent.algo=ppo needs a flat Box observation space, got {obs_space}")
        if isinstance(action_space, spaces.Discrete):
            discrete, act_dim = True, int(action_space.n)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            discrete, act_dim = False, int(action_space.shape[0])
        else:
            raise AgentError(f"agent.algo=ppo supports Discrete or flat Box actions, got {action_space}")
        if config.weights_from_obs and obs_space.shape[0] <= reward_dim:
            raise AgentError(f"agent.weights_from_obs: the observation ({obs_space.shape[0]} entries) must end with "
                             f"the K={reward_dim} weights; add the WeightConditionedObservation wrapper")
        self.config = config
        self.discrete = discrete
        self.reward_dim = reward_dim
        self.obs_dim = int(obs_space.shape[0])
        self.action_shape = () if discrete else (act_dim,)
        self.action_dtype = "int64" if discrete else "float32"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ActorCritic(self.obs_dim, act_dim, discrete, reward_dim, list(config.net_arch),
                                   config.activation, config.ortho_init, config.log_std_init)
        self.gen = torch.Generator().manual_seed(seed + 1)
        params = [p for p in self.net.parameters() if p.requires_grad]
        self._params = params
        # fused Adam: one kernel for all parameters instead of a Python loop over them
        self.optimizer = LeanAdam(params, lr=schedule_value(config.learning_rate, 0.0), eps=1e-5)
        self.obs_rms = RunningMeanStd((self.obs_dim,)) if config.normalize_obs else None
        self.updates = 0
        self._adv_weights = self._advantage_weights(config, reward_dim)

    @staticmethod
    def _advantage_weights(config: PPOConfig, reward_dim: int) -> torch.Tensor | None:
        """Fixed ``[K]`` weights combining per-objective advantages (None: from obs, or a plain sum)."""
        if config.weights_from_obs or config.objective_weights is None:
            return None
        if len(config.objective_weights) != reward_dim:
            raise AgentError(f"agent.objective_weights: {len(config.objective_weights)} weights for an env with "
                             f"K={reward_dim} objectives")
        return torch.tensor(config.objective_weights, dtype=torch.float32)

    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        if self.obs_rms is not None:
            obs = self.obs_rms.normalize(obs)
        return torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))

    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sampled (or greedy) actions with their log-probabilities and values ``[N, K]``."""
        action, logp, value = self.net.sample(self._obs(obs_n), self.gen, deterministic)
        return action.numpy(), {"logprob": logp.numpy(), "value": value.numpy()}

    @torch.inference_mode()
    def value(self, obs_b: np.ndarray) -> np.ndarray:
        """State values ``[B, K]``."""
        return self.net.value(self._obs(obs_b)).numpy()

    def update(self, batch: dict[str, np.ndarray], minibatches, progress: float) -> dict[str, float]:
        """Epochs of clipped-PPO minibatch steps over one rollout.

        ``batch`` holds flat ``[B, ...]`` arrays: obs, action, logprob, value, advantage, returns and
        valid. ``minibatches`` yields, per epoch, a list of index arrays. ``progress`` in [0, 1]
        drives the schedules.
        """
        cfg = self.config
        lr = schedule_value(cfg.learning_rate, progress)
        clip = schedule_value(cfg.clip_range, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        obs = self._obs(batch["obs"])
        action = torch.from_numpy(batch["action"])
        old_logp = torch.from_numpy(batch["logprob"])
        old_value = torch.from_numpy(batch["value"])
        # Kernel outputs may be read-only views of JAX buffers; torch needs writable memory.
        returns = torch.from_numpy(np.require(batch["returns"], requirements="W"))
        adv_bk = torch.from_numpy(np.require(batch["advantage"], requirements="W"))
        if cfg.weights_from_obs:
            # Weight-conditioned PPO: each transition's own weights, the last K raw obs entries.
            adv = (adv_bk * torch.from_numpy(np.ascontiguousarray(batch["obs"][:, -self.reward_dim:]))).sum(-1)
        elif self._adv_weights is not None:
            adv = adv_bk @ self._adv_weights
        else:
            adv = adv_bk.sum(-1)
        valid = batch["valid"]
        weight = None if valid.all() else torch.from_numpy(valid.astype(np.float32))
        # With ent_coef 0 the entropy is a logged statistic only: computing it outside the graph keeps
        # its ops out of every backward pass (the loss and the gradients are the same).
        entropy_grad = cfg.ent_coef != 0.0
        stats_sum: torch.Tensor | None = None
        n_mb = 0
        stop = False
        rows = len(batch["obs"])
        full_adv = None
        for epoch_batches in minibatches:
            for idx in epoch_batches:
                if len(idx) == rows:  # one minibatch is the whole rollout: no gather needed
                    if full_adv is None:  # ... and its normalised advantages are the same every epoch
                        full_adv = _normalized(adv) if cfg.normalize_advantage and rows > 1 else adv
                    mb = (obs, action, full_adv, old_logp, old_value, returns, weight)
                else:
                    i = torch.from_numpy(idx)
                    mb = (obs[i], action[i], adv[i], old_logp[i], old_value[i], returns[i],
                          None if weight is None else weight[i])
                    if cfg.normalize_advantage and len(idx) > 1:
                        mb = (mb[0], mb[1], _normalized(mb[2]), *mb[3:])
                if cfg.fused_update:
                    stacked = fused_ppo_grads(self.net, *mb, clip, cfg.clip_range_vf, cfg.vf_coef, cfg.ent_coef)
                else:
                    mb_obs, mb_action, a, mb_old_logp, mb_old_value, mb_returns, mb_weight = mb
                    logp, entropy, value = self.net.evaluate(mb_obs, mb_action, entropy_grad)
                    loss, stats = ppo_loss(logp, mb_old_logp, a, value, mb_old_value, mb_returns, entropy,
                                           mb_weight, clip, cfg.clip_range_vf, cfg.vf_coef, cfg.ent_coef)
                    stacked = torch.stack(list(stats.values()))  # one sum per minibatch, not one per statistic
                if cfg.target_kl is not None and stacked[_APPROX_KL] > 1.5 * cfg.target_kl:
                    stop = True
                    break
                if not cfg.fused_update:
                    zero_grad(self._params)
                    loss.backward()
                clip_grad_norm(self._params, cfg.max_grad_norm)
                self.optimizer.fast_step()
                stats_sum = stacked if stats_sum is None else stats_sum.add_(stacked)
                n_mb += 1
            if stop:
                break
        self.updates += 1
        if self.obs_rms is not None:
            self.obs_rms.update(batch["obs"][valid])
        out = {k: v / n_mb for k, v in zip(STATS, stats_sum.tolist(), strict=True)} if n_mb else {}
        out["train/learning_rate"] = lr
        out["train/clip_range"] = clip
        out["train/explained_variance"] = _explained_variance(batch["value"], batch["returns"])
        out["train/n_updates"] = float(self.updates)
        return out

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights, optimizer and generator as arrays; counters and normaliser as JSON."""
        arrays = module_arrays(self.net, "net/")
        opt_arrays, opt_meta = optimizer_state(self.optimizer, "optim/")
        arrays.update(opt_arrays)
        arrays.update(generator_arrays(self.gen, "rng/torch"))
        json_state = {"updates": self.updates, "optimizer": opt_meta,
                      "obs_rms": None if self.obs_rms is None else self.obs_rms.state()}
        return arrays, json_state

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Restore everything :meth:`state` saved."""
        _refuse_separate_layout(arrays)
        load_module_arrays(self.net, arrays, "net/")
        if "optimizer" in json_state:
            load_optimizer_state(self.optimizer, arrays, json_state["optimizer"], "optim/")
        if "rng/torch" in arrays:
            load_generator_arrays(self.gen, arrays, "rng/torch")
        self.updates = int(json_state.get("updates", 0))
        if self.obs_rms is not None:
            if json_state.get("obs_rms") is None:
                raise AgentError("checkpoint has no observation statistics but agent.normalize_obs is true")
            self.obs_rms.load(json_state["obs_rms"])

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: network weights and observation statistics."""
        return module_arrays(self.net, "net/"), {
            "obs_rms": None if self.obs_rms is None else self.obs_rms.state()
        }


def _refuse_separate_layout(arrays: dict[str, np.ndarray]) -> None:
    """Name the cause when a checkpoint holds PPO's earlier layout (separate ``pi.*``/``vf.*`` Sequentials)."""
    if "net/pi.0.weight" in arrays and "net/w0" not in arrays:
        raise AgentError("this PPO checkpoint stores the actor and critic as separate pi.*/vf.* layers, a layout "
                         "this version no longer reads (it stacks them as w0, b0, ...); train the run again")


def _normalized(adv_b: torch.Tensor) -> torch.Tensor:
    """Advantages normalised to zero mean and unit (sample) standard deviation, as SB3 does per minibatch."""
    std, mean = torch.std_mean(adv_b)
    return (adv_b - mean) / (std + 1e-8)


def _explained_variance(value_bk: np.ndarray, returns_bk: np.ndarray) -> float:
    var = float(np.var(returns_bk))
    return float("nan") if var == 0 else 1.0 - float(np.var(returns_bk - value_bk)) / var
