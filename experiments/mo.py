"""Multi-objective runs: the manifest's ``objectives`` section, per-objective episode statistics,
per-episode weight sampling, and Pareto evaluation (``rl eval --pareto``, ``rl plot --pareto``).

Axis letters: K reward objectives, W weights of a sweep, P points of a front, E episodes.

The Pareto maths (non-dominated sets, hypervolume, expected utility, sparsity, IGD, convex-hull
vertices, the fixed reference points and true fronts) lives in `experiments.pareto`; its names are
re-exported here for existing callers.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field, field_validator

from agents.common.config import StrictModel
from experiments.extensions import register_extension
from experiments.pareto import (
    REFERENCE_POINTS,
    TRUE_FRONT_ENVS,
    ParetoError,
    convex_hull_points,
    expected_utility,
    front_metrics,
    hypervolume,
    igd,
    non_dominated,
    reference_point,
    sparsity,
    true_front,
)
from rl.core.rollout import EpisodeRecord
from rl.core.seeding import SeedPlan, generator_state, restore_generator

__all__ = ["REFERENCE_POINTS", "TRUE_FRONT_ENVS", "ObjectivesSpec", "ParetoError", "SubsampleSpec", "SweepSpec",
           "convex_hull_points", "evaluate_pareto", "expected_utility", "format_pareto", "front_metrics",
           "hypervolume", "igd", "non_dominated", "plot_pareto", "reference_point", "sparsity", "sweep_weights",
           "true_front"]


class SubsampleSpec(StrictModel):
    """Objective sub-sampling during training (AdsorbRL, Lacombe et al. 2023): each episode uses a
    random subset of the objectives (`envs.mo.ObjectiveSubsampling`, training envs only)."""

    min_active: int = Field(1, ge=1)
    """Fewest active objectives in an episode."""
    max_active: int | None = Field(None, ge=1)
    """Most active objectives in an episode (None = all K)."""


class SweepSpec(StrictModel):
    """The weights a Pareto evaluation plays, one policy run per weight."""

    kind: Literal["grid", "sampled"] = "grid"
    """``grid``: every weight on the simplex with coordinates in steps of 1/(points−1) (good for K ≤ 3);
    ``sampled``: ``points`` weights uniform on the simplex, drawn from the evaluation seed."""
    points: int = Field(11, ge=2, le=10_000)
    """Grid values per objective, or the number of sampled weights."""
    episodes_per_weight: int = Field(1, ge=1, le=100)
    """Episodes per weight; their vector returns are averaged into one point."""


class ObjectivesSpec(StrictModel):
    """How a run treats a vector reward: names, training-time sub-sampling, Pareto evaluation."""

    names: list[str] | None = None
    """One name per objective for the ``rollout/ep_rew_mean/<name>`` columns (default: 0, 1, ...)."""
    subsample: SubsampleSpec | None = None
    """Objective sub-sampling in training episodes; None trains on all objectives."""
    sweep: SweepSpec = SweepSpec()
    """The weight sweep of ``rl eval --pareto``."""
    reference_point: list[float] | None = None
    """Hypervolume reference point; None uses the suite's table (`experiments.pareto.REFERENCE_POINTS`)."""

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for name in v:
            if not name or not all(c.isalnum() or c in "_-." for c in name):
                raise ValueError(f"objective name {name!r} must be non-empty letters, digits, '_', '-', '.'")
        if len(set(v)) != len(v):
            raise ValueError(f"objective names must be unique, got {v}")
        return v


