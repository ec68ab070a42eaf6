"""Aggregate statistics over seeds and tasks, with stratified bootstrap confidence intervals.

Our own small version of rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice"), which is archived. Seeds (runs) are the unit of resampling: a bootstrap draws runs with
replacement *within each task*, never across tasks.

Axis letters used in names below:

* ``r`` runs (seeds) of one method on one task
* ``t`` tasks
* ``x`` points on a curve (environment steps)
* ``b`` bootstrap replicates
* ``k`` thresholds of a performance profile

Every point statistic has the signature ``statistic(x, axis=None) -> float | ndarray`` and reduces
over ``axis`` (all axes when ``None``); the bootstrap calls it once on a ``[b, n]`` array with
``axis=-1``, so a custom statistic must accept ``axis`` the same way. Functions that draw random
numbers take an explicit ``np.random.Generator``; none touches a global RNG.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = [
    "Statistic",
    "curve_band",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "performance_profile",
    "probability_of_improvement",
    "stratified_bootstrap_ci",
]

_MAX_BOOTSTRAP_ELEMENTS = 2**22
"""Largest ``[b, r, x]`` block curve_band materialises at once (32 MiB of float64)."""


class Statistic(Protocol):
    def __call__(self, x: np.ndarray, axis: int | None = None) -> np.ndarray | float: ...


def _reduce_axis(x: np.ndarray, axis: int | None) -> tuple[np.ndarray, int]:
    x = np.asarray(x, dtype=float)
    if axis is None:
        return x.reshape(-1), 0
    return x, axis


def mean(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Arithmetic mean over ``axis``."""
    x, axis = _reduce_axis(x, axis)
    return np.mean(x, axis=axis)


