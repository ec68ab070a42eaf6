"""Pareto maths of experiments.pareto (re-exported by experiments.mo): non-dominated sets, hypervolume
against independent references, expected utility, sparsity, IGD, the convex hull of Deep Sea Treasure,
sweeps and the reference table.

Axis letters: P points, K objectives, W weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from experiments.mo import (
    REFERENCE_POINTS,
    ParetoError,
    SweepSpec,
    convex_hull_points,
    expected_utility,
    hypervolume,
    non_dominated,
    reference_point,
    sparsity,
    sweep_weights,
    true_front,
)
from experiments.pareto import front_metrics, igd


def hv_inclusion_exclusion(points_pk: np.ndarray, ref_k: np.ndarray) -> float:
    """Exact HV as the volume of a union of boxes [ref, p], by inclusion–exclusion (small P only)."""
    total = 0.0
    for r in range(1, len(points_pk) + 1):
        for subset in itertools.combinations(points_pk, r):
            corner = np.min(subset, axis=0)
            total += (-1) ** (r + 1) * float(np.prod(np.maximum(corner - ref_k, 0.0)))
    return total


def random_front(rng, p: int, k: int) -> np.ndarray:
    # points on a sphere's positive orthant are mutually non-dominated; add dominated noise points
    x = np.abs(rng.normal(size=(p, k)))
    front = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.vstack([front, front[: p // 2] * rng.uniform(0.3, 0.9, size=(p // 2, 1))])


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        pts = random_front(rng, 7, k)
        ref = -rng.uniform(0.0, 0.5, size=k)
        assert hypervolume(pts, ref) == pytest.approx(hv_inclusion_exclusion(pts, ref), rel=1e-10)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_matches_pymoo(k):
    pymoo_hv = pytest.importorskip("pymoo.indicators.hv")
    rng = np.random.default_rng(10 + k)
    for _ in range(3):
        pts = random_front(rng, 30, k)
        ref = np.full(k, -0.1)
        # pymoo minimises: negate points and reference
        expected = pymoo_hv.HV(ref_point=-ref)(-pts)
        assert hypervolume(pts, ref) == pytest.approx(expected, rel=1e-9)


def test_hypervolume_by_hand_and_bad_reference():
    assert hypervolume([[1, 3], [2, 2], [3, 1], [1, 1]], [0, 0]) == pytest.approx(6.0)
    with pytest.raises(ParetoError, match=r"^reference_point: \[0.0, 2.0\] does not dominate the front from below"):
        hypervolume([[1, 3], [3, 1]], [0.0, 2.0])
    with pytest.raises(ParetoError, match="reference_point: expected 2 numbers"):
        hypervolume([[1, 3]], [0.0])


def test_non_dominated_keeps_the_front_once():
    pts = [[1, 3], [2, 2], [2, 2], [1, 1], [3, 1], [0, 3]]
    assert non_dominated(pts).tolist() == [[1, 3], [2, 2], [3, 1]]


def test_expected_utility_sparsity_cardinality():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    weights = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert expected_utility(front, weights) == pytest.approx((1 + 0.5 + 1) / 3)
    assert sparsity(front) == pytest.approx(2.0)
    assert sparsity(front[:1]) == 0.0
    with pytest.raises(ParetoError, match="weights: expected 2 objectives"):
        expected_utility(front, [[1.0, 0.0, 0.0]])


def test_deep_sea_treasure_convex_hull_has_nine_points():
    front = true_front("deep-sea-treasure-v0")
    hull = convex_hull_points(front)
    assert len(front) == 10 and len(hull) == 9
    assert [20.3, -14.0] not in np.round(hull, 6).tolist()  # on the hull's edge: only a tie


def test_sweep_grid_and_sampled():
    w = sweep_weights(3, SweepSpec(points=11))
    assert w.shape == (66, 3) and np.allclose(w.sum(1), 1.0) and (w >= 0).all()
    s = sweep_weights(4, SweepSpec(kind="sampled", points=20), np.random.default_rng(0))
    assert s.shape == (20, 4) and np.allclose(s.sum(1), 1.0)
    with pytest.raises(ParetoError, match="objectives.sweep.points"):
        sweep_weights(6, SweepSpec(points=60))


def test_reference_table_dominates_the_true_fronts():
    for env_id in ("deep-sea-treasure-v0", "fruit-tree-v0"):
        front = true_front(env_id)
        assert (front >= np.array(REFERENCE_POINTS[env_id])).all()
    with pytest.raises(ParetoError, match=r"^objectives.reference_point: .* does not dominate"):
        reference_point("deep-sea-treasure-v0", 2, [1.0, -25.0])
    with pytest.raises(ParetoError, match="objectives.reference_point: no reference point"):
        reference_point("rlsuite/unknown-v0", 2, None)


def test_igd_and_front_metrics():
    true = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    assert igd(true, true) == 0.0
    assert igd([[1.0, 1.0]], true) == pytest.approx(2 * np.sqrt(2) / 3)
    with pytest.raises(ParetoError, match="front: expected 2 objectives"):
        igd([[1.0, 1.0, 1.0]], true)
    # a failed episode below the reference adds nothing to the HV and is counted
    returns = np.array([[0.0, 2.0], [1.0, 1.0], [-5.0, 3.0]])
    m = front_metrics(returns, np.array([[0.5, 0.5]]), np.array([-1.0, -1.0]), true)
    assert m["cardinality"] == 3 and m["below_reference"] == 1
    assert m["hypervolume"] == pytest.approx(hypervolume(returns[:2], [-1.0, -1.0]))
    assert m["igd"] == pytest.approx(igd(m["front"], true))
    assert m["hull_points"] == [[0.0, 2.0], [2.0, 0.0]] and m["hull_recovered"] == [True, False]


def test_experiments_mo_reexports_the_pareto_maths():
    import experiments.mo as mo
    import experiments.pareto as pareto

    for name in pareto.__all__:
        assert getattr(mo, name) is getattr(pareto, name), name
