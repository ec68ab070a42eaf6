import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rl.core.checkpoint as ckpt
from rl.core.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    atomic_write_text,
    cleanup_stale,
    latest_verified,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
)
from rl.core.seeding import SeedPlan, generator_state, restore_generator

REPO = Path(__file__).resolve().parents[2]
HOOKS_BEFORE_REPLACE = ["between_components", "after_tmp_write", "before_fsync", "before_replace"]
HOOKS_AFTER_REPLACE = ["after_replace_before_dir_fsync", "before_prune"]


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "pi.w": rng.standard_normal((3, 4)).astype(np.float32),
        "pi.b": np.zeros(4, np.float32),
        "transposed": np.arange(6, dtype=np.float64).reshape(2, 3).T,  # non-contiguous view
        "scalar": np.array(2.5),
        "big_endian": np.arange(3, dtype=">i4"),
    }


def _state(step: int = 10) -> dict:
    return {"env_steps": step, "updates": 3, "lr": 2.5e-4, "phase": "online", "teacher": {"p": [0.5, 0.5]}}


def _buffers() -> dict[str, np.ndarray]:
    return {"obs": np.arange(15, dtype=np.float32).reshape(5, 3), "terminated": np.array([0, 0, 1, 0, 0], bool)}


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _rewrite(path: Path, name: str, data: bytes) -> None:
    """Replace one component and fix MANIFEST.json, so only the format checks can object."""
    (path / name).write_bytes(data)
    manifest = json.loads((path / "MANIFEST.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    manifest["sizes"][name] = len(data)
    (path / "MANIFEST.json").write_text(json.dumps(manifest))


def test_round_trip_preserves_arrays_state_and_rng(tmp_path):
    rng = SeedPlan(3).generator("sampler")
    rng.random(7)
    state = {**_state(), "rng": generator_state(rng)}
    path = save_checkpoint(tmp_path, 10240, weights=_weights(), state=state, buffers=_buffers())
    assert path == tmp_path / "step-000000010240"
    assert sorted(p.name for p in path.iterdir()) == [
        "MANIFEST.json", "buffers.npz", "state.json", "weights.safetensors"]
    loaded = load_checkpoint(path)
    assert (loaded.step, loaded.path, loaded.state) == (10240, path, state)
    for given, got in ((_weights(), loaded.weights), (_buffers(), loaded.buffers)):
        assert given.keys() == got.keys()
        for key in given:
            assert got[key].shape == given[key].shape and got[key].dtype.kind == given[key].dtype.kind
            np.testing.assert_array_equal(got[key], given[key])
    restored = SeedPlan(0).generator("other")
    restore_generator(restored, loaded.state["rng"])
    np.testing.assert_array_equal(restored.random(4), rng.random(4))


def test_manifest_lists_sha256_of_every_file(tmp_path):
    path = save_checkpoint(tmp_path, 5, weights=_weights(), state=_state())
    manifest = json.loads((path / "MANIFEST.json").read_text())
    assert manifest["format_version"] == 1 and manifest["step"] == 5
    assert manifest["files"] == {n: sha256_file(path / n) for n in ("weights.safetensors", "state.json")}
    assert load_checkpoint(path).buffers is None


@pytest.mark.parametrize("name", ["weights.safetensors", "buffers.npz", "state.json"])
def test_bit_flip_is_detected(tmp_path, name):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state(), buffers=_buffers())
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / name).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{name}.*sha256 does not match"):
        load_checkpoint(path)


@pytest.mark.parametrize(("size", "match"), [(0.5, r"says \d+ bytes, the file is \d+ bytes"), (0, r"empty")])
def test_truncated_and_empty_files_are_detected(tmp_path, size, match):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state())
    file = path / "weights.safetensors"
    file.write_bytes(file.read_bytes()[: int(size * file.stat().st_size)])
    with pytest.raises(CheckpointError, match=rf"weights.safetensors is unusable: incomplete.*{match}"):
        load_checkpoint(path)


def test_directory_in_place_of_a_file_or_missing_file(tmp_path):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state(), buffers=_buffers())
    (path / "state.json").unlink()
    (path / "state.json").mkdir()
    with pytest.raises(CheckpointError, match=r"state.json is unusable: not a regular file"):
        load_checkpoint(path)
    (path / "buffers.npz").unlink()
    (path / "state.json").rmdir()
    with pytest.raises(CheckpointError, match=r"(buffers|state).* is missing"):
        load_checkpoint(path)
    (path / "MANIFEST.json").unlink()
    with pytest.raises(CheckpointError, match=r"MANIFEST.json is missing \(the save never finished\)"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "step-000000000099")


