"""``algo: sb3.*`` through the CLI: the suite's logs, evaluation, checkpoints and errors around SB3's learn()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rl.core.metrics import read_csv_rows
from tests.integration.conftest import MANIFESTS, rl

SB3_SAC = str(MANIFESTS / "pendulum_sb3_sac.yaml")
SMALL = ["--set", "train.total_steps=400", "--set", "train.log_every_steps=100",
         "--set", "evaluation.every_steps=200", "--set", "evaluation.episodes=2",
         "--set", "checkpoint.every_steps=200", "--set", "agent.kwargs.batch_size=32",
         "--set", "agent.kwargs.policy_kwargs.net_arch=[32, 32]"]
SAC_KEYS = {"train/actor_loss", "train/critic_loss", "train/ent_coef", "train/ent_coef_loss",
            "train/learning_rate", "train/n_updates"}


def _ok(res) -> None:
    assert res.returncode == 0, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])


def _user_error(res, *fragments: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    _ok(rl("train", SB3_SAC, "--runs-dir", str(runs), "--run-id", "a", "--quiet", *SMALL))
    return runs / "pendulum-sb3-sac" / "a"


def test_sb3_run_logs_evaluates_and_checkpoints_like_a_suite_run(sac_run: Path):
    rows = read_csv_rows(sac_run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400]
    assert SAC_KEYS <= set(rows[0]) and rows[0]["rollout/ep_rew_mean"] == ""  # no episode has ended yet
    assert rows[1]["eval/mean_reward"] and rows[3]["eval/mean_reward"] and not rows[2]["eval/mean_reward"]
    assert float(rows[-1]["train/n_updates"]) == 300  # SB3 trains once per step after learning_starts=100
    assert float(rows[-1]["rollout/ep_len_mean"]) == 200 and float(rows[-1]["time/iterations"]) == 400
    assert sorted(p.name for p in (sac_run / "checkpoints").iterdir()) == ["step-000000000200", "step-000000000400"]
    state = json.loads((sac_run / "checkpoints" / "step-000000000400" / "state.json").read_text())
    assert state["algo"] == "sb3.SAC" and state["loop"]["exact_resume"] is False and state["loop"]["buffer_saved"]
    note = [e for e in _events(sac_run) if e["event"] == "backend"]
    assert note and note[0]["exact_resume"] is False and "not" in note[0]["reason"]
    res = rl("eval", str(sac_run), "--episodes", "2", "--json")
    _ok(res)
    assert json.loads(res.stdout)["lengths"] == [200, 200]


def test_same_seed_reproduces_and_another_seed_differs(sac_run: Path, tmp_path: Path):
    res = rl("reproduce", str(sac_run))
    _ok(res)
    assert res.stdout.startswith("identical")
    _ok(rl("train", SB3_SAC, "--runs-dir", str(tmp_path), "--run-id", "b", "--quiet", "--seed", "1", *SMALL))
    from experiments.reproduce import compare_runs

    same, report = compare_runs(sac_run, tmp_path / "pendulum-sb3-sac" / "b")
    assert not same, report


def test_resume_continues_approximately_and_says_so(sac_run: Path, tmp_path: Path):
    run = tmp_path / "a"
    shutil.copytree(sac_run, run)
    shutil.rmtree(run / "checkpoints" / "step-000000000400")
    shutil.rmtree(run / "final")
    res = rl("train", "--resume", str(run), "--quiet")
    _ok(res)
    assert "approximate" in res.stderr
    resumed = [e for e in _events(run) if e["event"] == "approximate_resume"]
    assert resumed and resumed[0]["step"] == 200 and resumed[0]["buffer_restored"] is True
    rows = read_csv_rows(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400]
    assert float(rows[-1]["train/n_updates"]) == 300  # counters and schedule continue from the checkpoint
    assert (run / "final" / "policy.safetensors").is_file()


def test_on_policy_sb3_logs_one_row_per_rollout(tmp_path: Path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("""\
name: cp-sb3-ppo
env: {id: CartPole-v1, num_envs: 2}
agent:
  algo: sb3.PPO
  kwargs: {n_steps: 32, batch_size: 32, n_epochs: 2, learning_rate: {kind: linear, start: 1.0e-3}}
train: {total_steps: 256}
evaluation: {every_steps: 128, episodes: 2}
checkpoint: {every_steps: 128}
""")
    _ok(rl("train", str(manifest), "--runs-dir", str(tmp_path / "runs"), "--run-id", "p", "--quiet"))
    rows = read_csv_rows(tmp_path / "runs" / "cp-sb3-ppo" / "p" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [64, 128, 192, 256]
    assert [float(r["time/iterations"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["train/n_updates"]) for r in rows] == [2, 4, 6, 8]  # each row after its rollout's update
    lrs = [float(r["train/learning_rate"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-3  # the linear schedule reached SB3
    assert rows[1]["eval/mean_reward"] and rows[3]["eval/mean_reward"]


@pytest.mark.parametrize("overrides, fragments", [
    (["agent.algo=sb3.SACC"], ["agent.algo", "unknown stable-baselines3 algorithm", "did you mean sb3.SAC?"]),
    (["agent.kwargs.learning_rat=0.1"], ["agent.kwargs.learning_rat", "did you mean 'learning_rate'?"]),
    (["agent.kwargs.learning_starts=5000"], ["agent.kwargs.learning_starts (5000)", "train.total_steps"]),
    (["agent.kwargs.buffer_size=10"], ["agent.kwargs.buffer_size (10)", "batch_size (32)"]),
    (["env.id=CartPole-v1"], ["agent.algo", "sb3.SAC", "Discrete(2)"]),
    (["agent.algo=sb3.DQN"], ["agent.kwargs.ent_coef", "sb3.DQN takes no keyword"]),
])
def test_bad_sb3_settings_are_one_line_errors_without_a_run_directory(tmp_path: Path, overrides, fragments):
    runs = tmp_path / "runs"
    sets = [a for o in overrides for a in ("--set", o)]
    _user_error(rl("train", SB3_SAC, "--runs-dir", str(runs), "--quiet", *SMALL, *sets), *fragments)
    assert not runs.exists()


def test_a_discrete_sb3_algorithm_on_a_continuous_env_is_refused(tmp_path: Path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: x\nenv: {id: Pendulum-v1}\nagent: {algo: sb3.DQN}\ntrain: {total_steps: 100000}\n")
    _user_error(rl("train", str(manifest), "--runs-dir", str(tmp_path / "runs")), "agent.algo", "sb3.DQN", "Box")
    assert not (tmp_path / "runs").exists()


def test_eval_of_an_sb3_zip(tmp_path: Path):
    from stable_baselines3 import SAC

    path = tmp_path / "model.zip"
    SAC("MlpPolicy", "Pendulum-v1", seed=0, device="cpu", policy_kwargs={"net_arch": [8]}).save(path)
    _user_error(rl("eval", str(path), "--env", "Pendulum-v1"), "cloudpickle payloads", "--trust-pickle")
    _user_error(rl("eval", str(path)), "pass --env ID")
    res = rl("eval", str(path), "--env", "Pendulum-v1", "--trust-pickle", "--episodes", "2", "--json")
    _ok(res)
    out = json.loads(res.stdout)
    assert out["lengths"] == [200, 200] and out["env"] == "Pendulum-v1"
    _user_error(rl("eval", str(tmp_path), "--env", "Pendulum-v1"), "--env and --trust-pickle are for")
