"""``rl report``: compare groups of runs with sound statistics, in a markdown file with PNGs beside it.

Per metric, a table with each group's IQM, mean and median over its runs (seeds are the unit), with
95% percentile-bootstrap intervals from :mod:`experiments.stats`; the probability of improvement
between every pair of groups; learning curves (:func:`experiments.plotting.plot_curves`) and one
performance-profile figure.

A run's score is its last logged value at the group's common final env step (the smallest last step
of its runs), so a run cut short does not compare its early value against others' late ones.

Axis letters: ``r`` runs (seeds), ``k`` thresholds of a profile, ``b`` bootstrap replicates.

It only reads run directories (a truncated last metrics row is dropped) and refuses to write into
one. Groups whose runs' manifests differ in anything but the seed are refused unless ``allow_mixed``.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import stats
from experiments.plotting import PlotError, discover_runs, plot_curves, read_metrics

__all__ = ["DEFAULT_METRICS", "GroupScores", "ReportError", "group_scores", "write_report"]

DEFAULT_METRICS = ("eval/mean_reward", "rollout/ep_rew_mean")
"""Always reported; columns outside the standard prefixes below (extension metrics: offline-to-online,
multi-objective, curriculum) are added when the runs have them."""
_STANDARD_PREFIXES = ("rollout/", "eval/", "time/", "train/")
CONFIDENCE = 0.95
REPS = 2000


class ReportError(ValueError):
    """A problem with the groups or arguments of a report; the message says what to do."""


@dataclass(frozen=True)
class GroupScores:
    """One group's final scores on one metric."""

    name: str
    scores_r: np.ndarray
    """Each run's last value at or before ``step``."""
    step: float
    """The common final env step: the smallest last step among the group's runs."""
    unfinished: int
    """Runs without ``final/`` (still running, or stopped)."""


def _final_points(run: Path, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    columns = read_metrics(run)
    if metric not in columns:
        return None
    keep = np.isfinite(columns["step"]) & np.isfinite(columns[metric])
    return (columns["step"][keep], columns[metric][keep]) if keep.any() else None


def group_scores(name: str, runs: Sequence[Path], metric: str) -> GroupScores | None:
    """Final scores of ``runs`` on ``metric`` aligned on env steps; None when a run never logged it."""
    points = [_final_points(run, metric) for run in runs]
    if any(p is None for p in points):
        return None
    step = min(float(s[-1]) for s, _ in points)
    scores_r = np.array([v[s <= step][-1] for s, v in points], dtype=float)
    unfinished = sum(not (run / "final").is_dir() for run in runs)
    return GroupScores(name, scores_r, step, unfinished)


def _rng(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(k.encode("utf-8")) for k in keys)])