def test_future_format_version_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state())
    manifest = json.loads((path / "MANIFEST.json").read_text())
    (path / "MANIFEST.json").write_text(json.dumps({**manifest, "format_version": 2}))
    with pytest.raises(CheckpointError, match=r"newer rlsuite \(format_version 2; this version reads 1\)"):
        load_checkpoint(path)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda m: m.replace('"step": 1', '"step": 1, "step": 1'), "duplicate key 'step'"),
    (lambda m: m.replace('"step": 1', '"step": NaN'), "non-finite constant NaN"),
    (lambda m: m.replace('"step": 1', '"step": 2'), "directory name says step 1 but the manifest says 2"),
    (lambda m: m.replace('"state.json"', '"../state.json"'), "must list weights.safetensors, state.json"),
    (lambda m: m.replace('"format_version": 1', '"format_version": true'), "format_version is True"),
])
def test_malformed_manifest_is_refused(tmp_path, edit, match):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state())
    (path / "MANIFEST.json").write_text(edit((path / "MANIFEST.json").read_text().replace("\n", "")))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


@pytest.mark.parametrize(("text", "match"), [
    ('{"lr": NaN}', "non-finite constant NaN"),
    ('{"lr": -Infinity}', "non-finite constant -Infinity"),
    ('{"lr": 1e999}', "overflows to inf"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("[1, 2]", "expected a JSON object"),
])
def test_state_json_is_parsed_strictly(tmp_path, text, match):
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state())
    _rewrite(path, "state.json", text.encode())
    with pytest.raises(CheckpointError, match=rf"state.json is unusable: .*{match}"):
        load_checkpoint(path)


@pytest.mark.parametrize(("state", "match"), [
    ({"opt": {"lr": float("nan")}}, r"state\['opt'\]\['lr'\] is nan"),
    ({"returns": [1.0, float("inf")]}, r"state\['returns'\]\[1\] is inf"),
    ({"count": np.int64(3)}, r"state\['count'\] is of type int64"),
    ({"by_task": {0: 1.0}}, r"state\['by_task'\] has key 0 of type int"),
    ([1, 2], "state must be a dict"),
])
def test_unstorable_state_is_refused_before_writing(tmp_path, state, match):
    with pytest.raises(CheckpointError, match=rf"refusing to save checkpoint .*step-000000000001: {match}"):
        save_checkpoint(tmp_path / "ck", 1, weights=_weights(), state=state)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize(("weights", "buffers", "match"), [
    ({}, {"names": np.array(["a", None], dtype=object)}, r"buffers\['names'\] has dtype object"),
    ({"w": np.array([{}], dtype=object)}, None, r"weights\['w'\] has dtype object"),
    ({"w": [1.0, 2.0]}, None, r"weights\['w'\] is a list"),
])
def test_object_and_non_arrays_are_refused_at_save(tmp_path, weights, buffers, match):
    with pytest.raises(CheckpointError, match=match):
        save_checkpoint(tmp_path, 1, weights=weights, state={}, buffers=buffers)
    assert list(tmp_path.iterdir()) == []


def test_list_checkpoints_orders_by_step_and_ignores_other_entries(tmp_path):
    for step in (100, 2, 10):
        save_checkpoint(tmp_path, step, weights={}, state={})
    (tmp_path / ".tmp-step-000000000200-abcd").mkdir()
    (tmp_path / ".old-step-000000000002-abcd").mkdir()
    (tmp_path / "step-000000000300").write_text("a stray file")
    (tmp_path / "step-12").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert [p.name[-3:] for p in list_checkpoints(tmp_path)] == ["002", "010", "100"]
    assert list_checkpoints(tmp_path / "missing") == []


def test_latest_verified_skips_broken_newer_checkpoints(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, weights=_weights(step), state=_state(step))
    newest = tmp_path / "step-000000000003"
    (newest / "weights.safetensors").write_bytes(b"\0" * 10)
    found, skipped = latest_verified(tmp_path)
    assert found.step == 2 and found.state == _state(2)
    assert [p for p, _ in skipped] == [newest] and "weights.safetensors" in skipped[0][1]
    for path in list_checkpoints(tmp_path):
        (path / "MANIFEST.json").unlink()
    found, skipped = latest_verified(tmp_path)
    assert found is None and len(skipped) == 3


def test_keep_last_prunes_only_after_a_successful_save(tmp_path, monkeypatch):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, weights={}, state={}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000000000003", "step-000000000004"]
    monkeypatch.setattr(ckpt, "_dump_state", lambda f, s: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path, 5, weights={}, state={}, keep_last=1)
    assert len(list_checkpoints(tmp_path)) == 2
    monkeypatch.undo()
    save_checkpoint(tmp_path, 1, weights={}, state={}, keep_last=1)  # older than the newest: kept anyway
    assert [p.name[-1] for p in list_checkpoints(tmp_path)] == ["1", "4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000000001", "step-000000000004"]


def _raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["_dump_weights", "_dump_state", "_dump_buffers", "fsync", "replace"])
def test_failed_save_leaves_previous_checkpoint_byte_identical(tmp_path, monkeypatch, target):
    first = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state(), buffers=_buffers())
    before = _snapshot(tmp_path)
    if target == "fsync":
        monkeypatch.setattr(os, "fsync", _raise_enospc)
    elif target == "replace":  # fails to publish after the old copy of step 1 was set aside
        real = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: _raise_enospc() if ".tmp-" in str(a) else real(a, b))
    else:
        monkeypatch.setattr(ckpt, target, _raise_enospc)
    step = 1 if target == "replace" else 2
    with pytest.raises(CheckpointError, match=r"could not save checkpoint .*No space left on device \[ENOSPC\]"):
        save_checkpoint(tmp_path, step, weights=_weights(1), state=_state(2), buffers=_buffers(), keep_last=1)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    assert load_checkpoint(first).state == _state()


