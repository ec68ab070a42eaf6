"""Learning curves across seeds from run directories: read ``metrics.csv``, align, aggregate, draw.

A run directory is ``runs/<manifest name>/<run id>/`` holding ``manifest.json`` and ``metrics.csv``
(header, then one row per log step; ``step`` is environment steps; an empty cell means "not logged
on this row"). Runs are grouped by the manifest's ``name``; one group is one line on the plot, with
a 95% stratified-bootstrap band across its seeds (see :mod:`experiments.stats`).

Axis letters: ``r`` runs (seeds), ``x`` points on the common env-step grid.

The x axis is the run's step counter (``x="step"``; for a phased offline-to-online run that is
offline updates plus online env steps) or its online env steps (``x="online"``, the column
``time/total_timesteps``), on which an offline-to-online run and an online-from-scratch run line
up. Runs with phases get their offline part shaded and a dashed line at each switch, and
:func:`experiments.o2o.o2o_table` gives each group's O2O metrics.

Plotting only reads run directories; it refuses to write into one. matplotlib is imported lazily
and drawn through the Agg canvas, without pyplot or any global backend switch.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import stats

__all__ = [
    "RUN_IDENTITY_FIELDS",
    "X_AXES",
    "PlotError",
    "align_runs",
    "discover_runs",
    "plot_curves",
    "read_manifest",
    "read_metrics",
]

RUN_IDENTITY_FIELDS = frozenset({"seed", "run_id"})
"""Top-level manifest fields that may differ between runs of one group (they name a run, not a setup)."""

STATISTICS: dict[str, stats.Statistic] = {"iqm": stats.iqm, "mean": stats.mean}
FORMATS = {".png": "png", ".svg": "svg"}
X_AXES = {"step": "step", "online": "time/total_timesteps"}
"""``x`` choices of :func:`plot_curves`: the column each one plots against."""
X_LABELS = {"step": "environment steps", "online": "online environment steps"}
MAX_GRID_POINTS = 500
"""Upper bound on the common step grid; denser logs are interpolated onto an even grid."""


class PlotError(ValueError):
    """A problem with the runs or arguments given to plotting; the message says what to do."""


def _parse_row(row: list[str], n_cols: int) -> list[float] | None:
    if len(row) != n_cols:
        return None
    try:
        return [float(cell) if cell.strip() else math.nan for cell in row]
    except ValueError:
        return None


def read_metrics(run_dir: Path | str, filename: str = "metrics.csv") -> dict[str, np.ndarray]:
    """Columns of ``<run_dir>/metrics.csv`` (or another CSV of the run whose first column is
    ``step``, e.g. ``curriculum.csv``) as float arrays (NaN where a cell is empty).

    A last line cut short by a killed run (no newline, wrong number of cells or an unparsable
    number) is dropped; a malformed line anywhere else is an error naming file and line.
    """
    path = Path(run_dir) / filename
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlotError(f"{path}: no {filename}; expected a run directory runs/<name>/<run id>/") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PlotError(f"{path}: cannot read metrics: {err}") from None
    lines = text.splitlines(keepends=True)
    if not lines:
        raise PlotError(f"{path}: empty file, expected a header row starting with 'step'")
    header = next(csv.reader([lines[0]]))
    if not header or header[0] != "step" or len(set(header)) != len(header):
        raise PlotError(f"{path}: header {header[:4]}... must start with 'step' and have unique names")
    rows: list[list[float]] = []
    for number, line in enumerate(lines[1:], start=2):
        last = number == len(lines)
        parsed = _parse_row(next(csv.reader([line])), len(header)) if line.strip() else None
        if parsed is None or (last and not line.endswith("\n")):
            if last:
                break  # a row cut by a kill: the run stopped mid-write
            raise PlotError(f"{path}:{number}: malformed row (expected {len(header)} numeric cells)")
        rows.append(parsed)
    table_nc = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {name: table_nc[:, c].copy() for c, name in enumerate(header)}


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise PlotError(f"{path}: cannot read manifest: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise PlotError(f"{path}: expected a JSON object with a string 'name' (the resolved manifest)")
    return data


def _run_dirs(path: Path) -> list[Path]:
    if (path / "manifest.json").is_file():
        return [path]
    if not path.is_dir():
        raise PlotError(f"{path}: not found; pass a run directory or a directory of runs (runs/<name>)")
    found = sorted(p for p in path.iterdir() if (p / "manifest.json").is_file())
    if not found:
        raise PlotError(f"{path}: no run directories here (expected {path}/<run id>/manifest.json)")
    return found


def _first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted field where two manifests differ, in the first manifest's key order."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if not prefix and key in RUN_IDENTITY_FIELDS:
                continue
            if key not in a or key not in b:
                return f"{prefix}{key}", a.get(key, "<missing>"), b.get(key, "<missing>")
            found = _first_difference(a[key], b[key], f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else (prefix.rstrip("."), a, b)


def _check_group(name: str, runs: Sequence[tuple[Path, dict[str, Any]]]) -> None:
    first_dir, first = runs[0]
    seeds: dict[Any, Path] = {}
    for run_dir, manifest in runs:
        diff = _first_difference(first, manifest)
        if diff:
            field, va, vb = diff
            raise PlotError(
                f"group {name!r}: {first_dir}/manifest.json and {run_dir}/manifest.json differ in "
                f"{field} ({va!r} vs {vb!r}); give the variants different names, plot the runs separately "
                "or pass --allow-mixed (allow_mixed=True)"
            )
        seed = manifest.get("seed")
        if seed in seeds:
            raise PlotError(
                f"group {name!r}: {seeds[seed]} and {run_dir} both have seed {seed!r}; a seed would be "
                "counted twice in the band. Plot one of them, or pass --allow-mixed (allow_mixed=True)"
            )
        seeds[seed] = run_dir


def discover_runs(paths: Iterable[Path | str], allow_mixed: bool = False) -> dict[str, list[Path]]:
    """Run directories grouped by manifest ``name`` (groups and runs sorted).

    Each path is a run directory (it has ``manifest.json``) or a directory of runs. Runs of one group
    must have identical manifests except for :data:`RUN_IDENTITY_FIELDS` and distinct seeds, unless
    ``allow_mixed``.
    """
    by_name: dict[str, dict[Path, dict[str, Any]]] = {}
    for path in paths:
        for run_dir in _run_dirs(Path(path)):
            manifest = read_manifest(run_dir)
            by_name.setdefault(manifest["name"], {})[run_dir.resolve()] = manifest
    if not by_name:
        raise PlotError("no run directories given")
    if not allow_mixed:
        for name, runs in by_name.items():
            _check_group(name, sorted(runs.items()))
    return {name: sorted(runs) for name, runs in sorted(by_name.items())}


def _run_points(run_dir: Path, metric: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    columns = read_metrics(run_dir)
    for name in (metric, X_AXES[x]):
        if name not in columns:
            close = difflib.get_close_matches(name, list(columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; columns: {', '.join(list(columns)[1:])}"
            raise PlotError(f"{Path(run_dir) / 'metrics.csv'}: no column {name!r}{hint}")
    step, value = columns[X_AXES[x]], columns[metric]
    keep = np.isfinite(step) & np.isfinite(value)
    if not keep.any():
        raise PlotError(f"{Path(run_dir) / 'metrics.csv'}: {metric!r} was never logged")
    if x == "online" and not (step[keep] > 0).any():
        raise PlotError(f"{Path(run_dir) / 'metrics.csv'}: {metric!r} was never logged after an online env step "
                        "(an offline-only run?); plot it with --x step")
    step, value = step[keep], value[keep]
    order = np.argsort(step, kind="stable")
    step, value = step[order], value[order]
    # np.interp needs strictly increasing steps; a repeated step keeps its last value.
    last = np.append(step[1:] != step[:-1], True)
    return step[last], value[last]


def align_runs(runs: Sequence[Path | str], metric: str,
               max_points: int = MAX_GRID_POINTS, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """Put every run's ``metric`` on one env-step grid: returns ``(x_steps, values_rx)``.

    ``x`` is a key of :data:`X_AXES`: the ``step`` column, or ``online`` env steps
    (``time/total_timesteps``), where the offline rows of a phased run share one x value and the
    last of them (the one at the switch) stands for them all.

    The grid covers only the steps every run reaches (``[max of first steps, min of last steps]``),
    so a shorter seed shortens the curve rather than leaving a hole. It is the union of the logged
    steps in that range, or ``max_points`` evenly spaced steps if that union is larger; each run is
    linearly interpolated onto it from its logged (non-NaN) points.
    """
    if not runs:
        raise PlotError("align_runs: no runs given")
    if x not in X_AXES:
        raise PlotError(f"x={x!r}: choose one of {', '.join(X_AXES)}")
    points = [_run_points(Path(r), metric, x) for r in runs]
    lo = max(step[0] for step, _ in points)
    hi = min(step[-1] for step, _ in points)
    if lo > hi:
        spans = ", ".join(f"{Path(r).name}: {s[0]:g}-{s[-1]:g}" for r, (s, _) in zip(runs, points, strict=True))
        raise PlotError(f"{metric!r}: the runs' env-step ranges do not overlap ({spans})")
    x_steps = np.unique(np.concatenate([s[(s >= lo) & (s <= hi)] for s, _ in points]))
    if len(x_steps) > max_points:
        x_steps = np.linspace(lo, hi, max_points)
    values_rx = np.stack([np.interp(x_steps, s, v) for s, v in points])
    return x_steps, values_rx


def _check_out(out: Path, run_dirs: Iterable[Path]) -> str:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise PlotError(f"out={out}: unsupported suffix {out.suffix!r}; use .png or .svg")
    target = out.resolve()
    for run_dir in run_dirs:
        if target.is_relative_to(run_dir):
            raise PlotError(f"out={out}: inside run directory {run_dir}; plots never write into a run, "
                            "choose a path outside it (e.g. next to the group directory)")
    if target.is_dir():
        raise PlotError(f"out={out}: is a directory; give a file name ending in .png or .svg")
    return fmt


def _group_rng(rng_seed: int, name: str) -> np.random.Generator:
    # One stream per group, keyed by its name: a group's band does not change when others are added.
    return np.random.default_rng([rng_seed, zlib.crc32(name.encode("utf-8"))])


def _draw(ax: Any, name: str, runs: list[Path], metric: str, statistic: str, rng_seed: int,
          reps: int, x: str = "step") -> None:
    x_steps, values_rx = align_runs(runs, metric, x=x)
    n = len(runs)
    label = f"{name} ({n} seed{'s' if n != 1 else ''})"
    if n == 1:
        (line,) = ax.plot(x_steps, values_rx[0], label=label, linewidth=1.8)
    else:
        point_x, low_x, high_x = stats.curve_band(values_rx, STATISTICS[statistic], _group_rng(rng_seed, name), reps)
        (line,) = ax.plot(x_steps, point_x, label=label, linewidth=1.8)
        ax.fill_between(x_steps, low_x, high_x, color=line.get_color(), alpha=0.25, linewidth=0)
    _draw_phases(ax, read_manifest(runs[0]), x, line.get_color())


def phase_spans(phases: list[tuple[str, int]], x: str = "step") -> tuple[list[tuple[float, float]], list[float]]:
    """(offline spans ``[(start, end), ...]``, switch positions) of a run's phases on axis ``x``.

    On the ``step`` axis an offline phase spans its updates; on the ``online`` axis it takes no
    width (no env steps), so it has no span, and its switch sits at the online steps before it."""
    spans, switches = [], []
    pos = 0
    for i, (kind, length) in enumerate(phases):
        width = length if (x == "step" or kind == "online") else 0
        if kind == "offline" and width:
            spans.append((float(pos), float(pos + width)))
        if i > 0 and kind != phases[i - 1][0]:
            switches.append(float(pos))
        pos += width
    return spans, switches


def _draw_phases(ax: Any, manifest: dict[str, Any], x: str, color: str) -> None:
    from experiments.o2o import phases_of

    spans, switches = phase_spans(phases_of(manifest), x)
    for lo, hi in spans:
        ax.axvspan(lo, hi, color=color, alpha=0.08, linewidth=0)
    for pos in switches:
        ax.axvline(pos, color=color, linestyle="--", linewidth=1.0, alpha=0.8)


def plot_curves(
    paths: Iterable[Path | str],
    metric: str = "rollout/ep_rew_mean",
    out: Path | str = Path("curves.png"),
    statistic: str = "iqm",
    rng_seed: int = 0,
    allow_mixed: bool = False,
    reps: int = 2000,
    x: str = "step",
) -> Path:
    """Draw ``metric`` against env steps, one line per group, and write ``out`` (.png or .svg).

    Each line is the ``statistic`` ("iqm" or "mean") across the group's seeds at each step, with a
    shaded 95% percentile-bootstrap band over seeds (``reps`` replicates, seeded by ``rng_seed``);
    a group with one seed is drawn as a bare line. ``x`` is ``step`` (the step column) or
    ``online`` (online env steps, ``time/total_timesteps``). A group with phases gets its offline
    part shaded (on the ``step`` axis) and a dashed line at each phase switch, in its colour.
    Returns the path written.
    """
    out = Path(out)
    if statistic not in STATISTICS:
        raise PlotError(f"statistic={statistic!r}: choose one of {', '.join(STATISTICS)}")
    if x not in X_AXES:
        raise PlotError(f"x={x!r}: choose one of {', '.join(X_AXES)}")
    groups = discover_runs(paths, allow_mixed=allow_mixed)
    fmt = _check_out(out, [r for runs in groups.values() for r in runs])

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=(7.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    phased = False
    for name, runs in groups.items():
        _draw(ax, name, runs, metric, statistic, rng_seed, reps, x)
        phased |= bool(read_manifest(runs[0]).get("dataset"))
    ax.set_xlabel("steps (offline updates + online env steps; offline shaded)" if phased and x == "step"
                  else X_LABELS[x])
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: {statistic.upper() if statistic == 'iqm' else statistic} across seeds, "
                 "95% bootstrap CI")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", frameon=False)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    # Fixed ids and no timestamp, so the same runs and seed give the same file.
    with matplotlib.rc_context({"svg.hashsalt": "rlsuite"}):
        fig.savefig(tmp, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
    os.replace(tmp, out)
    return out

