"""P11, P13, P3: broken checkpoints, metrics and final policies fail loudly; no silent restart.

All in-process (``experiments.cli.main``) on copies of the session's reference runs. A bit flip in
weights.safetensors on resume is already tests/integration/test_cli_train.py::
test_resume_skips_a_corrupted_newest_checkpoint; format-level cases of each component are
tests/unit/test_checkpoint.py.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.reliability.harness import KINDS, assert_one_line_error, compare_runs, snapshot
from tests.reliability.inprocess import cli, copy_run


def _newest(run):
    return sorted(p for p in (run / "checkpoints").iterdir() if p.name.startswith("step-"))[-1]


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip(f):
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x10
    f.write_bytes(bytes(data))


def _to_dir(f):
    f.unlink()
    f.mkdir()


DAMAGE = {
    "truncated": ("ppo", "weights.safetensors", _truncate, "incomplete or altered"),
    "zero_byte": ("ppo", "state.json", lambda f: f.write_bytes(b""), "empty (0 bytes)"),
    "directory_for_a_file": ("ppo", "state.json", _to_dir, "not a regular file"),
    "bit_flip_in_replay_buffer": ("dqn", "buffers.npz", _flip, "sha256 does not match"),
    "manifest_missing": ("curriculum", "MANIFEST.json", lambda f: f.unlink(), "the save never finished"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_resume_skips_a_broken_newest_checkpoint_says_why_and_ends_identical(reference, tmp_path, case):
    kind, name, damage, why = DAMAGE[case]
    ref = reference(kind)
    run = copy_run(ref, tmp_path)
    shutil.rmtree(run / "final")
    newest = _newest(run)
    damage(newest / name)
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())  # the console wraps long lines
    assert f"skipping checkpoint {newest.name}" in said and why in said, said
    previous = KINDS[kind].checkpoints[-2]
    assert f"resuming from step-{previous:012d}" in said
    event = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()][-2]  # ..., resume, finished
    assert event["event"] == "resume" and event["step"] == previous and event["skipped"][0][0] == str(newest)
    assert compare_runs(run, ref) is None


def test_all_checkpoints_broken_is_refused_and_nothing_restarts(reference, tmp_path):
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    for ck in (run / "checkpoints").iterdir():
        _truncate(ck / "weights.safetensors")
    before = snapshot(run)
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, "no verified checkpoint to resume from", "--force")
    assert "skipping checkpoint step-000000001536" in " ".join(res.stderr.split())
    assert snapshot(run) == before  # no metrics truncated, no new checkpoint, no restart from step 0


def test_checkpoint_of_a_newer_format_is_refused_not_skipped(reference, tmp_path):
    """Resuming from an older checkpoint would re-save step 2048 over the newer rlsuite's one."""
    run = copy_run(reference("ppo"), tmp_path)
    manifest = _newest(run) / "MANIFEST.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 2}))
    before = snapshot(run)
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, "written by a newer rlsuite (format_version 2; this version reads 1)",
                          "upgrade rlsuite")
    assert snapshot(run) == before


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A SAC and a Pendulum PPO run, tiny, trained in-process (targets for foreign checkpoints)."""
    runs = tmp_path_factory.mktemp("foreign")
    common = ["--runs-dir", str(runs), "--run-id", "t", "--quiet", "--set", "evaluation.every_steps=0",
              "--set", "evaluation.episodes=1"]
    sac = cli("train", str(KINDS["sac"].manifest), *common, "--set", "train.total_steps=300",
              "--set", "agent.learning_starts=250", "--set", "checkpoint.every_steps=300", "--set",
              "agent.buffer_size=300", "--set", "agent.batch_size=32", "--set", "agent.net_arch=[16,16]")
    ppo = cli("train", str(KINDS["ppo"].manifest.with_name("pendulum_ppo.yaml")), *common,
              "--set", "train.total_steps=256", "--set", "agent.n_steps=64", "--set", "checkpoint.every_steps=256",
              "--set", "agent.batch_size=64", "--set", "agent.n_epochs=1")
    assert sac.returncode == 0 and ppo.returncode == 0, sac.stderr + ppo.stderr
    return {"sac": runs / "pendulum-sac" / "t", "pendulum-ppo": runs / "pendulum-ppo" / "t"}


@pytest.mark.parametrize(("target", "fragments"), [
    ("sac", ["written by algo 'ppo', but the manifest says 'sac'"]),
    ("pendulum-ppo", ["in the checkpoint but", "other spaces"]),
    ("curriculum", ["has no state for 'curriculum'", "another configuration"]),
])
def test_checkpoint_from_another_algorithm_or_configuration_is_refused(reference, tiny_runs, tmp_path, target,
                                                                       fragments):
    """A PPO CartPole checkpoint copied in as the newest checkpoint of another run."""
    src = tiny_runs[target] if target in tiny_runs else reference(target)
    run = copy_run(src, tmp_path)
    foreign = reference("ppo") / "checkpoints" / "step-000000002048"
    for ck in (run / "checkpoints").iterdir():
        if int(ck.name[5:]) >= 2048:
            shutil.rmtree(ck)
    shutil.copytree(foreign, run / "checkpoints" / foreign.name)
    before = snapshot(run)
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, *fragments)
    assert snapshot(run) == before


@pytest.mark.parametrize("tail", ["cut_row", "nul_bytes"])
def test_a_damaged_last_metrics_row_is_dropped_on_resume(reference, tmp_path, tail):
    """A kill cuts the last row; a power loss can leave NUL bytes. Both lie after the checkpoint."""
    ref = reference("ppo")
    run = copy_run(ref, tmp_path, drop_after=1536)
    csv = run / "metrics.csv"
    data = csv.read_bytes()
    csv.write_bytes(data[:-40] if tail == "cut_row" else data + b"\0" * 300)
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    assert compare_runs(run, ref) is None


def test_a_damaged_metrics_row_before_the_checkpoint_is_refused(reference, tmp_path):
    """Rows up to the checkpoint were fsynced before it: damage there is not a kill, and dropping the rows
    after it (as the truncation used to) would silently lose history."""
    run = copy_run(reference("ppo"), tmp_path, drop_after=1536)
    csv = run / "metrics.csv"
    lines = csv.read_bytes().split(b"\n")
    lines[2] = lines[2][:30] + b"\r"  # the second data row loses its columns
    csv.write_bytes(b"\n".join(lines))
    before = snapshot(run / "checkpoints"), csv.read_bytes()
    res = cli("train", "--resume", str(run), "--quiet")
    assert (snapshot(run / "checkpoints"), csv.read_bytes()) == before
    assert_one_line_error(res, 2, f"{csv}:3: malformed row")


FINAL_DAMAGE = {
    "truncated": _truncate,
    "zero_byte": lambda f: f.write_bytes(b""),
    "header_bit_flip": lambda f: f.write_bytes(bytes([f.read_bytes()[0] ^ 0x40]) + f.read_bytes()[1:]),
    "directory_for_the_file": _to_dir,
    "data_bit_flip": lambda f: f.write_bytes(f.read_bytes()[:-8] + bytes(b ^ 0x40 for b in f.read_bytes()[-8:])),
    "manifest_missing": lambda f: (f.parent / "MANIFEST.json").unlink(),
    "policy_json_edited": lambda f: (f.parent / "policy.json").write_text(
        (f.parent / "policy.json").read_text().replace('"step": 2048', '"step": 2049')),
}


@pytest.mark.parametrize("case", FINAL_DAMAGE)
def test_eval_refuses_a_damaged_final_policy(reference, tmp_path, case):
    run = copy_run(reference("ppo"), tmp_path)
    FINAL_DAMAGE[case](run / "final" / "policy.safetensors")
    res = cli("eval", str(run), "--episodes", "1", "--json")
    line = assert_one_line_error(res, 2, str(run / "final"))
    assert "MANIFEST.json" in line or "not a regular file" in line, line


def test_eval_of_a_broken_checkpoint_is_one_line(reference, tmp_path):
    run = copy_run(reference("ppo"), tmp_path)
    _flip(_newest(run) / "weights.safetensors")
    res = cli("eval", str(run), "--episodes", "1", "--checkpoint", "2048")
    assert_one_line_error(res, 2, "weights.safetensors", "sha256 does not match")


@pytest.mark.parametrize("damage", ["bit_flip", "truncated", "metadata_edited"])
def test_a_damaged_dataset_is_refused_before_a_resume_touches_the_run(reference, tmp_path, damage):
    """P8: the offline dataset is verified (sha256 of its files, then structure and spaces) before any
    write, also on --resume, which re-reads it (checkpoints never hold it)."""
    run = copy_run(reference("offline"), tmp_path, drop_after=600)
    manifest = json.loads((run / "manifest.json").read_text())
    dataset = tmp_path / "dataset"
    shutil.copytree(manifest["dataset"]["path"], dataset)
    manifest["dataset"]["path"] = str(dataset)
    (run / "manifest.json").write_text(json.dumps(manifest))
    main = dataset / "data" / "main_data.hdf5"
    if damage == "bit_flip":
        _flip(main)
    elif damage == "truncated":
        _truncate(main)
    else:
        meta = dataset / "data" / "metadata.json"
        meta.write_text(meta.read_text().replace('"total_episodes": 5', '"total_episodes": 6'))
    before = snapshot(run)
    res = cli("train", "--resume", str(run), "--quiet")
    assert_one_line_error(res, 2, "dataset", str(dataset), "sha256 is")
    assert snapshot(run) == before
