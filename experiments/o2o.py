"""Offline-to-online (O2O) metrics of a phased run, from its ``metrics.csv`` and stored manifest.

For every switch from an offline phase to the online phase right after it:

- ``return_at_switch``: the last evaluation at or before the switch; the phased loops end every
  phase with an evaluation whatever the cadence, so it is the eval at the switch step;
- ``dip``: the lowest evaluation return of the online phase minus ``return_at_switch`` (negative:
  the policy got worse after the switch; positive: it never fell below its offline return),
  with ``dip_return``, ``dip_online_step`` (its ``time/total_timesteps``) and ``dip_step``;
- ``steps_to_recover``: online env steps from the switch to the first evaluation, at or after the
  dip, whose return is at least ``return_at_switch`` again; 0 when the online phase never fell
  below it, ``None`` when it never got back within the phase;
- ``phase_final_return``: the last evaluation of the online phase.

And for the run: ``final_return`` (its last evaluation) and ``online_steps`` (its online env steps),
the numbers to put beside an online-from-scratch run of the same online budget (``rl plot RUNS
--x online`` prints both). A finished phased run writes them to ``o2o.json`` in its run directory
(atomically) and logs a one-line summary to ``events.jsonl``.

Axis letters: ``r`` rows of ``metrics.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["O2O_FILE", "format_o2o_table", "o2o_for_run", "o2o_metrics", "o2o_table", "phases_of", "record_o2o",
           "summary_line"]

O2O_FILE = "o2o.json"
EVAL = "eval/mean_reward"
ONLINE = "time/total_timesteps"
PHASE = "time/phase"


def phases_of(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """``[(kind, length), ...]`` of a resolved manifest (``manifest.json``): its ``phases``; one
    offline phase of ``train.total_steps`` updates for a dataset run without phases; ``[]`` for a
    run without a dataset (online from scratch)."""
    phases = manifest.get("phases")
    if not phases:
        if manifest.get("dataset") is None:
            return []
        return [("offline", int(manifest["train"]["total_steps"]))]
    out = []
    for p in phases:
        if p.get("offline") is not None:
            out.append(("offline", int(p["offline"]["updates"])))
        else:
            out.append(("online", int(p["online"]["steps"])))
    return out


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def o2o_metrics(columns: dict[str, np.ndarray], phases: list[tuple[str, int]]) -> dict[str, Any]:
    """The O2O metrics of one run from its metric columns (``step``, ``eval/mean_reward``,
    ``time/total_timesteps``, optionally ``time/phase``) and its ``phases`` (see :func:`phases_of`)."""
    step_r = np.asarray(columns["step"], float)
    n = len(step_r)
    ret_r = np.asarray(columns.get(EVAL, np.full(n, np.nan)), float)
    online_r = np.asarray(columns.get(ONLINE, np.full(n, np.nan)), float)
    ends = np.cumsum([length for _, length in phases]) if phases else np.zeros(0)
    derived = np.searchsorted(ends, step_r, side="left") if phases else np.zeros(n)  # first phase end >= step
    phase_r = np.asarray(columns.get(PHASE, derived), float)
    phase_r = np.where(np.isfinite(phase_r), phase_r, derived)
    is_eval = np.isfinite(ret_r) & np.isfinite(step_r)
    evals = np.flatnonzero(is_eval)
    out: dict[str, Any] = {
        "final_return": _num(ret_r[evals[-1]]) if len(evals) else None,
        "final_step": int(step_r[evals[-1]]) if len(evals) else None,
        "online_steps": int(np.nanmax(online_r)) if np.isfinite(online_r).any() else 0,
        "phases": [kind for kind, _ in phases],
        "switches": [],
    }
    online_before = 0
    for i, (kind, length) in enumerate(phases):
        if i > 0 and kind == "online" and phases[i - 1][0] == "offline":
            out["switches"].append(_switch(i, int(ends[i - 1]), online_before, step_r, ret_r, online_r, phase_r,
                                           is_eval))
        if kind == "online":
            online_before += length
    return out


def _switch(index: int, switch_step: int, online0: int, step_r, ret_r, online_r, phase_r, is_eval) -> dict[str, Any]:
    sw: dict[str, Any] = {
        "phase": index, "step": switch_step, "online_step": online0,
        "return_at_switch": None, "switch_eval_step": None,
        "dip": None, "dip_return": None, "dip_step": None, "dip_online_step": None,
        "steps_to_recover": None, "phase_final_return": None, "online_evals": 0,
    }
    before = np.flatnonzero(is_eval & (step_r <= switch_step))
    during = np.flatnonzero(is_eval & (phase_r == index))
    during = during[np.argsort(step_r[during], kind="stable")]
    sw["online_evals"] = int(len(during))
    if len(during):
        sw["phase_final_return"] = _num(ret_r[during[-1]])
    if not len(before):
        return sw
    last = before[np.argmax(step_r[before])]
    r0 = float(ret_r[last])
    sw["return_at_switch"], sw["switch_eval_step"] = r0, int(step_r[last])
    if not len(during):
        return sw
    k = int(np.argmin(ret_r[during]))  # the first of equal minima
    low = during[k]
    sw["dip_return"] = float(ret_r[low])
    sw["dip"] = float(ret_r[low]) - r0
    sw["dip_step"] = int(step_r[low])
    sw["dip_online_step"] = int(online_r[low]) if math.isfinite(online_r[low]) else None
    if ret_r[low] >= r0:
        sw["steps_to_recover"] = 0
        return sw
    back = [j for j in during[k:] if ret_r[j] >= r0]
    if back and math.isfinite(online_r[back[0]]):
        sw["steps_to_recover"] = int(online_r[back[0]]) - online0
    return sw


def o2o_for_run(run_dir: Path | str) -> dict[str, Any]:
    """:func:`o2o_metrics` of a run directory (its ``manifest.json`` and ``metrics.csv``)."""
    from experiments.plotting import read_manifest, read_metrics

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    return {"run": str(run_dir), **o2o_metrics(read_metrics(run_dir), phases_of(manifest))}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def summary_line(m: dict[str, Any]) -> str:
    """One line: each switch's return, dip and recovery, then the final return."""
    parts = []
    for sw in m["switches"]:
        rec = sw["steps_to_recover"]
        parts.append(f"switch at step {sw['step']}: return {_fmt(sw['return_at_switch'])}, dip {_fmt(sw['dip'])}"
                     + (f" at online step {sw['dip_online_step']}" if sw["dip_online_step"] is not None else "")
                     + f", recovered {'never' if rec is None else f'after {rec} online steps'}")
    parts.append(f"final return {_fmt(m['final_return'])} after {m['online_steps']} online steps")
    return "; ".join(parts)


