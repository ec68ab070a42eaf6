"""``rl sweep`` end to end on tiny budgets: local pool vs Ray bit for bit, reruns skip, a killed Ray worker
resumes to the same result, bad input is one line."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from experiments.sweep import SweepLock
from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows
from tests.integration.conftest import MANIFESTS, rl

CARTPOLE = str(MANIFESTS / "cartpole_ppo.yaml")
SEEDS = "0-1"
TINY = ["--set", "train.total_steps=2048", "--set", "checkpoint.every_steps=1024",
        "--set", "evaluation.every_steps=1024", "--set", "evaluation.episodes=3"]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
# One xdist worker runs this whole file (``--dist loadgroup``): a local Ray cluster started by one test
# would otherwise be found by another worker's ``--address auto``, which expects none.
pytestmark = pytest.mark.xdist_group("ray")


def _no_ray_cluster_within(seconds: float) -> bool:
    """True once no Ray cluster runs on this machine. ``--address auto`` connects to any running one, and
    the local cluster of the test before may still be shutting down (slowly, on a loaded machine)."""
    from ray._private.services import find_gcs_addresses

    deadline = time.monotonic() + seconds
    while True:
        find_gcs_addresses.cache_clear()  # it remembers a cluster once found
        if not find_gcs_addresses():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in read_csv_rows(run / "metrics.csv")]


def _assert_same_run(a: Path, b: Path) -> None:
    assert _metrics(a) == _metrics(b), f"{a} and {b}: metrics differ"
    wa, wb = load_file(str(a / "final" / "policy.safetensors")), load_file(str(b / "final" / "policy.safetensors"))
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa), f"{a} and {b}: weights differ"


def _events(run: Path) -> list[str]:
    return [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("local") / "runs"
    res = rl("sweep", CARTPOLE, "--seeds", SEEDS, "--runs-dir", str(runs), "--jobs", "2", "--quiet", *TINY)
    assert res.returncode == 0, res.stderr
    assert "2 started" in res.stdout
    return runs / "cartpole-ppo"


def test_local_sweep_writes_ordinary_runs_with_deterministic_ids(local_runs):
    assert sorted(p.name for p in local_runs.iterdir() if p.is_dir()) == ["s0", "s1"]
    for seed in (0, 1):
        run = local_runs / f"s{seed}"
        assert json.loads((run / "manifest.json").read_text())["seed"] == seed
        assert _events(run) == ["start", "finished"]
        assert "train.total_steps=2048" in json.loads((run / "provenance.json").read_text())["overrides"]
    assert _metrics(local_runs / "s0") != _metrics(local_runs / "s1")  # the seeds really differ


def test_rerunning_a_complete_sweep_skips_everything(local_runs):
    before = {p: p.stat().st_mtime_ns for p in local_runs.glob("s*/metrics.csv")}
    res = rl("sweep", CARTPOLE, "--seeds", SEEDS, "--runs-dir", str(local_runs.parent), "--quiet", *TINY)
    assert res.returncode == 0, res.stderr
    assert "2 complete" in res.stdout and "already complete" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in local_runs.glob("s*/metrics.csv")} == before


def test_a_sweep_with_different_settings_into_the_same_runs_is_refused(local_runs):
    res = rl("sweep", CARTPOLE, "--seeds", SEEDS, "--runs-dir", str(local_runs.parent), *TINY,
             "--set", "agent.gamma=0.9")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "agent.gamma (0.98 vs 0.9)" in res.stderr


def test_a_second_sweep_into_a_running_group_is_refused(tmp_path):
    runs = tmp_path / "runs"
    with SweepLock(runs, ["cartpole-ppo"]):
        res = rl("sweep", CARTPOLE, "--seeds", "0", "--runs-dir", str(runs), *TINY)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "another sweep is running" in res.stderr
    assert not (runs / "cartpole-ppo" / "s0").exists()


@pytest.mark.parametrize("args, words", [
    (["--seeds", "3-1"], "empty"),
    (["--seeds", "0-1", "--grid", "agent.learnin_rate=1e-3,3e-4"], "agent.learnin_rate: unknown field"),
    (["--seeds", "0-1", "--grid", "env.kwargs.gravity=9.8,20"], "gravity"),
])
def test_bad_sweeps_are_one_line_and_write_nothing(tmp_path, args, words):
    res = rl("sweep", CARTPOLE, *args, "--runs-dir", str(tmp_path / "runs"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("rl: error:") and res.stderr.count("\n") == 1 and words in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()


@needs_ray
def test_ray_backend_gives_the_local_results_bit_for_bit(local_runs, tmp_path):
    runs = tmp_path / "runs"
    res = rl("sweep", CARTPOLE, "--seeds", SEEDS, "--runs-dir", str(runs), "--backend", "ray", "--jobs", "2",
             "--quiet", *TINY, env=RAY_ENV)
    assert res.returncode == 0, res.stderr
    for seed in (0, 1):
        _assert_same_run(local_runs / f"s{seed}", runs / "cartpole-ppo" / f"s{seed}")


@needs_ray
def test_a_killed_ray_worker_is_retried_and_resumes_to_the_same_result(local_runs, tmp_path):
    runs = tmp_path / "runs"
    # The checkpoint writer SIGKILLs its own process right after publishing the step-1024 checkpoint;
    # the retry resumes from it and passes that step, so the fault fires once per run.
    fault = {**RAY_ENV, "RLSUITE_FAULT": "before_prune", "RLSUITE_FAULT_AT": "1024"}
    res = rl("sweep", CARTPOLE, "--seeds", "0", "--runs-dir", str(runs), "--backend", "ray", "--jobs", "1",
             "--quiet", *TINY, env=fault)
    assert res.returncode == 0, res.stderr
    run = runs / "cartpole-ppo" / "s0"
    assert _events(run) == ["start", "resume", "finished"], "the worker was not killed and retried"
    assert "1 resumed" in res.stdout
    _assert_same_run(local_runs / "s0", run)


@needs_ray
def test_an_unreachable_ray_address_is_a_quick_one_line_error(tmp_path):
    t0 = time.perf_counter()
    res = rl("sweep", CARTPOLE, "--seeds", "0", "--runs-dir", str(tmp_path / "runs"), "--backend", "ray",
             "--address", "127.0.0.1:9", env=RAY_ENV, timeout=60)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 2 and "no Ray cluster reachable" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert elapsed < 20, f"took {elapsed:.1f} s"
    if os.environ.get("RAY_ADDRESS") is None:
        if not _no_ray_cluster_within(60):
            pytest.skip("a Ray cluster runs on this machine, so --address auto would rightly find it")
        res = rl("sweep", CARTPOLE, "--seeds", "0", "--runs-dir", str(tmp_path / "runs"), "--backend", "ray",
                 "--address", "auto", env=RAY_ENV, timeout=60)
        assert res.returncode == 2 and "no running Ray cluster" in res.stderr, res.stderr