def _poi_ci(x_r: np.ndarray, y_r: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """P(X > Y) with a percentile bootstrap interval, resampling each group's runs independently."""
    xb = x_r[rng.integers(0, len(x_r), size=(REPS, len(x_r)))]
    yb = y_r[rng.integers(0, len(y_r), size=(REPS, len(y_r)))]
    wins_b = np.mean((xb[:, :, None] > yb[:, None, :]) + 0.5 * (xb[:, :, None] == yb[:, None, :]), axis=(1, 2))
    low, high = np.quantile(wins_b, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return stats.probability_of_improvement(x_r, y_r), float(low), float(high)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "—"


def _metric_section(metric: str, groups: dict[str, list[Path]], seed: int) -> tuple[list[str], list[GroupScores]]:
    lines = [f"## `{metric}`", "", "| group | runs | env step | IQM | 95% CI | mean | 95% CI | median | min | max |",
             "|---|---:|---:|---:|---|---:|---|---:|---:|---:|"]
    scored = []
    for name, runs in groups.items():
        g = group_scores(name, runs, metric)
        if g is None:
            lines.append(f"| {name} | {len(runs)} | not logged by every run | | | | | | | |")
            continue
        scored.append(g)
        scores = g.scores_r[:, None]
        iqm, iqm_lo, iqm_hi = stats.stratified_bootstrap_ci(scores, stats.iqm, _rng(seed, metric, name, "iqm"), REPS)
        mu, mu_lo, mu_hi = stats.stratified_bootstrap_ci(scores, stats.mean, _rng(seed, metric, name, "mean"), REPS)
        runs_cell = f"{len(runs)}" + (f" ({g.unfinished} unfinished)" if g.unfinished else "")
        lines.append(f"| {name} | {runs_cell} | {g.step:.0f} | {_fmt(iqm)} | [{_fmt(iqm_lo)}, {_fmt(iqm_hi)}] | "
                     f"{_fmt(mu)} | [{_fmt(mu_lo)}, {_fmt(mu_hi)}] | {_fmt(float(np.median(g.scores_r)))} | "
                     f"{_fmt(float(g.scores_r.min()))} | {_fmt(float(g.scores_r.max()))} |")
    if len(scored) >= 2:
        lines += ["", "Probability of improvement: P(X > Y) is the chance that a run of X scores higher than a run "
                  "of Y (ties count half); 0.5 is no difference. 95% CI from resampling each group's runs.", "",
                  "| P(X > Y) | Y | value | 95% CI |", "|---|---|---:|---|"]
        for i, x in enumerate(scored):
            for y in scored[i + 1:]:
                p, lo, hi = _poi_ci(x.scores_r, y.scores_r, _rng(seed, metric, x.name, y.name, "poi"))
                lines.append(f"| {x.name} | {y.name} | {p:.3f} | [{lo:.3f}, {hi:.3f}] |")
    return lines, scored


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): data}


def _setup_view(manifest: dict) -> dict[str, Any]:
    """A manifest flattened for comparison. An ``sb3.*`` agent's constructor ``kwargs`` are lifted to
    ``agent.<name>`` (SB3 and the suite's agents share field names), so equal hyperparameters line up."""
    flat = _flatten(manifest)
    if str(manifest.get("agent", {}).get("algo", "")).startswith("sb3."):
        flat = {k.replace("agent.kwargs.", "agent.", 1): v for k, v in flat.items()}
    return flat


def _differences(groups: dict[str, list[Path]]) -> list[str]:
    """Manifest fields whose values differ between groups (seed and name aside), as a markdown table,
    and one line per group for the fields only some groups set (the others use their defaults)."""
    flat = {name: _setup_view(json.loads((runs[0] / "manifest.json").read_text(encoding="utf-8")))
            for name, runs in groups.items()}
    keys = sorted({k for f in flat.values() for k in f} - {"seed", "name"})
    in_all = [k for k in keys if all(k in f for f in flat.values())]
    differ = [k for k in in_all if len({repr(f[k]) for f in flat.values()}) > 1]
    partial = [k for k in keys if k not in in_all]
    if not differ and not partial:
        return []
    lines = ["## Setup differences", ""]
    if differ:
        lines += ["| field | " + " | ".join(flat) + " |", "|---|" + "---|" * len(flat)]
        lines += [f"| `{k}` | " + " | ".join(f"`{f[k]}`" for f in flat.values()) + " |" for k in differ[:40]]
        if len(differ) > 40:
            lines.append(f"| … {len(differ) - 40} more | " + " | " * (len(flat) - 1) + " |")
        lines.append("")
    if partial:
        lines.append("Set in some groups only (the others use their library's default):")
        lines.append("")
        for name, f in flat.items():
            own = [k for k in partial if k in f]
            if own:
                lines.append(f"- `{name}`: " + ", ".join(f"`{k.removeprefix('agent.')}={f[k]}`" for k in own))
    return lines


def _extension_metrics(groups: dict[str, list[Path]]) -> list[str]:
    found: dict[str, None] = {}
    for runs in groups.values():
        for run in runs:
            for col in read_metrics(run):
                if col != "step" and not col.startswith(_STANDARD_PREFIXES):
                    found[col] = None
    return list(found)


def _slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("_")