def record_o2o(session) -> dict[str, Any] | None:
    """At the end of a phased run: write ``o2o.json`` atomically and log a summary to ``events.jsonl``
    (when the run has one). A metrics file it cannot read is recorded as an event, not raised: the
    run itself has finished."""
    from experiments.plotting import PlotError
    from experiments.run_dir import append_event, write_json_atomic

    run_dir = Path(session.run_dir)
    session.logger.flush()
    events = (run_dir / "events.jsonl").is_file()
    try:
        metrics = o2o_for_run(run_dir)
    except PlotError as err:
        if events:
            append_event(run_dir, {"event": "o2o", "error": str(err)})
        return None
    metrics["run"] = run_dir.name
    write_json_atomic(run_dir / O2O_FILE, metrics)
    if events:
        append_event(run_dir, {"event": "o2o", "summary": summary_line(metrics)})
    return metrics


def _aggregate(values: list[float | None], statistic: str) -> tuple[float | None, int]:
    """(``statistic`` — "iqm" or "mean" — of the values that are not None, how many there were)."""
    from experiments import stats

    got = [v for v in values if v is not None]
    fn = {"iqm": stats.iqm, "mean": stats.mean}[statistic]
    return (float(fn(np.array(got))) if got else None), len(got)


def o2o_table(paths: Iterable[Path | str], allow_mixed: bool = False, statistic: str = "iqm") -> list[dict[str, Any]]:
    """The offline-to-online metrics of each group (:mod:`experiments.o2o`), aggregated over seeds.

    One row per group and switch (a group without an offline→online switch, e.g. an online run from
    scratch, has one row with ``switch = None``): ``seeds``, ``online_steps`` (the smallest and
    largest over seeds), and the ``statistic`` over seeds ("iqm", the default, or "mean", as
    ``rl plot --statistic``) of ``return_at_switch``, ``dip``, ``steps_to_recover`` (over the seeds
    that recovered; ``recovered`` counts them) and ``final_return``. With fewer than four seeds the
    IQM is the mean.
    """
    from experiments.plotting import discover_runs

    def agg(values: list[float | None]) -> tuple[float | None, int]:
        return _aggregate(values, statistic)

    rows = []
    for name, runs in discover_runs(paths, allow_mixed=allow_mixed).items():
        per_run = [o2o_for_run(r) for r in runs]
        final, _ = agg([m["final_return"] for m in per_run])
        online = [m["online_steps"] for m in per_run]
        base = {"group": name, "seeds": len(runs), "online_steps": (min(online), max(online)), "final_return": final}
        n_switches = max(len(m["switches"]) for m in per_run)
        if n_switches == 0:
            rows.append({**base, "switch": None, "switch_step": None, "return_at_switch": None, "dip": None,
                         "steps_to_recover": None, "recovered": None})
        for k in range(n_switches):
            sws = [m["switches"][k] for m in per_run if len(m["switches"]) > k]
            rec, n_rec = agg([s["steps_to_recover"] for s in sws])
            rows.append({**base, "switch": k, "switch_step": sws[0]["step"],
                         "return_at_switch": agg([s["return_at_switch"] for s in sws])[0],
                         "dip": agg([s["dip"] for s in sws])[0],
                         "steps_to_recover": rec, "recovered": (n_rec, len(sws))})
    return rows


def format_o2o_table(rows: list[dict[str, Any]], statistic: str = "IQM") -> str:
    """:func:`o2o_table` as a rich table (text)."""
    from rich.console import Console
    from rich.table import Table

    def num(v: float | None, fmt: str = ".1f") -> str:
        return "—" if v is None else format(v, fmt)

    table = Table(title=f"offline-to-online: {statistic} over seeds (eval/mean_reward)")
    for col in ("group", "seeds", "online steps", "switch at step", "return at switch", "dip",
                "steps to recover", "final return"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in rows:
        lo, hi = r["online_steps"]
        recover = "—"
        if r["recovered"] is not None:
            n_rec, n = r["recovered"]
            recover = f"{num(r['steps_to_recover'], '.0f')} ({n_rec}/{n} recovered)" if n_rec else f"never (0/{n})"
        table.add_row(r["group"], str(r["seeds"]), f"{lo}" if lo == hi else f"{lo}-{hi}",
                      "—" if r["switch_step"] is None else str(r["switch_step"]), num(r["return_at_switch"]),
                      num(r["dip"]), recover, num(r["final_return"]))
    console = Console(record=True, width=140)
    with console.capture() as cap:
        console.print(table)
    return cap.get()
