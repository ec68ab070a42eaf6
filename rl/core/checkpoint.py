"""Crash-consistent checkpoints: one directory ``step-<12 digits>/`` per checkpoint under a root.

It holds ``weights.safetensors``, ``state.json`` (strict JSON: counters, RNG states), an optional
``buffers.npz`` (no object arrays) and, written last, ``MANIFEST.json`` with the sha256 and size of
each. A save is staged in ``.tmp-step-…``, fsynced and renamed into place, so a kill at any instant
leaves the previous checkpoint loadable (reliability.md P1); pruning follows publication (P10); a
broken checkpoint is an error naming the file (P11); nothing is ever unpickled (P5).

A run's ``final/`` policy (``policy.safetensors``, ``policy.json``) is written and verified by the
same machinery (:func:`save_final_policy`, :func:`load_final_policy`): staged, MANIFEST.json with
sha256 and sizes, fsynced, renamed into place.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import safetensors.numpy as stn

__all__ = ["Checkpoint", "CheckpointError", "atomic_write_bytes", "atomic_write_text", "cleanup_stale",
           "is_staging_name", "latest_verified", "list_checkpoints", "load_checkpoint", "load_final_policy",
           "save_checkpoint", "save_final_policy", "sha256_file"]

FORMAT_VERSION = 1
WEIGHTS, STATE, BUFFERS, MANIFEST = "weights.safetensors", "state.json", "buffers.npz", "MANIFEST.json"
POLICY, POLICY_META, FINAL = "policy.safetensors", "policy.json", "final"
_COMPONENTS = (WEIGHTS, STATE, BUFFERS)
_NAME = re.compile(r"step-(\d{12})")
_STALE = re.compile(r"\.(tmp|old)-(step-\d{12}|final)-[0-9a-f]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class _Layout:
    """What a verified directory must hold, and how its problems are worded."""

    noun: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    hint: str


_CHECKPOINT = _Layout("checkpoint", (WEIGHTS, STATE), (BUFFERS,),
                      "delete it or resume from an earlier checkpoint (latest_verified skips broken ones)")
_FINAL = _Layout("final policy", (POLICY, POLICY_META), (),
                 "re-save it from the last checkpoint with 'rl train --resume RUN', or use a checkpoint "
                 "(rl eval --checkpoint STEP)")


class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message names the path and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint that passed every check of :func:`load_checkpoint`."""

    step: int  # env steps at save time, as in the directory name
    weights: dict[str, np.ndarray]
    state: dict[str, Any]  # as saved, except that tuples come back as lists
    buffers: dict[str, np.ndarray] | None  # None when the checkpoint has no buffers.npz
    path: Path


