"""P10: disk full, failing fsync, read-only directories: loud, harmless, and the run stops.

Every case checks: a non-zero exit with one line naming the path and the errno, the previous
checkpoint intact (it still verifies, or is byte-identical), no temporary entries left, no pruning
after a failed save, and no training past the failed save (no later metrics rows, no final/).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest

from rl.core.checkpoint import latest_verified, list_checkpoints, load_checkpoint
from rl.core.metrics import read_csv_rows
from tests.reliability.harness import (
    KINDS,
    REPO,
    assert_one_line_error,
    compare_runs,
    rl,
    snapshot,
    train_args,
)
from tests.reliability.inprocess import cli, copy_run

PPO, DQN = KINDS["ppo"], KINDS["dqn"]


def _steps(run) -> list[int]:
    return [int(p.name[5:]) for p in list_checkpoints(run / "checkpoints")]


def _assert_stopped_at(run, step: int) -> None:
    """Nothing was trained or published after the failed save at ``step``."""
    assert max(int(r["step"]) for r in read_csv_rows(run / "metrics.csv")) <= step
    assert not (run / "final").exists()
    events = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    last = max(i for i, e in enumerate(events) if e in ("start", "resume"))
    assert "finished" not in events[last:], events
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_disk_full_during_a_save_keeps_earlier_checkpoints_and_stops(zygote, reference, tmp_path):
    """RLIMIT_FSIZE (SIGXFSZ ignored) in the forked child: the third save's buffers.npz cannot be written."""
    ref = reference("dqn")
    sizes = {p.name: p.stat().st_size for p in (ref / "checkpoints" / "step-000000001500").iterdir()}
    limit = sizes["buffers.npz"] * 5 // 6  # between the buffers of step 1000 (2/3) and of step 1500
    assert sizes["weights.safetensors"] < limit and sizes["state.json"] < limit
    res = zygote.run(*train_args(DQN, tmp_path, "full"), fsize=limit)
    run = tmp_path / DQN.group / "full"
    assert_one_line_error(res, 2, "could not save checkpoint", str(run / "checkpoints" / "step-000000001500"),
                          "File too large [EFBIG]")
    assert _steps(run) == [500, 1000]  # keep_last=2: step 500 would have been pruned by a successful save
    assert all(load_checkpoint(p) for p in list_checkpoints(run / "checkpoints"))
    _assert_stopped_at(run, 1500)
    res = zygote.run("train", "--resume", str(run), "--quiet")  # space is back: resume finishes exactly
    assert res.returncode == 0 and "resuming from step-000000001000" in res.stderr, res.stderr
    assert compare_runs(run, ref) is None


def _enospc_for(predicate):
    real = os.fsync

    def fsync(fd):
        if predicate(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    return fsync


def test_fsync_failure_during_a_save_is_a_failed_save(reference, tmp_path, monkeypatch):
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    before = snapshot(run / "checkpoints")
    monkeypatch.setattr(os, "fsync", _enospc_for(lambda p: "/checkpoints/.tmp-step-" in p))
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, str(run / "checkpoints" / "step-000000002048"), "No space left on device [ENOSPC]")
    assert snapshot(run / "checkpoints") == before
    _assert_stopped_at(run, 2048)


def test_metrics_write_failure_stops_the_run_before_the_next_checkpoint(reference, tmp_path, monkeypatch):
    """``metrics.csv`` cannot be made durable before a save: no checkpoint may claim rows that are not on disk."""
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    before = snapshot(run / "checkpoints")
    monkeypatch.setattr(os, "fsync", _enospc_for(lambda p: p.endswith("/metrics.csv")))
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, "No space left on device [ENOSPC]", str(run / "metrics.csv"))
    assert snapshot(run / "checkpoints") == before
    assert not (run / "final").exists()


# -- read-only directories ---------------------------------------------------------------------------------

_BIND_RO = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'