def test_file_size_limit_in_a_child_gives_a_clean_error(tmp_path):
    script = f"""
        import resource, signal, sys
        import numpy as np
        from rl.core.checkpoint import CheckpointError, save_checkpoint
        root = {str(tmp_path)!r}
        save_checkpoint(root, 1, weights={{"w": np.zeros(4)}}, state={{}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            save_checkpoint(root, 2, weights={{}}, state={{}}, buffers={{"b": np.zeros(10**6)}}, keep_last=1)
        except CheckpointError as e:
            print(e)
            sys.exit(3)
    """
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 3, child.stderr
    assert "File too large [EFBIG]" in child.stdout and "step-000000000002" in child.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["step-000000000001"]
    assert latest_verified(tmp_path)[0].step == 1


def test_resaving_a_step_replaces_it_without_residue(tmp_path):
    save_checkpoint(tmp_path, 7, weights=_weights(0), state=_state(1))
    save_checkpoint(tmp_path, 7, weights=_weights(1), state=_state(2))
    assert [p.name for p in tmp_path.iterdir()] == ["step-000000000007"]
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "step-000000000007").weights["pi.w"],
                                  _weights(1)["pi.w"])


def test_cleanup_stale_restores_a_checkpoint_set_aside_by_a_killed_resave(tmp_path):
    path = save_checkpoint(tmp_path, 7, weights=_weights(), state=_state())
    path.rename(tmp_path / ".old-step-000000000007-0a1b2c3d")
    (tmp_path / ".tmp-step-000000000007-deadbeef").mkdir()
    assert cleanup_stale(tmp_path) == [tmp_path / ".tmp-step-000000000007-deadbeef"]
    assert load_checkpoint(path).state == _state()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


_CHILD = """
import sys
import numpy as np
from rl.core.checkpoint import save_checkpoint
for step in (1, 2):
    save_checkpoint(sys.argv[1], step, weights={"w": np.full(8, step, np.float32)}, state={"step": step},
                    buffers={"b": np.arange(4)}, keep_last=1)
"""


@pytest.mark.parametrize("hook", [*HOOKS_BEFORE_REPLACE, *HOOKS_AFTER_REPLACE, ""])
def test_sigkill_at_each_fault_hook_leaves_a_verified_checkpoint(tmp_path, hook):
    env = {**os.environ, "RLSUITE_FAULT": hook, "RLSUITE_FAULT_AT": "2"}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == (0 if hook == "" else -signal.SIGKILL), child.stderr
    expected = 1 if hook in HOOKS_BEFORE_REPLACE else 2
    found, skipped = latest_verified(tmp_path)
    assert skipped == [] and found.step == expected and found.state == {"step": expected}
    np.testing.assert_array_equal(found.weights["w"], np.full(8, expected, np.float32))
    removed = cleanup_stale(tmp_path)
    assert bool(removed) == (hook in HOOKS_BEFORE_REPLACE)
    steps = [int(p.name[5:]) for p in list_checkpoints(tmp_path)]
    assert steps == ({"": [2]}.get(hook) or ([1] if expected == 1 else [1, 2]))  # killed saves never prune
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in list_checkpoints(tmp_path)]


class _Canary:
    pass


_EVENTS: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _EVENTS is not None and event in ("pickle.find_class", "os.system", "subprocess.Popen"):
        _EVENTS.append(event)


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while _EVENTS is a list


def test_loading_never_unpickles(tmp_path):
    global _EVENTS
    path = save_checkpoint(tmp_path, 1, weights=_weights(), state=_state(), buffers=_buffers())
    bad = tmp_path / "step-000000000002"
    save_checkpoint(tmp_path, 2, weights=_weights(), state=_state())
    np.savez(bad / "buffers.npz", names=np.array([_Canary()], dtype=object), allow_pickle=True)
    _rewrite(bad, "buffers.npz", (bad / "buffers.npz").read_bytes())
    _EVENTS = []
    try:
        pickle.loads(pickle.dumps(_Canary()))  # noqa: S301 -- positive control: the hook does fire
        assert _EVENTS == ["pickle.find_class"]
        _EVENTS.clear()
        load_checkpoint(path)
        with pytest.raises(CheckpointError, match="buffers.npz.*Object arrays cannot be loaded"):
            load_checkpoint(bad)
        assert _EVENTS == []
    finally:
        _EVENTS = None


def test_atomic_write_replaces_whole_file_or_nothing(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second" and sha256_file(target) == hashlib.sha256(b"second").hexdigest()
    monkeypatch.setattr(os, "replace", _raise_enospc)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "third")
    assert target.read_bytes() == b"second" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