def median(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Median over ``axis``."""
    x, axis = _reduce_axis(x, axis)
    return np.median(x, axis=axis)


def iqm(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of values along ``axis``.

    Drops ``floor(0.25 n)`` values at each end, exactly as ``scipy.stats.trim_mean(x, 0.25)``;
    with fewer than 4 values nothing is dropped and it equals the mean.
    """
    x, axis = _reduce_axis(x, axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm: empty input")
    lo = int(0.25 * n)
    hi = n - lo
    part = np.partition(x, (lo, hi - 1), axis=axis)
    return np.mean(np.take(part, np.arange(lo, hi), axis=axis), axis=axis)


def optimality_gap(x: np.ndarray, gamma: float = 1.0, axis: int | None = None) -> np.ndarray | float:
    """How far scores fall short of ``gamma``: ``mean(gamma - min(x, gamma))``; lower is better.

    Scores above ``gamma`` earn nothing extra (normalised scores: ``gamma = 1`` is "solved"). As a
    bootstrap statistic with another threshold use ``functools.partial(optimality_gap, gamma=...)``.
    """
    x, axis = _reduce_axis(x, axis)
    return gamma - np.mean(np.minimum(x, gamma), axis=axis)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng: expected a numpy.random.Generator (e.g. np.random.default_rng(0)), got {type(rng).__name__}"
        )
    return rng


def _check_scores(scores: np.ndarray, name: str, ndim: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != ndim or min(scores.shape, default=0) == 0:
        raise ValueError(f"{name}: expected a non-empty {ndim}-D array, got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(scores))[0])
        raise ValueError(f"{name}: non-finite score {scores[bad]} at index {bad}; drop or fill it first")
    return scores


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if not (isinstance(reps, int | np.integer) and reps >= 1):
        raise ValueError(f"reps: expected a positive integer number of bootstrap replicates, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a level in (0, 1), e.g. 0.95, got {confidence!r}")


def _percentile_interval(stat_b: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - confidence
    low, high = np.quantile(stat_b, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def stratified_bootstrap_ci(
    scores_rt: np.ndarray,
    statistic: Statistic,
    rng: np.random.Generator,
    reps: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of an aggregate over runs and tasks.

    ``scores_rt[r, t]`` is the score of run ``r`` on task ``t``. Each replicate resamples the ``R``
    runs with replacement independently within every task, giving ``[b, r, t]``, and applies
    ``statistic`` to all ``R*T`` resampled scores. The interval is the ``(1-confidence)/2`` and
    ``(1+confidence)/2`` quantiles of the ``reps`` replicates. Returns ``(point, low, high)``.
    """
    rng = _check_rng(rng)
    scores_rt = _check_scores(scores_rt, "scores_rt", 2)
    _check_bootstrap_args(reps, confidence)
    n_r, n_t = scores_rt.shape
    idx_brt = rng.integers(0, n_r, size=(reps, n_r, n_t))
    resampled_brt = scores_rt[idx_brt, np.arange(n_t)]
    stat_b = np.asarray(statistic(resampled_brt.reshape(reps, n_r * n_t), axis=-1), dtype=float)
    low, high = _percentile_interval(stat_b, confidence)
    return float(statistic(scores_rt, axis=None)), float(low), float(high)


def curve_band(
    curves_rx: np.ndarray,
    statistic: Statistic,
    rng: np.random.Generator,
    reps: int = 2000,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise aggregate of learning curves across seeds, with a percentile bootstrap band.

    ``curves_rx[r, x]`` is seed ``r``'s value at grid point ``x`` (already aligned on env steps).
    Whole curves are resampled (one draw of seeds per replicate, shared by every ``x``), so seeds
    stay the unit. Returns ``(point_x, low_x, high_x)``.
    """
    rng = _check_rng(rng)
    curves_rx = _check_scores(curves_rx, "curves_rx", 2)
    _check_bootstrap_args(reps, confidence)
    n_r, n_x = curves_rx.shape
    idx_br = rng.integers(0, n_r, size=(reps, n_r))
    point_x = np.asarray(statistic(curves_rx, axis=0), dtype=float)
    low_x, high_x = np.empty(n_x), np.empty(n_x)
    # Chunk over x (not over replicates) so that [b, r, x] stays within a fixed memory budget.
    step = max(1, _MAX_BOOTSTRAP_ELEMENTS // (reps * n_r))
    for start in range(0, n_x, step):
        cols = slice(start, start + step)
        resampled_brx = curves_rx[:, cols][idx_br]
        stat_bx = np.asarray(statistic(resampled_brx, axis=1), dtype=float)
        low_x[cols], high_x[cols] = _percentile_interval(stat_bx, confidence)
    return point_x, low_x, high_x


def probability_of_improvement(x_rt: np.ndarray, y_rt: np.ndarray) -> float:
    """P(X > Y) + 0.5 P(X = Y), averaged over tasks (the Mann-Whitney U statistic / (n m)).

    ``x_rt`` and ``y_rt`` are two methods' scores per run and task; they may have different numbers
    of runs but must share tasks. A 1-D input is one task. 1 means X beats Y in every pairing.
    """
    x_rt = np.asarray(x_rt, dtype=float)
    y_rt = np.asarray(y_rt, dtype=float)
    x_rt = x_rt[:, None] if x_rt.ndim == 1 else x_rt
    y_rt = y_rt[:, None] if y_rt.ndim == 1 else y_rt
    x_rt = _check_scores(x_rt, "x_rt", 2)
    y_rt = _check_scores(y_rt, "y_rt", 2)
    if x_rt.shape[1] != y_rt.shape[1]:
        raise ValueError(f"x_rt has {x_rt.shape[1]} tasks but y_rt has {y_rt.shape[1]}; they must match")
    # Pairs [r_x, r_y, t]: every run of X against every run of Y on the same task.
    x_pair = x_rt[:, None, :]
    y_pair = y_rt[None, :, :]
    win_t = np.mean((x_pair > y_pair) + 0.5 * (x_pair == y_pair), axis=(0, 1))
    return float(np.mean(win_t))


def performance_profile(scores_rt: np.ndarray, taus_k: np.ndarray) -> np.ndarray:
    """Fraction of runs whose score exceeds each threshold: ``mean over t of mean over r of [s > tau]``.

    Returns an array ``[k]``, non-increasing in ``tau``. A 1-D input is one task.
    """
    scores_rt = np.asarray(scores_rt, dtype=float)
    scores_rt = _check_scores(scores_rt[:, None] if scores_rt.ndim == 1 else scores_rt, "scores_rt", 2)
    taus_k = np.asarray(taus_k, dtype=float).reshape(-1)
    above_rtk = scores_rt[:, :, None] > taus_k
    return np.mean(np.mean(above_rtk, axis=0), axis=0)