def _readonly_strategy(tmp_path) -> str:
    """'chmod' where a mode without write bits stops this user; else 'bind' (a read-only bind mount in a
    private mount namespace, for root); else skip."""
    probe = tmp_path / "ro-probe"
    probe.mkdir(exist_ok=True)
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return "chmod"
    finally:
        probe.chmod(0o755)
    (probe / "x").unlink()
    try:
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", _BIND_RO, "sh", str(probe),
                              "sh", "-c", 'touch "$0/x"', str(probe)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        res = None
    if res is None or res.returncode == 0 or "Read-only" not in res.stderr:
        pytest.skip("chmod does not stop this user's writes (root?) and no private read-only bind mount is "
                    "possible here (unshare/mount not permitted)")
    return "bind"


def _rl_readonly(tmp_path, readonly, *args: str) -> subprocess.CompletedProcess:
    """``rl ARGS`` in a fresh interpreter that sees ``readonly`` (a directory) read-only."""
    strategy = _readonly_strategy(tmp_path)
    if strategy == "chmod":
        modes = {p: p.stat().st_mode for p in [readonly, *readonly.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            return rl(*args)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", _BIND_RO, "sh", str(readonly),
           sys.executable, "-m", "experiments.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_read_only_checkpoints_directory_fails_the_save_and_stops(reference, tmp_path):
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    before = snapshot(run / "checkpoints")
    res = _rl_readonly(tmp_path, run / "checkpoints", "train", "--resume", str(run), "--quiet")
    line = assert_one_line_error(res, 2, "could not save checkpoint", str(run / "checkpoints"))
    assert "[EROFS]" in line or "[EACCES]" in line, line
    assert snapshot(run / "checkpoints") == before
    _assert_stopped_at(run, 2048)


def test_read_only_run_directory_is_refused_before_training(reference, tmp_path):
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    before = snapshot(run)
    res = _rl_readonly(tmp_path, run, "train", "--resume", str(run), "--quiet")
    assert res.returncode != 0
    assert snapshot(run) == before
    assert "resuming from" not in res.stderr  # refused before the session started
    line = assert_one_line_error(res, 2, str(run / ".lock"), "cannot open the run lock")
    assert "[EROFS]" in line or "[EACCES]" in line or "Read-only" in line or "Permission denied" in line, line


def test_read_only_runs_directory_is_refused_before_anything_is_written(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    res = _rl_readonly(tmp_path, runs, *train_args(PPO, runs, "r"))
    assert res.returncode != 0
    assert list(runs.iterdir()) == []
    line = assert_one_line_error(res, 2, str(runs / PPO.group), "cannot create the run directory")
    assert "[EROFS]" in line or "[EACCES]" in line, line


def test_enospc_on_a_small_tmpfs(reference, tmp_path):
    """A real ENOSPC: the run directory on a tmpfs of ~2.5 checkpoints (root with mount namespaces only)."""
    if _readonly_strategy(tmp_path) != "bind":
        pytest.skip("a private tmpfs needs root and mount namespaces")
    ckpt = (reference("ppo") / "checkpoints" / "step-000000002048" / "weights.safetensors").stat().st_size
    size_kib = (ckpt * 5 // 2 + 64 * 1024) // 1024
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    script = ('size=$1; mnt=$2; out=$3; shift 3; mount -t tmpfs -o size="$size"k tmpfs "$mnt" || exit 99; '
              '"$@"; rc=$?; cp -a "$mnt/." "$out/"; exit $rc')
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(size_kib), str(mnt), str(out),
           sys.executable, "-m", "experiments.cli", *train_args(PPO, mnt / "runs", "r")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    run = out / "runs" / PPO.group / "r"
    line = assert_one_line_error(res, 2, "could not save checkpoint", "No space left on device [ENOSPC]")
    failed = int(line.split("step-")[1][:12])
    found, skipped = latest_verified(run / "checkpoints")
    assert skipped == [] and found is not None and found.step < failed
    _assert_stopped_at(run, failed)
    shutil.rmtree(out)


def test_eval_works_on_a_read_only_run(reference, tmp_path):
    """P12: evaluation only reads the run, so a read-only copy of it evaluates like the original."""
    run = copy_run(reference("ppo"), tmp_path)
    res = _rl_readonly(tmp_path, run, "eval", str(run), "--episodes", "2", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["episodes"] == 2 and json.loads(res.stdout)["checkpoint"] == "final"
