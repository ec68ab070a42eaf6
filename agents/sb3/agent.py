"""A stable-baselines3 model behind the suite's agent surface (act, state, load_state, policy_state).

SB3 trains itself (``experiments/loops/sb3.py`` calls its ``learn()``); this class builds the model,
acts for evaluation, and moves its tensors in and out of the suite's checkpoints without pickle:
every state dict SB3 itself would save (``_get_torch_save_params``: the policy, its optimizers,
``log_ent_coef`` ...) as safetensors arrays, param groups and counters as JSON.

SB3 seeds python's, numpy's and torch's global generators from the model seed and draws from them
while it trains; nothing of that is checkpointed, which is one reason a resume is approximate.
Evaluation acts inside ``torch.random.fork_rng`` so it never shifts the training draws.

Axis letters: N envs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.common.offpolicy import require_scalar_reward
from agents.common.torch_state import load_module_arrays, load_optimizer_state, module_arrays, optimizer_state
from agents.sb3.config import SB3Config
from agents.sb3.kwargs import convert_kwargs
from agents.sb3.resolve import algorithm_class, logged_keys
from agents.sb3.vec_env import placeholder_vec_env

__all__ = ["SB3Agent", "build_model"]

POLICY_PREFIX = "sb3/policy/"


def build_model(config: SB3Config, venv, seed: int):
    """The SB3 model of ``config`` on ``venv`` (device cpu unless kwargs say otherwise)."""
    cls = algorithm_class(config.algo)
    space = venv.action_space
    action_dim = int(np.prod(space.shape)) if isinstance(space, spaces.Box) else 1
    kwargs = {"device": "cpu", **convert_kwargs(config.kwargs, action_dim)}
    try:
        return cls(config.policy, venv, seed=seed, verbose=0, **kwargs)
    except (AssertionError, ValueError, TypeError, KeyError, NotImplementedError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        if "action space" in text.lower() or "gsde" in text.lower():
            raise AgentError(f"agent.algo: {config.algo} cannot act in this env's action space {space}: "
                             f"{text}") from None
        raise AgentError(f"agent.kwargs: {config.algo} rejected its arguments ({type(err).__name__}: {text})") from None


class SB3Agent:
    """An SB3 model built on placeholder envs; :meth:`bind` rebuilds it on the run's envs to train."""

    backend = "sb3"

    def __init__(self, config: SB3Config, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        require_scalar_reward(reward_dim, config.algo)
        if isinstance(obs_space, spaces.Dict | spaces.Tuple):
            raise AgentError(f"agent.algo={config.algo}: the SB3 backend steps array observations; got {obs_space}")
        self.config = config
        self.seed = seed
        self.metric_keys = list(logged_keys(algorithm_class(config.algo)))
        with warnings.catch_warnings():  # one placeholder env: SB3's batch-size advice is for the real count
            warnings.filterwarnings("ignore", message=".*mini-batch size.*", category=UserWarning)
            self.model = build_model(config, placeholder_vec_env(obs_space, action_space), seed)

    def bind(self, venv) -> None:
        """Rebuild the model on ``venv`` (same seed, so the same initial weights) and carry its state over."""
        arrays, json_state = self.state()
        self.model = build_model(self.config, venv, self.seed)
        self.load_state(arrays, json_state)

    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """SB3's ``predict`` for a batch of observations, without touching the global torch generator."""
        with torch.random.fork_rng(devices=[]):
            action_n, _ = self.model.predict(obs_n, deterministic=deterministic)
        return action_n, {}

    def _parts(self) -> tuple[list[str], list[str]]:
        # SB3's own list of what save() writes: state-dict owners and plain tensors (e.g. log_ent_coef).
        return self.model._get_torch_save_params()

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every state dict SB3 saves, plus its plain tensors, as arrays; param groups and counters as JSON."""
        from stable_baselines3.common.save_util import recursive_getattr

        owners, variables = self._parts()
        arrays: dict[str, np.ndarray] = {}
        groups: dict[str, Any] = {}
        for name in owners:
            obj = recursive_getattr(self.model, name)
            if isinstance(obj, torch.optim.Optimizer):
                opt_arrays, groups[name] = optimizer_state(obj, f"sb3/{name}/")
                arrays.update(opt_arrays)
            else:
                arrays.update(module_arrays(obj, f"sb3/{name}/"))
        for name in variables:
            arrays[f"sb3var/{name}"] = recursive_getattr(self.model, name).detach().cpu().numpy().copy()
        m = self.model
        return arrays, {"optimizers": groups, "num_timesteps": int(m.num_timesteps), "n_updates": int(m._n_updates),
                        "episode_num": int(getattr(m, "_episode_num", 0))}

    def load_state(self, arrays: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Restore :meth:`state` output, or only the policy from :meth:`policy_state` output."""
        from stable_baselines3.common.save_util import recursive_getattr

        if json_state.get("policy_only"):
            load_module_arrays(self.model.policy, arrays, POLICY_PREFIX)
            return
        owners, variables = self._parts()
        groups = json_state.get("optimizers", {})
        for name in owners:
            obj = recursive_getattr(self.model, name)
            if isinstance(obj, torch.optim.Optimizer):
                if name not in groups:
                    raise AgentError(f"checkpoint has no state for SB3's {name}: it was written by another algorithm")
                load_optimizer_state(obj, arrays, groups[name], f"sb3/{name}/")
            else:
                load_module_arrays(obj, arrays, f"sb3/{name}/")
        for name in variables:
            key = f"sb3var/{name}"
            if key not in arrays:
                raise AgentError(f"checkpoint has no tensor {key!r}: it was written by another algorithm")
            with torch.no_grad():
                recursive_getattr(self.model, name).copy_(torch.from_numpy(np.array(arrays[key])))
        self.model.num_timesteps = int(json_state.get("num_timesteps", 0))
        self.model._n_updates = int(json_state.get("n_updates", 0))
        self.model._episode_num = int(json_state.get("episode_num", 0))

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What acting needs: ``policy.state_dict()`` (SB3's policy.pth, as safetensors)."""
        return module_arrays(self.model.policy, POLICY_PREFIX), {"policy_only": True, "sb3_algo": self.config.algo,
                                                                  "sb3_policy": self.config.policy}

    # -- replay buffer ------------------------------------------------------------------------------
    def replay_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The filled part of a plain ``ReplayBuffer`` (JSON, arrays), or None when there is none to save."""
        from stable_baselines3.common.buffers import ReplayBuffer

        buf = getattr(self.model, "replay_buffer", None)
        if type(buf) is not ReplayBuffer or buf.optimize_memory_usage:
            return None
        size = buf.buffer_size if buf.full else buf.pos
        fields = ["observations", "next_observations", "actions", "rewards", "dones", "timeouts"]
        arrays = {f"sb3replay/{f}": np.ascontiguousarray(getattr(buf, f)[:size]) for f in fields}
        return {"pos": int(buf.pos), "full": bool(buf.full), "buffer_size": int(buf.buffer_size),
                "n_envs": int(buf.n_envs)}, arrays

    def load_replay_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`replay_state`; shapes must match the model's buffer."""
        buf = self.model.replay_buffer
        if (state["buffer_size"], state["n_envs"]) != (buf.buffer_size, buf.n_envs):
            raise AgentError(f"checkpointed replay buffer is {state['buffer_size']}x{state['n_envs']}, "
                             f"this model's is {buf.buffer_size}x{buf.n_envs}")
        size = buf.buffer_size if state["full"] else state["pos"]
        for key, src in arrays.items():
            target = getattr(buf, key.removeprefix("sb3replay/"))
            if src.shape != (size, *target.shape[1:]):
                raise AgentError(f"replay field {key!r}: checkpoint has {list(src.shape)}, "
                                 f"expected {[size, *target.shape[1:]]}")
            target[:size] = src
        buf.pos, buf.full = int(state["pos"]), bool(state["full"])
