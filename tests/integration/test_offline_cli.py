"""Offline runs through the CLI: a DataCollector dataset trains IQL unconverted, bad datasets stop
the run before anything is written, and a phased run resumes mid-phase identically."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rl.core.datasets import dataset_sha256
from tests.integration.conftest import MANIFESTS, rl


def _collector_dataset(root: Path, **refs) -> Path:
    import minari

    env = minari.DataCollector(gym.make("Pendulum-v1"))
    rng = np.random.default_rng(0)
    for ep in range(4):
        env.reset(seed=ep)
        for _ in range(50):
            env.step(rng.uniform(-2, 2, (1,)).astype(np.float32))
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        env.create_dataset("test/pendulum-v0", algorithm_name="random", **refs)
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    return root / "test" / "pendulum-v0"


@pytest.fixture(scope="module")
def collector_dataset(tmp_path_factory) -> Path:
    """Four 50-step Pendulum episodes written by minari.DataCollector, nothing else."""
    return _collector_dataset(tmp_path_factory.mktemp("minari"))


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_datacollector_dataset_trains_iql_without_conversion(collector_dataset, runs):
    out = rl("train", str(MANIFESTS / "pendulum_iql.yaml"), "--quiet", "--runs-dir", str(runs), "--run-id", "a",
             "--set", "dataset.id=null", "--set", f"dataset.path={collector_dataset}",
             "--set", f"dataset.sha256={dataset_sha256(collector_dataset)}",
             "--set", "train.total_steps=300", "--set", "evaluation.every_steps=0", "--set", "evaluation.episodes=2",
             "--set", "agent.net_arch=[32,32]", "--set", "agent.batch_size=64", "--set", "train.log_every_steps=100")
    assert out.returncode == 0, out.stderr
    rows = _rows(runs / "pendulum-iql" / "a")
    assert [int(r["step"]) for r in rows] == [100, 200, 300]
    assert rows[-1]["train/n_updates"] == "300.0" and rows[-1]["time/total_timesteps"] == "0.0"
    assert np.isfinite(float(rows[-1]["eval/mean_reward"]))
    assert rows[-1]["eval/normalized_score"] == ""  # the dataset has no reference scores


def test_eval_rows_carry_the_d4rl_normalized_score_of_the_dataset_references(tmp_path, runs):
    ds = _collector_dataset(tmp_path, ref_min_score=-1500.0, ref_max_score=-150.0)
    out = rl("train", str(MANIFESTS / "pendulum_iql.yaml"), "--quiet", "--runs-dir", str(runs), "--run-id", "refs",
             "--set", "dataset.id=null", "--set", f"dataset.path={ds}", "--set", f"dataset.sha256={dataset_sha256(ds)}",
             "--set", "train.total_steps=200", "--set", "evaluation.every_steps=100", "--set", "evaluation.episodes=2",
             "--set", "agent.net_arch=[32,32]", "--set", "agent.batch_size=64", "--set", "train.log_every_steps=100")
    assert out.returncode == 0, out.stderr
    rows = [r for r in _rows(runs / "pendulum-iql" / "refs") if r["eval/mean_reward"]]
    assert len(rows) == 2
    for r in rows:
        expected = 100.0 * (float(r["eval/mean_reward"]) + 1500.0) / 1350.0
        assert float(r["eval/normalized_score"]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("sha, pattern", [("ab" * 32, "sha256 is"), (None, "does not exist")])
def test_bad_dataset_is_one_line_and_writes_nothing(collector_dataset, runs, tmp_path, sha, pattern):
    path = collector_dataset if sha else tmp_path / "missing"
    out = rl("train", str(MANIFESTS / "pendulum_iql.yaml"), "--quiet", "--runs-dir", str(runs),
             "--set", "dataset.id=null", "--set", f"dataset.path={path}", "--set", f"dataset.sha256={sha or 'cd' * 32}")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and pattern in out.stderr and "rl: error: dataset" in out.stderr
    assert not runs.exists()


def _phased_manifest(tmp_path: Path, dataset: Path, name: str = "pendulum_iql_to_online",
                     algo: str | None = None, lr_policy: str = "rewarm", agent: dict | None = None) -> Path:
    """A tiny phased run of manifest ``name``; ``algo`` swaps in that agent with its defaults, ``agent``
    sets fields of it. The online phase re-warms the learning rate, so a resume inside it must restore
    the warm-up too."""
    import yaml

    data = yaml.safe_load((MANIFESTS / f"{name}.yaml").read_text())
    if algo is not None:
        data["name"], data["agent"] = f"phased-{algo}", {"algo": algo}
    data["dataset"] = {"path": str(dataset), "sha256": dataset_sha256(dataset)}
    data["phases"] = [{"offline": {"updates": 150}},
                      {"online": {"steps": 250, "offline_fraction": {"kind": "linear", "start": 0.5, "end": 0.0},
                                  "lr_policy": lr_policy, "lr_warmup": 0.5}}]
    data["agent"].update(net_arch=[32, 32], batch_size=32, buffer_size=1000, **(agent or {}))
    data["train"] = {"total_steps": 400, "log_every_steps": 50}
    data["evaluation"] = {"every_steps": 100, "episodes": 2}
    data["checkpoint"] = {"every_steps": 100, "keep_last": 10}
    path = tmp_path / "phased.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


@pytest.mark.parametrize("lr_policy", ["keep", "redecay", "rewarm"])
def test_phase_learning_rate_policies(collector_dataset, runs, tmp_path, lr_policy):
    """The offline phase keeps the run-wide linear schedule; the online phase keeps it, restarts it
    (redecay) or restarts it after a linear warm-up over half the phase (rewarm). Each update uses the
    step size set after the previous step, hence the ``- 1``."""
    import yaml

    path = _phased_manifest(tmp_path, collector_dataset, lr_policy=lr_policy)
    data = yaml.safe_load(path.read_text())
    data["agent"].update(learning_rate={"kind": "linear", "start": 1e-3, "end": 0.0}, learning_starts=0)
    data["train"]["log_every_steps"] = 25
    data["checkpoint"] = {"every_steps": 400, "keep_last": 1}
    path.write_text(json.dumps(data))
    out = rl("train", str(path), "--quiet", "--runs-dir", str(runs), "--run-id", f"lr-{lr_policy}")
    assert out.returncode == 0, out.stderr
    rows = _rows(runs / "pendulum-iql-to-online" / f"lr-{lr_policy}")
    for r in rows:
        step = int(r["step"])
        if step <= 150:
            expected = 1e-3 * (1 - (step - 1) / 400)
        elif lr_policy == "keep":
            expected = 1e-3 * (1 - (step - 1) / 400)
        else:
            d = step - 150 - 1
            expected = 1e-3 * (1 - d / 250) * (min(d / 125, 1.0) if lr_policy == "rewarm" else 1.0)
        assert float(r["train/learning_rate"]) == pytest.approx(expected, rel=1e-5, abs=1e-12), (step, r)


@pytest.mark.parametrize("name, algo, agent", [
    ("pendulum_iql_to_online", None, None), ("pendulum_calql_to_online", None, None),
    ("pendulum_calql_to_online", None, {"cql_alpha_online": None}), ("pendulum_calql_mixed_to_online", None, None),
    ("pendulum_iql_to_online", "bc", None), ("pendulum_iql_to_online", "awac", None)])
def test_phased_run_resumes_mid_phase_identically(collector_dataset, runs, tmp_path, name, algo, agent):
    """Every offline agent also trains online. Cal-QL also stores each online transition's Monte-Carlo
    return, filled in when its episode ends or a checkpoint cuts it: a resumed run must see the same.
    The manifest's ``cql_alpha_online: 0`` changes the update at the phase switch: a run resumed inside
    the online phase must know it is there (``None`` keeps the regulariser online)."""
    manifest = _phased_manifest(tmp_path, collector_dataset, name, algo, agent=agent)
    out = rl("train", str(manifest), "--quiet", "--runs-dir", str(runs), "--run-id", "full")
    assert out.returncode == 0, out.stderr
    exp = name.replace("_", "-") if algo is None else f"phased-{algo}"
    full = runs / exp / "full"
    rows = _rows(full)
    assert {r["time/phase"] for r in rows} == {"0.0", "1.0"}
    last = rows[-1]
    assert last["time/offline_updates"] == "150.0" and last["time/total_timesteps"] == "250.0"
    ckpts = sorted(p.name for p in (full / "checkpoints").iterdir())
    assert ckpts == [f"step-{s:012d}" for s in (100, 200, 300, 400)]
    if "calql" in name:  # with cql_alpha_online 0 the regulariser is off from the first online update on
        online_alpha = json.loads((full / "manifest.json").read_text())["agent"]["cql_alpha_online"]
        gaps = {r["time/phase"]: float(r["train/cql_gap"]) for r in rows if r.get("train/cql_gap")}
        assert gaps["0.0"] != 0.0 and (gaps["1.0"] == 0.0) == (online_alpha == 0.0), (online_alpha, gaps)
    if "calql" in name:  # each checkpoint cut the running episodes: every online return is known
        with np.load(full / "checkpoints" / ckpts[-1] / "buffers.npz", allow_pickle=False) as buffers:
            mc_return = buffers["mc_return"]
        assert mc_return.shape == (250, 1) and (mc_return < 0).all() and np.isfinite(mc_return).all()
    # Resume from step 200 (50 env steps into the online phase) and from 100 (inside the offline phase).
    for keep in (200, 100):
        part = runs / exp / f"from{keep}"
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


def test_collect_replay_writes_the_buffer_of_an_off_policy_run_as_a_dataset(runs, tmp_path):
    """D4RL's medium-replay: the checkpointed buffer, episode by episode, a checkpoint cut kept as a truncation."""
    from rl.core.datasets import read_dataset

    tiny = ["--quiet", "--runs-dir", str(runs), "--set", "train.total_steps=500", "--set", "checkpoint.every_steps=300",
            "--set", "evaluation.every_steps=0", "--set", "evaluation.episodes=1", "--set", "agent.net_arch=[32,32]",
            "--set", "agent.batch_size=32"]
    assert rl("train", str(MANIFESTS / "pendulum_sac.yaml"), "--run-id", "a", *tiny).returncode == 0
    run = runs / "pendulum-sac" / "a"
    root = tmp_path / "datasets"
    out = rl("collect", "--env", "Pendulum-v1", "--replay", str(run), "--out", "pendulum/replay-v0",
             "--root", str(root), "--ref-expert", "-150")
    assert out.returncode == 0, out.stderr
    card = json.loads((root / "pendulum" / "replay-v0" / "card.json").read_text())
    assert (card["episodes"], card["steps"], card["ref_expert_return"]) == (3, 500, -150.0)
    data = read_dataset(root / "pendulum" / "replay-v0", "pendulum/replay-v0", card["sha256"])
    ends = np.flatnonzero(data.terminated_m | data.truncated_m)
    assert ends.tolist() == [199, 299, 499]  # 200 steps, the 100 cut by the checkpoint at 300, then 200
    assert data.truncated_m[ends].all() and not data.terminated_m.any()

    wrong = rl("collect", "--env", "Pendulum-v1", "--replay", str(run), "--episodes", "3", "--out", "pendulum/x-v0",
               "--root", str(root))
    assert wrong.returncode == 2 and "--episodes do(es) not apply" in wrong.stderr
    assert rl("train", str(MANIFESTS / "pendulum_sac.yaml"), "--run-id", "b", *tiny,
              "--set", "agent.save_buffer=false").returncode == 0
    refused = rl("collect", "--env", "Pendulum-v1", "--replay", str(runs / "pendulum-sac" / "b"), "--out",
                 "pendulum/x-v0", "--root", str(root))
    assert refused.returncode == 2 and "without its replay buffer" in refused.stderr
    assert "Traceback" not in refused.stderr and not (root / "pendulum" / "x-v0").exists()


