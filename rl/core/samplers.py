"""Samplers produce flat transition indices into a :class:`~rl.core.storage.Storage`.

They are small objects handed to a loop, never storage subclasses, and they own an explicit
``numpy.random.Generator`` split from the run seed, so their draws are part of a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rl.core.storage import Storage

__all__ = ["MinibatchSampler", "MixedSampler", "UniformSampler", "return_weights"]


class MinibatchSampler:
    """Shuffled minibatches over every transition, ``epochs`` passes (on-policy updates).

    ``batch_size`` must divide the transitions evenly; the last partial batch is dropped otherwise.
    """

    def __init__(self, rng: np.random.Generator, batch_size: int, epochs: int):
        if batch_size < 1 or epochs < 1:
            raise ValueError(f"batch_size and epochs must be >= 1, got {batch_size}, {epochs}")
        self.rng = rng
        self.batch_size = batch_size
        self.epochs = epochs

    def epochs_of_batches(self, num_transitions: int) -> Iterator[list[np.ndarray]]:
        """Yield, per epoch, the list of index arrays of that epoch's minibatches."""
        n_batches = max(num_transitions // self.batch_size, 1)
        size = min(self.batch_size, num_transitions)
        for _ in range(self.epochs):
            perm = self.rng.permutation(num_transitions)
            yield [perm[i * size : (i + 1) * size] for i in range(n_batches)]


class UniformSampler:
    """Uniform draws with replacement over the filled transitions (replay)."""

    def __init__(self, rng: np.random.Generator, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.rng = rng
        self.batch_size = batch_size

    def sample(self, storage: Storage) -> np.ndarray:
        """One batch of flat indices ``t * N + n``."""
        n = storage.num_transitions
        if n == 0:
            raise ValueError("cannot sample from an empty storage")
        return self.rng.integers(0, n, size=self.batch_size)


def return_weights(returns_e: np.ndarray, lengths_e: np.ndarray, temperature: float) -> np.ndarray:
    """Per-transition sampling probabilities ``[M]`` from trajectory returns (Hong et al. 2023, RW).

    ``p(τ) ∝ exp(Ĝ_τ / temperature)`` with ``Ĝ = (G − max G) / (max G − min G)`` in [−1, 0], and each
    of τ's ``|τ|`` transitions gets ``p(τ) / |τ|``, so a trajectory's share does not depend on its
    length. Small temperatures concentrate on the best trajectories; large ones approach uniform
    over trajectories.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    g = np.asarray(returns_e, np.float64)
    spread = g.max() - g.min()
    g_hat = (g - g.max()) / spread if spread > 0 else np.zeros_like(g)
    p_e = np.exp(g_hat / temperature)
    p_e /= p_e.sum()
    return np.repeat(p_e / lengths_e, lengths_e)


class MixedSampler:
    """Draws one batch from an offline and an online storage at a given offline fraction.

    ``round(fraction * batch_size)`` indices come from the offline storage (all of them while the
    online one is empty, none without an offline one), the rest uniformly from the online storage.
    Offline draws are uniform, or follow ``offline_probs`` (e.g. :func:`return_weights`) by inverse
    CDF. One generator serves both, so the draws are one checkpointable stream.
    """

    def __init__(self, rng: np.random.Generator, batch_size: int, offline_probs: np.ndarray | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.rng = rng
        self.batch_size = batch_size
        self._cdf = None
        if offline_probs is not None:
            cdf = np.cumsum(offline_probs, dtype=np.float64)
            self._cdf = cdf / cdf[-1]

    def split(self, offline_size: int, online_size: int, fraction: float) -> int:
        """How many of the batch come from the offline storage."""
        if offline_size == 0:
            return 0
        if online_size == 0:
            return self.batch_size
        return int(round(min(max(fraction, 0.0), 1.0) * self.batch_size))

    def sample(self, offline: Storage | None, online: Storage | None,
               fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """``(offline flat indices, online flat indices)``; their lengths sum to ``batch_size``."""
        n_off = offline.num_transitions if offline is not None else 0
        n_on = online.num_transitions if online is not None else 0
        if n_off + n_on == 0:
            raise ValueError("cannot sample from empty storages")
        k = self.split(n_off, n_on, fraction)
        if k == 0:
            off = np.zeros(0, np.int64)
        elif self._cdf is None:
            off = self.rng.integers(0, n_off, size=k)
        else:
            if len(self._cdf) != n_off:
                raise ValueError(f"offline_probs has {len(self._cdf)} entries, the offline storage {n_off}")
            off = np.minimum(np.searchsorted(self._cdf, self.rng.random(k), side="right"), n_off - 1)
        on = self.rng.integers(0, n_on, size=self.batch_size - k) if k < self.batch_size else np.zeros(0, np.int64)
        return off, on
