"""The CLI end to end on tiny budgets: train, eval, reproduce, resume, determinism."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows
from tests.integration.conftest import MANIFESTS, TINY, rl

CARTPOLE = str(MANIFESTS / "cartpole_ppo.yaml")


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in read_csv_rows(run / "metrics.csv")]


def _weights(run: Path) -> dict:
    return load_file(str(run / "final" / "policy.safetensors"))


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("ref") / "runs"
    res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "ref", "--quiet", *TINY)
    assert res.returncode == 0, res.stderr
    return runs / "cartpole-ppo" / "ref"


def test_run_directory_layout(reference):
    names = {p.name for p in reference.iterdir()}
    assert {"manifest.json", "provenance.json", "metrics.csv", "tb", "checkpoints", "final", "events.jsonl"} <= names
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["agent"]["n_epochs"] == 20 and manifest["train"]["total_steps"] == 3072
    prov = json.loads((reference / "provenance.json").read_text())
    assert prov["packages"]["torch"].startswith("2.13") and prov["threads"]["torch"] == 1
    assert "train.total_steps=3072" in prov["overrides"]
    steps = [int(r["step"]) for r in read_csv_rows(reference / "metrics.csv")]
    assert steps == sorted(steps) and steps[-1] >= 3072
    ckpts = sorted(p.name for p in (reference / "checkpoints").iterdir())
    assert ckpts and all(c.startswith("step-") for c in ckpts)
    assert list((reference / "tb").glob("events.out.tfevents.*"))


def test_same_seed_identical_other_seed_different(reference, runs):
    again = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "again", "--quiet", *TINY)
    other = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "other", "--seed", "1", "--quiet", *TINY)
    assert again.returncode == 0 and other.returncode == 0, again.stderr + other.stderr
    a, o = runs / "cartpole-ppo" / "again", runs / "cartpole-ppo" / "other"
    assert _metrics(a) == _metrics(reference)
    assert _same_weights(_weights(a), _weights(reference))
    assert _metrics(o) != _metrics(reference)
    assert not _same_weights(_weights(o), _weights(reference))


def test_eval_json_is_read_only_and_repeatable(reference):
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*")}
    r1 = rl("eval", str(reference), "--episodes", "4", "--json")
    r2 = rl("eval", str(reference), "--episodes", "4", "--json")
    assert r1.returncode == 0, r1.stderr
    out = json.loads(r1.stdout)
    assert out == json.loads(r2.stdout)
    assert {"mean_return", "std_return", "returns", "episodes", "seed", "checkpoint"} <= out.keys()
    assert len(out["returns"]) == 4 and out["checkpoint"] == "final"
    assert np.isclose(out["mean_return"], np.mean(out["returns"]))
    other_seed = json.loads(rl("eval", str(reference), "--episodes", "4", "--json", "--seed", "9").stdout)
    assert other_seed["seed"] == 9
    step = sorted((reference / "checkpoints").iterdir())[-1].name.split("-")[1]
    ck = rl("eval", str(reference), "--episodes", "2", "--json", "--checkpoint", str(int(step)))
    assert ck.returncode == 0 and json.loads(ck.stdout)["checkpoint"] == f"step-{step}"
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*")} == before


def test_reproduce_reports_identical(reference):
    res = rl("reproduce", str(reference))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "identical" in res.stdout


def test_reproduce_reports_first_difference(reference, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    lines = (copy / "metrics.csv").read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    col = header.index("train/value_loss")
    row = lines[2].rstrip("\n").split(",")
    row[col] = "123.0"
    lines[2] = ",".join(row) + "\n"
    (copy / "metrics.csv").write_text("".join(lines))
    res = rl("reproduce", str(copy))
    assert res.returncode == 1
    assert "row 2" in res.stdout and "train/value_loss" in res.stdout


KILL_BUDGET = ["--set", "train.total_steps=8192"]


def _train_until_killed(runs: Path, run_id: str, after_rows: int) -> None:
    """Start a run and SIGKILL it as soon as metrics.csv has ``after_rows`` rows."""
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", CARTPOLE, "--runs-dir", str(runs),
                             "--run-id", run_id, "--quiet", *TINY, *KILL_BUDGET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv = runs / "cartpole-ppo" / run_id / "metrics.csv"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if csv.exists() and csv.read_bytes().count(b"\n") > after_rows:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("longref") / "runs"
    res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "ref", "--quiet", *TINY, *KILL_BUDGET)
    assert res.returncode == 0, res.stderr
    return runs / "cartpole-ppo" / "ref"


@pytest.mark.parametrize("after_rows", [2, 9, 17, 26])
def test_sigkill_then_resume_equals_uninterrupted(long_reference, runs, after_rows):
    run = runs / "cartpole-ppo" / "killed"
    _train_until_killed(runs, "killed", after_rows)
    res = rl("train", "--resume", str(run), "--quiet")
    if after_rows >= 9:  # a checkpoint is written every 4 rows: there must be one to resume from
        assert res.returncode == 0, res.stderr
    if res.returncode != 0:  # killed before the first checkpoint: nothing to resume, and it says so
        assert "no verified checkpoint" in res.stderr, res.stderr
        res = rl("train", CARTPOLE, "--runs-dir", str(runs), "--run-id", "killed", "--force", "--quiet",
                 *TINY, *KILL_BUDGET)
        assert res.returncode == 0, res.stderr
    else:
        assert "resuming from step-" in res.stderr
    assert _metrics(run) == _metrics(long_reference)
    assert _same_weights(_weights(run), _weights(long_reference))


def test_resume_skips_a_corrupted_newest_checkpoint(reference, tmp_path):
    import shutil

    copy = tmp_path / "cartpole-ppo" / "ref"
    shutil.copytree(reference, copy)
    newest = sorted((copy / "checkpoints").iterdir())[-1]
    data = bytearray((newest / "weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (newest / "weights.safetensors").write_bytes(bytes(data))
    res = rl("train", "--resume", str(copy), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "skipping checkpoint" in res.stderr and newest.name in res.stderr
    assert _metrics(copy) == _metrics(reference)
    assert _same_weights(_weights(copy), _weights(reference))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_cleanly_and_resume_exactly(long_reference, runs, sig, code):
    """The first signal lets the run train on to its next checkpoint (an exact resume point: the envs
    restart there, see experiments/train.py), write it as the uninterrupted run does and exit 143 / 130."""
    from rl.core.checkpoint import latest_verified

    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", CARTPOLE, "--runs-dir", str(runs),
                             "--run-id", "stopped", "--quiet", *TINY, *KILL_BUDGET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = runs / "cartpole-ppo" / "stopped"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((run / "checkpoints").glob("step-*")):
        time.sleep(0.005)
    first = max(int(p.name[5:]) for p in (run / "checkpoints").glob("step-*"))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == code, err
    assert "Traceback" not in err and "--resume" in err
    last = json.loads((run / "events.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "interrupted" and last["checkpoint"] is not None, err
    assert f"stopping after the next checkpoint (env step {last['step']})" in err
    assert f"rl: interrupted; wrote checkpoint {last['checkpoint']}" in err
    # the next scheduled checkpoint, not the signal's step (>=: the signal may land inside the first save)
    assert last["step"] >= first and last["step"] % 1024 == 0
    found, skipped = latest_verified(run / "checkpoints")
    assert found.path.name == last["checkpoint"] == f"step-{last['step']:012d}" and skipped == []
    assert max(int(r["step"]) for r in read_csv_rows(run / "metrics.csv")) == last["step"]
    assert not (run / "final").exists()
    res = rl("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0 and f"resuming from {last['checkpoint']}" in res.stderr, res.stderr
    assert _metrics(run) == _metrics(long_reference)
    assert _same_weights(_weights(run), _weights(long_reference))


def test_two_thread_sac_run_reproduces(tmp_path):
    # [256, 256] critics and batch 256: the update's matrix products are big enough for torch to split
    # them over both threads, so a run that repeats here repeats with parallel GEMMs.
    runs = tmp_path / "runs"
    sets = [f"--set={kv}" for kv in ("threads=2", "train.total_steps=300", "agent.learning_starts=100",
                                     "evaluation.every_steps=0", "evaluation.episodes=1",
                                     "checkpoint.every_steps=100000")]
    res = rl("train", str(MANIFESTS / "pendulum_sac.yaml"), "--runs-dir", str(runs), "--run-id", "t2", "--quiet",
             *sets)
    assert res.returncode == 0, res.stderr
    run = runs / "pendulum-sac" / "t2"
    assert json.loads((run / "manifest.json").read_text())["threads"] == 2
    again = rl("reproduce", str(run))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "identical" in again.stdout
