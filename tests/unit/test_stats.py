"""experiments.stats against scipy and hand-worked cases.

Axis letters: r runs (seeds), t tasks, x curve points.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.stats

from experiments import stats


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 10, 33, 100])
def test_iqm_equals_scipy_trim_mean(n):
    rng = np.random.default_rng(n)
    x = rng.standard_cauchy(n)  # heavy tails: trimming the wrong count would show
    np.testing.assert_allclose(stats.iqm(x), scipy.stats.trim_mean(x, 0.25), rtol=1e-12)


def test_iqm_along_an_axis_equals_trim_mean():
    x_bn = np.random.default_rng(0).normal(size=(6, 13))
    np.testing.assert_allclose(stats.iqm(x_bn, axis=-1), scipy.stats.trim_mean(x_bn, 0.25, axis=1))
    np.testing.assert_allclose(stats.iqm(x_bn, axis=0), scipy.stats.trim_mean(x_bn, 0.25, axis=0))
    np.testing.assert_allclose(stats.iqm(x_bn), scipy.stats.trim_mean(x_bn.ravel(), 0.25))


def test_point_statistics_by_hand():
    x = np.array([0.0, 1.0, 2.0, 3.0, 100.0, -50.0, 4.0, 5.0])
    assert stats.iqm(x) == pytest.approx(np.mean([1.0, 2.0, 3.0, 4.0]))
    assert stats.mean(x) == pytest.approx(65.0 / 8)
    assert stats.median(x) == pytest.approx(2.5)
    assert stats.optimality_gap(np.array([0.5, 1.0, 2.0, 0.0])) == pytest.approx((0.5 + 0 + 0 + 1) / 4)
    assert stats.optimality_gap(np.array([50.0, 200.0]), gamma=100.0) == pytest.approx(25.0)


@pytest.mark.parametrize("statistic", [np.mean, np.median])
def test_bootstrap_ci_agrees_with_scipy_percentile(statistic):
    data_r = np.random.default_rng(1).normal(loc=3.0, scale=2.0, size=40)
    reps = 20_000
    ref = scipy.stats.bootstrap((data_r,), statistic, n_resamples=reps, method="percentile",
                                rng=np.random.default_rng(2)).confidence_interval
    ours = {np.mean: stats.mean, np.median: stats.median}[statistic]
    point, low, high = stats.stratified_bootstrap_ci(data_r[:, None], ours, np.random.default_rng(3), reps=reps)
    assert point == pytest.approx(statistic(data_r))
    # Monte Carlo error of each endpoint is ~0.01 here; the interval itself is ~1.2 wide.
    assert low == pytest.approx(ref.low, abs=0.05)
    assert high == pytest.approx(ref.high, abs=0.05)
    assert low < point < high


def test_bootstrap_resamples_runs_within_each_task():
    # Task 0 scores are all 0, task 1 all 1: resampling runs within a task keeps the mean at exactly
    # 0.5; resampling across the pooled scores would not.
    scores_rt = np.stack([np.zeros(5), np.ones(5)], axis=1)
    point, low, high = stats.stratified_bootstrap_ci(scores_rt, stats.mean, np.random.default_rng(0), reps=500)
    assert (point, low, high) == (0.5, 0.5, 0.5)


def test_bootstrap_confidence_widens_the_interval():
    scores_rt = np.random.default_rng(4).normal(size=(10, 3))
    _, lo90, hi90 = stats.stratified_bootstrap_ci(scores_rt, stats.iqm, np.random.default_rng(0), confidence=0.9)
    _, lo99, hi99 = stats.stratified_bootstrap_ci(scores_rt, stats.iqm, np.random.default_rng(0), confidence=0.99)
    assert lo99 < lo90 < hi90 < hi99


def test_same_seed_same_ci_and_different_seed_different_ci():
    scores_rt = np.random.default_rng(5).normal(size=(8, 4))
    gap = functools.partial(stats.optimality_gap, gamma=0.5)
    for statistic in (stats.iqm, stats.mean, gap):
        a = stats.stratified_bootstrap_ci(scores_rt, statistic, np.random.default_rng(7))
        b = stats.stratified_bootstrap_ci(scores_rt, statistic, np.random.default_rng(7))
        c = stats.stratified_bootstrap_ci(scores_rt, statistic, np.random.default_rng(8))
        assert a == b
        assert a[0] == c[0] and a[1:] != c[1:]


def test_bootstrap_refuses_implicit_randomness_and_bad_arguments():
    scores_rt = np.ones((3, 2))
    with pytest.raises(TypeError, match="rng"):
        stats.stratified_bootstrap_ci(scores_rt, stats.mean, 0)
    with pytest.raises(ValueError, match="confidence"):
        stats.stratified_bootstrap_ci(scores_rt, stats.mean, np.random.default_rng(0), confidence=95)
    with pytest.raises(ValueError, match="reps"):
        stats.stratified_bootstrap_ci(scores_rt, stats.mean, np.random.default_rng(0), reps=0)
    with pytest.raises(ValueError, match=r"non-finite score nan at index \(1, 0\)"):
        stats.stratified_bootstrap_ci(np.array([[1.0, 2.0], [np.nan, 1.0]]), stats.mean, np.random.default_rng(0))


def test_curve_band_agrees_with_scipy_at_each_point():
    rng = np.random.default_rng(6)
    curves_rx = np.linspace(0, 10, 7)[None, :] + rng.normal(size=(12, 7))
    point_x, low_x, high_x = stats.curve_band(curves_rx, stats.mean, np.random.default_rng(9), reps=20_000)
    ref = scipy.stats.bootstrap((curves_rx,), np.mean, axis=0, n_resamples=20_000, method="percentile",
                                rng=np.random.default_rng(10)).confidence_interval
    np.testing.assert_allclose(point_x, curves_rx.mean(axis=0))
    np.testing.assert_allclose(low_x, ref.low, atol=0.05)
    np.testing.assert_allclose(high_x, ref.high, atol=0.05)
    assert np.all(low_x <= point_x) and np.all(point_x <= high_x)


def test_curve_band_is_deterministic_and_chunking_does_not_change_it(monkeypatch):
    curves_rx = np.random.default_rng(11).normal(size=(5, 40))
    whole = stats.curve_band(curves_rx, stats.iqm, np.random.default_rng(1), reps=300)
    monkeypatch.setattr(stats, "_MAX_BOOTSTRAP_ELEMENTS", 300 * 5 * 3)  # chunks of 3 points
    chunked = stats.curve_band(curves_rx, stats.iqm, np.random.default_rng(1), reps=300)
    other = stats.curve_band(curves_rx, stats.iqm, np.random.default_rng(2), reps=300)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[1], other[1])


def test_curve_band_of_identical_seeds_has_zero_width():
    curves_rx = np.tile(np.arange(6.0), (4, 1))
    point_x, low_x, high_x = stats.curve_band(curves_rx, stats.iqm, np.random.default_rng(0), reps=100)
    np.testing.assert_array_equal(low_x, point_x)
    np.testing.assert_array_equal(high_x, point_x)


def test_probability_of_improvement_extremes():
    y_rt = np.random.default_rng(12).normal(size=(6, 3))
    assert stats.probability_of_improvement(y_rt + 100.0, y_rt) == 1.0
    assert stats.probability_of_improvement(y_rt, y_rt + 100.0) == 0.0
    assert stats.probability_of_improvement(y_rt, y_rt) == 0.5


def test_probability_of_improvement_by_hand_and_against_mann_whitney():
    assert stats.probability_of_improvement([3.0, 3.0, 1.0], [2.0]) == pytest.approx(2 / 3)
    assert stats.probability_of_improvement([2.0, 1.0], [2.0, 0.0]) == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    rng = np.random.default_rng(13)
    x_rt = rng.integers(0, 5, size=(7, 4)).astype(float)  # small integers: many ties
    y_rt = rng.integers(0, 5, size=(5, 4)).astype(float)
    u_t = [scipy.stats.mannwhitneyu(x_rt[:, t], y_rt[:, t]).statistic / (7 * 5) for t in range(4)]
    assert stats.probability_of_improvement(x_rt, y_rt) == pytest.approx(np.mean(u_t))
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement(x_rt, y_rt[:, :3])


def test_performance_profile_is_the_fraction_above_and_non_increasing():
    scores_rt = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(stats.performance_profile(scores_rt, [-1.0, 0.0, 1.5, 2.0, 3.0]),
                               [1.0, 0.75, 0.5, 0.25, 0.0])
    scores_rt = np.random.default_rng(14).normal(size=(10, 5))
    profile_k = stats.performance_profile(scores_rt, np.linspace(-3, 3, 200))
    assert np.all(np.diff(profile_k) <= 0)
    assert profile_k[0] == 1.0 and profile_k[-1] == 0.0
