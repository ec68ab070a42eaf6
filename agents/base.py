"""What every agent offers the loops in ``experiments/``.

Agents are torch modules plus an optimizer and their own generator; they never step an env.
The loops call ``act`` to collect data and ``update`` to learn, and checkpoint an agent through
``state()`` (tensors as numpy arrays for safetensors, everything else JSON) and ``load_state``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Agent", "AgentError"]


class AgentError(ValueError):
    """An agent cannot be built for this env or config; the message names the field."""


class Agent(Protocol):
    """The surface the loops, evaluation and checkpoints use."""

    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Actions for a batch of observations, plus per-step extras to store."""
        ...

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(tensors, json_state) that fully determine the agent, optimizer and RNG included."""
        ...

    def load_state(self, tensors: dict[str, np.ndarray], json_state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`; raises AgentError on a mismatch."""
        ...

    def policy_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Only what acting needs (weights and normalisation), for ``final/``."""
        ...
