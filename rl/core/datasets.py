"""Offline datasets in Minari's on-disk format: verify, read, and load into a :class:`Storage`.

A Minari dataset (``minari`` 0.5, HDF5 backend) is a directory ``<dataset>/data/`` holding
``metadata.json`` (spaces, env spec, reference scores) and ``main_data.hdf5`` with one group
``episode_<i>`` per episode: ``observations [L+1, ...]``, ``actions [L, ...]``, ``rewards [L]``,
``terminations [L]``, ``truncations [L]``. Files written by ``minari.DataCollector`` are read as
they are; nothing is converted on disk.

The reader uses h5py directly (not ``minari.load_dataset``) so every structural fault becomes one
line naming the dataset, the episode and the field, before any training starts: external or soft
links, virtual or externally stored datasets, object/string/compound dtypes, a truncated file,
``len(observations) != len(actions) + 1``, non-finite values, observations outside the declared
space, a termination in the middle of an episode.

Axis letters: M transitions (all episodes concatenated), E episodes, K reward objectives (1).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl.core.storage import Field, Storage

__all__ = ["DATA_FILES", "SOURCE_OFFLINE", "SOURCE_ONLINE", "DatasetError", "OfflineData", "dataset_sha256",
           "file_sha256s", "offline_fields", "offline_storage", "positive_variance", "read_dataset",
           "returns_to_go", "space_summary"]

DATA_FILES = ("data/metadata.json", "data/main_data.hdf5")
"""The files whose bytes the dataset's sha256 covers (relative to the dataset directory)."""
SOURCE_ONLINE, SOURCE_OFFLINE = 0, 1
"""Values of the uint8 ``source`` tag of a transition."""
_EPISODE_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")


class DatasetError(ValueError):
    """A dataset is missing, altered or malformed; the message names the dataset, episode and field."""


@dataclass(frozen=True)
class OfflineData:
    """Every transition of a dataset, flattened over episodes, plus per-episode summaries."""

    name: str  # how the dataset was named (id or path), for messages
    obs_mo: np.ndarray
    action_m: np.ndarray  # [M, *action_shape]
    reward_mk: np.ndarray  # [M, 1] float32
    next_obs_mo: np.ndarray
    terminated_m: np.ndarray  # bool
    truncated_m: np.ndarray  # bool; the last step of an episode that neither ended is marked truncated
    episode_m: np.ndarray  # int64 episode index 0..E-1
    returns_e: np.ndarray  # float64 undiscounted episode returns
    lengths_e: np.ndarray  # int64
    metadata: dict[str, Any]  # Minari's metadata.json (spaces still as JSON strings)

    @property
    def num_transitions(self) -> int:
        return int(self.reward_mk.shape[0])

    def space(self, which: str) -> dict[str, Any]:
        """The observation or action space declared by the dataset, as Minari's JSON dict."""
        raw = self.metadata.get(f"{which}_space")
        if raw is None:
            raise DatasetError(f"dataset {self.name}: metadata.json has no {which}_space")
        return json.loads(raw) if isinstance(raw, str) else raw


