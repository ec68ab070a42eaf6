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
