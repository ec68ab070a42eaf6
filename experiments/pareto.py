"""Pareto maths for maximised vector returns: non-dominated sets, hypervolume, expected utility,
sparsity, inverted generational distance, convex-hull vertices, and the suite's fixed hypervolume
reference points and true fronts. Pure numpy (scipy for the hull LP); no run, manifest or torch.

Axis letters: K reward objectives, P points of a front, W weights.

* non-dominated set: points no other point weakly dominates with one strict improvement;
* hypervolume (HV): the volume dominated by the front and bounded below by a reference point.
  The reference point is fixed per env in `REFERENCE_POINTS` (below every return the env's front
  can reach), never derived from a run, so HVs are comparable across runs and papers; a manifest
  may override it (``objectives.reference_point``). Points that do not dominate the reference
  (failed episodes) add nothing and are counted in ``below_reference``;
* expected utility (EU, Zintgraf et al. 2015): ``mean_w max_{v in F} w · v`` over the sweep weights;
* sparsity (Hayes et al. 2022): mean squared gap between neighbouring front points per objective;
* cardinality: the number of non-dominated points;
* where the env knows its true front (`TRUE_FRONT_ENVS`): the inverted generational distance
  (mean distance of each true point to the nearest learned one) and which points of the true
  front's convex hull (the only ones a linear utility reaches) were recovered.

`experiments.mo` re-exports all of these for existing callers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REFERENCE_POINTS", "TRUE_FRONT_ENVS", "ParetoError", "convex_hull_points", "expected_utility",
           "front_metrics", "hypervolume", "igd", "non_dominated", "reference_point", "sparsity", "true_front"]

REFERENCE_POINTS: dict[str, tuple[float, ...]] = {
    # (treasure, time): treasures are >= 0; the true front's longest path takes 19 steps.
    "deep-sea-treasure-v0": (0.0, -25.0),
    "deep-sea-treasure-concave-v0": (0.0, -25.0),
    "deep-sea-treasure-mirrored-v0": (0.0, -50.0),
    # (death, gold, gem): each episode return lies in [-1, 0] x [0, 1] x [0, 1].
    "resource-gathering-v0": (-1.0, -1.0, -1.0),
    # (ore 1, ore 2, fuel): ores >= 0; fuel costs at most ~0.2 per step over 1000 steps.
    "minecart-v0": (-1.0, -1.0, -200.0),
    "minecart-deterministic-v0": (-1.0, -1.0, -200.0),
    # three treasures in [0, 1] per step.
    "four-room-v0": (-1.0, -1.0, -1.0),
    # six nutrients, each >= 0.
    "fruit-tree-v0": (0.0,) * 6,
    # (time, fuel): each at least -1 per step over at most 999 steps.
    "mo-mountaincarcontinuous-v0": (-1000.0, -1000.0),
    # (landing, shaping, main engine, side engine), as morl-baselines.
    "mo-lunar-lander-v3": (-101.0, -1001.0, -101.0, -101.0),
    # (forward velocity, control cost) over 1000 steps.
    "mo-halfcheetah-v5": (-100.0, -100.0),
}
"""Hypervolume reference point per env id: below every return of the env's Pareto front."""

TRUE_FRONT_ENVS = frozenset({"deep-sea-treasure-v0", "deep-sea-treasure-concave-v0", "deep-sea-treasure-mirrored-v0",
                             "fruit-tree-v0"})
"""Envs whose ``pareto_front(gamma)`` (MO-Gymnasium) is cheap and exact: distances are reported."""


class ParetoError(ValueError):
    """Bad input to a Pareto computation or a multi-objective run; the message names the field."""


# -- fronts and their measures -----------------------------------------------------------------------------------------

