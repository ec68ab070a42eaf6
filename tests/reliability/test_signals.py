"""P2′: SIGTERM / Ctrl-C stop at the next checkpoint, which resumes bit-identically; a second signal stops at once.

In-process (``experiments.cli.main``): the run sends the signal to itself from inside a PPO update,
so the moment is exact and the test deterministic. With real processes and signals from outside:
tests/integration/test_cli_train.py::test_sigterm_and_ctrl_c_stop_cleanly_and_resume_exactly.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from rl.core.checkpoint import list_checkpoints, load_checkpoint
from rl.core.metrics import read_csv_rows
from tests.reliability.harness import KINDS, assert_one_line_error, compare_runs, train_args
from tests.reliability.inprocess import cli

PPO = KINDS["ppo"]  # 256 env steps per update; checkpoints at 512, 1024, 1536, 2048


def _signal_after_update(monkeypatch, update: int, *signals: int) -> None:
    """Send ``signals`` to this process right after the ``update``-th PPO update (before its step is counted)."""
    from agents.ppo.agent import PPOAgent

    real, calls = PPOAgent.update, []

    def update_then_signal(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == update:
            for sig in signals:
                os.kill(os.getpid(), sig)
        return out
    monkeypatch.setattr(PPOAgent, "update", update_then_signal)


def _events(run) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_at_the_next_checkpoint_which_resumes_exactly(reference, tmp_path, monkeypatch, capfd, sig,
                                                                     code):
    """Signalled during update 3 (env step 512 -> 768): the run trains on to the checkpoint at 1024, saves it
    exactly as the uninterrupted run does, and exits; --resume from it ends bit-identical."""
    ref = reference("ppo")
    _signal_after_update(monkeypatch, 3, sig)
    res = cli(*train_args(PPO, tmp_path, "stopped"))
    run = tmp_path / PPO.group / "stopped"
    line = assert_one_line_error(res, code, "rl: interrupted; wrote checkpoint step-000000001024", "--resume")
    notice = capfd.readouterr().err  # written to fd 2 by the signal handler (os.write: safe inside a handler)
    assert (f"rl: {signal.Signals(sig).name}: stopping after the next checkpoint (env step 1024), where a resume "
            "continues exactly; send it again to stop now and keep step-000000000512") in notice, (notice, line)
    assert _events(run)[-1] | {"time": None} == {"time": None, "event": "interrupted", "step": 1024,
                                                  "checkpoint": "step-000000001024"}
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-000000000512", "step-000000001024"]
    assert max(int(r["step"]) for r in read_csv_rows(run / "metrics.csv")) == 1024
    assert not (run / "final").exists()
    counters = load_checkpoint(run / "checkpoints" / "step-000000001024").state["counters"]
    assert (counters["env_steps"], counters["iterations"], counters["checkpoint_index"]) == (1024, 4, 2)
    monkeypatch.undo()
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0 and "resuming from step-000000001024" in res.stderr, res.stderr
    assert compare_runs(run, ref) is None


@pytest.mark.parametrize(("update", "signals", "kept"), [
    (3, (signal.SIGTERM, signal.SIGTERM), 512),  # a second signal: stop at once
    (7, (signal.SIGINT,), 1536),  # env step 1536 -> 1792: the next checkpoint is the end of the run, stop at once
])
def test_a_second_signal_or_none_before_the_end_stops_at_once(reference, tmp_path, monkeypatch, update, signals,
                                                              kept):
    _signal_after_update(monkeypatch, update, *signals)
    res = cli(*train_args(PPO, tmp_path, "stopped"))
    run = tmp_path / PPO.group / "stopped"
    assert_one_line_error(res, 128 + signals[-1], "rl: interrupted; the last checkpoint is kept")
    assert _events(run)[-1]["event"] == "interrupted" and _events(run)[-1]["checkpoint"] is None
    assert max(int(p.name[5:]) for p in list_checkpoints(run / "checkpoints")) == kept
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0 and f"resuming from step-{kept:012d}" in res.stderr, res.stderr
    assert compare_runs(run, reference("ppo")) is None
