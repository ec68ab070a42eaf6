"""``env.vectorization: vector``: gymnasium's batched CartPole trains PPO reproducibly, resumes
exactly from a checkpoint, and is refused where its NEXT_STEP, shared-generator envs do not fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows
from tests.integration.conftest import MANIFESTS, TINY, rl

CARTPOLE = str(MANIFESTS / "cartpole_ppo.yaml")
VECTOR = ["--set", "env.vectorization=vector"]


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in read_csv_rows(run / "metrics.csv")]


def _weights(run: Path) -> dict:
    return load_file(str(run / "final" / "policy.safetensors"))


def _train(runs: Path, run_id: str, *extra: str) -> Path:
    res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", run_id, "--quiet", *TINY, *VECTOR, *extra)
    assert res.returncode == 0, res.stderr
    return runs / "cartpole-ppo" / run_id


def test_native_vector_run_is_reproducible_resumable_and_differs_from_sync(tmp_path):
    runs = tmp_path / "runs"
    a, b = _train(runs, "a"), _train(runs, "b")
    assert _metrics(a) == _metrics(b)
    wa = _weights(a)
    assert all(np.array_equal(wa[k], _weights(b)[k]) for k in wa)
    # episodes finished and were logged through the NEXT_STEP path
    assert float(_metrics(a)[-1]["rollout/ep_len_mean"]) > 0
    # resume from the first checkpoint: the same rows and weights as the uninterrupted run
    part = runs / "cartpole-ppo" / "part"
    shutil.copytree(a, part)
    for ckpt in sorted((part / "checkpoints").iterdir())[1:]:
        shutil.rmtree(ckpt)
    shutil.rmtree(part / "final")
    res = rl("train", "--resume", str(part), "--quiet")
    assert res.returncode == 0, res.stderr
    assert _metrics(part) == _metrics(a)
    assert all(np.array_equal(wa[k], _weights(part)[k]) for k in wa)
    # the sync envs of the same manifest and seed are a different run
    res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "sync", "--quiet", *TINY,
             "--set", "env.vectorization=sync")
    assert res.returncode == 0, res.stderr
    assert _metrics(runs / "cartpole-ppo" / "sync") != _metrics(a)


@pytest.mark.parametrize("manifest, pattern", [
    ("pendulum_sac.yaml", "agent.algo=sac needs every step"),
    ("pendulum_ppo.yaml", "Pendulum-v1 has no vectorised implementation"),
    ("wrapped", "env.wrappers needs per-sub-env"),
])
def test_native_vector_refusals_are_one_line_exit_2(tmp_path, manifest, pattern):
    path = MANIFESTS / manifest
    if manifest == "wrapped":
        import yaml

        data = yaml.safe_load((MANIFESTS / "cartpole_ppo.yaml").read_text())
        data["env"]["wrappers"] = [{"name": "TimeAwareObservation"}]
        path = tmp_path / "wrapped.yaml"
        path.write_text(yaml.safe_dump(data))
    res = rl("train", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet", *VECTOR)
    assert res.returncode == 2, res.stderr
    assert pattern in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("metrics.csv"))
