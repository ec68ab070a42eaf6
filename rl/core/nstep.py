"""n-step returns read from consecutive replay rows (numpy).

Axis letters: T storage rows (the ring), N envs, K reward objectives, B sampled transitions.

For a sampled transition at row ``t`` of env ``n`` the return runs forward over rows
``t, t+1, …`` (modulo the ring's capacity) of the same env for at most ``n_step`` rows::

    R = Σ_{k<m} γ^k r_{t+k},    target = R + γ^m (1 − term_{t+m−1}) Q(next_obs_{t+m−1})

It stops early, after including a row, when that row ended its episode (terminated or truncated:
a later row belongs to another episode, or another checkpoint segment) or when the next row is the
storage's write position (not written yet, or the oldest data of a full ring). Row ``t+m−1``'s own
``next_obs`` is the true successor even when it was a time-out, so the bootstrap is always exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nstep_returns"]


def nstep_returns(reward_tnk: np.ndarray, terminated_tn: np.ndarray, truncated_tn: np.ndarray,
                  t_b: np.ndarray, n_b: np.ndarray, write_pos: int, n_step: int,
                  gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(return_bk, last_row_b, steps_b)``: the discounted m-step return, the row ``t+m−1`` whose
    ``next_obs`` / ``terminated`` the bootstrap uses, and m (so the bootstrap discount is ``γ^m``).

    ``reward_tnk`` etc. are the storage's full ``[capacity, N, ...]`` arrays; ``write_pos`` is its
    next write row.
    """
    if n_step < 1:
        raise ValueError(f"n_step must be >= 1, got {n_step}")
    capacity = reward_tnk.shape[0]
    ended_tn = terminated_tn | truncated_tn
    row_b = np.asarray(t_b, dtype=np.int64)
    n_b = np.asarray(n_b, dtype=np.int64)
    return_bk = np.zeros((len(row_b), reward_tnk.shape[2]), dtype=np.float64)
    last_b = row_b.copy()
    steps_b = np.zeros(len(row_b), dtype=np.int64)
    alive_b = np.ones(len(row_b), dtype=bool)
    for k in range(n_step):
        return_bk += np.where(alive_b[:, None], gamma**k * reward_tnk[row_b, n_b], 0.0)
        last_b = np.where(alive_b, row_b, last_b)
        steps_b += alive_b
        nxt_b = (row_b + 1) % capacity
        alive_b &= ~ended_tn[row_b, n_b] & (nxt_b != write_pos)
        row_b = nxt_b
    return return_bk.astype(reward_tnk.dtype), last_b, steps_b