def sweep_weights(k: int, spec: SweepSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """The sweep's weights ``[W, K]`` on the simplex (grid in lexicographic order, or sampled)."""
    if spec.kind == "sampled":
        if rng is None:
            raise ParetoError("sweep.kind=sampled needs a generator")
        return rng.dirichlet(np.ones(k), size=spec.points)
    n = spec.points - 1
    if math.comb(n + k - 1, k - 1) > 100_000:
        raise ParetoError(f"objectives.sweep.points: a grid of {spec.points} values in {k} objectives has "
                          f"{math.comb(n + k - 1, k - 1)} weights; use fewer points or kind: sampled")
    rows = [c for c in itertools.product(range(n + 1), repeat=k - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in rows], dtype=np.float64) / n


# -- the run extension ----------------------------------------------------------------------------------------------

class _EpisodeVector(gym.Wrapper):
    """Sums the env's own vector reward (``info["reward_vector"]`` when a wrapper changed it) per episode."""

    def __init__(self, env: gym.Env, k: int):
        super().__init__(env)
        self._sum_k = np.zeros(k, np.float64)
        self.last_return_k = np.zeros(k, np.float64)
        self.first_return_k: np.ndarray | None = None

    def reset(self, **kwargs):
        self._sum_k = np.zeros_like(self._sum_k)
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._sum_k = self._sum_k + np.asarray(info.get("reward_vector", reward), np.float64).reshape(-1)
        if terminated or truncated:
            self.last_return_k = self._sum_k
            if self.first_return_k is None:
                self.first_return_k = self._sum_k
            self._sum_k = np.zeros_like(self._sum_k)
        return obs, reward, terminated, truncated, info


def objective_count(env: gym.Env) -> int:
    """K of the env under any scalarising wrappers (the base env's ``reward_space``), 1 if scalar."""
    space = getattr(env.unwrapped, "reward_space", None)
    shape = getattr(space, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) == 1 else 1


class ObjectivesExtension:
    """Per-objective episode returns as ``rollout/ep_rew_mean/<name>`` columns; training weights drawn
    per episode from the run's ``"weights"`` generator; objective sub-sampling; normaliser state.

    The per-objective returns are the env's own vector rewards, even under scalarising or
    normalising wrappers. State (generator, recent episodes, `NormalizeRewardVector` statistics of
    each training sub-env) goes into checkpoints, so ``--resume`` stays exact.
    """

    name = "objectives"

    def __init__(self, spec: ObjectivesSpec | None, plan: SeedPlan):
        self.spec = spec
        self.rng = plan.generator("weights")
        self.k: int | None = None
        self.window: deque[list[float]] = deque(maxlen=100)
        self._recorders: dict[int, _EpisodeVector] = {}
        self._normalizers: dict[int, Any] = {}

    @property
    def columns(self) -> list[str]:
        return [f"rollout/ep_rew_mean/{n}" for n in self._names()]

    def _names(self) -> list[str]:
        if self.k is None:
            return []
        if self.spec is not None and self.spec.names is not None:
            return list(self.spec.names)
        return [str(i) for i in range(self.k)]

    def wrap_env(self, env: gym.Env, index: int) -> gym.Env:
        from envs.mo import NormalizeRewardVector, ObjectiveSubsampling, WeightConditionedObservation, find_wrapper

        k = objective_count(env)
        if k < 2:
            env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            raise ParetoError(f"objectives: {env_id} has scalar rewards; remove the objectives section or use a "
                              "multi-objective env")
        names = self.spec.names if self.spec is not None else None
        if names is not None and len(names) != k:
            raise ParetoError(f"objectives.names: {len(names)} names for {k} objectives")
        self.k = k
        conditioned = find_wrapper(env, WeightConditionedObservation)
        sub = self.spec.subsample if self.spec is not None else None
        if sub is not None:
            if sub.min_active > k or (sub.max_active or k) > k:
                raise ParetoError(f"objectives.subsample: active counts must be <= K = {k}")
            env = ObjectiveSubsampling(env, sub.min_active, sub.max_active, mask_rewards=conditioned is None)
        if conditioned is not None:
            conditioned.weight_source = lambda _mask, wc=conditioned: wc.sample(self.rng)
        normalizer = find_wrapper(env, NormalizeRewardVector)
        if normalizer is not None:
            self._normalizers[index] = normalizer
        self._recorders[index] = _EpisodeVector(env, k)
        return self._recorders[index]

    def on_episode(self, ep: EpisodeRecord) -> None:
        rec = self._recorders.get(ep.env_index)
        ret_k = rec.last_return_k if rec is not None else ep.ret_k
        self.window.append([float(x) for x in ret_k])

    def metrics(self) -> dict[str, float]:
        if not self.window:
            return {}
        mean_k = np.mean(np.array(self.window), axis=0)
        return {f"rollout/ep_rew_mean/{n}": float(v) for n, v in zip(self._names(), mean_k, strict=True)}

    def state(self) -> dict[str, Any]:
        return {"rng": generator_state(self.rng), "window": list(self.window),
                "normalizers": {str(i): w.state() for i, w in self._normalizers.items()}}

    def load(self, state: dict[str, Any]) -> None:
        restore_generator(self.rng, state["rng"])
        self.window.clear()
        self.window.extend(list(map(float, row)) for row in state["window"])
        for i, w in self._normalizers.items():
            w.load(state["normalizers"][str(i)])


def _extension_factory(manifest, plan: SeedPlan) -> ObjectivesExtension | None:
    spec = getattr(manifest, "objectives", None)
    if spec is None and not _is_mo_env(manifest.env.id):
        return None
    return ObjectivesExtension(spec, plan)


def _is_mo_env(env_id: str) -> bool:
    from envs.make import MO_GYMNASIUM_IDS

    return env_id.startswith("mo-") or env_id in MO_GYMNASIUM_IDS


register_extension("objectives", _extension_factory)


# -- Pareto evaluation of a run -------------------------------------------------------------------------------------

def evaluate_pareto(run: Path | str, checkpoint: int | None = None, points: int | None = None,
                    kind: str | None = None, episodes_per_weight: int | None = None,
                    seed: int | None = None) -> dict[str, Any]:
    """Play the run's policy for every weight of the sweep and summarise the front (read-only).

    A weight-conditioned policy (a `WeightConditionedObservation` in ``env.wrappers``) is played with
    each sweep weight fixed in its observation; any other policy gives one point (played once per
    weight, so its EU is still over the sweep). Arguments left None come from the run's
    ``objectives.sweep`` (defaults when the run has no objectives section).
    """
    from envs.make import make_vector_env
    from envs.mo import WeightConditionedObservation, find_wrapper
    from experiments.evaluate_run import EvalError, load_policy_agent
    from experiments.evaluation import run_episodes

    manifest, agent, label = load_policy_agent(Path(run), checkpoint)
    spec = getattr(manifest, "objectives", None) or ObjectivesSpec()
    sweep = spec.sweep.model_copy(update={k: v for k, v in
                                          {"points": points, "kind": kind, "episodes_per_weight": episodes_per_weight}
                                          .items() if v is not None})
    sweep = SweepSpec.model_validate(sweep.model_dump())
    eval_seed = manifest.seed if seed is None else seed
    if eval_seed < 0:
        raise EvalError(f"--seed must be non-negative, got {eval_seed}")
    plan = SeedPlan(eval_seed)
    env_id = manifest.env.id
    chain = [(w.name, w.kwargs) for w in manifest.env.wrappers]
    k_env = make_vector_env(env_id, 1, manifest.env.kwargs, chain)
    k = objective_count(k_env.envs[0])
    conditioned = find_wrapper(k_env.envs[0], WeightConditionedObservation) is not None
    k_env.close()
    if k < 2:
        raise EvalError(f"{run}: env {env_id} has scalar rewards; --pareto needs a multi-objective run")
    weights_wk = sweep_weights(k, sweep, plan.generator("pareto-weights"))
    reps = sweep.episodes_per_weight
    recorders: dict[int, _EpisodeVector] = {}

    def hook(env, index):
        if conditioned:
            find_wrapper(env, WeightConditionedObservation).set_weights(weights_wk[index // reps])
        recorders[index] = _EpisodeVector(env, k)
        return recorders[index]

    n_env = len(weights_wk) * reps
    envs = make_vector_env(env_id, n_env, manifest.env.kwargs, chain, sub_env_hook=hook)
    try:
        res = run_episodes(agent, envs, plan.integers("pareto", n_env), deterministic=True)
    finally:
        envs.close()
    del res  # returns come from the recorders: the env's own vector rewards, not wrapped ones
    returns_ek = np.stack([recorders[i].first_return_k for i in range(n_env)])
    returns_wk = returns_ek.reshape(len(weights_wk), reps, k).mean(axis=1)
    ref = reference_point(env_id, k, spec.reference_point)
    out = {"run": str(run), "checkpoint": label, "env": env_id, "seed": eval_seed, "weight_conditioned": conditioned,
           "sweep": sweep.model_dump(), "weights": weights_wk.tolist(), "returns": returns_wk.tolist()}
    return out | front_metrics(returns_wk, weights_wk, ref, true_front(env_id))


def format_pareto(result: dict[str, Any]) -> str:
    """A short text summary of :func:`evaluate_pareto`'s result."""
    lines = [f"{result['run']} ({result['checkpoint']}), {result['env']}, {len(result['weights'])} weights",
             f"hypervolume {result['hypervolume']:.4g} (reference {result['reference_point']}), "
             f"expected utility {result['expected_utility']:.4g}, sparsity {result['sparsity']:.4g}, "
             f"cardinality {result['cardinality']}"]
    if "igd" in result:
        found = sum(result["hull_recovered"])
        lines.append(f"true front: IGD {result['igd']:.4g}, convex-hull points recovered {found}/"
                     f"{len(result['hull_recovered'])}, true HV {result['true_hypervolume']:.4g}")
    lines.append("front: " + ", ".join("(" + ", ".join(f"{x:.3g}" for x in p) + ")" for p in result["front"]))
    return "\n".join(lines)


def plot_pareto(paths: list[Path | str], out: Path | str = Path("pareto.png"), checkpoint: int | None = None,
                rng_seed: int = 0, reps: int = 2000) -> tuple[Path, dict[str, Any]]:
    """Evaluate every run's front and draw them: one panel for K = 2, a pairwise grid for K ≥ 3.

    Runs are grouped by manifest name (as ``rl plot``); each group gets a colour, and its HV and EU
    across seeds get the IQM with a 95% stratified-bootstrap CI (in the legend and the returned
    summary ``{group: {"hypervolume": (iqm, low, high), "expected_utility": ..., "runs": n}}``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from experiments import stats
    from experiments.plotting import _check_out, discover_runs

    out = Path(out)
    groups = discover_runs(paths)
    fmt = _check_out(out, [r for runs in groups.values() for r in runs])
    results = {name: [evaluate_pareto(r, checkpoint) for r in runs] for name, runs in groups.items()}
    ks = {len(res[0]["reference_point"]) for res in results.values()}
    if len(ks) != 1:
        raise ParetoError(f"runs: cannot draw fronts of different objective counts {sorted(ks)} together")
    k = ks.pop()
    pairs = [(0, 1)] if k == 2 else list(itertools.combinations(range(k), 2))
    cols = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(len(pairs))]
    summary: dict[str, Any] = {}
    for g, (name, res) in enumerate(results.items()):
        color = f"C{g % 10}"
        hv_r1 = np.array([[r["hypervolume"]] for r in res])
        eu_r1 = np.array([[r["expected_utility"]] for r in res])
        rng = np.random.default_rng([rng_seed, g])
        ci = {"hypervolume": stats.stratified_bootstrap_ci(hv_r1, stats.iqm, rng, reps),
              "expected_utility": stats.stratified_bootstrap_ci(eu_r1, stats.iqm, rng, reps), "runs": len(res)}
        summary[name] = ci
        hv = ci["hypervolume"]
        label = f"{name} ({len(res)} seeds) HV IQM {hv[0]:.3g} [{hv[1]:.3g}, {hv[2]:.3g}]"
        for ax, (i, j) in zip(axes, pairs, strict=True):
            for n, r in enumerate(res):
                front = np.array(r["front"])
                ax.scatter(front[:, i], front[:, j], s=18, color=color, alpha=0.7,
                           label=label if n == 0 and (i, j) == pairs[0] else None)
            if "true_front" in res[0] and g == 0:
                true = np.array(res[0]["true_front"])
                ax.scatter(true[:, i], true[:, j], s=60, facecolors="none", edgecolors="k",
                           label="true front" if (i, j) == pairs[0] else None)
    for ax, (i, j) in zip(axes, pairs, strict=True):
        ax.set_xlabel(f"objective {i}")
        ax.set_ylabel(f"objective {j}")
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="best", frameon=False, fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
    return out, summary
