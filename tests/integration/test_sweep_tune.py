"""``rl tune`` end to end: two tiny trials, each an ordinary group of runs, and the best manifest."""

from __future__ import annotations

import importlib.util
import json

import pytest

from experiments.manifest import load_manifest
from tests.integration.conftest import MANIFESTS, rl

pytestmark = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed")
TINY = ["--set", "train.total_steps=512", "--set", "checkpoint.every_steps=512", "--set", "evaluation.episodes=2"]


def test_two_trials_write_groups_and_a_loadable_best_manifest(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("agent.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}\n"
                     "agent.activation: {choices: [tanh, relu]}\n")
    runs, out = tmp_path / "runs", tmp_path / "best.yaml"
    res = rl("tune", str(MANIFESTS / "cartpole_ppo.yaml"), "--space", str(space), "--trials", "2", "--runs-dir",
             str(runs), "--out", str(out), "--quiet", *TINY)
    assert res.returncode == 0, res.stderr
    assert "trial   0  cartpole-ppo-t000" in res.stdout and "trial   1  cartpole-ppo-t001" in res.stdout
    best, _ = load_manifest(out)
    assert best.name == "cartpole-ppo-best" and best.train.total_steps == 512
    trial_manifests = [json.loads((runs / f"cartpole-ppo-t00{n}" / "s0" / "manifest.json").read_text())
                       for n in (0, 1)]
    assert trial_manifests[0]["agent"]["learning_rate"] != trial_manifests[1]["agent"]["learning_rate"]
    assert best.agent.learning_rate in [m["agent"]["learning_rate"] for m in trial_manifests]


def test_the_search_space_can_live_in_the_manifest(tmp_path):
    manifest = tmp_path / "tuned.yaml"
    manifest.write_text((MANIFESTS / "cartpole_ppo.yaml").read_text() + (
        "tune:\n  trials: 2\n  pruner: {kind: none}\n  space:\n"
        "    agent.n_epochs: {low: 2, high: 6}\n"))
    runs, out = tmp_path / "runs", tmp_path / "best.yaml"
    res = rl("tune", str(manifest), "--runs-dir", str(runs), "--out", str(out), "--quiet", *TINY)
    assert res.returncode == 0, res.stderr
    epochs = [json.loads((runs / f"cartpole-ppo-t00{n}" / "s0" / "manifest.json").read_text())["agent"]["n_epochs"]
              for n in (0, 1)]
    assert all(2 <= e <= 6 for e in epochs)
    best, _ = load_manifest(out)
    assert best.tune is None and best.agent.n_epochs in epochs  # the best manifest is a plain training manifest


def test_a_manifest_without_tune_section_needs_a_space(tmp_path):
    res = rl("tune", str(MANIFESTS / "cartpole_ppo.yaml"), "--trials", "1", "--runs-dir", str(tmp_path))
    assert res.returncode == 2 and "no tune section" in res.stderr and "Traceback" not in res.stderr


def test_a_pruned_trial_reports_the_seed_mean_and_stops_its_runs(tmp_path):
    """The pruner's view: each eval step all seeds reached, as the mean over seeds; pruning SIGTERMs the runs."""
    from experiments.sweep import expand
    from experiments.tune import TrialPruned, eval_curve, run_trial_runs

    class PruneAtSecondReport:
        def __init__(self):
            self.reports: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reports.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reports) >= 2

    runs_dir = tmp_path / "runs"
    runs = expand(MANIFESTS / "cartpole_ppo.yaml", [0, 1], (), [
        "name=pruned", "train.total_steps=200000", "evaluation.every_steps=1024", "evaluation.episodes=2",
        "checkpoint.every_steps=1024"])
    trial = PruneAtSecondReport()
    with pytest.raises(TrialPruned) as err:
        run_trial_runs(trial, runs, runs, runs_dir, jobs=2, prune=True)
    assert len(trial.reports) == 2 and err.value.step == trial.reports[1][1]
    curves = [eval_curve(r.run_dir(runs_dir)) for r in runs]
    for value, step in trial.reports:
        assert value == pytest.approx((curves[0][step] + curves[1][step]) / 2)
    for r in runs:  # stopped long before the end, and cleanly (a later `rl sweep` resumes them)
        assert not (r.run_dir(runs_dir) / "final").exists()
        assert max(eval_curve(r.run_dir(runs_dir))) < 50_000