def _check_out(out: Path, groups: dict[str, list[Path]]) -> None:
    if out.suffix.lower() != ".md":
        raise ReportError(f"--out {out}: the report is markdown; give a file name ending in .md")
    target = out.resolve()
    for runs in groups.values():
        for run in runs:
            if target.is_relative_to(run):
                raise ReportError(f"--out {out}: inside run directory {run}; reports never write into a run, "
                                  "choose a path outside it")
    if target.is_dir():
        raise ReportError(f"--out {out}: is a directory; give a file name ending in .md")


def write_report(paths: Sequence[Path | str], out: Path | str = Path("report.md"), metrics: Sequence[str] | None = None,
                 allow_mixed: bool = False, seed: int = 0) -> Path:
    """Write ``out`` (markdown) and its PNGs beside it; returns ``out``."""
    out = Path(out)
    try:
        groups = discover_runs(paths, allow_mixed=allow_mixed)
    except PlotError as err:
        raise ReportError(str(err).replace("pass allow_mixed=True", "pass --allow-mixed")) from None
    _check_out(out, groups)
    metrics = list(metrics or [*DEFAULT_METRICS, *_extension_metrics(groups)])
    out.parent.mkdir(parents=True, exist_ok=True)
    n_runs = sum(len(r) for r in groups.values())
    lines = ["# rlsuite report", "",
             f"{len(groups)} group(s), {n_runs} runs: "
             + ", ".join(f"`{n}` ({len(r)})" for n, r in groups.items()) + ".",
             "",
             "Seeds are the unit. A run's score is its last logged value at its group's common final env step. "
             f"IQM is the mean of the middle 50% of runs; intervals are {CONFIDENCE:.0%} percentile bootstrap "
             f"intervals over runs ({REPS} replicates, generator seed {seed}).", ""]
    lines += _differences(groups) + [""]
    profiles: dict[str, list[GroupScores]] = {}
    for metric in metrics:
        section, scored = _metric_section(metric, groups, seed)
        lines += section + [""]
        if scored:
            profiles[metric] = scored
        if len(scored) == len(groups):
            png = out.with_name(f"{out.stem}-{_slug(metric)}.png")
            plot_curves([r for runs in groups.values() for r in runs], metric=metric, out=png, rng_seed=seed,
                        allow_mixed=allow_mixed)
            lines += [f"![{metric}: IQM across seeds with 95% CI]({png.name})", ""]
    if profiles:
        png = out.with_name(f"{out.stem}-profiles.png")
        _plot_profiles(profiles, png, seed)
        lines += ["## Performance profiles", "",
                  "Fraction of runs whose final score exceeds each threshold (shaded: 95% bootstrap band over "
                  "runs). A curve above another everywhere dominates it.", "",
                  f"![performance profiles]({png.name})", ""]
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, out)
    return out


def _plot_profiles(profiles: dict[str, list[GroupScores]], out: Path, seed: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(profiles), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (metric, scored) in zip(fig.subplots(1, len(profiles), squeeze=False)[0], profiles.items(), strict=True):
        lo = min(float(g.scores_r.min()) for g in scored)
        hi = max(float(g.scores_r.max()) for g in scored)
        pad = 0.05 * (hi - lo) or 1.0
        taus_k = np.linspace(lo - pad, hi + pad, 200)
        for g in scored:
            frac_k = stats.performance_profile(g.scores_r, taus_k)
            (line,) = ax.plot(taus_k, frac_k, label=f"{g.name} ({len(g.scores_r)} runs)", linewidth=1.8)
            if len(g.scores_r) > 1:
                idx_br = _rng(seed, metric, g.name, "profile").integers(0, len(g.scores_r), (REPS, len(g.scores_r)))
                frac_bk = np.mean(g.scores_r[idx_br][:, :, None] > taus_k, axis=1)
                low_k, high_k = np.quantile(frac_bk, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], axis=0)
                ax.fill_between(taus_k, low_k, high_k, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel(f"final {metric} (τ)")
        ax.set_ylabel("fraction of runs with score > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", frameon=False, fontsize="small")
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, format="png", dpi=150)
    os.replace(tmp, out)
