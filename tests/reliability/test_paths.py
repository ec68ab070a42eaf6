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
    if case == "trailing_newline" and res.returncode == 0:
        pytest.xfail("experiments/manifest.py NAME_RE ends in '$', which re.match lets match before a final "
                     "newline: run id 'run\\n' creates a directory with a newline in its name (reported)")
    assert_one_line_error(res, 2, "--run-id")
    assert _tree(tmp_path) in ([], ["runs"], ["runs", "runs/cartpole-ppo"])


def test_manifest_name_with_a_trailing_newline_is_refused(tmp_path):
    text = PPO.manifest.read_text().replace("name: cartpole-ppo", 'name: "evil\\n"')
    (tmp_path / "m.yaml").write_text(text)
    res = cli("train", str(tmp_path / "m.yaml"), "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", *TINY)
    if res.returncode == 0:
        pytest.xfail("experiments/manifest.py NAME_RE accepts a name ending in a newline (reported)")
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


KNOWN_FOLLOWED = {  # entries that `rl train --resume` follows today (reported: experiments/train.py resume_run)
    "checkpoints": "new checkpoints are written (and old ones pruned) in the symlink's target",
    "tb": "TensorBoard events are written in the symlink's target",
    "events.jsonl": "the resume event is appended to the symlink's target",
    ".lock": "the lock truncates the symlink's target and writes its pid into it",
    "final": "save_final's rmtree raises on the symlink: a traceback after the whole run",
}


@pytest.mark.parametrize("entry", ["checkpoints", "tb", "events.jsonl", ".lock", "final", "metrics.csv"])
def test_resume_never_writes_through_a_symlink_out_of_the_run(reference, tmp_path, entry):
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
    before = snapshot(outside)
    try:
        res, raised = cli("train", "--resume", str(run), "--quiet"), None
    except OSError as err:
        res, raised = None, err
    safe = snapshot(outside) == before and raised is None and (
        res.returncode == 0 or (res.returncode == 2 and "Traceback" not in res.stderr))
    if not safe and entry in KNOWN_FOLLOWED:
        pytest.xfail(f"{entry} symlinked out of the run: {KNOWN_FOLLOWED[entry]} (reported)")
    assert safe, (entry, raised, res)
