"""TD3+BC uses TD3's networks unchanged (a deterministic tanh actor and twin critics with targets),
plus the fixed state normaliser of Fujimoto & Gu 2021 (dataset mean and std, shared by every offline
agent: :class:`agents.common.offpolicy.ObsNormalizer`)."""

from __future__ import annotations

from agents.common.offpolicy import ObsNormalizer
from agents.td3.networks import TD3Networks

__all__ = ["ObsNormalizer", "TD3Networks"]