def file_sha256s(path: Path) -> dict[str, str]:
    """Hex sha256 of each of :data:`DATA_FILES` under the dataset directory ``path``."""
    out = {}
    for rel in DATA_FILES:
        digest = hashlib.sha256()
        with open(Path(path) / rel, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        out[rel] = digest.hexdigest()
    return out


def dataset_sha256(path: Path) -> str:
    """One sha256 for the dataset: of the lines ``<relative path> <file sha256>`` in DATA_FILES order."""
    lines = "".join(f"{rel} {h}\n" for rel, h in file_sha256s(path).items())
    return hashlib.sha256(lines.encode()).hexdigest()


def _check_files(path: Path, name: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"dataset {name}: {path} does not exist (collect it with 'rl collect' or fix the path)")
    for rel in DATA_FILES:
        f = path / rel
        if f.is_symlink() or not f.is_file():
            what = "is a symlink" if f.is_symlink() else "is missing"
            raise DatasetError(f"dataset {name}: {f} {what}; a Minari HDF5 dataset needs {', '.join(DATA_FILES)}")


def _read_metadata(path: Path, name: str) -> dict[str, Any]:
    try:
        meta = json.loads((path / DATA_FILES[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"dataset {name}: {DATA_FILES[0]} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"dataset {name}: {DATA_FILES[0]} must hold a JSON object")
    fmt = meta.get("data_format", "hdf5")
    if fmt != "hdf5":
        raise DatasetError(f"dataset {name}: data_format {fmt!r} is not supported; write it with data_format='hdf5'")
    return meta


def _walk_links(group, name: str, where: str = "") -> None:
    """Refuse links that leave the group tree (external, soft) and data stored outside the file."""
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        here = f"{where}/{key}"
        if isinstance(link, h5py.ExternalLink):
            raise DatasetError(f"dataset {name}: {here} is an HDF5 external link to {link.filename}; "
                               "datasets must be self-contained")
        if isinstance(link, h5py.SoftLink):
            raise DatasetError(f"dataset {name}: {here} is an HDF5 soft link; datasets hold plain groups and arrays")
        obj = group[key]
        if isinstance(obj, h5py.Group):
            _walk_links(obj, name, here)
        elif isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
            raise DatasetError(f"dataset {name}: {here} stores its data outside the file; datasets must be "
                               "self-contained")


def _read_field(group, ep: str, field: str, name: str) -> np.ndarray:
    import h5py

    if field not in group:
        raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} is missing")
    obj = group[field]
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} is a group; only Box/Discrete "
                           "spaces (plain arrays) are supported")
    if obj.dtype.kind not in "biuf":
        raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} has dtype {obj.dtype} (object, string "
                           "or compound arrays are refused: they can carry pickles)")
    try:
        return obj[()]
    except (OSError, RuntimeError) as err:
        raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} cannot be read ({err}); "
                           "the file is truncated or corrupt") from None


def _check_episode(arrays: dict[str, np.ndarray], ep: str, name: str) -> None:
    obs, act = arrays["observations"], arrays["actions"]
    length = len(act)
    if length == 0:
        raise DatasetError(f"dataset {name}: episode {ep}: field 'actions' is empty")
    if len(obs) != length + 1:
        raise DatasetError(f"dataset {name}: episode {ep}: field 'observations' has {len(obs)} rows, expected "
                           f"len(actions) + 1 = {length + 1}")
    for field in ("rewards", "terminations", "truncations"):
        if arrays[field].shape[:1] != (length,):
            raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} has shape "
                               f"{list(arrays[field].shape)}, expected [{length}] (one per action)")
    for field in ("observations", "actions", "rewards"):
        a = arrays[field]
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            step = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0][0])
            raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} is not finite at step {step}")
    term = arrays["terminations"].astype(bool)
    if term[:-1].any():
        step = int(np.argmax(term[:-1]))
        raise DatasetError(f"dataset {name}: episode {ep}: field 'terminations' is true at step {step} before the "
                           "episode's last step")


def _check_in_space(values: np.ndarray, space: dict, ep: str, field: str, name: str) -> None:
    kind = space.get("type")
    if kind == "Box":
        shape = tuple(space["shape"])
        if values.shape[1:] != shape:
            raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} rows are {list(values.shape[1:])}, "
                               f"the declared space is {list(shape)}")
        low = np.broadcast_to(np.asarray(space["low"], np.float64), shape)
        high = np.broadcast_to(np.asarray(space["high"], np.float64), shape)
        outside = (values < low) | (values > high)
    elif kind == "Discrete":
        start = int(space.get("start", 0))
        outside = (values < start) | (values >= start + int(space["n"]))
    else:
        raise DatasetError(f"dataset {name}: {field} space of type {kind!r} is not supported (Box, Discrete)")
    if outside.any():
        step = int(np.argwhere(outside.reshape(len(values), -1).any(axis=1))[0][0])
        raise DatasetError(f"dataset {name}: episode {ep}: field {field!r} is outside the declared {kind} space "
                           f"at step {step} (value {values[step].tolist()})")