def _fault(name: str, step: int) -> None:
    # Test hook (reliability.md P1): random kills rarely hit these windows, so tests name them.
    at = os.environ.get("RLSUITE_FAULT_AT")
    if os.environ.get("RLSUITE_FAULT") == name and (at is None or at == str(step)):
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, dump: Callable[[IO[bytes]], object]) -> None:
    with open(path, "xb") as f:
        dump(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new bytes, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.urandom(4).hex()}")
    try:
        _write_file(tmp, lambda f: f.write(data))
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e  # a failed write does not name its file
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` by ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_problem(obj: Any, where: str) -> str | None:
    """The first value under ``obj`` that strict JSON cannot round-trip, described; else None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return f"{where} is {obj!r}; JSON state holds finite numbers only"
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return None
    if isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    elif isinstance(obj, dict):
        bad_key = next((k for k in obj if not isinstance(k, str)), None)
        if bad_key is not None:
            return f"{where} has key {bad_key!r} of type {type(bad_key).__name__}; JSON keys must be str"
        items = ((f"{where}[{k!r}]", v) for k, v in obj.items())
    else:
        return f"{where} is of type {type(obj).__name__}, which JSON cannot store; convert it (int(x), x.tolist())"
    return next((p for w, v in items if (p := _json_problem(v, w)) is not None), None)


def _array_problem(arrays: Any, kind: str) -> str | None:
    if not isinstance(arrays, dict):
        return f"{kind} must be a dict of name -> numpy array, got {type(arrays).__name__}"
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            return f"{kind} key {key!r} must be a non-empty str"
        if not isinstance(value, np.ndarray):
            return f"{kind}[{key!r}] is a {type(value).__name__}; pass a numpy array (tensor.numpy())"
        if value.dtype.hasobject:
            return f"{kind}[{key!r}] has dtype object, which only pickle can store; store numeric arrays"
    return None


def _dump_weights(f: IO[bytes], weights: dict[str, np.ndarray]) -> None:
    # safetensors.numpy.save writes the raw buffer: a non-contiguous view would be saved scrambled.
    f.write(stn.save({k: v if v.flags.c_contiguous else v.copy(order="C") for k, v in weights.items()}))


def _dump_state(f: IO[bytes], state: dict) -> None:
    f.write(json.dumps(state, allow_nan=False, indent=1).encode("utf-8"))


def _dump_buffers(f: IO[bytes], buffers: dict[str, np.ndarray]) -> None:
    # What np.savez does, minus its keyword clash (a buffer named "file" or "allow_pickle").
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in buffers.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno is not None:
        return f"{e.strerror} [{errno.errorcode.get(e.errno, e.errno)}]" + (f" on {e.filename}" if e.filename else "")
    return f"{type(e).__name__}: {e}"


def _write_staging(staging: Path, step: int, parts: dict[str, Callable[[IO[bytes]], object]],
                   hook: str = "") -> None:
    """Write every component, then MANIFEST.json, into ``staging``; fsync files and directory.

    ``hook`` prefixes the names of the fault hooks (``final_`` for the final policy)."""
    staging.mkdir()
    for i, (name, dump) in enumerate(parts.items()):
        _write_file(staging / name, dump)
        if i == 0:
            _fault(hook + "between_components", step)
    _fault(hook + "after_tmp_write", step)
    manifest = {"format_version": FORMAT_VERSION, "step": step,
                "files": {name: sha256_file(staging / name) for name in parts},
                "sizes": {name: (staging / name).stat().st_size for name in parts}}
    _write_file(staging / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1).encode("utf-8")))
    _fault(hook + "before_fsync", step)
    _fsync_dir(staging)


def _prune(root: Path, keep_last: int, keep: Path) -> None:
    for old in list_checkpoints(root)[:-keep_last]:
        if old != keep:  # a save of an older step than the newest on disk is never its own victim
            # Rename first: a kill mid-delete leaves staging-like garbage, not a half checkpoint.
            doomed = root / f".tmp-{old.name}-{os.urandom(4).hex()}"
            os.replace(old, doomed)
            shutil.rmtree(doomed)


def save_checkpoint(
    root: Path, step: int, *, weights: dict[str, np.ndarray], state: dict,
    buffers: dict[str, np.ndarray] | None = None, keep_last: int | None = None,
) -> Path:
    """Atomically write the checkpoint of env step ``step`` under ``root`` and return its directory."""
    root = Path(root)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 10**12:
        raise ValueError(f"step must be an int in [0, 10**12), got {step!r}")
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
        raise ValueError(f"keep_last must be None or an int >= 1, got {keep_last!r}")
    final = root / f"step-{step:012d}"
    problem = (_array_problem(weights, "weights") or _array_problem(buffers or {}, "buffers")
               or _json_problem(state, "state") or ("" if isinstance(state, dict) else "state must be a dict"))
    if problem:
        raise CheckpointError(f"refusing to save checkpoint {final}: {problem}")
    parts = {WEIGHTS: lambda f: _dump_weights(f, weights), STATE: lambda f: _dump_state(f, state)}
    if buffers is not None:
        parts[BUFFERS] = lambda f: _dump_buffers(f, buffers)
    staging = root / f".tmp-{final.name}-{os.urandom(4).hex()}"
    aside = root / f".old-{final.name}-{os.urandom(4).hex()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _write_staging(staging, step, parts)
        _fault("before_replace", step)
        if os.path.lexists(final):  # re-saving a step (resumed run): rename() cannot replace a full dir
            os.replace(final, aside)
        os.replace(staging, final)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.lexists(aside) and not os.path.lexists(final):
            os.replace(aside, final)
        if not isinstance(e, Exception):
            raise
        raise CheckpointError(f"could not save checkpoint {final}: {_describe(e)}; the previous checkpoints "
                              f"in {root} are untouched; fix the cause (disk space, permissions) and save again"
                              ) from e
    try:
        _fault("after_replace_before_dir_fsync", step)
        _fsync_dir(root)
        if os.path.lexists(aside):
            shutil.rmtree(aside)
        _fault("before_prune", step)
        if keep_last is not None:
            _prune(root, keep_last, final)
    except Exception as e:
        raise CheckpointError(f"checkpoint {final} was published, but finishing the save failed: "
                              f"{_describe(e)}; check {root} and run cleanup_stale on it") from e
    return final


def save_final_policy(run_dir: Path, step: int, *, weights: dict[str, np.ndarray], meta: dict) -> Path:
    """Atomically (re)write ``run_dir/final/``: ``policy.safetensors``, ``policy.json`` and MANIFEST.json.

    Staged in ``.tmp-final-…`` exactly like a checkpoint (sha256 and size of each file, fsync), then
    renamed into place; an existing ``final/`` is set aside as ``.old-final-…`` first and removed
    after the new one is published (:func:`cleanup_stale` on the run directory finishes or undoes a
    killed publish). Fault hooks: ``final_between_components``, ``final_after_tmp_write``,
    ``final_before_fsync``, ``final_before_replace``, ``final_after_replace``.
    """
    run_dir = Path(run_dir)
    final = run_dir / FINAL
    problem = (_array_problem(weights, "weights") or _json_problem(meta, POLICY_META)
               or ("" if isinstance(meta, dict) else f"{POLICY_META} must be a dict"))
    if problem:
        raise CheckpointError(f"refusing to save {final}: {problem}")
    parts = {POLICY: lambda f: _dump_weights(f, weights), POLICY_META: lambda f: _dump_state(f, meta)}
    token = os.urandom(4).hex()
    staging, aside = run_dir / f".tmp-{FINAL}-{token}", run_dir / f".old-{FINAL}-{token}"
    try:
        _write_staging(staging, step, parts, hook="final_")
        _fault("final_before_replace", step)
        if os.path.lexists(final):
            os.replace(final, aside)
        os.replace(staging, final)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)  # never published
        if os.path.lexists(aside) and not os.path.lexists(final):
            os.replace(aside, final)
        if not isinstance(e, Exception):
            raise
        raise CheckpointError(f"could not save the final policy {final}: {_describe(e)}; the checkpoints are "
                              "untouched; fix the cause and run 'rl train --resume' to save it again") from e
    try:
        _fault("final_after_replace", step)
        _fsync_dir(run_dir)
        if os.path.lexists(aside):
            shutil.rmtree(aside)
    except Exception as e:
        raise CheckpointError(f"the final policy {final} was published, but finishing the save failed: "
                              f"{_describe(e)}; check {run_dir}") from e
    return final


def load_final_policy(final: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(weights, ``policy.json``) of a run's ``final/`` directory, after checking sizes and sha256 sums."""
    loaded = _load_verified(Path(final), _FINAL, {
        POLICY: lambda p: stn.load_file(str(p)), POLICY_META: lambda p: _strict_json(p.read_bytes())})
    if not isinstance(loaded[POLICY_META], dict):
        raise _broken(Path(final) / POLICY_META, f"expected a JSON object, got {type(loaded[POLICY_META]).__name__}",
                      _FINAL)
    return loaded[POLICY], loaded[POLICY_META]


def _broken(path: Path, what: str, layout: _Layout = _CHECKPOINT) -> CheckpointError:
    return CheckpointError(f"{layout.noun} {path} is unusable: {what}; {layout.hint}")


def _strict_json(data: bytes) -> Any:
    def no_constant(name: str) -> None:
        raise ValueError(f"non-finite constant {name} is not allowed")

    def finite_float(text: str) -> float:
        if not math.isfinite(value := float(text)):
            raise ValueError(f"number {text} overflows to {value}")
        return value

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(pairs)

    return json.loads(data.decode("utf-8"), parse_constant=no_constant, parse_float=finite_float,
                      object_pairs_hook=no_duplicates)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_manifest(path: Path, layout: _Layout = _CHECKPOINT) -> dict:
    file = path / MANIFEST
    if file.is_symlink() or not file.is_file():
        what = "is not a regular file" if os.path.lexists(file) else "is missing (the save never finished)"
        raise _broken(path, f"{MANIFEST} {what}", layout)
    try:
        manifest = _strict_json(file.read_bytes())
    except (OSError, ValueError, RecursionError) as e:
        raise _broken(file, f"not valid strict JSON ({e})", layout) from e
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if _is_int(version) and version > FORMAT_VERSION:
        err = CheckpointError(
            f"{layout.noun} {path} was written by a newer rlsuite (format_version {version}; this version "
            f"reads {FORMAT_VERSION}); upgrade rlsuite to load it")
        err.future_version = version  # latest_verified refuses rather than skips it
        raise err
    if not _is_int(version) or version != FORMAT_VERSION:
        raise _broken(file, f"format_version is {version!r}, expected {FORMAT_VERSION}", layout)
    step, files, sizes = manifest.get("step"), manifest.get("files"), manifest.get("sizes")
    if not _is_int(step) or step < 0:
        raise _broken(file, f"step must be a non-negative int, got {step!r}", layout)
    named = _NAME.fullmatch(path.name)
    if named and int(named.group(1)) != step:
        raise _broken(file, f"the directory name says step {int(named.group(1))} but the manifest says {step}",
                      layout)
    if not (isinstance(files, dict) and isinstance(sizes, dict) and files.keys() == sizes.keys()
            and set(layout.required) <= files.keys() <= {*layout.required, *layout.optional}):
        raise _broken(file, f"'files' and 'sizes' must list {', '.join(layout.required)}"
                      + (f" and optionally {', '.join(layout.optional)}" if layout.optional else ""), layout)
    if bad := [n for n, d in files.items() if not (isinstance(d, str) and _SHA256.fullmatch(d))
               or not _is_int(sizes[n])]:
        raise _broken(file, f"the sha256 or size of {bad[0]} is malformed", layout)
    return manifest


def _verify_file(file: Path, digest: str, size: int, layout: _Layout = _CHECKPOINT) -> None:
    if not os.path.lexists(file):
        raise _broken(file.parent, f"{file.name} is missing (MANIFEST.json lists it)", layout)
    if file.is_symlink() or not file.is_file():
        raise _broken(file, f"not a regular file ({layout.noun} directories hold plain files only)", layout)
    actual = file.stat().st_size
    if actual != size:
        what = "empty (0 bytes)" if actual == 0 else f"{actual} bytes"
        raise _broken(file, f"incomplete or altered: MANIFEST.json says {size} bytes, the file is {what}", layout)
    if sha256_file(file) != digest:
        raise _broken(file, "its sha256 does not match MANIFEST.json (changed after saving: bit rot or edit)",
                      layout)


def _load_buffers(file: Path) -> dict[str, np.ndarray]:
    with np.load(file, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _load_verified(path: Path, layout: _Layout, loaders: dict[str, Callable[[Path], Any]]) -> dict[str, Any]:
    """Every file MANIFEST.json lists in directory ``path``, checked (size, sha256) and parsed, by name;
    the parsed manifest itself under the key ``MANIFEST``."""
    if not path.is_dir():
        raise _broken(path, "not a directory" if os.path.lexists(path) else "it does not exist", layout)
    manifest = _read_manifest(path, layout)
    loaded: dict[str, Any] = {MANIFEST: manifest}
    for name, digest in manifest["files"].items():
        file = path / name
        try:
            _verify_file(file, digest, manifest["sizes"][name], layout)
        except OSError as e:
            raise CheckpointError(f"cannot read {layout.noun} file {file}: {_describe(e)}") from e
        try:
            loaded[name] = loaders[name](file)
        except Exception as e:  # any parser failure is a broken file, reported with its path
            raise _broken(file, f"it matches its sha256 but cannot be parsed ({_describe(e)})", layout) from e
    return loaded


def load_checkpoint(path: Path) -> Checkpoint:
    """Load the checkpoint directory ``path`` after checking its manifest, sizes and sha256 sums."""
    path = Path(path)
    loaded = _load_verified(path, _CHECKPOINT, {
        WEIGHTS: lambda p: stn.load_file(str(p)), STATE: lambda p: _strict_json(p.read_bytes()),
        BUFFERS: _load_buffers})
    if not isinstance(loaded[STATE], dict):
        raise _broken(path / STATE, f"expected a JSON object, got {type(loaded[STATE]).__name__}")
    return Checkpoint(loaded[MANIFEST]["step"], loaded[WEIGHTS], loaded[STATE], loaded.get(BUFFERS), path)


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories under ``root`` by ascending step; other entries are ignored."""
    root = Path(root)
    if not root.exists():
        return []
    if not root.is_dir():
        raise CheckpointError(f"checkpoint root {root} is not a directory; move it away")
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _NAME.fullmatch(p.name)) and p.is_dir() and not p.is_symlink()]
    return [p for _, p in sorted(found)]


def latest_verified(root: Path) -> tuple[Checkpoint | None, list[tuple[Path, str]]]:
    """The newest checkpoint under ``root`` that verifies, and the newer ones skipped with why.

    A checkpoint of a newer ``format_version`` is not skipped but raised: it is not broken, and a run
    resumed from an older checkpoint would re-save and prune over it (P13: refuse, do not guess).
    """
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(path), skipped
        except CheckpointError as e:
            if getattr(e, "future_version", None) is not None:
                raise
            skipped.append((path, str(e)))
    return None, skipped


def is_staging_name(name: str) -> bool:
    """Whether ``name`` is a staging (``.tmp-…``) or set-aside (``.old-…``) entry of a save."""
    return _STALE.fullmatch(name) is not None


def cleanup_stale(root: Path) -> list[Path]:
    """Remove ``.tmp-*`` / ``.old-*`` leftovers of killed saves under ``root``; return what was removed.

    A ``.old-step-N-*`` (or ``.old-final-*``) whose ``step-N`` (``final``) is missing (killed between
    setting the old copy aside and publishing the new one) is renamed back instead. ``root`` is a
    checkpoint root, or a run directory for the leftovers of :func:`save_final_policy`. Call it only
    while no save is running.
    """
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in sorted(root.iterdir()):
        stale = _STALE.fullmatch(entry.name)
        if stale is None:
            continue
        final = root / stale.group(2)
        if stale.group(1) == "old" and not os.path.lexists(final):
            os.replace(entry, final)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
            removed.append(entry)
        else:
            entry.unlink()
            removed.append(entry)
    _fsync_dir(root)
    return removed
