"""Uni-O4 through the CLI on a tiny DataCollector dataset: a phased run (offline, then on-policy online)
writes the phase columns, checkpoints and o2o.json, resumes identically from inside either phase,
and bad manifests stop with one line before anything is written."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from rl.core.datasets import dataset_sha256
from tests.integration.conftest import MANIFESTS, rl
from tests.integration.test_offline_cli import _collector_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _collector_dataset(tmp_path_factory.mktemp("minari"))


def _manifest(tmp_path: Path, dataset: Path, **changes) -> Path:
    """pendulum_unio4.yaml at a tiny budget: 150 offline updates (60 of them BC and critics), then 300
    online env steps in rollouts of 50; a checkpoint every 100 steps."""
    data = yaml.safe_load((MANIFESTS / "pendulum_unio4.yaml").read_text())
    data["dataset"] = {"path": str(dataset), "sha256": dataset_sha256(dataset)}
    data["phases"] = [{"offline": {"updates": 150}}, {"online": {"steps": 300}}]
    data["agent"].update(net_arch=[32, 32], offline_batch_size=32, pretrain_updates=60, ope_every=20, n_steps=50,
                         batch_size=25, n_epochs=2)
    data["train"] = {"total_steps": 450, "log_every_steps": 50}
    data["evaluation"] = {"every_steps": 100, "episodes": 2}
    data["checkpoint"] = {"every_steps": 100, "keep_last": 10}
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "unio4.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_phased_run_resumes_inside_either_phase_identically(dataset, runs, tmp_path):
    out = rl("train", str(_manifest(tmp_path, dataset)), "--quiet", "--runs-dir", str(runs), "--run-id", "full")
    assert out.returncode == 0, out.stderr
    full = runs / "pendulum-unio4" / "full"
    rows = _rows(full)
    assert [int(r["step"]) for r in rows] == [50, 100, 150, 200, 250, 300, 350, 400, 450]
    offline, online = rows[:3], rows[3:]
    assert {r["time/phase"] for r in offline} == {"0.0"} and {r["time/phase"] for r in online} == {"1.0"}
    assert [r["time/total_timesteps"] for r in online] == [f"{s}.0" for s in (50, 100, 150, 200, 250, 300)]
    assert {r["time/offline_updates"] for r in online} == {"150.0"}
    assert offline[0]["train/bc_loss"] and not offline[-1]["train/bc_loss"]  # BC first, then the improvement
    assert offline[-1]["train/ope_score"] and online[-1]["train/explained_variance"]
    ckpts = sorted(p.name for p in (full / "checkpoints").iterdir())
    assert ckpts == [f"step-{s:012d}" for s in (100, 200, 300, 400, 450)]
    o2o = json.loads((full / "o2o.json").read_text())
    assert o2o["online_steps"] == 300 and o2o["switches"][0]["step"] == 150
    # evals every 100 steps miss the switch at 150; the offline phase's closing eval gives the return there
    assert o2o["switches"][0]["switch_eval_step"] == 150 and offline[-1]["eval/mean_reward"]
    assert o2o["switches"][0]["return_at_switch"] == float(offline[-1]["eval/mean_reward"])
    # Resume from step 100 (inside the offline phase) and from 300 (150 env steps into the online phase).
    for keep in (100, 300):
        part = runs / "pendulum-unio4" / f"from{keep}"
        shutil.copytree(full, part)
        for p in (part / "checkpoints").iterdir():
            if int(p.name[5:]) > keep:
                shutil.rmtree(p)
        shutil.rmtree(part / "final")
        out = rl("train", "--resume", str(part), "--quiet")
        assert out.returncode == 0, out.stderr
        policy = Path("final") / "policy.safetensors"
        assert (part / policy).read_bytes() == (full / policy).read_bytes()
        timing = {"time/fps", "time/elapsed_s"}
        strip = [{k: v for k, v in r.items() if k not in timing} for r in _rows(part)]
        assert strip == [{k: v for k, v in r.items() if k not in timing} for r in rows]


def test_online_phase_with_offline_data_is_one_line_and_writes_nothing(dataset, runs, tmp_path):
    phases = [{"offline": {"updates": 150}}, {"online": {"steps": 300, "offline_fraction": 0.5}}]
    out = rl("train", str(_manifest(tmp_path, dataset, phases=phases)), "--quiet", "--runs-dir", str(runs))
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "phases[1].online.offline_fraction: agent.algo=unio4 fine-tunes on-policy" in out.stderr
    assert not runs.exists()


@pytest.mark.parametrize("change, error, pattern", [
    ({"phases": [{"online": {"steps": 300}}, {"offline": {"updates": 150}}]}, "ManifestError",
     "runs one offline phase"),
    ({"phases": [{"offline": {"updates": 150, "lr_policy": "rewarm"}}, {"online": {"steps": 300}}]}, "ManifestError",
     "phases[0].offline.lr_policy"),
    ({"agent": {"algo": "unio4", "pretrain_updates": 150}}, "ManifestError", "must be < the offline phase's updates"),
    ({"env": {"id": "CartPole-v1"}}, "AgentError", "agent.algo=unio4 needs a flat Box action space"),
])
def test_bad_manifests_are_refused_before_the_run(dataset, tmp_path, change, error, pattern):
    from experiments.manifest import load_manifest
    from experiments.train import preflight

    manifest, _ = load_manifest(_manifest(tmp_path, dataset, **change))
    with pytest.raises(ValueError) as err:
        preflight(manifest)
    assert type(err.value).__name__ == error and pattern in str(err.value), err.value