def _episode_keys(f, name: str) -> list[str]:
    keys = [k for k in f if k.startswith("episode_")]
    bad = [k for k in keys if not k[len("episode_"):].isdigit()]
    if bad or not keys:
        raise DatasetError(f"dataset {name}: " + (f"group {bad[0]!r} is not episode_<int>" if bad
                                                   else "main_data.hdf5 holds no episode_<i> groups"))
    return sorted(keys, key=lambda k: int(k[len("episode_"):]))


def read_dataset(path: Path, name: str | None = None, expected_sha256: str | None = None) -> OfflineData:
    """Verify and read the Minari dataset in directory ``path``; ``expected_sha256`` is checked first."""
    import h5py

    path = Path(path)
    name = name or str(path)
    _check_files(path, name)
    if expected_sha256 is not None:
        actual = dataset_sha256(path)
        if actual != expected_sha256:
            raise DatasetError(f"dataset {name}: sha256 is {actual}, the manifest expects {expected_sha256}; "
                               "the data changed since the manifest was written (recollect or update dataset.sha256)")
    meta = _read_metadata(path, name)
    obs_space, act_space = (json.loads(meta[k]) if isinstance(meta.get(k), str) else meta.get(k)
                            for k in ("observation_space", "action_space"))
    if not isinstance(obs_space, dict) or not isinstance(act_space, dict):
        raise DatasetError(f"dataset {name}: metadata.json must declare observation_space and action_space")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _EPISODE_FIELDS}
    try:
        f = h5py.File(path / DATA_FILES[1], "r")
    except OSError as err:
        raise DatasetError(f"dataset {name}: {DATA_FILES[1]} is not a readable HDF5 file ({err}); "
                           "it is truncated or corrupt") from None
    with f:
        _walk_links(f, name)
        for key in _episode_keys(f, name):
            ep = key[len("episode_"):]
            arrays = {field: _read_field(f[key], ep, field, name) for field in _EPISODE_FIELDS}
            _check_episode(arrays, ep, name)
            _check_in_space(arrays["observations"], obs_space, ep, "observations", name)
            _check_in_space(arrays["actions"], act_space, ep, "actions", name)
            for field, a in arrays.items():
                parts[field].append(a)
    return _flatten(parts, name, meta)


def _flatten(parts: dict[str, list[np.ndarray]], name: str, meta: dict) -> OfflineData:
    lengths = np.array([len(a) for a in parts["actions"]], np.int64)
    truncated = [t.astype(bool).copy() for t in parts["truncations"]]
    for t, term in zip(truncated, parts["terminations"], strict=True):
        # An episode cut without either flag still has its true last observation: a time-out.
        t[-1] |= not bool(term[-1])
    rewards = [r.astype(np.float64) for r in parts["rewards"]]
    return OfflineData(
        name=name,
        obs_mo=np.concatenate([o[:-1] for o in parts["observations"]]).astype(np.float32),
        action_m=np.concatenate(parts["actions"]),
        reward_mk=np.concatenate(rewards).astype(np.float32)[:, None],
        next_obs_mo=np.concatenate([o[1:] for o in parts["observations"]]).astype(np.float32),
        terminated_m=np.concatenate(parts["terminations"]).astype(bool),
        truncated_m=np.concatenate(truncated),
        episode_m=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
        returns_e=np.array([r.sum() for r in rewards], np.float64),
        lengths_e=lengths,
        metadata=meta,
    )


def space_summary(space: dict) -> str:
    """A short description of a Minari JSON space for messages."""
    if space.get("type") == "Box":
        return f"Box(shape={space.get('shape')}, dtype={space.get('dtype')})"
    return json.dumps(space)


