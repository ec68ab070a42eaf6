"""One run seed split into named, independent generators.

Every consumer of randomness (env resets, samplers, exploration, the torch generator of an agent,
JAX keys, curriculum teachers) asks the :class:`SeedPlan` for its own stream by name. Streams are
derived with :class:`numpy.random.SeedSequence` from ``(seed, crc32(name), *index)``, so adding a new
consumer never shifts the numbers another consumer sees, and a stream can be re-derived at any
point (e.g. the env seeds used after checkpoint ``k``) without replaying history.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["SeedPlan", "generator_state", "restore_generator"]


@dataclass(frozen=True)
class SeedPlan:
    """Named random streams derived from one non-negative run seed."""

    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def sequence(self, name: str, *index: int) -> np.random.SeedSequence:
        """The SeedSequence of stream ``name`` (optionally sub-indexed, e.g. by checkpoint number)."""
        return np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()), *index))

    def generator(self, name: str, *index: int) -> np.random.Generator:
        """A fresh numpy Generator (PCG64) for stream ``name``."""
        return np.random.Generator(np.random.PCG64(self.sequence(name, *index)))

    def integer(self, name: str, *index: int) -> int:
        """A 31-bit integer seed for libraries that take an int (gymnasium reset, torch)."""
        return int(self.sequence(name, *index).generate_state(1, np.uint32)[0] >> 1)

    def integers(self, name: str, count: int, *index: int) -> list[int]:
        """``count`` distinct-stream 31-bit seeds, e.g. one per sub-env."""
        return [int(x >> 1) for x in self.sequence(name, *index).generate_state(count, np.uint32)]


def generator_state(rng: np.random.Generator) -> dict:
    """The JSON-serialisable state of a numpy Generator (bit generator name and integers)."""
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": {k: int(v) for k, v in state["state"].items()},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def restore_generator(rng: np.random.Generator, state: dict) -> None:
    """Restore a Generator in place from :func:`generator_state` output."""
    rng.bit_generator.state = state
