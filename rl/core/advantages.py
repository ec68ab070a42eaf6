"""Advantage estimators on time-major rollouts: numpy arrays in, numpy arrays out.

This is the only module of the core that uses JAX. JAX is imported on the first call, not on
import (importing it costs ~0.5 s), and each kernel is compiled once per (shape, dtype).

Axis letters: T time rows (oldest first), N envs, K reward objectives. Arrays are ``[T, N]`` or
``[T, N, K]``; ``terminated`` and ``truncated`` are always ``[T, N]`` and apply to every objective.

Time indexing: row ``t`` holds the transition ``(s_t, a_t, r_t, s'_t)``. ``value[t] = V(s_t)`` and
``next_value[t] = V(s'_t)``, the value of the *true* successor of step ``t``: for a truncated step
that is the final observation before the reset, so the kernel never looks at ``value[t + 1]``.
Rewards, values, advantages and returns are in reward units; ``gamma`` and ``lam`` are per step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import MutableMapping

import numpy as np

__all__ = ["gae", "gae_reference", "lambda_returns", "use_scan_xla_flags", "with_scan_xla_flags"]

# JAX's persistent compilation cache is deliberately not switched on here: it is a process-wide
# setting that belongs to the application entry point, and with its default threshold (compiles
# over 1 s) it would not store these ~0.1 s compiles anyway.

SCAN_XLA_OPTION = "xla_cpu_small_while_loop_byte_threshold=1000000000000"
"""XLA's CPU backend runs a loop whose buffers exceed 1 KiB (by its cost model) one operation at a
time through its thunk runtime, ~5 dispatches per time row; under this threshold it compiles the whole
loop into one function. Raising it makes the kernel's loop one function at every shape: a 5-20% lower
median per call at 1024x256 and 128x64 on the 2-core machines, bit-identical results. XLA reads it
once per process, from ``XLA_FLAGS`` when JAX starts, and no per-call compiler option reaches it, so
the application entry points set it (:func:`use_scan_xla_flags`), as they would any XLA flag."""


def with_scan_xla_flags(xla_flags: str) -> str:
    """``xla_flags`` (an ``XLA_FLAGS`` value) with :data:`SCAN_XLA_OPTION` added.

    A value that already passes ``--xla_backend_extra_options`` is returned unchanged: a second such
    flag would replace the user's options rather than add to them.
    """
    if "xla_backend_extra_options" in xla_flags:
        return xla_flags
    return f"{xla_flags} --xla_backend_extra_options={SCAN_XLA_OPTION}".strip()


def use_scan_xla_flags(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put :func:`with_scan_xla_flags` of ``environ``'s ``XLA_FLAGS`` back into it; the ``rl`` command and
    the benchmarks call this before JAX is imported."""
    environ["XLA_FLAGS"] = with_scan_xla_flags(environ.get("XLA_FLAGS", ""))


