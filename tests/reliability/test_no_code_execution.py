"""P5: nothing the suite loads can execute code.

The `audit` fixture (conftest.py) records ``pickle.find_class``, ``marshal.loads`` outside imports,
``os.system`` and calls of ``torch.load`` / ``yaml.load`` / ``numpy.load(allow_pickle=True)``. Each
canary file is first shown to be live (an unsafe loader runs its payload, which creates a directory),
then handed to the suite, which must refuse it without the payload running.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import marshal
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.harness import KINDS, REPO, assert_one_line_error, compare_runs
from tests.reliability.inprocess import cli, copy_run


class Payload:
    """Unpickling this calls ``os.mkdir(path)``: the canary."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.fixture
def canary(tmp_path):
    return tmp_path / "CANARY-payload-ran"


def _fired(canary: Path) -> bool:
    if canary.exists():
        canary.rmdir()
        return True
    return False


def _replace_component(ckpt: Path, name: str, data: bytes) -> None:
    """Swap one checkpoint file and fix MANIFEST.json, so only the parser can object (not the sha256)."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / "MANIFEST.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    manifest["sizes"][name] = len(data)
    (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))


def _pt_bytes(payload) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"net/w": payload}, buf)
    return buf.getvalue()


def _newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step-*"))[-1]


def test_the_audit_hook_sees_unpickling_positive_control(audit, canary, tmp_path):
    import torch

    pickle.loads(pickle.dumps(Payload(canary)))  # noqa: S301 -- the positive control must unpickle
    assert _fired(canary) and ("pickle.find_class" in [e for e, _ in audit])
    audit.clear()
    marshal.loads(marshal.dumps(compile("1", "<canary>", "eval")))
    assert [e for e, _ in audit] == ["marshal.loads"]
    audit.clear()
    (tmp_path / "p.pt").write_bytes(_pt_bytes(Payload(canary)))
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert _fired(canary) and [e for e, _ in audit][:2] == ["torch.load(weights_only=False)", "pickle.find_class"]


def _sb3_zip(path: Path, data: dict, policy_pth: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data", json.dumps(data))
        zf.writestr("_stable_baselines3_version", "2.9.2")
        if policy_pth is not None:
            zf.writestr("policy.pth", policy_pth)
    return path


def test_sb3_zip_with_a_cloudpickle_payload_is_refused(audit, canary, tmp_path):
    """SB3 stores classes as cloudpickle in the zip's ``data`` JSON; its ``ALGO.load`` unpickles them."""
    import cloudpickle

    blob = base64.b64encode(cloudpickle.dumps(Payload(canary))).decode()
    model = _sb3_zip(tmp_path / "model.zip",
                     {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": blob}})
    cloudpickle.loads(base64.b64decode(blob))  # live: SB3's loader would run it
    assert _fired(canary)
    audit.clear()
    res = cli("eval", str(model), "--env", "CartPole-v1", "--episodes", "1")
    assert_one_line_error(res, 2, str(model), "refusing to load", "--trust-pickle")
    assert not _fired(canary) and audit == []


def test_sb3_zip_with_a_pickled_object_in_policy_pth_is_refused(audit, canary, tmp_path):
    """No cloudpickle in ``data``, but ``policy.pth`` holds a ``__reduce__`` payload instead of tensors."""
    model = _sb3_zip(tmp_path / "model.zip", {"policy_kwargs": {}}, _pt_bytes(Payload(canary)))
    res = cli("eval", str(model), "--env", "CartPole-v1", "--episodes", "1")
    assert_one_line_error(res, 2, str(model))
    assert not _fired(canary) and audit == []


def test_pt_pickle_as_checkpoint_weights_is_refused_and_the_resume_uses_the_previous_one(audit, canary, reference,
                                                                                           tmp_path):
    ref = reference("ppo")
    run = copy_run(ref, tmp_path)
    shutil.rmtree(run / "final")
    newest = _newest(run)
    _replace_component(newest, "weights.safetensors", _pt_bytes(Payload(canary)))
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert f"skipping checkpoint {newest.name}" in said and "cannot be parsed" in said, said
    assert not _fired(canary) and audit == []
    assert compare_runs(run, ref) is None


def test_pt_pickle_as_final_policy_is_refused_by_eval(audit, canary, reference, tmp_path):
    run = copy_run(reference("ppo"), tmp_path)
    (run / "final" / "policy.safetensors").write_bytes(_pt_bytes(Payload(canary)))
    res = cli("eval", str(run), "--episodes", "1")
    assert_one_line_error(res, 2, "policy.safetensors")
    assert not _fired(canary) and audit == []


def test_npz_with_an_object_array_as_replay_buffer_is_refused(audit, canary, reference, tmp_path):
    ref = reference("dqn")
    run = copy_run(ref, tmp_path)
    shutil.rmtree(run / "final")
    newest = _newest(run)
    buf = io.BytesIO()
    np.savez(buf, obs=np.array([Payload(canary)], dtype=object))
    (tmp_path / "b.npz").write_bytes(buf.getvalue())
    np.load(tmp_path / "b.npz", allow_pickle=True)["obs"]  # live
    assert _fired(canary)
    audit.clear()
    _replace_component(newest, "buffers.npz", buf.getvalue())
    res = cli("train", "--resume", str(run), "--quiet")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert f"skipping checkpoint {newest.name}" in said and "allow_pickle=False" in said, said
    assert not _fired(canary) and audit == []
    assert compare_runs(run, ref) is None


def test_yaml_manifest_with_a_python_tag_is_refused(audit, canary, tmp_path):
    import yaml

    text = KINDS["ppo"].manifest.read_text().replace(
        "  gamma: 0.98", f"  gamma: !!python/object/apply:os.mkdir [{json.dumps(str(canary))}]")
    yaml.unsafe_load(text)  # live
    assert _fired(canary)
    audit.clear()
    (tmp_path / "m.yaml").write_text(text)
    res = cli("train", str(tmp_path / "m.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert_one_line_error(res, 2, "m.yaml:", "YAML tag")
    assert not _fired(canary) and audit == []
    assert not (tmp_path / "runs").exists()


def test_train_resume_and_eval_never_unpickle(audit, tmp_path):
    """A tiny off-policy run (checkpoints with a replay buffer), resumed and evaluated, in this process."""
    k = KINDS["dqn"]
    runs = tmp_path / "runs"
    args = ["--set", "train.total_steps=600", "--set", "checkpoint.every_steps=300", "--set",
            "evaluation.every_steps=300"]
    res = cli("train", str(k.manifest), "--runs-dir", str(runs), "--run-id", "a", "--quiet", *k.args(), *args)
    assert res.returncode == 0, res.stderr
    run = runs / k.group / "a"
    shutil.rmtree(_newest(run))
    assert cli("train", "--resume", str(run), "--quiet").returncode == 0
    assert cli("eval", str(run), "--episodes", "2", "--json").returncode == 0
    assert cli("eval", str(run), "--episodes", "2", "--checkpoint", "300").returncode == 0
    assert audit == []
    # Nothing written is a pickle: no pickle protocol opcode at the start, no pickle extension.
    for f in run.rglob("*"):
        if f.is_file():
            assert f.suffix not in (".pkl", ".pickle", ".pt", ".pth"), f
            assert f.read_bytes()[:1] != b"\x80", f


def test_no_unsafe_loader_in_the_source():
    """No code calls a loader that can unpickle or evaluate (a tripwire for new code). SB3's own
    ``ALGO.load`` behind ``rl eval --trust-pickle`` is the one, explicit and loudly named, opt-in."""
    unsafe = [r"\bpickle\.loads?\(", r"cloudpickle\.loads?\(", r"\bUnpickler\(", r"allow_pickle\s*=\s*True",
              r"weights_only\s*=\s*False", r"torch\.load\((?!.*weights_only\s*=\s*True)",
              r"yaml\.(unsafe_)?load\(", r"\b(Unsafe|Full)Loader\b", r"(?<![.\w])(eval|exec)\("]
    pattern = re.compile("|".join(unsafe))
    hits = [f"{f.relative_to(REPO)}:{i}: {line.strip()}" for pkg in ("rl", "envs", "agents", "experiments")
            for f in sorted((REPO / pkg).rglob("*.py"))
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line.split("#")[0])]
    assert hits == []
