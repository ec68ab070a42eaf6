"""Pieces the off-policy agents share: a batched twin Q-network, Polyak averaging, space checks.

Axis letters: C critics, B batch, I input features, O output features, A action dimensions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.base import AgentError
from agents.common.config import schedule_value
from agents.common.torch_state import (
    generator_arrays,
    load_generator_arrays,
    load_module_arrays,
    load_optimizer_state,
    module_arrays,
    optimizer_state,
)

__all__ = ["BoxActorCritic", "DatasetNormalizedObs", "ObsNormalizer", "TwinQ", "box_action_bounds", "flat_obs_dim",
           "hard_update", "polyak_update", "require_scalar_reward", "reward_tensor", "set_lr"]


class TwinQ(nn.Module):
    """``C`` independent MLP critics ``Q_c(obs, action)``, evaluated together.

    Each layer's weights are stacked ``[C, in, out]`` so all critics cost one ``baddbmm`` per layer
    (clipped double Q-learning, Fujimoto et al. 2018, without the price of two forwards). Every
    critic is initialised like ``nn.Linear`` (uniform in ±1/√fan_in), as separate networks would be.
    """

    def __init__(self, in_dim: int, hidden: list[int], num_critics: int = 2):
        super().__init__()
        dims = [in_dim, *hidden, 1]
        self.num_layers = len(dims) - 1
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            bound = 1.0 / math.sqrt(d_in)
            w = torch.empty(num_critics, d_in, d_out).uniform_(-bound, bound)
            b = torch.empty(num_critics, 1, d_out).uniform_(-bound, bound)
            self.register_parameter(f"w{i}", nn.Parameter(w))
            self.register_parameter(f"b{i}", nn.Parameter(b))

    def forward(self, obs_bi: torch.Tensor, action_ba: torch.Tensor, detach_params: bool = False,
                first_only: bool = False) -> torch.Tensor:
        """Q-values ``[C, B]`` (``[1, B]`` with ``first_only``).

        ``detach_params`` lets gradients reach the action but not the critic's weights: the actor
        loss needs ∂Q/∂a only, so the critic's weight gradients are never computed for it.
        """
        x = torch.cat([obs_bi, action_ba], dim=-1)
        h = None
        for i in range(self.num_layers):
            w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
            if first_only:
                w, b = w[:1], b[:1]
            if detach_params:
                w, b = w.detach(), b.detach()
            h = torch.baddbmm(b, x.expand(w.shape[0], *x.shape) if h is None else h, w)
            if i < self.num_layers - 1:
                h = h.relu_()  # in place: baddbmm's backward does not need its output
        return h.squeeze(-1)


def set_lr(optimizers, lr: float) -> None:
    """Set every parameter group's step size (a no-op where it already has that value)."""
    for opt in optimizers:
        for group in opt.param_groups:
            if group["lr"] != lr:
                group["lr"] = lr


def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """``θ' ← (1 − τ) θ' + τ θ`` over whole parameter lists in two fused foreach kernels."""
    with torch.no_grad():
        torch._foreach_mul_(target, 1.0 - tau)
        torch._foreach_add_(target, source, alpha=tau)


def hard_update(target: list[torch.Tensor], source: list[torch.Tensor]) -> None:
    """``θ' ← θ`` (τ = 1)."""
    with torch.no_grad():
        torch._foreach_copy_(target, source)


