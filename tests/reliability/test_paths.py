"""P9: run names and symlinks never lead a write outside the runs root (or, on resume, the run).

``../x``, ``.hidden`` and a symlinked group directory are also tests/integration/test_cli_errors.py
(test_bad_cli_arguments, test_symlinked_group_outside_runs_dir_is_refused), in a subprocess.
"""

from __future__ import annotations

import shutil

import pytest

from tests.reliability.harness import KINDS, assert_one_line_error, snapshot
from tests.reliability.inprocess import cli, copy_run

PPO = KINDS["ppo"]
TINY = ["--quiet", "--set", "train.total_steps=256", "--set", "checkpoint.every_steps=256", "--set",
        "evaluation.every_steps=0", "--set", "evaluation.episodes=1", "--set", "agent.n_epochs=1"]
BAD_RUN_IDS = {
    "dotdot": "..", "parent": "../escape", "nested_parent": "a/../../escape", "slash": "a/b", "absolute": "/tmp/x",
    "leading_dot": ".hidden", "nul": "a\0b", "300_chars": "x" * 300, "tab": "a\tb", "trailing_newline": "run\n",
    "unicode_lookalike": "run\u2215x",  # DIVISION SLASH
}


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", BAD_RUN_IDS)
def test_bad_run_id_is_refused_and_nothing_is_written(tmp_path, case):
    runs = tmp_path / "runs"
    res = cli("train", str(PPO.manifest), "--runs-dir", str(runs), "--run-id", BAD_RUN_IDS[case], *TINY)
    assert_one_line_error(res, 2, "--run-id")
    assert _tree(tmp_path) in ([], ["runs"], ["runs", "runs/cartpole-ppo"])


def test_manifest_name_with_a_trailing_newline_is_refused(tmp_path):
    text = PPO.manifest.read_text().replace("name: cartpole-ppo", 'name: "evil\\n"')
    (tmp_path / "m.yaml").write_text(text)
    res = cli("train", str(tmp_path / "m.yaml"), "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", *TINY)
    assert_one_line_error(res, 2, "name")
    assert not (tmp_path / "runs").exists()


def test_run_id_symlinked_outside_is_refused_even_with_force(tmp_path):
    """--force would clear the run directory: through the symlink, that would delete files outside."""
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (runs / PPO.group).mkdir(parents=True)
    (runs / PPO.group / "r").symlink_to(outside)
    for extra in ([], ["--force"]):
        res = cli("train", str(PPO.manifest), "--runs-dir", str(runs), "--run-id", "r", *TINY, *extra)
        assert_one_line_error(res, 2, "outside the runs directory")
        assert _tree(outside) == ["precious"] and (outside / "precious").read_text() == "keep me"


@pytest.mark.parametrize("entry", ["checkpoints", "tb", "events.jsonl", ".lock", "final", "metrics.csv"])
def test_resume_never_writes_through_a_symlink_out_of_the_run(reference, tmp_path, entry):
    """Each of the run's own entries, moved out and replaced by a symlink: ``--resume`` refuses before it
    locks, truncates or writes anything (through the link the lock would truncate its target, checkpoints
    would be written and pruned, final/ deleted, outside the run)."""
    run = copy_run(reference("ppo"), tmp_path / "runs", drop_after=1536)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    if entry == "final":
        target.mkdir()
        (target / "precious").write_text("keep me")
    elif (run / entry).exists():
        shutil.move(run / entry, target)
    else:
        target.write_text("keep me")
    (run / entry).symlink_to(target)
    before, run_before = snapshot(outside), snapshot(run)
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, str(run / entry), "is a symlink")
    assert snapshot(outside) == before
    assert snapshot(run) == run_before
