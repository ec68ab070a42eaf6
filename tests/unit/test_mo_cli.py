"""Multi-objective runs end to end through the CLI on tiny budgets: per-objective columns, weight
sampling state in checkpoints, Pareto evaluation and plots, manifest errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.manifest import ManifestError, load_manifest
from experiments.mo import evaluate_pareto, plot_pareto

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MANIFESTS = Path(__file__).resolve().parents[2] / "experiments" / "manifests"
TINY_PPO = ["env.num_envs=2", "agent.n_steps=16", "agent.batch_size=16", "agent.n_epochs=1",
            "train.total_steps=64", "evaluation.every_steps=0", "evaluation.episodes=1",
            "checkpoint.every_steps=32", "agent.net_arch=[8]"]


def train(manifest: str, runs: Path, sets: list[str], seed: int = 0) -> Path:
    args = ["train", str(MANIFESTS / manifest), "--runs-dir", str(runs), "--run-id", f"s{seed}", "--quiet",
            "--seed", str(seed)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return next((runs).glob(f"*/s{seed}"))


def test_weight_conditioned_ppo_k2_trains_logs_objectives_and_evaluates(tmp_path):
    sets = ["env.id=deep-sea-treasure-v0", "env.wrappers=[]", "objectives.names=[treasure,time]",
            "objectives.sweep.points=5", *TINY_PPO]
    # minecart_ppo.yaml on DST: its wrappers (per-objective normalisation, weights) work on any MO env
    data_sets = sets[:1] + sets[2:]
    manifest, _ = load_manifest(MANIFESTS / "minecart_ppo.yaml", data_sets)
    assert manifest.agent.weights_from_obs
    run = train("minecart_ppo.yaml", tmp_path, data_sets)
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["rollout/ep_rew_mean/treasure"] != "" and rows[-1]["rollout/ep_rew_mean/time"] != ""
    from rl.core.checkpoint import latest_verified

    found, _ = latest_verified(run / "checkpoints")
    assert "rng" in found.state["extensions"]["objectives"]
    res = evaluate_pareto(run)
    assert len(res["weights"]) == 5 and res["cardinality"] >= 1 and "hull_recovered" in res
    out, summary = plot_pareto([run], tmp_path / "pareto.png")
    assert out.stat().st_size > 0 and summary["minecart-ppo"]["runs"] == 1


def test_scalarised_sac_on_a_vector_env_logs_both_objectives(tmp_path):
    sets = ["train.total_steps=300", "agent.learning_starts=100", "agent.train_freq=50", "agent.gradient_steps=1",
            "agent.batch_size=16", "agent.net_arch=[8]", "evaluation.every_steps=0", "evaluation.episodes=1",
            "checkpoint.every_steps=300", "train.log_every_steps=100",
            "env.kwargs.max_episode_steps=50"]
    run = train("mo_mountaincarcontinuous_sac.yaml", tmp_path, sets)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "rollout/ep_rew_mean/time" in header and "rollout/ep_rew_mean/fuel" in header


def test_manifest_errors_name_the_field(tmp_path):
    with pytest.raises(ManifestError, match="objectives.names"):
        load_manifest(MANIFESTS / "dst_dqn.yaml", ["objectives.names=[a,a]"])
    with pytest.raises(ManifestError, match="agent.objective_weights"):
        load_manifest(MANIFESTS / "minecart_ppo.yaml", ["agent.objective_weights=[1.0,-1.0,0.0]"])
    rc = main(["train", str(MANIFESTS / "minecart_ppo.yaml"), "--runs-dir", str(tmp_path), "--quiet",
               "--set", "env.wrappers=[]", "--set", "env.id=CartPole-v1"])
    assert rc == 2  # objectives section on a scalar env
