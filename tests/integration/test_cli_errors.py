"""User mistakes: one line on stderr, exit code 2, no traceback, no run directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.integration.conftest import MANIFESTS, TINY, rl

CARTPOLE = str(MANIFESTS / "cartpole_ppo.yaml")
GOOD = (MANIFESTS / "cartpole_ppo.yaml").read_text()


def _assert_user_error(res, *fragments: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


@pytest.mark.parametrize(
    "old, new, fragments",
    [
        ("  n_epochs: 20", "  n_epoch: 20", ["m.yaml:13", "agent.n_epoch", "did you mean 'n_epochs'"]),
        ("  gamma: 0.98", "  gamma: 1.5", ["agent.gamma"]),
        ("  num_envs: 8", "  num_envs: 0", ["env.num_envs"]),
        ("seed: 0", "seed: -1", ["seed"]),
        ("  id: CartPole-v1", "  id: CartPol-v1", ["env.id", "CartPole-v1"]),
        ("  id: CartPole-v1", "  id: no", ["env.id", "'no'"]),
        ("  algo: ppo", "  algo: ppo2", ["agent.algo", "unknown algorithm"]),
        ("name: cartpole-ppo", "name: ../evil", ["name"]),
        ("  n_epochs: 20", "  n_epochs: 20\n  n_epochs: 10", ["duplicate key"]),
        ("  gamma: 0.98", "  gamma: .nan", ["non-finite"]),
        ("  gamma: 0.98", "  gamma: !!python/object/apply:os.system [echo]", ["YAML tag"]),
        ("  gamma: 0.98", "  gamma: '0.98'", ["agent.gamma"]),
    ],
)
def test_bad_manifest(tmp_path: Path, runs: Path, old, new, fragments):
    text = GOOD.replace(old, new)
    assert text != GOOD
    path = tmp_path / "m.yaml"
    path.write_text(text)
    res = rl("train", str(path), "--runs-dir", str(runs), "--quiet")
    _assert_user_error(res, *fragments)
    assert not runs.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "agent.lr=1"], "agent.lr"),
        (["--set", "agent.gamma"], "KEY=VALUE"),
        (["--run-id", "../x"], "--run-id"),
        (["--run-id", ".hidden"], "--run-id"),
    ],
)
def test_bad_cli_arguments(runs: Path, args, fragment):
    _assert_user_error(rl("train", CARTPOLE, "--runs-dir", str(runs), "--quiet", *args), fragment)
    assert not (runs / "cartpole-ppo").exists() or not any((runs / "cartpole-ppo").iterdir())


def test_missing_manifest(runs: Path, tmp_path: Path):
    _assert_user_error(rl("train", str(tmp_path / "nope.yaml"), "--runs-dir", str(runs)), "no such file")


def test_existing_run_refused_without_force(runs: Path):
    args = ["train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "r", "--quiet", *TINY,
            "--set", "train.total_steps=512"]
    assert rl(*args).returncode == 0
    before = (runs / "cartpole-ppo" / "r" / "metrics.csv").read_bytes()
    _assert_user_error(rl(*args), "already exists", "--resume")
    assert (runs / "cartpole-ppo" / "r" / "metrics.csv").read_bytes() == before
    assert rl(*args, "--force").returncode == 0


def test_second_writer_is_refused_by_the_lock(runs: Path):
    args = ["train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "r", "--quiet", *TINY,
            "--set", "train.total_steps=512"]
    assert rl(*args).returncode == 0
    run = runs / "cartpole-ppo" / "r"
    fd = os.open(run / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        _assert_user_error(rl("train", "--resume", str(run), "--quiet"), "another process")
    finally:
        os.close(fd)


def test_symlinked_group_outside_runs_dir_is_refused(runs: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    runs.mkdir()
    (runs / "cartpole-ppo").symlink_to(outside)
    res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--quiet", *TINY)
    _assert_user_error(res, "outside the runs directory")
    assert not any(outside.iterdir())


def test_resume_of_a_non_run(tmp_path: Path):
    _assert_user_error(rl("train", "--resume", str(tmp_path)), "not a run directory")


def test_eval_errors(tmp_path: Path):
    _assert_user_error(rl("eval", str(tmp_path)), "not a run directory")


def test_env_nan_reward_names_env_episode_and_step(runs: Path, tmp_path: Path):
    faulty = "  id: rlsuite/FaultyEnv-v0\n  kwargs: {fault: nan_reward, fault_step: 7, fault_episode: 5}"
    text = GOOD.replace("  id: CartPole-v1", faulty)
    path = tmp_path / "m.yaml"
    path.write_text(text)
    res = rl("train", str(path), "--runs-dir", str(runs), "--quiet", *TINY)
    _assert_user_error(res, "env ", "episode 5", "step 7", "nan")


def test_help_is_fast():
    import time

    t0 = time.perf_counter()
    res = rl("--help")
    assert res.returncode == 0 and "train" in res.stdout
    # a generous bound for loaded CI machines; the point is that torch/jax are not imported
    assert time.perf_counter() - t0 < 5.0


def test_rl_sets_the_scan_xla_option_before_jax_starts(monkeypatch, tmp_path, capsys):
    from experiments.cli import main
    from rl.core.advantages import SCAN_XLA_OPTION

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert main(["eval", str(tmp_path / "no-such-run")]) == 2
    assert "no-such-run" in capsys.readouterr().err
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_enable_fast_math=false --xla_backend_extra_options={SCAN_XLA_OPTION}"