def offline_storage(data: OfflineData, action_dtype: str, mc_return_gamma: float | None = None) -> Storage:
    """A one-env :class:`Storage` holding every transition of ``data`` with ``source = offline``.

    The fields are the off-policy replay fields plus ``source`` (uint8) and ``episode_id`` (int64),
    the same layout the online buffer of a phased run uses. With ``mc_return_gamma`` it also holds
    ``mc_return`` (float32): each transition's discounted Monte-Carlo return-to-go within its
    episode (:func:`returns_to_go`), which Cal-QL uses as a lower bound of Q.
    """
    m = data.num_transitions
    obs_dim = data.obs_mo.shape[1]
    with_mc = mc_return_gamma is not None
    fields = offline_fields(obs_dim, tuple(data.action_m.shape[1:]), action_dtype, 1, mc_return=with_mc)
    storage = Storage(fields, capacity=m, num_envs=1)
    values = {
        "obs": data.obs_mo[:, None], "next_obs": data.next_obs_mo[:, None],
        "action": data.action_m.astype(action_dtype)[:, None], "reward": data.reward_mk[:, None],
        "terminated": data.terminated_m[:, None], "truncated": data.truncated_m[:, None],
        "valid": np.ones((m, 1), bool), "source": np.full((m, 1), SOURCE_OFFLINE, np.uint8),
        "episode_id": data.episode_m[:, None],
    }
    if with_mc:
        ends = np.zeros(m, bool)
        ends[np.cumsum(data.lengths_e) - 1] = True
        values["mc_return"] = returns_to_go(data.reward_mk[:, 0], data.terminated_m, ends, mc_return_gamma)[:, None]
    storage.extend(values)
    return storage


def offline_fields(obs_dim: int, action_shape: tuple[int, ...], action_dtype: str, reward_dim: int,
                   mc_return: bool = False) -> dict[str, Field]:
    """Replay fields with the ``source`` and ``episode_id`` tags (and ``mc_return`` when asked)."""
    fields = {
        "obs": Field((obs_dim,), "float32"), "next_obs": Field((obs_dim,), "float32"),
        "action": Field(action_shape, action_dtype), "reward": Field((reward_dim,), "float32"),
        "terminated": Field((), "bool"), "truncated": Field((), "bool"), "valid": Field((), "bool"),
        "source": Field((), "uint8"), "episode_id": Field((), "int64"),
    }
    if mc_return:
        fields["mc_return"] = Field((), "float32")
    return fields


def returns_to_go(reward_m: np.ndarray, terminated_m: np.ndarray, episode_end_m: np.ndarray,
                  gamma: float) -> np.ndarray:
    """Discounted Monte-Carlo return-to-go of consecutive transitions, float32 ``[M]``.

    ``G_t = r_t + γ (1 − terminated_t) G_{t+1}``, restarting at 0 after every transition with
    ``episode_end_m`` set (an episode's last stored step). An episode cut by a time limit gets no
    value for what lay beyond its last step (as Cal-QL, Nakamoto et al. 2023, and CORL compute it).
    """
    reward = np.asarray(reward_m, np.float64).tolist()
    cont = (gamma * ~(np.asarray(terminated_m, bool) | np.asarray(episode_end_m, bool))).tolist()
    out = [0.0] * len(reward)
    g = 0.0
    for t in range(len(reward) - 1, -1, -1):  # python floats: ~10x faster than numpy scalars here
        g = reward[t] + cont[t] * g
        out[t] = g
    return np.asarray(out, np.float32)


def positive_variance(returns_e: np.ndarray) -> float:
    """``mean((G − mean G)₊²)``: the upper semivariance of episode returns (how much high-return
    tail a mixed dataset has, Hong et al. 2023)."""
    if len(returns_e) == 0:
        return math.nan
    dev = np.maximum(returns_e - returns_e.mean(), 0.0)
    return float(np.mean(dev**2))
