"""O2O metrics end to end: a tiny phased run writes o2o.json (and an events line) that agrees with
its metrics.csv, and ``rl plot O2O SCRATCH --x online`` draws both on online env steps and prints
the table of return at the switch, dip, steps to recover and final return."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from tests.integration.conftest import MANIFESTS, rl
from tests.integration.test_offline_cli import _collector_dataset, _phased_manifest


@pytest.fixture(scope="module")
def o2o_runs(tmp_path_factory) -> Path:
    """runs/pendulum-iql-to-online/o2o (150 offline updates, then 250 online steps; an eval every 40
    steps, which misses the switch, so the phase's own closing eval gives the return there) and
    runs/pendulum-sac/scratch (250 online steps from scratch)."""
    tmp = tmp_path_factory.mktemp("o2o")
    runs = tmp / "runs"
    manifest = _phased_manifest(tmp, _collector_dataset(tmp / "minari"))
    data = json.loads(manifest.read_text())
    data["evaluation"] = {"every_steps": 40, "episodes": 2}
    manifest.write_text(json.dumps(data))
    out = rl("train", str(manifest), "--quiet", "--runs-dir", str(runs), "--run-id", "o2o")
    assert out.returncode == 0, out.stderr
    out = rl("train", str(MANIFESTS / "pendulum_sac.yaml"), "--quiet", "--runs-dir", str(runs), "--run-id", "scratch",
             "--set", "train.total_steps=250", "--set", "train.log_every_steps=50",
             "--set", "evaluation.every_steps=50", "--set", "evaluation.episodes=2",
             "--set", "checkpoint.every_steps=250", "--set", "agent.net_arch=[32,32]",
             "--set", "agent.batch_size=32", "--set", "agent.buffer_size=1000", "--set", "agent.learning_starts=50")
    assert out.returncode == 0, out.stderr
    return runs


def _evals(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r["eval/mean_reward"]]


def test_phased_run_writes_o2o_json_matching_its_metrics(o2o_runs):
    run = o2o_runs / "pendulum-iql-to-online" / "o2o"
    m = json.loads((run / "o2o.json").read_text())
    evals = _evals(run)
    by_step = {int(r["step"]): float(r["eval/mean_reward"]) for r in evals}
    assert sorted(by_step) == [40, 80, 120, 150, 160, 200, 240, 280, 320, 360, 400]  # 150: the phase's end
    assert m["phases"] == ["offline", "online"] and m["online_steps"] == 250 and m["final_step"] == 400
    assert m["final_return"] == by_step[400]
    [sw] = m["switches"]
    assert sw["step"] == 150 and sw["online_step"] == 0
    assert sw["switch_eval_step"] == 150 and sw["return_at_switch"] == by_step[150]
    online = {s: v for s, v in by_step.items() if s > 150}
    low_step = min(online, key=lambda s: (online[s], s))
    assert sw["dip_step"] == low_step and sw["dip_online_step"] == low_step - 150
    assert sw["dip"] == pytest.approx(online[low_step] - by_step[150])
    back = [s for s in sorted(online) if s >= low_step and online[s] >= by_step[150]]
    if online[low_step] >= by_step[150]:
        assert sw["steps_to_recover"] == 0
    else:
        assert sw["steps_to_recover"] == (back[0] - 150 if back else None)
    assert sw["online_evals"] == 7 and sw["phase_final_return"] == by_step[400]
    assert all(math.isfinite(v) for v in (sw["return_at_switch"], sw["dip"], m["final_return"]))
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    o2o = [e for e in events if e["event"] == "o2o"]
    assert len(o2o) == 1 and "switch at step 150" in o2o[0]["summary"]
    assert events[-1]["event"] == "finished"  # the o2o line comes before the run is declared finished


def test_plot_on_online_steps_draws_and_prints_the_table(o2o_runs, tmp_path):
    o2o, scratch = o2o_runs / "pendulum-iql-to-online", o2o_runs / "pendulum-sac"
    before = sorted(p.relative_to(o2o_runs) for p in o2o_runs.rglob("*"))
    out = tmp_path / "curves.png"
    res = rl("plot", str(o2o), str(scratch), "--x", "online", "--metric", "eval/mean_reward", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.relative_to(o2o_runs) for p in o2o_runs.rglob("*")) == before  # nothing written into runs
    m = json.loads((o2o / "o2o" / "o2o.json").read_text())
    lines = res.stdout.splitlines()
    row = next(line for line in lines if "pendulum-iql-to-online" in line)
    assert f"{m['switches'][0]['return_at_switch']:.1f}" in row and f"{m['final_return']:.1f}" in row
    assert f"{m['switches'][0]['dip']:.1f}" in row and "250" in row
    scratch_row = next(line for line in lines if "pendulum-sac" in line)
    assert f"{float(_evals(scratch / 'scratch')[-1]['eval/mean_reward']):.1f}" in scratch_row
    assert "final return" in res.stdout and "steps to recover" in res.stdout


def test_plot_online_axis_refuses_curriculum_and_unknown_values(o2o_runs, tmp_path):
    res = rl("plot", str(o2o_runs / "pendulum-sac"), "--x", "online", "--curriculum", "--out", str(tmp_path / "t.png"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--x online" in res.stderr
    assert not (tmp_path / "t.png").exists()
