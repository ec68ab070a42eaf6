"""Uni-O4 agent: the offline steps (ensemble BC and critics, then OPE-gated multi-step PPO) and, after
:meth:`UniO4Agent.start_online`, a PPO agent initialised from the best member.

Axis letters: E ensemble members, B batch of transitions, N envs, M dataset transitions, A action dimensions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.common.offpolicy import BoxActorCritic, DatasetNormalizedObs, polyak_update
from agents.common.torch_state import load_module_arrays, module_arrays
from agents.iql.agent import value_and_critic_step
from agents.ppo.agent import PPOAgent
from agents.ppo.config import PPOConfig
from agents.unio4.config import UniO4Config
from agents.unio4.loss import (
    ensemble_bc_loss,
    improvement_loss,
    normalized_advantage,
    ope_gate,
)
from agents.unio4.networks import UniO4Networks, fold_linear_stack

__all__ = ["UniO4Agent"]

_OFFLINE_KEYS = ["train/bc_loss", "train/critic_loss", "train/value_loss", "train/ope_score",
                 "train/reference_updates", "train/selected_policy"]
"""Offline columns; ``train/value_loss`` is V's expectile loss offline and PPO's value loss online."""


class UniO4Agent(DatasetNormalizedObs, BoxActorCritic):
    """Uni-O4 on a flat Box observation and a bounded flat Box action space, scalar rewards.

    ``update(batch)`` is one offline gradient step while offline; once :meth:`start_online` ran,
    ``update(batch, minibatches, progress)`` is PPO's (see :class:`agents.ppo.agent.PPOAgent`), and
    ``act``/``value`` are PPO's too, with the extras the on-policy rollout stores.
    """

    algo = "unio4"
    offline = True
    online_on_policy = True  # its online phases collect PPO rollouts (experiments/loops/onpolicy_phased.py)
    extra_fields = PPOAgent.extra_fields
    metric_keys = list(dict.fromkeys([*_OFFLINE_KEYS, *PPOAgent.metric_keys]))

    def __init__(self, config: UniO4Config, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self._setup(config, obs_space, action_space, reward_dim, seed, lambda obs_dim, act_dim: UniO4Networks(
            config.num_policies, obs_dim, act_dim, list(config.net_arch), config.log_std_init))
        net = self.net
        self.bc_opt = torch.optim.Adam(net.policy.parameters(), lr=config.bc_learning_rate, fused=True)
        self.improve_opt = torch.optim.Adam(net.policy.parameters(), lr=config.improve_learning_rate, fused=True)
        self.critic_opt = torch.optim.Adam(net.critic.parameters(), lr=config.critic_learning_rate, fused=True)
        self.value_opt = torch.optim.Adam(net.value.parameters(), lr=config.critic_learning_rate, fused=True)
        self._policy_params = list(net.policy.parameters())
        self._critic_params = list(net.critic.parameters())
        self._target_params = list(net.critic_target.parameters())
        self._init_obs_norm()
        self.ppo = PPOAgent(self._ppo_config(config), obs_space, action_space, reward_dim, seed + 2)
        self.online = False
        self.improve_steps = 0
        self.reference_updates = 0
        self.best_score: list[float] | None = None  # per member, set when the improvement starts
        self.selected = 0  # the member acting offline (the best accepted reference) and seeding PPO
        self.ope_obs: np.ndarray | None = None  # [S, O] raw dataset states of the offline evaluation

    @staticmethod
    def _ppo_config(cfg: UniO4Config) -> PPOConfig:
        """The online PPO: Uni-O4's online fields, a ReLU actor-critic of the same widths (weights come
        from the offline networks, so no orthogonal init and no running normaliser)."""
        return PPOConfig(learning_rate=cfg.learning_rate, n_steps=cfg.n_steps, batch_size=cfg.batch_size,
                         n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range,
                         ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm,
                         target_kl=cfg.target_kl, net_arch=list(cfg.net_arch), activation="relu", ortho_init=False)

    def set_evaluation_states(self, obs_mo: np.ndarray) -> None:
        """The states of the offline evaluation: ``ope_states`` rows evenly spaced over the dataset."""
        idx = np.linspace(0, len(obs_mo) - 1, min(self.config.ope_states, len(obs_mo))).round().astype(np.int64)
        self.ope_obs = np.ascontiguousarray(obs_mo[idx], dtype=np.float32)

    # -- acting ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Online: PPO's action, log-probability and value. Offline: the selected member's mean (or a
        sample clipped to [-1, 1]), from its accepted reference once the improvement has started."""
        if self.online:
            return self.ppo.act(obs_n, deterministic)
        ensemble = self.net.reference if self.best_score is not None else self.net.policy
        obs = self._acting_obs(obs_n)
        action = ensemble.mean(obs)[self.selected] if deterministic else ensemble.sample(obs, self.gen)[self.selected]
        return self.env_action(action.clamp(-1.0, 1.0)), {}

    def value(self, obs_b: np.ndarray) -> np.ndarray:
        """State values ``[B, 1]`` of the online critic."""
        return self.ppo.value(obs_b)

    # -- learning -------------------------------------------------------------------------------------
    def update(self, batch: dict[str, np.ndarray], minibatches=None, progress: float | None = None) -> dict[str, float]:
        """Offline: one step on a dataset batch (obs, action, reward ``[B, 1]``, next_obs, terminated).
        Online: PPO's epochs over one rollout."""
        if self.online:
            return self.ppo.update(batch, minibatches, progress)
        obs, next_obs, action, reward, terminated = self._offline_batch(batch)
        if self.updates < self.config.pretrain_updates:
            out = self._pretrain(obs, next_obs, action, reward, terminated)
        else:
            out = self._improve(obs)
        self.updates += 1
        out["train/n_updates"] = float(self.updates)
        return out

    def _pretrain(self, obs, next_obs, action, reward, terminated) -> dict[str, float]:
        """Behaviour cloning of every member; V (expectile of Q' − V) and Q (r + γ(1−term)V(s'))."""
        cfg, net = self.config, self.net
        bc = ensemble_bc_loss(net.policy.log_prob(obs, action))
        self.bc_opt.zero_grad(set_to_none=True)
        bc.backward()
        self.bc_opt.step()
        _, v_loss, critic_l = value_and_critic_step(net, self.value_opt, self.critic_opt, obs, next_obs, action, reward,
                                                    terminated, cfg.gamma, cfg.expectile)
        polyak_update(self._target_params, self._critic_params, cfg.tau)
        stats = torch.stack([bc.detach(), critic_l.detach(), v_loss.detach()]).tolist()
        return {"train/bc_loss": stats[0], "train/critic_loss": stats[1], "train/value_loss": stats[2],
                "train/learning_rate": cfg.bc_learning_rate}

    def _improve(self, obs: torch.Tensor) -> dict[str, float]:
        """One clipped-PPO step of every member against its reference on ``A = Q(s, a) − V(s)`` with
        ``a ~ π^ref``; every ``ope_every`` steps the evaluation gate may move the references."""
        cfg, net = self.config, self.net
        if self.best_score is None:
            self._start_improvement(obs)
        with torch.no_grad():
            action_eba = net.reference.sample(obs, self.gen).clamp(-1.0, 1.0)
            ref_logp = net.reference.log_prob(obs, action_eba)
            adv = normalized_advantage(self._q(obs, action_eba) - net.value(obs))
        loss, stats = improvement_loss(net.policy.log_prob(obs, action_eba), ref_logp, adv, net.policy.entropy(),
                                       cfg.offline_clip_range, cfg.offline_ent_coef)
        self.improve_opt.zero_grad(set_to_none=True)
        loss.backward()
        _clip_grad_norm_per_member(self._policy_params, cfg.max_grad_norm)
        self.improve_opt.step()
        self.improve_steps += 1
        if self.improve_steps % cfg.ope_every == 0:
            self._gate()
        keys = [k for k in stats if k not in ("train/value_loss", "train/loss")]  # no value term offline
        out = dict(zip(keys, torch.stack([stats[k] for k in keys]).tolist(), strict=True))
        out |= {"train/ope_score": max(self.best_score), "train/reference_updates": float(self.reference_updates),
                "train/selected_policy": float(self.selected), "train/learning_rate": cfg.improve_learning_rate,
                "train/clip_range": cfg.offline_clip_range}
        return out

    def _q(self, obs_bo: torch.Tensor, action_eba: torch.Tensor) -> torch.Tensor:
        """``min_c Q_c(s, a)`` ``[E, B]`` of one action per member and state."""
        members, batch = action_eba.shape[:2]
        q_cx = self.net.critic(obs_bo.repeat(members, 1), action_eba.reshape(members * batch, -1))
        return q_cx.min(dim=0).values.reshape(members, batch)

    @torch.no_grad()
    def ope_scores(self) -> torch.Tensor:
        """The offline evaluation ``mean_s min_c Q(s, μ_e(s))`` of every member's current policy ``[E]``
        over the evaluation states (Q of the behaviour: a one-step estimate in place of AM-Q's model rollouts)."""
        obs = self.obs_norm(torch.from_numpy(self.ope_obs))
        return self._q(obs, self.net.policy.mean(obs).clamp(-1.0, 1.0)).mean(-1)

    def _start_improvement(self, obs: torch.Tensor) -> None:
        if self.ope_obs is None:  # no dataset was given (unit tests): evaluate on the first batch
            self.ope_obs = (obs * self.obs_norm.std + self.obs_norm.mean).numpy().copy()
        self.net.reference.load_state_dict(self.net.policy.state_dict())
        self.best_score = self.ope_scores().tolist()
        self.selected = int(np.argmax(self.best_score))

    def _gate(self) -> None:
        """Move the references whose policy now evaluates better; act with the best accepted one."""
        replace, best = ope_gate(self.ope_scores(), torch.tensor(self.best_score, dtype=torch.float32))
        if replace.any():
            self.net.reference.copy_members_(self.net.policy, replace)
            self.reference_updates += int(replace.sum())
        self.best_score = best.tolist()
        self.selected = int(np.argmax(self.best_score))

    def start_online(self) -> None:
        """Hand over to PPO: its actor is the selected member (normaliser and action scale folded into the
        first and last layers, so it acts on raw states in env units), its critic the offline V."""
        ensemble = self.net.reference if self.best_score is not None else self.net.policy
        mean, std = self.obs_norm.mean, self.obs_norm.std
        pi = fold_linear_stack(ensemble.member_layers(self.selected), mean, std, self._scale_t, self._center_t)
        vf = fold_linear_stack([(m.weight.detach(), m.bias.detach()) for m in _linears(self.net.value.net)], mean, std)
        with torch.no_grad():
            for member, layers in ((0, pi), (1, vf)):
                for (weight, bias), (w, b) in zip(self.ppo.net.layers(member), layers, strict=True):
                    weight.copy_(w)
                    bias.copy_(b)
            self.ppo.net.log_std.copy_(ensemble.log_std[self.selected].clamp(-5.0, 2.0) + torch.log(self._scale_t))
        self.online = True

    # -- state ----------------------------------------------------------------------------------------
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"bc": self.bc_opt, "improve": self.improve_opt, "critic": self.critic_opt, "value": self.value_opt}

    def _extra_json(self) -> dict:
        return {"online": self.online, "improve_steps": self.improve_steps, "reference_updates": self.reference_updates,
                "best_score": self.best_score, "selected": self.selected}

    def _load_extra_json(self, js: dict) -> None:
        self.online = bool(js["online"])
        self.improve_steps = int(js["improve_steps"])
        self.reference_updates = int(js["reference_updates"])
        self.best_score = None if js["best_score"] is None else [float(x) for x in js["best_score"]]
        self.selected = int(js["selected"])

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The offline networks, optimizers and generator, the evaluation states and the PPO agent's state."""
        arrays, js = super().state()
        ppo_arrays, js["ppo"] = self.ppo.state()
        arrays.update({"ppo/" + k: v for k, v in ppo_arrays.items()})
        if self.ope_obs is not None:
            arrays["ope/obs"] = self.ope_obs.copy()
        return arrays, js

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict) -> None:
        """Restore :meth:`state` or :meth:`policy_state`."""
        ppo_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("ppo/")}
        if json_state.get("policy_only"):
            load_module_arrays(self.obs_norm, arrays, "obs_norm/")
            load_module_arrays(self.net.policy, arrays, "net/policy.")
            load_module_arrays(self.net.reference, arrays, "net/reference.")
            self.ppo.load_state(ppo_arrays, json_state["ppo"])
            self._load_extra_json(json_state)
            return
        super().load_state(arrays, json_state)
        self.ppo.load_state(ppo_arrays, json_state["ppo"])
        self.ope_obs = np.array(arrays["ope/obs"], np.float32) if "ope/obs" in arrays else None

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: the ensemble and its references, the normaliser, PPO's policy, the selection."""
        arrays = module_arrays(self.obs_norm, "obs_norm/")
        arrays |= module_arrays(self.net.policy, "net/policy.") | module_arrays(self.net.reference, "net/reference.")
        ppo_arrays, ppo_json = self.ppo.policy_state()
        arrays.update({"ppo/" + k: v for k, v in ppo_arrays.items()})
        return arrays, {"policy_only": True, "ppo": ppo_json, **self._extra_json()}


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _clip_grad_norm_per_member(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale each member's gradients (leading axis E of every parameter) to an L2 norm of at most
    ``max_norm``, as if every member were a network of its own with ``clip_grad_norm_``."""
    grads = [p.grad for p in params if p.grad is not None]
    norm_e = torch.stack([g.reshape(g.shape[0], -1).square().sum(-1) for g in grads]).sum(0).sqrt()
    coef_e = (max_norm / (norm_e + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef_e.reshape(-1, *([1] * (g.dim() - 1))))
