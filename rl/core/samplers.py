"""Samplers produce flat transition indices into a :class:`~rl.core.storage.Storage`.

They are small objects handed to a loop, never storage subclasses, and they own an explicit
``numpy.random.Generator`` split from the run seed, so their draws are part of a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rl.core.storage import Storage

__all__ = ["MinibatchSampler", "UniformSampler"]


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