def flat_obs_dim(space: spaces.Space, algo: str) -> int:
    """The observation size of a flat Box space, or an AgentError naming the algorithm."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise AgentError(f"agent.algo={algo} needs a flat Box observation space, got {space}")
    return int(space.shape[0])


def box_action_bounds(space: spaces.Space, algo: str) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float32 of a flat Box action space with finite bounds."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise AgentError(f"agent.algo={algo} needs a flat Box action space, got {space}")
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise AgentError(f"agent.algo={algo} squashes actions into the Box bounds, which must be finite; "
                         f"got {space} (add a RescaleAction or ClipAction wrapper)")
    return low, high


def require_scalar_reward(reward_dim: int, algo: str) -> None:
    """Off-policy agents learn one Q-function: K must be 1."""
    if reward_dim != 1:
        raise AgentError(f"agent.algo={algo} supports scalar rewards only (K=1); this env has K={reward_dim} "
                         "objectives (scalarise them with a wrapper)")


def reward_tensor(reward_bk: np.ndarray) -> torch.Tensor:
    """A batch's rewards ``[B, 1]`` (or ``[B]``) as a ``[B]`` tensor sharing the array's memory."""
    if reward_bk.ndim == 2:
        if reward_bk.shape[1] != 1:
            raise AgentError(f"off-policy agents need rewards shaped [B, 1], got {list(reward_bk.shape)}")
        reward_bk = reward_bk[:, 0]
    return torch.from_numpy(reward_bk)


class BoxActorCritic:
    """What SAC, TD3, TD3+BC and IQL share: spaces, action scaling, seeded networks, the learning-rate
    schedule and the checkpointable state (weights, optimizers, generator, counters).

    A subclass sets ``algo`` and, in ``__init__``, calls :meth:`_setup` with its network factory, then
    creates its optimizers and lists them in :meth:`_optimizers` (their names are checkpoint keys).
    It may add JSON (:meth:`_extra_json` / :meth:`_load_extra_json`) and acting-time modules such as a
    state normaliser (:meth:`_policy_modules`), which go into both the full and the policy state.
    """

    algo = ""
    on_policy = False

    def _setup(self, config, obs_space: spaces.Space, action_space: spaces.Space, reward_dim: int, seed: int,
               make_net) -> int:
        """Check the spaces, fix the action scaling, build ``self.net = make_net(obs_dim, act_dim)`` from
        ``seed`` (torch's global generator is left as it was) and ``self.gen`` from ``seed + 1``."""
        self.obs_dim = flat_obs_dim(obs_space, self.algo)
        low, high = box_action_bounds(action_space, self.algo)
        require_scalar_reward(reward_dim, self.algo)
        self.config = config
        self.reward_dim = reward_dim
        act_dim = int(low.shape[0])
        self.action_shape = (act_dim,)
        self.action_dtype = "float32"
        self._scale_a, self._center_a = (high - low) / 2, (high + low) / 2
        self._scale_t, self._center_t = torch.from_numpy(self._scale_a), torch.from_numpy(self._center_a)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = make_net(self.obs_dim, act_dim)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.progress = 0.0
        self.lr_scale = 1.0
        self.updates = 0
        return act_dim

    def unit_action(self, action_ba: np.ndarray) -> torch.Tensor:
        """Env-scale actions from a batch, mapped to the networks' [-1, 1]."""
        return (torch.from_numpy(action_ba) - self._center_t) / self._scale_t

    def env_action(self, action_na: torch.Tensor) -> np.ndarray:
        """[-1, 1] actions rescaled to the env's Box bounds."""
        return action_na.numpy() * self._scale_a + self._center_a

    def advance(self, env_steps: int, progress: float, lr_scale: float = 1.0) -> None:
        """Called by the loop after every vector step; ``progress`` in [0, 1] drives the lr schedule,
        whose value is multiplied by ``lr_scale`` (a phase's learning-rate warm-up, see
        :mod:`experiments.phases`). ``lr_scale`` is not checkpointed: the phased loop derives it from
        the phase position and sets it again before the first update after a resume."""
        self.progress = progress
        self.lr_scale = lr_scale

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _policy_modules(self) -> dict[str, nn.Module]:
        """Modules acting needs besides the actor (prefix -> module), e.g. a state normaliser."""
        return {}

    def _extra_json(self) -> dict:
        return {}

    def _load_extra_json(self, json_state: dict) -> None:
        pass

    def _set_learning_rate(self) -> float:
        lr = schedule_value(self.config.learning_rate, self.progress) * self.lr_scale
        set_lr(self._optimizers().values(), lr)
        return lr

    def _module_arrays(self, actor_only: bool) -> dict[str, np.ndarray]:
        arrays = module_arrays(self.net.actor, "net/actor.") if actor_only else module_arrays(self.net, "net/")
        for prefix, module in self._policy_modules().items():
            arrays.update(module_arrays(module, prefix))
        return arrays

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Weights (targets included), optimizers and generator as arrays; counters as JSON."""
        arrays = self._module_arrays(actor_only=False)
        meta = {}
        for name, opt in self._optimizers().items():
            opt_arrays, meta[name] = optimizer_state(opt, f"optim/{name}/")
            arrays.update(opt_arrays)
        arrays.update(generator_arrays(self.gen, "rng/torch"))
        return arrays, {"updates": self.updates, "progress": self.progress, "optimizers": meta, **self._extra_json()}

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict) -> None:
        """Restore everything :meth:`state` saved, or only what acting needs from :meth:`policy_state`."""
        for prefix, module in self._policy_modules().items():
            load_module_arrays(module, arrays, prefix)
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
        self._load_extra_json(json_state)

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """What acting needs: the actor's weights (and any :meth:`_policy_modules`)."""
        return self._module_arrays(actor_only=True), {"policy_only": True}


class ObsNormalizer(nn.Module):
    """``(s − μ) / (σ + eps)`` with μ, σ fixed from the offline data (identity until fitted).

    The statistics are buffers, so they travel with the checkpoint and the policy state; acting and
    evaluation normalise exactly as training did.
    """

    def __init__(self, obs_dim: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, obs_mo: np.ndarray) -> None:
        """Set μ, σ from observations ``[M, O]`` (the whole dataset, as in the paper)."""
        obs = torch.as_tensor(np.asarray(obs_mo, dtype=np.float64))
        self.mean.copy_(obs.mean(0).float())
        self.std.copy_(obs.std(0, correction=0).float() + self.eps)
        self.fitted.fill_(True)

    def forward(self, obs_bo: torch.Tensor) -> torch.Tensor:
        return (obs_bo - self.mean) / self.std


class DatasetNormalizedObs:
    """Mixin for the offline agents (BC, TD3+BC, IQL, CQL, AWAC): states are normalised with the
    dataset's mean and std, as CORL's implementations do. Call :meth:`_init_obs_norm` after
    :meth:`BoxActorCritic._setup`; the normaliser goes into the full and the policy state."""

    online_phase: bool = False
    """Set by the phased loop at the start of every phase (also after a resume): True while the
    run is in an online phase, for agents whose update differs there (CQL's ``cql_alpha_online``)."""

    def _init_obs_norm(self) -> None:
        self.obs_norm = ObsNormalizer(self.obs_dim)

    def fit_obs_normalizer(self, obs_mo: np.ndarray) -> None:
        """Fix the state normaliser to the dataset's mean and std.

        Call with the whole offline dataset before the first update. Without it, the first update
        fits it to that batch's ``obs`` and ``next_obs`` (an estimate from 2·B states).
        """
        self.obs_norm.fit(obs_mo)

    def _policy_modules(self) -> dict[str, nn.Module]:
        return {"obs_norm/": self.obs_norm}

    def _acting_obs(self, obs_n: np.ndarray) -> torch.Tensor:
        """Normalised observations for acting."""
        return self.obs_norm(torch.from_numpy(np.asarray(obs_n, dtype=np.float32)))

    def _offline_batch(self, batch: dict[str, np.ndarray]):
        """``(obs, next_obs, action, reward, terminated)`` tensors of a batch: states normalised,
        actions mapped to [-1, 1] (clamped: dataset actions may sit on the bounds), reward ``[B]``."""
        if not bool(self.obs_norm.fitted):
            self.obs_norm.fit(np.concatenate([batch["obs"], batch["next_obs"]]))
        obs = self.obs_norm(torch.from_numpy(batch["obs"]))
        next_obs = self.obs_norm(torch.from_numpy(batch["next_obs"]))
        action = self.unit_action(batch["action"]).clamp(-1.0, 1.0)
        return obs, next_obs, action, reward_tensor(batch["reward"]), torch.from_numpy(batch["terminated"]).float()
