"""Algorithm names → config models (cheap to import) and agent classes (imported lazily)."""

from __future__ import annotations

import importlib
from typing import Any

from agents.dqn.config import DQNConfig
from agents.mo_dqn.config import MODQNConfig
from agents.ppo.config import PPOConfig
from agents.sac.config import SACConfig
from agents.td3.config import TD3Config

__all__ = ["AGENT_CONFIGS", "build_agent"]

AGENT_CONFIGS: dict[str, type] = {"ppo": PPOConfig, "sac": SACConfig, "td3": TD3Config, "dqn": DQNConfig,
                                  "mo_dqn": MODQNConfig}
"""Every registered algorithm's config model, keyed by its ``algo`` name."""

_AGENT_CLASSES = {
    "ppo": "agents.ppo.agent:PPOAgent",
    "sac": "agents.sac.agent:SACAgent",
    "td3": "agents.td3.agent:TD3Agent",
    "dqn": "agents.dqn.agent:DQNAgent",
    "mo_dqn": "agents.mo_dqn.agent:MODQNAgent",
}


def agent_class(algo: str) -> type:
    """The agent class of ``algo`` (imports torch on first use)."""
    module, name = _AGENT_CLASSES[algo].split(":")
    return getattr(importlib.import_module(module), name)


def build_agent(config: Any, obs_space, action_space, reward_dim: int, seed: int):
    """Construct the agent for ``config.algo`` on these spaces."""
    return agent_class(config.algo)(config, obs_space, action_space, reward_dim, seed)