def test_reward_scale_reaches_the_agent_and_is_refused_for_unio4(collector_dataset, runs):
    common = ["--quiet", "--runs-dir", str(runs), "--set", "dataset.id=null",
              "--set", f"dataset.path={collector_dataset}",
              "--set", f"dataset.sha256={dataset_sha256(collector_dataset)}", "--set", "train.total_steps=100",
              "--set", "evaluation.every_steps=0", "--set", "evaluation.episodes=1", "--set", "agent.net_arch=[16,16]",
              "--set", "agent.batch_size=32", "--set", "train.log_every_steps=100"]
    assert rl("train", str(MANIFESTS / "pendulum_iql.yaml"), "--run-id", "raw", *common).returncode == 0
    scaled = rl("train", str(MANIFESTS / "pendulum_iql.yaml"), "--run-id", "scaled", *common,
                "--set", "dataset.reward_scale=0.001")
    assert scaled.returncode == 0, scaled.stderr
    raw_loss = float(_rows(runs / "pendulum-iql" / "raw")[-1]["train/critic_loss"])
    scaled_loss = float(_rows(runs / "pendulum-iql" / "scaled")[-1]["train/critic_loss"])
    assert scaled_loss < 0.01 * raw_loss  # Q regresses onto rewards 1000x smaller
    refused = rl("train", str(MANIFESTS / "pendulum_unio4.yaml"), *common, "--set", "dataset.reward_scale=0.001")
    assert refused.returncode == 2 and "dataset.reward_scale: agent.algo=unio4" in refused.stderr
    assert not (runs / "pendulum-unio4").exists()
