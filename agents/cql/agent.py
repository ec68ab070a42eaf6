"""CQL agent (and Cal-QL): SAC's acting, one gradient step per ``update`` on α, the actor and the
conservative critics, then the target critics; its state.

Axis letters: B batch of transitions, N envs (acting) or action samples per state (update),
A action dimensions, C critics.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, DatasetNormalizedObs, polyak_update, set_lr
from agents.cql.config import CQLConfig
from agents.cql.loss import cql_regularizer, lagrange_losses
from agents.cql.networks import CQLNetworks
from agents.sac.loss import actor_loss, ent_coef_loss
from agents.td3.loss import critic_loss

__all__ = ["CQLAgent"]

_STAT_KEYS = ["train/actor_loss", "train/critic_loss", "train/cql_gap", "train/mean_q", "train/ent_coef",
              "train/ent_coef_loss"]


class CQLAgent(DatasetNormalizedObs, BoxActorCritic):
    """CQL(H) on SAC for a flat Box observation and a bounded flat Box action space (Cal-QL with
    ``cal_ql``: batches must then carry ``mc_return``, which the phased loop adds)."""

    algo = "cql"
    offline = True
    metric_keys = [*_STAT_KEYS, "train/alpha_prime", "train/calql_bound_rate", "train/learning_rate",
                   "train/n_updates"]

    def __init__(self, config: CQLConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self.learn_ent_coef = config.ent_coef == "auto"
        init = config.ent_coef_init if self.learn_ent_coef else float(config.ent_coef)
        act_dim = self._setup(config, obs_space, action_space, reward_dim, seed, lambda obs_dim, act_dim: CQLNetworks(
            obs_dim, act_dim, list(config.net_arch), math.log(init), self.learn_ent_coef, config.orthogonal_init,
            config.lagrange))
        self.act_dim = act_dim
        self.target_entropy = -float(act_dim) if config.target_entropy == "auto" else float(config.target_entropy)
        # The phased loop's cue to add ``mc_return`` (discounted with this γ) to every batch; None: not needed.
        self.mc_return_gamma = config.gamma if config.cal_ql else None
        # log α shares the actor's Adam (CORL gives it its own Adam with the policy's step size: the same
        # per-element update).
        actor_params = list(self.net.actor.parameters()) + ([self.net.log_ent_coef] if self.learn_ent_coef else [])
        self.actor_opt = torch.optim.Adam(actor_params, lr=schedule_value(config.actor_learning_rate, 0.0), fused=True)
        lr = schedule_value(config.learning_rate, 0.0)
        self.critic_opt = torch.optim.Adam(self.net.critic.parameters(), lr=lr, fused=True)
        self.alpha_prime_opt = (torch.optim.Adam([self.net.log_alpha_prime], lr=lr, fused=True)
                                if config.lagrange else None)
        self._critic_params = list(self.net.critic.parameters())
        self._target_params = list(self.net.critic_target.parameters())
        self._init_obs_norm()


    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sampled (or ``tanh`` of the mean) squashed actions, rescaled to the env's Box bounds."""
        obs = self._acting_obs(obs_n)
        action_na, _ = self.net.actor.sample(obs, self.gen, deterministic)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step on α, the actor and the critics, then the target critics. In CORL's order
        the actor's loss sees the critics before their step; online phases take SAC's order instead
        when ``online_update_order`` is ``critic_first``.

        ``batch``: obs, action (env scale), reward ``[B, 1]``, next_obs, terminated ``[B]``, truncated
        ``[B]``, and with ``cal_ql`` mc_return ``[B]`` (``-inf``: no lower bound).
        """
        cfg = self.config
        lr = self._set_learning_rate()
        obs, next_obs, action, reward, terminated = self._offline_batch(batch)
        lower_bound = None
        if cfg.cal_ql:
            if "mc_return" not in batch:
                raise AgentError("agent.cal_ql needs the Monte-Carlo return of every transition (batch field "
                                 "mc_return); train it on a dataset, where the phased loop provides it")
            lower_bound = torch.from_numpy(batch["mc_return"])
        net = self.net
        b, n = obs.shape[0], cfg.n_action_samples

        alpha = net.log_ent_coef.detach().exp()
        action_pi, logp_pi = net.actor.sample(obs, self.gen)

        def policy_loss() -> torch.Tensor:  # against the critics as they are when called
            return actor_loss(net.critic(obs, action_pi, detach_params=True), logp_pi, alpha)

        critic_first = self.online_phase and cfg.online_update_order == "critic_first"
        if not critic_first:  # CORL's order: the actor's loss sees the critics before their step
            pi_loss = policy_loss()
        ent_loss = ent_coef_loss(net.log_ent_coef, logp_pi, self.target_entropy) if self.learn_ent_coef else None

        weight = cfg.cql_alpha if cfg.cql_alpha_online is None or not self.online_phase else cfg.cql_alpha_online
        with torch.no_grad():
            next_action, next_logp = net.actor.sample(next_obs, self.gen)
            next_q = net.critic_target(next_obs, next_action).min(dim=0).values
            if cfg.backup_entropy:
                next_q = next_q - alpha * next_logp
            target = reward + cfg.gamma * (1.0 - terminated) * next_q
        alpha_prime_loss = alpha_prime = None
        if weight == 0.0:  # SAC's critic update: no sampled actions to evaluate
            q_data = net.critic(obs, action)
            gap_c, bound_rate, cql_term = torch.zeros(q_data.shape[0]), torch.zeros(()), 0.0
            if cfg.lagrange:  # α' is held, and still reported
                alpha_prime = net.log_alpha_prime.detach().exp().clamp(0.0, 1e6)
        else:
            with torch.no_grad():
                rand_action = torch.rand((b * n, self.act_dim), generator=self.gen) * 2.0 - 1.0
                obs_rep = obs.repeat_interleave(n, dim=0)
                cur_action, cur_logp = net.actor.sample(obs_rep, self.gen)
                nxt_action, nxt_logp = net.actor.sample(next_obs.repeat_interleave(n, dim=0), self.gen)
            # One critic forward for the data actions and the 3 N sampled actions of every state.
            q_all = net.critic(torch.cat([obs, obs_rep, obs_rep, obs_rep]),
                               torch.cat([action, rand_action, cur_action, nxt_action]))
            q_data = q_all[:, :b]
            q_rand, q_cur, q_next = (q.reshape(-1, b, n) for q in q_all[:, b:].chunk(3, dim=1))
            gap_c, bound_rate = cql_regularizer(q_data, q_rand, q_cur, q_next, cur_logp.reshape(b, n),
                                                nxt_logp.reshape(b, n), self.act_dim, cfg.cql_temperature,
                                                cfg.importance_sample, lower_bound)
            if cfg.lagrange:
                cql_term, alpha_prime_loss, alpha_prime = lagrange_losses(gap_c, net.log_alpha_prime, weight,
                                                                          cfg.target_action_gap)
            else:
                cql_term = weight * gap_c.sum()
        q_loss = critic_loss(q_data, target) + cql_term

        if critic_first:  # SAC's (SB3's) order: the actor's loss sees the critics after their step
            self._critic_step(q_loss)
            pi_loss = policy_loss()
            self._actor_step(pi_loss, ent_loss)
        else:
            self._actor_step(pi_loss, ent_loss)
            self._critic_step(q_loss)
        if alpha_prime_loss is not None:
            self.alpha_prime_opt.zero_grad(set_to_none=True)
            alpha_prime_loss.backward()
            self.alpha_prime_opt.step()

        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            polyak_update(self._target_params, self._critic_params, cfg.tau)
        stats = [pi_loss.detach(), q_loss.detach(), gap_c.detach().mean(), q_data.detach().mean(), alpha[0],
                 torch.zeros(()) if ent_loss is None else ent_loss.detach()]
        extra = {}
        if alpha_prime is not None:
            extra["train/alpha_prime"] = alpha_prime[0]
        if cfg.cal_ql:
            extra["train/calql_bound_rate"] = bound_rate
        values = torch.stack(stats + list(extra.values())).tolist()
        out = dict(zip(_STAT_KEYS + list(extra), values, strict=True))
        out["train/learning_rate"] = lr
        out["train/n_updates"] = float(self.updates)
        return out

    def _actor_step(self, pi_loss: torch.Tensor, ent_loss: torch.Tensor | None) -> None:
        self.actor_opt.zero_grad(set_to_none=True)
        (pi_loss if ent_loss is None else pi_loss + ent_loss).backward()  # disjoint parameters
        self.actor_opt.step()

    def _critic_step(self, q_loss: torch.Tensor) -> None:
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.step()

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"actor": self.actor_opt, "critic": self.critic_opt}
        if self.alpha_prime_opt is not None:
            opts["alpha_prime"] = self.alpha_prime_opt
        return opts

    def _set_learning_rate(self) -> float:
        """Two step sizes: ``learning_rate`` for the critics (and α'), ``actor_learning_rate`` for the
        actor and α. Returns the critics'."""
        cfg = self.config
        lr = schedule_value(cfg.learning_rate, self.progress) * self.lr_scale
        set_lr([self.critic_opt] + ([self.alpha_prime_opt] if self.alpha_prime_opt is not None else []), lr)
        set_lr([self.actor_opt], schedule_value(cfg.actor_learning_rate, self.progress) * self.lr_scale)
        return lr

