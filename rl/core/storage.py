"""One storage for rollouts and replay: preallocated named arrays laid out ``[T, N, ...]``.

Axis letters used in this module: T time rows (capacity), N parallel envs, K reward objectives,
B a batch of flat indices into the ``T * N`` transitions.

A rollout is a storage that is filled once and cleared (``clear``); a replay buffer is the same
storage used as a ring (``add`` wraps around and ``full`` becomes true). Off-policy, offline and
on-policy agents therefore read transitions through the same ``gather`` path, and samplers are
separate objects that only produce indices (see :mod:`rl.core.samplers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Field", "Storage", "StorageError"]

REPLAY_ROW_FIELDS = 6
"""Fields of the off-policy replay row, which :meth:`Storage.row_writer` writes without a loop."""


class StorageError(ValueError):
    """A field or shape does not match the storage layout."""


@dataclass(frozen=True)
class Field:
    """One named per-transition array: its per-env shape and dtype."""

    shape: tuple[int, ...]
    dtype: str = "float32"


def _aligned_zeros(shape: tuple[int, ...], dtype: str, align: int = 64) -> np.ndarray:
    """Zeros whose data starts on a 64-byte boundary.

    JAX reads a numpy array in place only when it is 64-byte aligned and copies it otherwise; large
    ``np.zeros`` allocations start 16 bytes past a boundary, which made the advantage kernel copy
    every input on every call (benchmarks/gae.py: 1024x256 went from 4.9x to 2.0x the bandwidth bound).
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    buf = np.zeros(nbytes + align, np.uint8)
    offset = (-buf.ctypes.data) % align
    return buf[offset : offset + nbytes].view(dt).reshape(shape)


