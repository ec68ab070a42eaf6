"""Time ``rl.core.advantages.gae`` against SB3's RolloutBuffer, the numpy loop and a bandwidth bound.

Run ``python benchmarks/gae.py``. Inputs are the arrays of a real ``rl.core.storage.Storage`` laid out as
the on-policy loop lays them out (``[T, N, 1]`` floats, ``[T, N]`` flags), passed to ``gae`` exactly as
the loop passes them (Storage starts every array on a 64-byte boundary, so JAX reads them in place); a
second column feeds separately 64-byte-aligned copies as a check.
Times are medians over repeats after a warm-up call, in milliseconds per call. The bound is the
bytes the kernel must move (read reward, value, next_value and both flags, write advantage and
returns) divided by the memory bandwidth of ``np.copyto`` (bytes read + written) on a 256 MiB array:
with its destination that moves 512 MiB, more than the caches of the machines measured hold (their
shared L3 is 260 MiB; a 64 MiB copy can stay in it and measured anywhere from 15 to 30 GB/s from one
run to the next, the 256 MiB copy a steady 21-25 GB/s). The kernel and that copy are timed in
alternating rounds (:func:`ours_against_memory`), so load from other tenants of the machine falls on
both alike; ``ours / bound`` is the ratio of their medians, and in brackets of our best call to the
best copy. (An earlier version of this script divided by the best of 16 copies of 64 and 256 MiB,
taken before the kernels ran, and compared our median with it: best case against typical case.)

The script sets ``XLA_FLAGS`` as the ``rl`` command does (``rl.core.advantages.SCAN_XLA_OPTION``).

Measured on the 2-core machine (Intel Xeon, 260 MiB L3), three runs back to back: memory 21-25 GB/s;
ours/bound at 1024x256 1.65x, 1.70x, 1.66x (best 1.36x) and at 4096x1024 1.28x, 1.26x, 1.29x (best
1.11-1.17x); SB3/ours at 2048x8 194x, 182x, 192x. Against the earlier bound (best copy, ~24-27 GB/s)
the same medians are ~1.8-2.0x at 1024x256 and ~1.4x at 4096x1024.

Axis letters: T time rows, N envs, K reward objectives.
"""

from __future__ import annotations

import os
import statistics
import time
from functools import partial

import numpy as np

SHAPES_TN = [(2048, 1), (2048, 8), (128, 64), (1024, 256), (4096, 1024)]
K_SHAPES_TN = [(2048, 8), (1024, 256)]
GAMMA, LAM = 0.99, 0.95
BUDGET_S = 1.0
"""Time spent repeating one measurement, in seconds."""
SLOW_S = 2.0
"""A baseline whose single call takes longer than this is timed once, not repeated."""


