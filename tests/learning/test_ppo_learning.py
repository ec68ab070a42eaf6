"""PPO learns: real return thresholds on fixed seeds (minutes, marked ``learning``)."""

from pathlib import Path

import pytest

from experiments.evaluate_run import evaluate_run
from experiments.manifest import load_manifest
from experiments.train import start_run

MANIFESTS = Path(__file__).resolve().parents[2] / "experiments" / "manifests"


@pytest.mark.learning
def test_ppo_cartpole_reaches_475_within_100k_steps(tmp_path):
    manifest, _ = load_manifest(MANIFESTS / "cartpole_ppo.yaml", ["train.total_steps=100000"], seed=0)
    run = start_run(manifest, tmp_path / "runs", run_id="s0", show_progress=False)
    result = evaluate_run(run, episodes=20, seed=None, checkpoint=None)
    assert result["mean_return"] >= 475, result["returns"]


@pytest.mark.learning
def test_ppo_continuous_pendulum_improves(tmp_path):
    """A short Pendulum run must beat the random policy (about -1200) by a wide margin."""
    manifest, _ = load_manifest(MANIFESTS / "pendulum_ppo.yaml", ["train.total_steps=40960"], seed=0)
    run = start_run(manifest, tmp_path / "runs", run_id="s0", show_progress=False)
    result = evaluate_run(run, episodes=10, seed=None, checkpoint=None)
    assert result["mean_return"] >= -900, result["returns"]
