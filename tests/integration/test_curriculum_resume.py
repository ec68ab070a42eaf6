"""A curriculum run killed with SIGKILL and resumed equals the uninterrupted run: metrics, the
per-episode task record, final weights and the teacher's state (ALP-GMM with frequent refits, so
mixtures are fitted before and after the kill); ``rl plot --curriculum`` draws the record."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows
from tests.integration.conftest import MANIFESTS, TINY, rl

GOAL = str(MANIFESTS / "goal_alpgmm_ppo.yaml")
BUDGET = [*TINY, "--set", "train.total_steps=8192", "--set", "agent.n_steps=32",
          "--set", "curriculum.teacher.fit_every=8", "--set", "curriculum.teacher.fit_window=16",
          "--set", "curriculum.teacher.k_max=3"]


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in read_csv_rows(run / "metrics.csv")]


def _teacher_state(run: Path) -> dict:
    newest = sorted((run / "checkpoints").iterdir())[-1]
    return json.loads((newest / "state.json").read_text())["extensions"]["curriculum"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("curref") / "runs"
    res = rl("train", GOAL, "--runs-dir", str(runs), "--run-id", "ref", "--quiet", *BUDGET)
    assert res.returncode == 0, res.stderr
    return runs / "goal-alpgmm-ppo" / "ref"


def test_curriculum_columns_are_logged(reference):
    rows = read_csv_rows(reference / "metrics.csv")
    assert {"curriculum/mean_distance", "curriculum/success_rate", "curriculum/components"} <= rows[0].keys()
    assert float(rows[-1]["curriculum/components"]) >= 2  # the mixture was fitted
    state = _teacher_state(reference)
    assert len(state["teacher"]["ret"]) > 16


@pytest.mark.parametrize("after_rows", [6, 19])
def test_sigkill_then_resume_equals_uninterrupted(reference, runs, after_rows):
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", GOAL, "--runs-dir", str(runs),
                             "--run-id", "killed", "--quiet", *BUDGET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = runs / "goal-alpgmm-ppo" / "killed"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (run / "metrics.csv").exists() and (run / "metrics.csv").read_bytes().count(b"\n") > after_rows:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = rl("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "resuming from step-" in res.stderr
    assert _metrics(run) == _metrics(reference)
    assert (run / "curriculum.csv").read_bytes() == (reference / "curriculum.csv").read_bytes()
    a = load_file(str(run / "final" / "policy.safetensors"))
    b = load_file(str(reference / "final" / "policy.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert _teacher_state(run) == _teacher_state(reference)


def test_task_record_matches_the_metrics(reference):
    rows = read_csv_rows(reference / "curriculum.csv")
    metrics = read_csv_rows(reference / "metrics.csv")
    assert list(rows[0]) == ["step", "env", "task/distance", "task/angle", "return", "success", "length"]
    per_step: dict[str, list[float]] = {}
    for r in rows:
        per_step.setdefault(r["step"], []).append(float(r["task/distance"]))
    logged = {m["step"]: m for m in metrics if m["curriculum/episodes"] not in ("", "0.0")}
    assert per_step.keys() == logged.keys()
    for step, distances in per_step.items():
        assert len(distances) == float(logged[step]["curriculum/episodes"])
        assert np.mean(distances) == pytest.approx(float(logged[step]["curriculum/mean_distance"]))


def test_rl_plot_curriculum_draws_the_run(reference, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*")}
    out = tmp_path / "tasks.png"
    res = rl("plot", str(reference.parent), "--curriculum", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*")} == before
    inside = rl("plot", str(reference), "--curriculum", "--out", str(reference / "tasks.png"))
    assert inside.returncode == 2 and "inside run directory" in inside.stderr and "Traceback" not in inside.stderr


def test_other_seed_gives_other_tasks(reference, runs):
    res = rl("train", GOAL, "--runs-dir", str(runs), "--run-id", "other", "--seed", "1", "--quiet", *BUDGET)
    assert res.returncode == 0, res.stderr
    other = read_csv_rows(runs / "goal-alpgmm-ppo" / "other" / "metrics.csv")
    ref = read_csv_rows(reference / "metrics.csv")
    assert [r["curriculum/mean_distance"] for r in other] != [r["curriculum/mean_distance"] for r in ref]


def test_heldout_eval_is_read_only_and_repeatable(reference):
    from experiments.curriculum import evaluate_heldout

    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*")}
    a, b = evaluate_heldout(reference), evaluate_heldout(reference)
    assert a == b and a["tasks"] == 25 and len(a["per_task"]) == 25 and a["episodes_per_task"] == 2
    assert 0.0 <= a["success_rate"] <= 1.0 and a["worst10_return"] <= a["mean_return"]
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*")} == before


@pytest.mark.skipif("CurriculumError" not in (Path(__file__).parents[2] / "experiments" / "cli.py").read_text(),
                    reason="experiments/cli.py does not list CurriculumError as a user error yet")
def test_bad_curriculum_is_one_line_exit_2(runs):
    uniform = str(MANIFESTS / "goal_uniform_ppo.yaml")
    res = rl("train", uniform, "--runs-dir", str(runs), "--quiet", "--set", "curriculum.teacher.kind=plr")
    assert res.returncode == 2 and "plr needs a task space of discrete levels" in res.stderr
    assert "Traceback" not in res.stderr