def timed(fn, budget_s: float = BUDGET_S, min_reps: int = 5) -> tuple[float, float, int]:
    """Median and minimum wall time of ``fn()`` in ms over repeats after a warm-up call, and the count."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > SLOW_S:
        return first * 1e3, first * 1e3, 1
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_reps or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= 2000:
            break
    return statistics.median(times) * 1e3, min(times) * 1e3, len(times)


MEMORY_MIB = 256
"""Size of the array whose copy measures memory bandwidth (see the module docstring)."""
ROUNDS, ROUND_S = 12, 0.1
"""Alternating rounds of :func:`ours_against_memory`, and the seconds of kernel calls in each."""


def copy_pair(mib: int) -> tuple[np.ndarray, np.ndarray]:
    """A random float32 source of ``mib`` MiB and a destination, both touched once."""
    src = np.random.default_rng(0).random(mib << 18, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    return src, dst


def copy_bandwidths(src: np.ndarray, dst: np.ndarray, reps: int) -> list[float]:
    """Bandwidths in bytes/s (read + written) of ``reps`` copies of ``src`` into ``dst``."""
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        np.copyto(dst, src)
        out.append(2 * src.nbytes / (time.perf_counter() - start))
    return out


def ours_against_memory(fn, src: np.ndarray, dst: np.ndarray) -> tuple[list[float], list[float]]:
    """Wall times of ``fn()`` in seconds, and memory bandwidths in bytes/s, from ``ROUNDS`` alternating
    rounds of ``ROUND_S`` seconds of calls then one copy of ``src`` into ``dst``, after a warm-up call."""
    fn()
    times, bandwidths = [], []
    for _ in range(ROUNDS):
        deadline = time.perf_counter() + ROUND_S
        end = 0.0
        while end < deadline:  # at least one call per round
            start = time.perf_counter()
            fn()
            end = time.perf_counter()
            times.append(end - start)
        bandwidths += copy_bandwidths(src, dst, 1)
    return times, bandwidths


def storage_inputs(t: int, n: int, k: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """reward, value, next_value ``[T, N, K]`` and terminated, truncated ``[T, N]`` from a Storage."""
    from rl.core.storage import Field, Storage

    fields = {name: Field((k,)) for name in ("reward", "value", "next_value")}
    fields |= {name: Field((), "bool") for name in ("terminated", "truncated")}
    arrays = Storage(fields, capacity=t, num_envs=n).arrays
    rng = np.random.default_rng(seed)
    for name in ("reward", "value", "next_value"):
        arrays[name][...] = rng.standard_normal((t, n, k), dtype=np.float32)
    arrays["terminated"][...] = rng.random((t, n)) < 0.01
    arrays["truncated"][...] = ~arrays["terminated"] & (rng.random((t, n)) < 0.005)
    return tuple(arrays[name] for name in ("reward", "value", "next_value", "terminated", "truncated"))


def aligned(x: np.ndarray, align: int = 64) -> np.ndarray:
    """A copy of ``x`` whose data starts on an ``align``-byte boundary."""
    raw = np.empty(x.nbytes + align, np.uint8)
    offset = -raw.ctypes.data % align
    out = raw[offset : offset + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    return out


def sb3_call(reward_tn: np.ndarray, value_tn: np.ndarray, episode_start_tn: np.ndarray):
    """A filled SB3 RolloutBuffer's ``compute_returns_and_advantage`` as a zero-argument callable."""
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    t, n = reward_tn.shape
    box = spaces.Box(-1.0, 1.0, (1,), np.float32)
    buffer = RolloutBuffer(t, box, box, device="cpu", gae_lambda=LAM, gamma=GAMMA, n_envs=n)
    buffer.rewards[...] = reward_tn
    buffer.values[...] = value_tn
    buffer.episode_starts[...] = episode_start_tn
    last_values = torch.zeros(n)
    dones = np.zeros(n, bool)
    return lambda: buffer.compute_returns_and_advantage(last_values, dones)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    start = time.perf_counter()
    from rl.core.advantages import gae, gae_reference, use_scan_xla_flags

    import_ms = (time.perf_counter() - start) * 1e3
    use_scan_xla_flags()  # as the rl command does
    src, dst = copy_pair(MEMORY_MIB)
    cached = statistics.median(copy_bandwidths(*copy_pair(64), 8))
    console.print(f"import rl.core.advantages: {import_ms:.1f} ms (JAX is imported on the first call)")
    console.print(f"copy bandwidth (np.copyto, read + write, median of 8): {MEMORY_MIB} MiB "
                  f"{statistics.median(copy_bandwidths(src, dst, 8)) / 1e9:.1f} GB/s, 64 MiB {cached / 1e9:.1f} GB/s; "
                  f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    table = Table(title=f"GAE, ms per call: median (min), numpy arrays in and out; memory = {MEMORY_MIB} MiB "
                        "copies alternating with ours, median (best)")
    for col in ("T x N", "ours", "ours, aligned in", "1st call", "SB3", "numpy loop", "memory GB/s", "bound",
                "SB3 / ours", "ours / bound"):
        table.add_column(col, justify="right")
    notes = []
    for i, (t, n) in enumerate(SHAPES_TN):
        args = storage_inputs(t, n, 1, seed=i)
        args_aligned = tuple(aligned(x) for x in args)
        start = time.perf_counter()
        gae(*args, GAMMA, LAM)
        first_ms = (time.perf_counter() - start) * 1e3
        times, bandwidths = ours_against_memory(partial(gae, *args, GAMMA, LAM), src, dst)
        ours, ours_min = statistics.median(times) * 1e3, min(times) * 1e3
        memory, memory_best = statistics.median(bandwidths), max(bandwidths)
        ours_aligned, aligned_min, _ = timed(partial(gae, *args_aligned, GAMMA, LAM))
        reward_tn, value_tn = args[0][..., 0], args[1][..., 0]
        episode_start_tn = np.zeros((t, n), np.float32)
        episode_start_tn[1:] = args[3][:-1] | args[4][:-1]
        sb3, _, sb3_reps = timed(sb3_call(reward_tn, value_tn, episode_start_tn))
        ref, _, ref_reps = timed(partial(gae_reference, *args, GAMMA, LAM), min_reps=3)
        for name, reps in (("SB3", sb3_reps), ("numpy loop", ref_reps)):
            if reps == 1:
                notes.append(f"{name} at {t}x{n} took over {SLOW_S:.0f} s and was timed once")
        moved = t * n * 22  # bytes: 3 float32 read, 2 bool read, 2 float32 written
        bound, bound_best = moved / memory * 1e3, moved / memory_best * 1e3
        table.add_row(f"{t} x {n}", f"{ours:.3f} ({ours_min:.3f})", f"{ours_aligned:.3f} ({aligned_min:.3f})",
                      f"{first_ms:.0f}", f"{sb3:.3f}", f"{ref:.3f}",
                      f"{memory / 1e9:.1f} ({memory_best / 1e9:.1f})", f"{bound:.3f} ({bound_best:.3f})",
                      f"{sb3 / ours:.0f}x", f"{ours / bound:.2f}x ({ours_min / bound_best:.2f}x)")
    console.print(table)
    console.print("1st call = trace + compile + run for a new shape (the first row also imports JAX).")
    console.print("Storage allocates its arrays on 64-byte boundaries, which JAX reads in place (unaligned "
                  "inputs are copied first); the aligned column repeats the call on separately aligned copies.")
    console.print("ours / bound: median against median; in brackets, our best call against the best copy.")
    for note in notes:
        console.print(note)

    k_table = Table(title="K = 3 objectives vs K = 1, ms per call (median)")
    for col in ("T x N", "K = 1", "K = 3", "K=3 / K=1", "per objective / K=1"):
        k_table.add_column(col, justify="right")
    for t, n in K_SHAPES_TN:
        one = storage_inputs(t, n, 1)
        three = storage_inputs(t, n, 3)
        gae(*three, GAMMA, LAM)
        t1, _, _ = timed(partial(gae, *one, GAMMA, LAM))
        t3, _, _ = timed(partial(gae, *three, GAMMA, LAM))
        k_table.add_row(f"{t} x {n}", f"{t1:.3f}", f"{t3:.3f}", f"{t3 / t1:.2f}", f"{t3 / (3 * t1):.2f}")
    console.print(k_table)


if __name__ == "__main__":
    main()
