"""``rl plot --curriculum``: where the teacher sent the agent, against env steps.

Reads each run's ``curriculum.csv`` (one row per finished training episode, written by
`experiments.curriculum.CurriculumLog`) and draws one heat map per group and task parameter: env
steps on x, the parameter on y (the level index for discrete levels), and as colour the share of the
episodes of that step bin whose task fell in each parameter bin, so every column sums to 1 and the
drift of the task distribution is visible however fast episodes end. A white line marks the mean of
a box parameter per step bin. Runs of one group (its seeds) are pooled.

Axis letters: ``e`` episodes (rows of the record), ``x`` step bins, ``y`` parameter bins.

Like `experiments.plotting.plot_curves`, it only reads run directories, refuses to write into one,
and drops a last row cut short by a killed run. matplotlib is imported lazily and drawn through the
Agg canvas.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from experiments.plotting import PlotError, _check_out, discover_runs, read_manifest, read_metrics

if TYPE_CHECKING:
    from envs.curriculum import TaskSpace

__all__ = ["TaskRecord", "density", "plot_curriculum", "read_task_record"]

MAX_STEP_BINS = 60
"""Columns of a heat map: one per logged step when there are at most this many, else even bins."""
PARAM_BINS = 30
"""Rows of a heat map for a box parameter (even bins over the curriculum's sampling range)."""


@dataclass
class TaskRecord:
    """The sampled tasks of one group: ``step_e`` and, per parameter, ``values_e`` and its bin edges."""

    name: str
    runs: int
    step_e: np.ndarray
    values: dict[str, np.ndarray]
    edges: dict[str, np.ndarray]
    levels: set[str]


def _space_of(run_dir: Path) -> TaskSpace:
    """The curriculum's task space from the run's resolved manifest."""
    from envs.curriculum import CurriculumError, TaskSpace

    where = run_dir / "manifest.json"
    manifest = read_manifest(run_dir)
    section = manifest.get("curriculum")
    if not isinstance(section, dict):
        raise PlotError(f"{where}: no curriculum section; --curriculum draws the tasks a curriculum teacher "
                        "sampled, plot this run without it")
    space = section.get("space")
    if not isinstance(space, dict):
        raise PlotError(f"{where}: curriculum.space is missing or not an object")
    try:
        box = {k: tuple(v) for k, v in (space.get("box") or {}).items()}
        return TaskSpace(box, space.get("levels", 0) or 0, where=f"{where}: curriculum.space")
    except (CurriculumError, TypeError, ValueError) as err:
        raise PlotError(str(err)) from None


def read_task_record(run_dir: Path | str) -> tuple[dict[str, np.ndarray], TaskSpace]:
    """``(columns, task space)`` of one run: ``curriculum.csv`` as float arrays and the space it samples.

    A last row cut short by a killed run is dropped; a missing file or column is a `PlotError`.
    """
    from experiments.curriculum import CURRICULUM_CSV, record_columns

    run_dir = Path(run_dir)
    space = _space_of(run_dir)
    path = run_dir / CURRICULUM_CSV
    if not path.is_file():
        raise PlotError(f"{path}: not found; the run has no task record (it is written while a curriculum run "
                        "trains; runs from before rlsuite kept one have none)")
    columns = read_metrics(run_dir, CURRICULUM_CSV)
    missing = [c for c in record_columns(space) if c not in columns]
    if missing:
        raise PlotError(f"{path}: no column {missing[0]!r}, which curriculum.space in manifest.json asks for; "
                        "the record belongs to another task space")
    return columns, space


def _group_record(name: str, runs: list[Path], param_bins: int) -> TaskRecord:
    from envs.curriculum import LEVEL_KEY
    from experiments.curriculum import histogram_edges

    steps, values, edges, levels = [], {}, {}, set()
    first_space = None
    for run in runs:
        columns, space = read_task_record(run)
        if first_space is None:
            first_space = space
        elif (space.box, space.levels) != (first_space.box, first_space.levels):
            raise PlotError(f"group {name!r}: {run}/manifest.json samples another task space than {runs[0]}; "
                            "plot them separately")
        steps.append(columns["step"])
        for n in space.names:
            values.setdefault(n, []).append(columns[f"task/{n}"])
        if space.levels:
            values.setdefault(LEVEL_KEY, []).append(columns[f"task/{LEVEL_KEY}"])
    for n in first_space.names:
        low, high = first_space.box[n]
        edges[n] = np.linspace(low, high, param_bins + 1)
    if first_space.levels:
        edges[LEVEL_KEY] = histogram_edges(first_space, LEVEL_KEY)
        levels.add(LEVEL_KEY)
    step_e = np.concatenate(steps)
    if not len(step_e):
        raise PlotError(f"group {name!r}: no finished training episodes recorded yet in "
                        f"{', '.join(str(r / 'curriculum.csv') for r in runs)}")
    return TaskRecord(name, len(runs), step_e, {k: np.concatenate(v) for k, v in values.items()}, edges, levels)


def _step_edges(step_e: np.ndarray, max_bins: int) -> np.ndarray:
    """Right-closed step bins ``(edges[i], edges[i+1]]``: one per logged step if few, else even ones."""
    logged = np.unique(np.concatenate([[0.0], step_e[np.isfinite(step_e)]]))
    if len(logged) < 2:
        return np.array([0.0, 1.0])
    if len(logged) <= max_bins + 1:
        return logged
    return np.linspace(0.0, float(logged[-1]), max_bins + 1)


def density(step_e: np.ndarray, value_e: np.ndarray, step_edges: np.ndarray,
            value_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(share_xy, mean_x)``: per step bin, the share of its episodes in each value bin (NaN for a bin
    without episodes) and the mean value. Steps fall in ``(edges[i], edges[i+1]]``; values in
    ``[edges[j], edges[j+1])``, the last bin closed, values outside the edges in the first or last bin."""
    keep = np.isfinite(step_e) & np.isfinite(value_e)
    step_e, value_e = step_e[keep], value_e[keep]
    nx, ny = len(step_edges) - 1, len(value_edges) - 1
    ix = np.clip(np.searchsorted(step_edges, step_e, side="left") - 1, 0, nx - 1)
    iy = np.clip(np.searchsorted(value_edges, value_e, side="right") - 1, 0, ny - 1)
    counts_xy = np.zeros((nx, ny))
    np.add.at(counts_xy, (ix, iy), 1.0)
    total_x = counts_xy.sum(axis=1)
    sums_x = np.bincount(ix, weights=value_e, minlength=nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts_xy / total_x[:, None], sums_x / total_x


def plot_curriculum(paths: Iterable[Path | str], out: Path | str = Path("tasks.png"), allow_mixed: bool = False,
                    max_step_bins: int = MAX_STEP_BINS, param_bins: int = PARAM_BINS) -> Path:
    """Draw task density against env steps for each group in ``paths`` (runs or directories of runs)
    and write ``out`` (.png or .svg): one row of panels per group, one panel per task parameter.

    Returns the path written.
    """
    out = Path(out)
    groups = discover_runs(paths, allow_mixed=allow_mixed)
    fmt = _check_out(out, [r for runs in groups.values() for r in runs])
    records = [_group_record(name, runs, param_bins) for name, runs in groups.items()]
    # One colour scale per parameter name, shared by the groups, so the rows compare.
    panels = {}
    vmax = {p: 0.0 for rec in records for p in rec.values}
    for g, rec in enumerate(records):
        step_edges = _step_edges(rec.step_e, max_step_bins)
        for p, value_e in rec.values.items():
            share_xy, mean_x = density(rec.step_e, value_e, step_edges, rec.edges[p])
            panels[g, p] = (step_edges, share_xy, mean_x)
            if np.isfinite(share_xy).any():
                vmax[p] = max(vmax[p], float(np.nanmax(share_xy)))

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter, MaxNLocator

    rows, cols = len(records), max(len(rec.values) for rec in records)
    fig = Figure(figsize=(4.6 * cols + 0.4, 3.0 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#f0f0f0")
    for g, rec in enumerate(records):
        for c in range(len(rec.values), cols):
            axes[g][c].set_axis_off()
        for c, p in enumerate(rec.values):
            ax = axes[g][c]
            step_edges, share_xy, mean_x = panels[g, p]
            y_edges = rec.edges[p]
            if p in rec.levels and y_edges[1] - y_edges[0] == 1:
                y_edges = y_edges - 0.5  # one bin per level: centred on its index
            mesh = ax.pcolormesh(step_edges, y_edges, np.ma.masked_invalid(share_xy.T), cmap=cmap,
                                 vmin=0.0, vmax=vmax[p] or 1.0, shading="flat")
            if p not in rec.levels:
                centres = 0.5 * (step_edges[1:] + step_edges[:-1])
                ax.plot(centres, mean_x, color="white", linewidth=1.0, alpha=0.9)
            else:
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            fig.colorbar(mesh, ax=ax, label="share of episodes", pad=0.01)
            ax.set_xlim(0.0, step_edges[-1])
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.set_ylabel("level index" if p in rec.levels else p)
            episodes = int(np.isfinite(rec.values[p]).sum())
            seeds = f"{rec.runs} seed{'s' if rec.runs != 1 else ''}"
            ax.set_title(f"{rec.name}: {p} ({seeds}, {episodes} episodes)", fontsize=9)
            ax.set_xlabel("environment steps")
    fig.suptitle("sampled training tasks against env steps (each column sums to 1)", fontsize=10)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with matplotlib.rc_context({"svg.hashsalt": "rlsuite"}):
        fig.savefig(tmp, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
    os.replace(tmp, out)
    return out
