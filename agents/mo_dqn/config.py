"""Weight-conditioned multi-objective DQN hyperparameters: DQN's (`agents.dqn.config`) plus the target rule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.dqn.config import DQNConfig

__all__ = ["MODQNConfig"]


class MODQNConfig(DQNConfig):
    """Envelope Q-learning (Yang et al. 2019): one Q output per objective, conditioned on the weights
    that `envs.mo.WeightConditionedObservation` appends to the observation."""

    algo: Literal["mo_dqn"] = "mo_dqn"  # type: ignore[assignment]
    target: Literal["envelope", "conditioned"] = "envelope"
    """``envelope``: the next vector value is the one of the (action, weight) pair, over the sampled
    weights, that is best for the transition's weight (Yang et al. 2019); ``conditioned``: the best
    action for the transition's own weight only (Abels et al. 2019). The envelope's max over
    ``num_weight_samples`` x A estimates is biased upwards, and where actions loop back to the same
    state (walls) that bias compounds through 1 / (1 − γ): on Deep Sea Treasure (60k steps) it left
    the time values ~1.5-2 too high at low treasure weights, where ``conditioned`` fitted them
    (``benchmarks/mo_dst.py``, seeds 0-2: 7, 8, 8 hull points of 9 against 8, 4, 5). With one-hot
    positions, batch 256 and a Polyak target as well (``experiments/manifests/dst_dqn.yaml``),
    ``conditioned`` reaches 8, 9, 9. The remaining misses come from blending: a network smooth in the
    weights blends the return vectors of neighbouring treasures near the edges of their weight ranges,
    so hull points whose range spans only a few sweep weights need Q values accurate to a few hundredths.
    ``weight_features`` reduces that blending: with the manifest's Fourier basis and utility
    coefficient 0.8, seeds 0-2 reach all 9 hull points."""
    num_weight_samples: int = Field(8, ge=1, le=256)
    """Weights each sampled transition is trained under: its own plus this many − 1 drawn uniformly
    from the simplex (hindsight relabelling); also the set the envelope maximises over."""
    utility_loss_coef: float = Field(0.5, ge=0.0, le=1.0)
    """λ in ``(1 − λ) · vector loss + λ · utility loss`` (Yang et al.'s L_A and L_B, both Huber)."""
    weight_features: int = Field(0, ge=0, le=256)
    """Random Fourier features of the weights added to the Q-network's input: ``sin`` and ``cos`` of
    ``2π B w`` with ``B ~ N(0, weight_feature_scale²)``, ``[F, K]``, drawn from the seed and saved with
    the weights (Tancik et al. 2020). A ReLU network fed the raw weights alone fits functions that
    change slowly in ``w``, and blends the return vectors of neighbouring policies near the edges of
    their weight ranges; 0 feeds the raw weights only."""
    weight_feature_scale: float = Field(3.0, gt=0.0, le=100.0)
    """Standard deviation of the random Fourier frequencies (cycles per unit of weight): higher
    resolves narrower weight ranges and fits more noise. Unused by the ``fourier`` basis."""
    weight_feature_basis: Literal["random", "fourier"] = "random"
    """``random``: the frequencies above. ``fourier``: the integer frequencies ``1 .. F/K`` along each
    objective's weight, the same for every seed (the uncoupled Fourier basis of Konidaris et al.
    2011); ``weight_features`` must then be a multiple of K."""
