"""Algorithm names → config models (cheap to import) and agent classes (imported lazily)."""

from __future__ import annotations

import importlib
from typing import Any

from agents.awac.config import AWACConfig
from agents.bc.config import BCConfig
from agents.cql.config import CQLConfig
from agents.dqn.config import DQNConfig
from agents.iql.config import IQLConfig
from agents.mo_dqn.config import MODQNConfig
from agents.ppo.config import PPOConfig
from agents.sac.config import SACConfig
from agents.sb3.config import SB3Config, is_sb3
from agents.td3.config import TD3Config
from agents.td3bc.config import TD3BCConfig
from agents.unio4.config import UniO4Config

__all__ = ["AGENT_CONFIGS", "SB3_TAG", "agent_tag", "build_agent", "config_model", "metric_keys"]

AGENT_CONFIGS: dict[str, type] = {"ppo": PPOConfig, "sac": SACConfig, "td3": TD3Config, "dqn": DQNConfig,
                                  "mo_dqn": MODQNConfig, "iql": IQLConfig, "td3bc": TD3BCConfig, "bc": BCConfig,
                                  "cql": CQLConfig, "awac": AWACConfig, "unio4": UniO4Config}
"""Every registered algorithm's config model, keyed by its ``algo`` name."""

_AGENT_CLASSES = {
    "ppo": "agents.ppo.agent:PPOAgent",
    "sac": "agents.sac.agent:SACAgent",
    "td3": "agents.td3.agent:TD3Agent",
    "dqn": "agents.dqn.agent:DQNAgent",
    "mo_dqn": "agents.mo_dqn.agent:MODQNAgent",
    "iql": "agents.iql.agent:IQLAgent",
    "td3bc": "agents.td3bc.agent:TD3BCAgent",
    "bc": "agents.bc.agent:BCAgent",
    "cql": "agents.cql.agent:CQLAgent",
    "awac": "agents.awac.agent:AWACAgent",
    "unio4": "agents.unio4.agent:UniO4Agent",
    "sb3": "agents.sb3.agent:SB3Agent",
}

SB3_TAG = "sb3"
"""The manifest union's tag for every ``sb3.<Name>`` algorithm (one config model, SB3Config)."""


def agent_tag(algo: object) -> object:
    """The config-union tag of ``algo``: itself, or ``"sb3"`` for any ``sb3.<Name>``."""
    return SB3_TAG if is_sb3(algo) else algo


def config_model(algo: object) -> type | None:
    """The config model of ``algo`` (SB3Config for ``sb3.*``), or None if there is none."""
    return SB3Config if is_sb3(algo) else AGENT_CONFIGS.get(algo)


def agent_class(algo: str) -> type:
    """The agent class of ``algo`` (imports torch on first use)."""
    module, name = _AGENT_CLASSES[agent_tag(algo)].split(":")
    return getattr(importlib.import_module(module), name)


def metric_keys(config: Any) -> list[str]:
    """The ``train/*`` columns an agent logs (for SB3, the keys its algorithm records)."""
    if is_sb3(config.algo):
        from agents.sb3.resolve import algorithm_class, logged_keys

        return list(logged_keys(algorithm_class(config.algo)))
    return list(agent_class(config.algo).metric_keys)


def build_agent(config: Any, obs_space, action_space, reward_dim: int, seed: int):
    """Construct the agent for ``config.algo`` on these spaces."""
    return agent_class(config.algo)(config, obs_space, action_space, reward_dim, seed)
