"""Offline-to-online metrics from hand-made metrics rows: the return at the switch, the dip, the
steps to recover and the final return; their aggregation over seeds and the online-steps x axis
of ``rl plot``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.o2o import format_o2o_table, o2o_for_run, o2o_metrics, o2o_table, phases_of, summary_line
from experiments.plotting import PlotError, align_runs, phase_spans, plot_curves

NAN = math.nan
PHASES = [("offline", 100), ("online", 300)]


def _columns(rows: list[tuple[float, float, float, float]], with_phase: bool = True) -> dict[str, np.ndarray]:
    """rows of (step, time/phase, time/total_timesteps, eval/mean_reward)."""
    a = np.array(rows, float)
    cols = {"step": a[:, 0], "time/total_timesteps": a[:, 2], "eval/mean_reward": a[:, 3]}
    if with_phase:
        cols["time/phase"] = a[:, 1]
    return cols


DIP_AND_RECOVERY = [
    (50, 0, 0, -800.0),
    (100, 0, 0, -500.0),  # the last offline eval, at the switch
    (120, 1, 20, NAN),  # a log row without an evaluation
    (150, 1, 50, -900.0),
    (200, 1, 100, -1000.0),  # the dip
    (250, 1, 150, -600.0),
    (300, 1, 200, -450.0),  # back above -500: recovered 200 online steps after the switch
    (350, 1, 250, -700.0),
    (400, 1, 300, -300.0),
]


@pytest.mark.parametrize("with_phase", [True, False])
def test_dip_and_recovery(with_phase):
    """Without a time/phase column the phase of a row comes from its step; the row at the switch
    step belongs to the offline phase either way."""
    m = o2o_metrics(_columns(DIP_AND_RECOVERY, with_phase), PHASES)
    assert m["final_return"] == -300.0 and m["final_step"] == 400 and m["online_steps"] == 300
    [sw] = m["switches"]
    assert sw["step"] == 100 and sw["online_step"] == 0 and sw["phase"] == 1
    assert sw["return_at_switch"] == -500.0 and sw["switch_eval_step"] == 100
    assert sw["dip"] == -500.0 and sw["dip_return"] == -1000.0
    assert sw["dip_online_step"] == 100 and sw["dip_step"] == 200
    assert sw["steps_to_recover"] == 200
    assert sw["phase_final_return"] == -300.0 and sw["online_evals"] == 6
    line = summary_line(m)
    assert "dip -500.0 at online step 100" in line and "after 200 online steps" in line and "\n" not in line


def test_never_recovering_after_the_dip():
    """Coming back above the switch return before the lowest point does not count: recovery is
    measured from the dip on."""
    rows = [(80, 0, 0, -500.0),  # no eval exactly at the switch: the last offline one counts
            (90, 0, 0, NAN),
            (150, 1, 50, -600.0), (200, 1, 100, -400.0), (300, 1, 200, -900.0), (400, 1, 300, -800.0)]
    [sw] = o2o_metrics(_columns(rows), PHASES)["switches"]
    assert sw["return_at_switch"] == -500.0 and sw["switch_eval_step"] == 80
    assert sw["dip"] == -400.0 and sw["dip_online_step"] == 200
    assert sw["steps_to_recover"] is None
    assert "recovered never" in summary_line(o2o_metrics(_columns(rows), PHASES))


def test_no_dip_recovers_at_once_and_the_dip_is_positive():
    rows = [(100, 0, 0, -500.0), (200, 1, 100, -400.0), (400, 1, 300, -200.0)]
    [sw] = o2o_metrics(_columns(rows), PHASES)["switches"]
    assert sw["dip"] == 100.0 and sw["steps_to_recover"] == 0 and sw["dip_online_step"] == 100


def test_no_online_phase_has_no_switch():
    rows = [(100, 0, 0, -900.0), (200, 0, 0, -700.0), (250, 0, 0, NAN)]
    m = o2o_metrics(_columns(rows), [("offline", 250)])
    assert m["switches"] == [] and m["final_return"] == -700.0 and m["final_step"] == 200
    assert m["online_steps"] == 0 and m["phases"] == ["offline"]


def test_switch_without_evaluations_is_reported_empty():
    rows = [(100, 0, 0, NAN), (400, 1, 300, -300.0)]
    [sw] = o2o_metrics(_columns(rows), PHASES)["switches"]
    assert sw["return_at_switch"] is None and sw["dip"] is None and sw["steps_to_recover"] is None
    assert sw["phase_final_return"] == -300.0


def test_each_offline_to_online_switch_counts_online_steps_from_its_start():
    phases = [("offline", 100), ("online", 100), ("offline", 50), ("online", 100)]
    rows = [(100, 0, 0, -500.0), (200, 1, 100, -400.0), (250, 2, 100, -450.0),
            (300, 3, 150, -700.0), (350, 3, 200, -440.0)]
    m = o2o_metrics(_columns(rows), phases)
    assert [sw["step"] for sw in m["switches"]] == [100, 250]
    second = m["switches"][1]
    assert second["online_step"] == 100 and second["return_at_switch"] == -450.0
    assert second["dip"] == -250.0 and second["steps_to_recover"] == 100


def test_phases_of_resolved_manifests():
    assert phases_of({"dataset": None, "phases": None}) == []
    assert phases_of({"dataset": {"id": "x"}, "phases": None, "train": {"total_steps": 300}}) == [("offline", 300)]
    m = {"dataset": {"id": "x"}, "phases": [{"offline": {"updates": 100}, "online": None},
                                             {"offline": None, "online": {"steps": 300}}]}
    assert phases_of(m) == PHASES


def test_phase_spans_on_both_axes():
    assert phase_spans(PHASES, "step") == ([(0.0, 100.0)], [100.0])
    assert phase_spans(PHASES, "online") == ([], [0.0])  # offline updates take no online steps
    three = [("online", 50), ("offline", 100), ("online", 50)]
    assert phase_spans(three, "step") == ([(50.0, 150.0)], [50.0, 150.0])
    assert phase_spans(three, "online") == ([], [50.0, 50.0])


# -- run directories ----------------------------------------------------------------------------------

def _run(root: Path, name: str, seed: int, rows, phased: bool) -> Path:
    run = root / name / f"s{seed}"
    run.mkdir(parents=True)
    manifest = {"name": name, "seed": seed, "train": {"total_steps": 400},
                "dataset": {"id": "t/x-v0"} if phased else None,
                "phases": [{"offline": {"updates": 100}, "online": None},
                           {"offline": None, "online": {"steps": 300}}] if phased else None}
    (run / "manifest.json").write_text(json.dumps(manifest))
    lines = ["step,time/total_timesteps,time/phase,eval/mean_reward"]
    lines += [",".join("" if isinstance(v, float) and math.isnan(v) else str(v) for v in (s, o, p, r))
              for s, p, o, r in rows]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run


@pytest.fixture()
def groups(tmp_path) -> Path:
    root = tmp_path / "runs"
    _run(root, "o2o", 0, DIP_AND_RECOVERY, True)
    # seed 1: a smaller dip (-400 at online step 100), back to -500 only with its last eval (online step 300)
    _run(root, "o2o", 1, [(100, 0, 0, -500.0), (150, 1, 50, -700.0), (200, 1, 100, -900.0), (250, 1, 150, -600.0),
                           (300, 1, 200, -550.0), (350, 1, 250, -520.0), (400, 1, 300, -200.0)], True)
    scratch = [(s, 0, s, r) for s, r in ((100, -1200.0), (200, -900.0), (300, -400.0))]
    _run(root, "scratch", 0, scratch, False)
    _run(root, "scratch", 1, [(s, 0, o, r - 200.0) for s, _, o, r in scratch], False)
    return root


def test_o2o_for_run_reads_the_manifest_phases(groups):
    m = o2o_for_run(groups / "o2o" / "s0")
    assert m["switches"][0]["steps_to_recover"] == 200
    assert o2o_for_run(groups / "scratch" / "s0")["switches"] == []


def test_o2o_table_aggregates_seeds(groups):
    rows = {r["group"]: r for r in o2o_table([groups / "o2o", groups / "scratch"])}
    o2o, scratch = rows["o2o"], rows["scratch"]
    # seed 0: at switch -500, dip -500, recovers after 200 online steps, final -300; seed 1: -500, -400, 300, -200
    s1 = o2o_for_run(groups / "o2o" / "s1")["switches"][0]
    assert s1["dip"] == -400.0 and s1["steps_to_recover"] == 300
    assert o2o["seeds"] == 2 and o2o["switch_step"] == 100 and o2o["online_steps"] == (300, 300)
    assert o2o["return_at_switch"] == -500.0 and o2o["dip"] == pytest.approx(-450.0)
    assert o2o["steps_to_recover"] == pytest.approx(250.0) and o2o["recovered"] == (2, 2)
    assert o2o["final_return"] == pytest.approx(-250.0)
    assert scratch["switch"] is None and scratch["dip"] is None and scratch["recovered"] is None
    assert scratch["final_return"] == pytest.approx(-500.0) and scratch["online_steps"] == (300, 300)
    text = format_o2o_table(list(rows.values()))
    assert "o2o" in text and "scratch" in text and "(2/2 recovered)" in text and "-250.0" in text


def test_online_axis_starts_at_the_return_at_the_switch(groups, tmp_path):
    x, values_rx = align_runs([groups / "o2o" / "s0"], "eval/mean_reward", x="online")
    assert x[0] == 0.0 and values_rx[0, 0] == -500.0  # the offline rows collapse onto x = 0; the last stands
    assert x[-1] == 300.0
    out = plot_curves([groups / "o2o", groups / "scratch"], metric="eval/mean_reward", out=tmp_path / "c.png",
                      x="online", reps=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_online_axis_refuses_an_offline_only_run(tmp_path):
    run = _run(tmp_path / "runs", "off", 0, [(100, 0, 0, -900.0), (200, 0, 0, -700.0)], True)
    with pytest.raises(PlotError, match="never logged after an online env step"):
        align_runs([run], "eval/mean_reward", x="online")
    with pytest.raises(PlotError, match="x='env'"):
        plot_curves([run], x="env", out=tmp_path / "c.png")


def test_o2o_table_statistic_follows_rl_plot(groups):
    """``--statistic mean`` reaches the table: the aggregate of one column is the mean, not the IQM."""
    from experiments.o2o import _aggregate

    assert _aggregate([0.0, 0.0, 0.0, 100.0, None], "iqm") == (0.0, 4)
    assert _aggregate([0.0, 0.0, 0.0, 100.0, None], "mean") == (25.0, 4)
    rows = o2o_table([groups / "o2o"], statistic="mean")
    assert rows[0]["final_return"] == pytest.approx(-250.0)
    assert "mean over seeds" in format_o2o_table(rows, "mean")