def _points(points: Any, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ParetoError(f"{name}: expected a [P, K] array of vector returns, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ParetoError(f"{name}: values must be finite")
    return p


def non_dominated(points_pk: Any) -> np.ndarray:
    """The non-dominated points ``[P', K]`` (maximisation), duplicates kept once, sorted lexicographically."""
    p = np.unique(_points(points_pk), axis=0)
    ge_ppk = p[:, None, :] >= p[None, :, :]
    gt_pp = (p[:, None, :] > p[None, :, :]).any(-1)
    dominated_p = (ge_ppk.all(-1) & gt_pp).any(0)
    keep = p[~dominated_p]
    order = np.lexsort(keep.T[::-1])
    return keep[order]


def _check_reference(p: np.ndarray, ref_k: np.ndarray, name: str) -> None:
    if ref_k.shape != (p.shape[1],):
        raise ParetoError(f"{name}: expected {p.shape[1]} numbers (one per objective), got {ref_k.size}")
    below = ~(p >= ref_k).all(axis=1)
    if below.any():
        bad = p[np.argmax(below)]
        raise ParetoError(f"{name}: {ref_k.tolist()} does not dominate the front from below: point "
                          f"{bad.tolist()} is lower in some objective; choose a reference below every point")


def hypervolume(points_pk: Any, reference_k: Any, name: str = "reference_point") -> float:
    """The volume weakly dominated by ``points_pk`` and above ``reference_k`` (exact, maximisation).

    Every point must weakly dominate the reference, else ParetoError naming ``name``. Computed by
    slicing along the last objective (HSO, While et al. 2006): ``O(P^(K-1))``, fine for the fronts
    of K ≤ 6 objectives and a few hundred points that evaluation produces.
    """
    p = _points(points_pk)
    ref_k = np.asarray(reference_k, dtype=np.float64)
    _check_reference(p, ref_k, name)
    return _hso(non_dominated(p) - ref_k)


def _hso(p: np.ndarray) -> float:
    """HV of points ≥ 0 w.r.t. the origin."""
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(p[:, 0].max())
    order = np.argsort(-p[:, -1], kind="stable")
    p = p[order]
    total = 0.0
    for i in range(len(p)):
        lower = p[i + 1, -1] if i + 1 < len(p) else 0.0
        depth = p[i, -1] - lower
        if depth > 0:
            total += depth * _hso(non_dominated(p[: i + 1, :-1]))
    return total


def expected_utility(points_pk: Any, weights_wk: Any) -> float:
    """``mean_w max_p w · v_p``: the average best linear utility the points offer over the weights."""
    p = _points(points_pk)
    w = _points(weights_wk, "weights")
    if w.shape[1] != p.shape[1]:
        raise ParetoError(f"weights: expected {p.shape[1]} objectives, got {w.shape[1]}")
    return float((w @ p.T).max(axis=1).mean())


def sparsity(front_pk: Any) -> float:
    """Mean squared gap between neighbours of the front in each objective (0 for fewer than 2 points)."""
    f = _points(front_pk, "front")
    if len(f) < 2:
        return 0.0
    s = np.sort(f, axis=0)
    return float(((s[1:] - s[:-1]) ** 2).sum() / (len(f) - 1))


def convex_hull_points(front_pk: Any, tol: float = 1e-9) -> np.ndarray:
    """Points of the front that are the unique best for some weight w ≥ 0 (strict hull vertices).

    A point p qualifies when the LP ``max δ  s.t.  w·(p − q) ≥ δ for all other q, w ≥ 0, Σw = 1``
    has δ > tol; a point on a hull edge between two vertices (δ = 0) only ties and is excluded.
    """
    from scipy.optimize import linprog

    f = non_dominated(front_pk)
    out = []
    for i, p in enumerate(f):
        others = np.delete(f, i, axis=0)
        if len(others) == 0:
            out.append(p)
            continue
        k = f.shape[1]
        # variables [w_1..w_K, δ]; minimise −δ; −w·(p−q) + δ ≤ 0
        a_ub = np.hstack([-(p - others), np.ones((len(others), 1))])
        res = linprog(np.r_[np.zeros(k), -1.0], A_ub=a_ub, b_ub=np.zeros(len(others)),
                      A_eq=np.r_[np.ones(k), 0.0][None], b_eq=[1.0],
                      bounds=[(0, None)] * k + [(None, None)], method="highs")
        if res.status == 0 and -res.fun > tol:
            out.append(p)
    return np.array(out).reshape(-1, f.shape[1])


def igd(front_pk: Any, true_front_pk: Any) -> float:
    """Inverted generational distance: the mean Euclidean distance of each true point to the nearest
    point of ``front_pk`` (0 when the front contains the true front)."""
    f = _points(front_pk, "front")
    t = _points(true_front_pk, "true front")
    if f.shape[1] != t.shape[1]:
        raise ParetoError(f"front: expected {t.shape[1]} objectives, got {f.shape[1]}")
    return float(np.linalg.norm(t[:, None, :] - f[None, :, :], axis=-1).min(axis=1).mean())


def front_metrics(returns_wk: np.ndarray, weights_wk: np.ndarray, reference_k: np.ndarray,
                  true_front_pk: np.ndarray | None, atol: float = 1e-3) -> dict[str, Any]:
    """Everything ``rl eval --pareto`` reports about one set of evaluated vector returns."""
    front = non_dominated(returns_wk)
    above = front[(front >= reference_k).all(axis=1)]
    out: dict[str, Any] = {
        "front": front.tolist(),
        "hypervolume": hypervolume(above, reference_k) if len(above) else 0.0,
        "below_reference": int(len(front) - len(above)),
        "expected_utility": expected_utility(front, weights_wk),
        "sparsity": sparsity(front),
        "cardinality": int(len(front)),
        "reference_point": reference_k.tolist(),
    }
    if true_front_pk is not None:
        true = non_dominated(true_front_pk)
        hull = convex_hull_points(true)
        found = [bool(np.isclose(front, h, atol=atol).all(axis=1).any()) for h in hull]
        out |= {"igd": igd(front, true), "true_front": true.tolist(),
                "hull_points": hull.tolist(), "hull_recovered": found,
                "hull_recovered_fraction": float(np.mean(found)) if found else 1.0,
                "true_hypervolume": hypervolume(true, reference_k)}
    return out



# -- the suite's reference points and true fronts ----------------------------------------------------------------------

def reference_point(env_id: str, k: int, override: list[float] | None) -> np.ndarray:
    """The HV reference point: the manifest's override, else the suite's table entry for ``env_id``."""
    if override is not None:
        ref = np.asarray(override, np.float64)
        field = "objectives.reference_point"
        if ref.shape != (k,):
            raise ParetoError(f"{field}: expected {k} numbers (one per objective), got {ref.size}")
    elif env_id in REFERENCE_POINTS:
        ref, field = np.asarray(REFERENCE_POINTS[env_id], np.float64), "REFERENCE_POINTS"
    else:
        raise ParetoError(f"objectives.reference_point: no reference point for {env_id!r} in "
                          "experiments.pareto.REFERENCE_POINTS; set objectives.reference_point in the manifest")
    true = true_front(env_id)
    if true is not None:
        _check_reference(true, ref, field)
    return ref


def true_front(env_id: str) -> np.ndarray | None:
    """The env's exact undiscounted Pareto front when MO-Gymnasium provides one cheaply, else None."""
    if env_id not in TRUE_FRONT_ENVS:
        return None
    import gymnasium as gym
    import mo_gymnasium  # noqa: F401  (registers the env)

    env = gym.make(env_id)
    try:
        return np.array(env.unwrapped.pareto_front(gamma=1.0), np.float64)
    finally:
        env.close()
