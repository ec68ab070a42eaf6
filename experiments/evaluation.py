"""Running evaluation episodes: one episode per sub-env, each with its own seed.

Axis letters: E episodes (= sub-envs of the eval vector env), K reward objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl.core.rollout import RolloutCollector

__all__ = ["EvalResult", "run_episodes"]


@dataclass(frozen=True)
class EvalResult:
    """Returns ``[E, K]`` and lengths ``[E]`` of the evaluated episodes, with their seeds."""

    returns_ek: np.ndarray
    lengths_e: np.ndarray
    seeds: list[int]

    @property
    def scalar_returns(self) -> np.ndarray:
        """Episode returns summed over objectives (the return itself when K = 1)."""
        return self.returns_ek.sum(axis=-1)


def run_episodes(agent, envs, seeds: list[int], deterministic: bool, max_steps: int = 1_000_000) -> EvalResult:
    """Play one episode in each sub-env of ``envs`` (len(seeds) of them) and collect the results."""
    if len(seeds) != envs.num_envs:
        raise ValueError(f"{len(seeds)} seeds for {envs.num_envs} eval envs")
    collector = RolloutCollector(envs, reward_dim=_reward_dim(envs))
    collector.reset(seeds)
    e = envs.num_envs
    returns = np.zeros((e, collector.reward_dim))
    lengths = np.zeros(e, np.int64)
    finished = np.zeros(e, bool)
    for _ in range(max_steps):
        action, _ = agent.act(collector.obs, deterministic=deterministic)
        tr = collector.step(action)
        for ep in tr.finished:
            if not finished[ep.env_index]:
                finished[ep.env_index] = True
                returns[ep.env_index] = ep.ret_k
                lengths[ep.env_index] = ep.length
        if finished.all():
            break
    else:
        raise RuntimeError(f"evaluation did not finish within {max_steps} steps")
    return EvalResult(returns, lengths, list(seeds))


def _reward_dim(envs) -> int:
    from envs.make import reward_dim_of

    return reward_dim_of(envs)