class Storage:
    """Preallocated ``[capacity, num_envs, *shape]`` arrays with a write position.

    Example:
        >>> s = Storage({"obs": Field((4,)), "reward": Field((1,))}, capacity=8, num_envs=2)
        >>> s.add(obs=np.zeros((2, 4), np.float32), reward=np.ones((2, 1), np.float32))
        >>> s.size
        1
    """

    def __init__(self, fields: Mapping[str, Field], capacity: int, num_envs: int):
        if capacity < 1:
            raise StorageError(f"capacity must be >= 1, got {capacity}")
        if num_envs < 1:
            raise StorageError(f"num_envs must be >= 1, got {num_envs}")
        self.fields = dict(fields)
        self.capacity = int(capacity)
        self.num_envs = int(num_envs)
        self.arrays: dict[str, np.ndarray] = {
            name: _aligned_zeros((self.capacity, self.num_envs, *f.shape), f.dtype)
            for name, f in self.fields.items()
        }
        self._items = list(self.arrays.items())
        self.pos = 0
        self.full = False

    @property
    def size(self) -> int:
        """Number of filled time rows."""
        return self.capacity if self.full else self.pos

    @property
    def num_transitions(self) -> int:
        """Number of filled transitions (rows x envs)."""
        return self.size * self.num_envs

    def clear(self) -> None:
        """Forget the contents (arrays are kept and overwritten)."""
        self.pos = 0
        self.full = False

    def add(self, **values: np.ndarray) -> None:
        """Write one time row: every field, each shaped ``[N, *shape]``."""
        pos = self.pos
        arrays = self.arrays
        try:
            for name, value in values.items():
                arrays[name][pos] = value
        except KeyError as err:
            raise StorageError(f"unknown storage field {err.args[0]!r}; fields are {sorted(arrays)}") from None
        except ValueError as err:
            raise StorageError(f"field {name!r}: {err}") from None
        if len(values) != len(arrays):
            missing = sorted(set(arrays) - set(values))
            raise StorageError(f"add() is missing fields {missing}")
        self._advance(pos)

    def _advance(self, pos: int) -> None:
        """Move the write position past row ``pos`` (wrapping around a full ring)."""
        pos += 1
        if pos == self.capacity:
            pos = 0
            self.full = True
        self.pos = pos

    def row_writer(self, names: Sequence[str]) -> Callable[..., None]:
        """A fast :meth:`add` for a loop that writes the same fields every step: ``write(*values)``
        takes one value per name of ``names``, in that order, and does what ``add(**dict(zip(names,
        values)))`` does (same writes, same position and ``full`` updates, the same StorageError naming
        the field a value does not fit; a wrong number of values is a TypeError, as for any call).

        ``names`` must list every field once. The keyword call costs ~1 µs more per row than the
        array writes themselves (building the kwargs dict, looking each field up by name); with one
        env the writer also writes into ``[T, *shape]`` views, which numpy indexes faster than
        ``[T, 1, *shape]`` rows (benchmarks/replay.py).

        Example:
            >>> s = Storage({"obs": Field((4,)), "reward": Field((1,))}, capacity=8, num_envs=2)
            >>> write = s.row_writer(["obs", "reward"])
            >>> write(np.zeros((2, 4), np.float32), np.ones((2, 1), np.float32))
            >>> s.size
            1
        """
        names = list(names)
        if sorted(names) != sorted(self.arrays):
            raise StorageError(f"row_writer() fields {names} must list every storage field once: "
                               f"{sorted(self.arrays)}")
        # With one env a [1, *shape] value fills the [*shape] row of the view: numpy drops leading
        # unit axes when it assigns. Scalar fields keep their [T, 1] array (a size-1 value into a
        # 0-d element is deprecated).
        targets = [a[:, 0] if self.num_envs == 1 and a.ndim > 2 else a for a in (self.arrays[n] for n in names)]
        k = len(targets)
        if k == REPLAY_ROW_FIELDS:
            return self._row_writer6(names, targets)

        def write(*values: np.ndarray) -> None:
            if len(values) != k:
                raise TypeError(f"row writer for {names} takes {k} values, got {len(values)}")
            pos = self.pos
            try:
                # zip without strict=True: the length is checked above, and strict costs ~0.3 µs a row
                for target, value in zip(targets, values):  # noqa: B905 (checked above)
                    target[pos] = value
            except ValueError:
                self._refused(names, pos, values)
            self._advance(pos)

        return write

    def _row_writer6(self, names: list[str], targets: list[np.ndarray]) -> Callable[..., None]:
        """The six-field writer spelled out: the off-policy replay row (obs, next_obs, action, reward,
        terminated, truncated) is the per-step write of every off-policy run. Without the loop over
        fields and the call to ``_advance`` a 1-env row costs ~1.1 µs instead of ~2.0 µs
        (benchmarks/replay.py); the suite generates no code at run time, so the arity is fixed by hand."""
        t0, t1, t2, t3, t4, t5 = targets
        capacity = self.capacity

        def write(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray, v3: np.ndarray, v4: np.ndarray,
                  v5: np.ndarray) -> None:
            pos = self.pos
            try:
                t0[pos] = v0
                t1[pos] = v1
                t2[pos] = v2
                t3[pos] = v3
                t4[pos] = v4
                t5[pos] = v5
            except ValueError:
                self._refused(names, pos, (v0, v1, v2, v3, v4, v5))
            pos += 1
            if pos == capacity:
                pos = 0
                self.full = True
            self.pos = pos

        return write

    def _refused(self, names: list[str], pos: int, values: tuple) -> None:
        """Raise the StorageError that names the field whose value does not fit row ``pos``."""
        for name, value in zip(names, values, strict=True):
            try:
                self.arrays[name][pos] = value
            except ValueError as err:
                raise StorageError(f"field {name!r}: {err}") from None
        raise StorageError(f"row writer for {names}: a value does not fit its field")

    def extend(self, values: Mapping[str, np.ndarray]) -> None:
        """Write many time rows at once: each field shaped ``[R, N, *shape]`` (wraps around)."""
        lengths = {len(v) for v in values.values()}
        if len(lengths) != 1:
            raise StorageError(f"extend() fields have different lengths {sorted(lengths)}")
        if set(values) != set(self.arrays):
            raise StorageError(f"extend() fields {sorted(values)} != storage fields {sorted(self.arrays)}")
        rows = lengths.pop()
        start = 0
        while start < rows:
            n = min(rows - start, self.capacity - self.pos)
            for name, value in values.items():
                self.arrays[name][self.pos : self.pos + n] = value[start : start + n]
            start += n
            self.pos += n
            if self.pos == self.capacity:
                self.pos = 0
                self.full = True

    def last_row(self) -> int:
        """Index of the most recently written time row."""
        if self.size == 0:
            raise StorageError("storage is empty")
        return (self.pos - 1) % self.capacity

    def view(self, name: str) -> np.ndarray:
        """The filled rows of ``name`` in storage order, ``[size, N, ...]`` (no copy)."""
        return self.arrays[name][: self.size]

    def flat(self, name: str) -> np.ndarray:
        """The filled transitions of ``name`` flattened to ``[size * N, ...]`` (no copy)."""
        a = self.arrays[name][: self.size]
        return a.reshape(self.size * self.num_envs, *a.shape[2:])

    def gather(self, flat_idx_b: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Transitions at flat indices ``t * N + n`` for the named fields (copies)."""
        names = list(self.arrays) if names is None else names
        # take() copies whole rows; fancy indexing (a[idx]) goes through numpy's general indexing
        # machinery: a 256-batch of the six update fields from a 1e6-row buffer went from 13.1k to
        # 24.4k batches/s with take() (benchmarks/replay.py).
        return {name: self.flat(name).take(flat_idx_b, axis=0) for name in names}

    def state(self) -> dict:
        """JSON-serialisable position counters (arrays go separately, see :meth:`array_state`)."""
        return {"pos": self.pos, "full": self.full, "capacity": self.capacity, "num_envs": self.num_envs}

    def array_state(self) -> dict[str, np.ndarray]:
        """The filled part of every field, for checkpoints (``[size, N, ...]`` each)."""
        return {name: np.ascontiguousarray(self.view(name)) for name in self.arrays}

    def load(self, state: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore from :meth:`state` and :meth:`array_state` output; shapes must match exactly."""
        if state["capacity"] != self.capacity or state["num_envs"] != self.num_envs:
            raise StorageError(
                f"checkpointed storage is {state['capacity']}x{state['num_envs']}, "
                f"this run's is {self.capacity}x{self.num_envs}"
            )
        size = self.capacity if state["full"] else state["pos"]
        for name, target in self.arrays.items():
            if name not in arrays:
                raise StorageError(f"checkpoint has no storage field {name!r}")
            src = arrays[name]
            if src.shape != (size, *target.shape[1:]) or src.dtype != target.dtype:
                raise StorageError(
                    f"storage field {name!r}: checkpoint has {src.dtype}{list(src.shape)}, "
                    f"expected {target.dtype}{[size, *target.shape[1:]]}"
                )
            target[:size] = src
        self.pos = int(state["pos"])
        self.full = bool(state["full"])