def gae(
    reward: np.ndarray,
    value: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016) with terminations and truncations.

    ``δ_t = r_t + γ(1−term_t)·V(s'_t) − V(s_t)``;  ``A_t = δ_t + γλ(1−term_t)(1−trunc_t)·A_{t+1}``,
    with ``A_T = 0``, so the trace is cut at every episode end while a truncated step still
    bootstraps from ``next_value``. ``returns_t = A_t + V(s_t)`` (the λ-return).

    Args:
        reward: ``[T, N]`` or ``[T, N, K]`` rewards ``r_t``.
        value: ``V(s_t)``, same shape as ``reward``.
        next_value: ``V(s'_t)`` of the true successor, same shape as ``reward``.
        terminated: ``[T, N]`` bool, step ``t`` ended the episode in a terminal state.
        truncated: ``[T, N]`` bool, step ``t`` ended the episode by a time limit (or the env was
            cut off for another non-terminal reason).
        gamma: discount per step, in ``[0, 1]``.
        lam: GAE λ, in ``[0, 1]``.

    Returns:
        ``(advantage, returns)``, float32, shaped like ``reward``. They are read-only views of the
        kernel's output buffers (no copy); call ``.copy()`` before writing into them.

    Float inputs of another dtype are converted to float32 (a copy). JAX reads inputs whose data
    starts on a 64-byte boundary in place and copies the others first; numpy's own large arrays
    sit 16 bytes past one, and at 4096x1024 that copy costs ~2/3 of the kernel's time again.
    """
    args = _checked(reward, value, next_value, terminated, truncated, gamma, lam)
    advantage, returns = _kernel()(*args)
    return np.asarray(advantage), np.asarray(returns)


def lambda_returns(
    reward: np.ndarray,
    value: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """λ-returns ``G^λ_t = A_t + V(s_t)``, float32 shaped like ``reward``; arguments as :func:`gae`.

    Recursively ``G^λ_t = r_t + γ(1−term_t)·V(s'_t) + γλ(1−term_t)(1−trunc_t)·(G^λ_{t+1} − V(s_{t+1}))``,
    the textbook ``r_t + γ[(1−λ)V(s_{t+1}) + λG^λ_{t+1}]`` when no episode ends and V(s'_t) = V(s_{t+1}).
    """
    return gae(reward, value, next_value, terminated, truncated, gamma, lam)[1]


def gae_reference(
    reward: np.ndarray,
    value: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gae` as a plain numpy loop over time, accumulated in float64; used by the tests."""
    reward_tnk, value_tnk, next_value_tnk = (np.asarray(x, np.float64) for x in (reward, value, next_value))
    term_tn = np.asarray(terminated, bool)
    trunc_tn = np.asarray(truncated, bool)
    if reward_tnk.ndim == 3:
        term_tn, trunc_tn = term_tn[..., None], trunc_tn[..., None]
    advantage = np.zeros_like(reward_tnk)
    adv_next = np.zeros_like(reward_tnk[0])
    for t in reversed(range(len(reward_tnk))):
        not_term = 1.0 - term_tn[t]
        delta = reward_tnk[t] + gamma * not_term * next_value_tnk[t] - value_tnk[t]
        adv_next = delta + gamma * lam * not_term * (1.0 - trunc_tn[t]) * adv_next
        advantage[t] = adv_next
    return advantage.astype(np.float32), (advantage + value_tnk).astype(np.float32)


def _checked(reward, value, next_value, terminated, truncated, gamma, lam) -> tuple:
    """Validate shapes and ranges; return float32 / bool arrays and float32 scalars for the kernel."""
    floats = [np.asarray(x, np.float32) for x in (reward, value, next_value)]
    flags = [np.asarray(x, bool) for x in (terminated, truncated)]
    shape = floats[0].shape
    if len(shape) not in (2, 3):
        raise ValueError(f"gae: reward must be [T, N] or [T, N, K], got shape {shape}")
    for name, x in zip(("value", "next_value"), floats[1:], strict=True):
        if x.shape != shape:
            raise ValueError(f"gae: {name} must have reward's shape {shape}, got {x.shape}")
    for name, x in zip(("terminated", "truncated"), flags, strict=True):
        if x.shape != shape[:2]:
            raise ValueError(f"gae: {name} must be [T, N] = {shape[:2]}, got {x.shape}")
    for name, x in (("gamma", gamma), ("lam", lam)):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"gae: {name} must be in [0, 1], got {x}")
    # float32 scalars keep one compiled kernel per shape whether callers pass floats or numpy scalars
    return (*floats, *flags, np.float32(gamma), np.float32(lam))


@functools.cache
def _kernel():
    """The jitted GAE kernel; jax.jit compiles it once per input shape, gamma and lam are traced."""
    import jax
    import jax.numpy as jnp

    def step(gamma, lam, adv_next, row):
        reward, value, next_value, term, trunc = row
        if reward.ndim == 2:  # [N, K] rows: the flags apply to every objective
            term, trunc = term[:, None], trunc[:, None]
        discount = jnp.where(term, 0.0, gamma)
        adv = reward + discount * next_value - value + discount * jnp.where(trunc, 0.0, lam) * adv_next
        return adv, (adv, adv + value)

    def kernel(reward, value, next_value, terminated, truncated, gamma, lam):
        # One reverse scan over time rows: every input row is read once and both outputs are
        # written in the same pass. On the 2-core CPU machines this beat flipping the arrays to scan
        # forward and computing δ vectorised before the scan (both ~1.7x slower at 4096x1024,
        # the extra passes cost more than the backward walk), scanning over chunks of rows,
        # associative_scan (4x slower) and unroll=4..32 (2-20x slower). A two-level scan (each
        # block of L rows summarised as A_local + P·A_next, the blocks' carries chained, then a
        # second pass from them) reads the inputs in ~3 ms at 4096x1024, but writing its outputs
        # from inside a loop over [B, L, N] slices took 12-20 ms in all; unrolled without a loop,
        # 25-45 ms. Two scans over the two halves of the envs in one computation ran one after
        # the other, not on the two cores.
        _, (advantage, returns) = jax.lax.scan(
            functools.partial(step, gamma, lam),
            jnp.zeros_like(reward[0]),
            (reward, value, next_value, terminated, truncated),
            reverse=True,
        )
        return advantage, returns

    return jax.jit(kernel)
