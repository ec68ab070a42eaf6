"""The manifest section of a stable-baselines3 algorithm: ``agent: {algo: sb3.SAC, kwargs: {...}}``."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from agents.common.config import StrictModel

__all__ = ["SB3Config", "is_sb3"]


def is_sb3(algo: object) -> bool:
    """Whether ``algo`` names the SB3 backend (``sb3.<Name>``)."""
    return isinstance(algo, str) and algo.startswith("sb3.")


class SB3Config(StrictModel):
    """Any stable-baselines3 (or sb3-contrib) algorithm, trained by its own ``learn()`` on the suite's
    envs, logs, evaluation and checkpoints (see ``experiments/loops/sb3.py``)."""

    algo: str
    """``sb3.<Name>``: a class exported by stable_baselines3 or sb3_contrib, e.g. ``sb3.SAC``, ``sb3.PPO``."""
    policy: str = "MlpPolicy"
    """One of the algorithm's policy aliases (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy``)."""
    kwargs: dict[str, Any] = {}
    """Keyword arguments of the algorithm's constructor, SB3's names and units (e.g. ``learning_rate``,
    ``buffer_size``, ``use_sde``); schedules, action noise and torch classes are written as data
    (see ``agents/sb3/kwargs.py``). ``policy``, ``env``, ``seed``, ``verbose`` and ``tensorboard_log``
    are set by the suite. Unset keywords keep SB3's defaults."""
    save_buffer: bool = True
    """Store an off-policy algorithm's replay buffer in checkpoints, so ``--resume`` starts with it
    (plain ``ReplayBuffer`` only). Resume is approximate for this backend either way."""

    @model_validator(mode="after")
    def _check_with_sb3(self) -> SB3Config:
        from agents.sb3.resolve import SB3ConfigError, check_config

        try:
            check_config(self.algo, self.policy, self.kwargs)
        except SB3ConfigError as err:
            # ``field`` lets the manifest loader name agent.kwargs.<key> (pydantic's loc stops at agent).
            ctx = {"field": err.field, "message": err.message}
            raise PydanticCustomError("agent_field", "{message}", ctx) from None
        return self
