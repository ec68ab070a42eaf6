"""Record the episodes an env plays straight into a Minari dataset, as ``rl collect`` writes them.

```python
env = RecordEpisodes(gym.make("Pendulum-v1"), "data/datasets/pendulum/online-v0")
...  # reset/step as usual, e.g. in an online phase or with any policy
path = env.finalize()  # the dataset directory, with data/ and card.json
```

The dataset is Minari's HDF5 format (``data/metadata.json`` + ``data/main_data.hdf5``, written with
``minari``'s own :class:`~minari.dataset.minari_storage.MinariStorage`, the storage
``minari.DataCollector`` writes through), plus the suite's ``card.json`` (episodes, steps, return
statistics and histogram, the positive-sided variance of episode returns, reference returns, and
the dataset's sha256), so a manifest can name it and ``rl collect``'s readers take it unchanged.

- ``terminated`` and ``truncated`` are stored separately, as the env returned them.
- Each *finished* episode (terminated or truncated by the env) is stored when it finishes. An
  episode cut short (``reset()`` before it finished, or still running at :meth:`finalize`) is
  dropped, or with ``keep_cut_episodes=True`` stored with its last step marked truncated (what
  ``DataCollector`` does; it then bootstraps like a time-out).
- Nothing half-done is left at ``out_dir``: episodes go into a hidden staging directory beside it
  (``.<name>.tmp-<hex>``), and :meth:`finalize` writes the metadata and card, fsyncs, and renames the
  whole directory into place. An error in :meth:`finalize`, or :meth:`close` / :meth:`abort` before
  it, removes the staging directory (a killed process can leave one behind; it never has the
  dataset's name).
- Observations and actions must be Box or Discrete (the suite's dataset reader takes those); a
  non-finite reward or observation, or an observation outside the space, is refused at the step
  (:class:`RecordingError` naming episode and step), since the dataset would be refused later.

``envs`` may not import ``rl`` (import-linter's independence contract), so the sha256 of the
dataset is computed here with the same definition as :func:`rl.core.datasets.dataset_sha256` (the
sha256 of the lines ``<relative path> <file sha256>`` over ``data/metadata.json`` and
``data/main_data.hdf5``); a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["DATA_FILES", "RecordEpisodes", "RecordingError"]

DATA_FILES = ("data/metadata.json", "data/main_data.hdf5")
"""The files the dataset's sha256 covers (as in :mod:`rl.core.datasets`)."""


class RecordingError(ValueError):
    """The recording cannot go on or be written; the message names the dataset, episode or step."""


def _file_sha256s(path: Path) -> dict[str, str]:
    out = {}
    for rel in DATA_FILES:
        digest = hashlib.sha256()
        with open(path / rel, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        out[rel] = digest.hexdigest()
    return out


def _fsync_tree(path: Path) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RecordEpisodes(gym.Wrapper):
    """Write every finished episode of ``env`` into a Minari dataset at ``out_dir`` (see the module).

    ``dataset_id`` (Minari's ``namespace/name-vN``) defaults to the last two parts of ``out_dir``
    when they form one (``.../pendulum/online-v0`` → ``pendulum/online-v0``), else
    ``rlsuite/recorded-v0``. ``ref_min_score`` / ``ref_max_score`` are the random and expert
    reference returns for D4RL normalised scores (stored in Minari's metadata and the card when
    both are given). ``policy`` is a free-form note for the card.
    """

    def __init__(self, env: gym.Env, out_dir: str | os.PathLike, dataset_id: str | None = None, *,
                 policy: str = "recorded", algorithm_name: str | None = None, description: str | None = None,
                 ref_min_score: float | None = None, ref_max_score: float | None = None,
                 keep_cut_episodes: bool = False):
        super().__init__(env)
        try:
            from minari.dataset.minari_storage import MinariStorage
        except ImportError:
            raise RecordingError("RecordEpisodes needs minari: pip install -e '.[offline]'") from None
        self.out_dir = Path(out_dir)
        self.dataset_id = self._dataset_id(dataset_id)
        for which, space in (("observation", env.observation_space), ("action", env.action_space)):
            if not isinstance(space, (gym.spaces.Box, gym.spaces.Discrete)):
                raise RecordingError(f"dataset {self.out_dir}: {which} space {space} is not supported (Box, Discrete)")
        if (ref_min_score is None) != (ref_max_score is None):
            raise RecordingError(f"dataset {self.out_dir}: give both ref_min_score and ref_max_score, or neither")
        if self.out_dir.exists():
            raise RecordingError(f"dataset {self.out_dir}: already exists; record into a new directory")
        self.policy, self.algorithm_name, self.description = policy, algorithm_name, description
        self.refs = (ref_min_score, ref_max_score)
        self.keep_cut_episodes = keep_cut_episodes
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._staging = self.out_dir.parent / f".{self.out_dir.name}.tmp-{secrets.token_hex(4)}"
        self._staging.mkdir()
        try:
            self._storage = MinariStorage.new(self._staging / "data", observation_space=env.observation_space,
                                              action_space=env.action_space, env_spec=env.spec, data_format="hdf5",
                                              jpeg_encoding=False)
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        self.returns: list[float] = []  # of the stored episodes
        self.cut_episodes = 0  # episodes cut short (dropped, or stored as truncated with keep_cut_episodes)
        self._episode: dict[str, Any] | None = None
        self._index = -1  # episodes counted from 0 by reset() calls; step k is the k-th step() call (envs.testing)
        self._done = False  # finalized or aborted

    def _dataset_id(self, given: str | None) -> str:
        from minari.dataset.minari_dataset import parse_dataset_id

        def valid(candidate: str) -> bool:
            try:
                parse_dataset_id(candidate)
            except (ValueError, TypeError):  # minari 0.5 raises TypeError for an id without -v<version>
                return False
            return True

        if given is not None:
            if not valid(given):
                raise RecordingError(f"dataset_id {given!r}: expected a Minari id like pendulum/online-v0 "
                                     "(namespace/name-v<version>)")
            return given
        for candidate in (f"{self.out_dir.parent.name}/{self.out_dir.name}", self.out_dir.name):
            if valid(candidate):
                return candidate
        return "rlsuite/recorded-v0"

    # -- the gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._check_open()
        obs, info = self.env.reset(seed=seed, options=options)
        self._end_cut()
        self._index += 1
        self._episode = {"seed": seed, "obs": [self._obs(obs, 0)], "actions": [], "rewards": [],
                         "terminations": [], "truncations": []}
        return obs, info

    def step(self, action):
        self._check_open()
        if self._episode is None:
            raise RecordingError(f"dataset {self.out_dir}: step() with no running episode; call reset() first")
        obs, reward, terminated, truncated, info = self.env.step(action)
        ep = self._episode
        t = len(ep["actions"])
        if np.ndim(reward) != 0 or not math.isfinite(float(reward)):
            raise RecordingError(f"dataset {self.out_dir}: episode {self._index}: step {t + 1}: reward {reward!r} "
                                 "is not a finite scalar")
        ep["obs"].append(self._obs(obs, t + 1))
        ep["actions"].append(np.array(action, dtype=self.env.action_space.dtype))
        ep["rewards"].append(float(reward))
        ep["terminations"].append(bool(terminated))
        ep["truncations"].append(bool(truncated))
        if terminated or truncated:
            self._store(ep)
            self._episode = None
        return obs, reward, terminated, truncated, info

    def _obs(self, obs, t: int) -> np.ndarray:
        space = self.env.observation_space
        value = np.array(obs, dtype=space.dtype)  # a copy: envs may reuse their observation buffer
        bad = None
        if isinstance(space, gym.spaces.Box):
            if value.shape != space.shape:
                bad = f"has shape {list(value.shape)}, the space {list(space.shape)}"
            elif value.dtype.kind == "f" and not np.isfinite(value).all():
                bad = "is not finite"
            elif not ((value >= space.low) & (value <= space.high)).all():
                bad = f"is outside {space}"
        elif not space.contains(value):
            bad = f"is outside {space}"
        if bad:
            raise RecordingError(f"dataset {self.out_dir}: episode {self._index}: observation at step {t} {bad}")
        return value

    # -- episodes ---------------------------------------------------------------------------------
    def _end_cut(self) -> None:
        """The current episode ends without the env finishing it (a reset or finalize)."""
        ep, self._episode = self._episode, None
        if ep is None or not ep["actions"]:
            return
        self.cut_episodes += 1
        if self.keep_cut_episodes:
            if not ep["terminations"][-1]:
                ep["truncations"][-1] = True
            self._store(ep)

    def _store(self, ep: dict[str, Any]) -> None:
        from minari.data_collector.episode_buffer import EpisodeBuffer

        buffer = EpisodeBuffer(id=len(self.returns), seed=ep["seed"], observations=ep["obs"], actions=ep["actions"],
                               rewards=ep["rewards"], terminations=ep["terminations"],
                               truncations=ep["truncations"], infos={})
        self._storage.update_episodes([buffer])
        self.returns.append(float(np.sum(ep["rewards"])))

    # -- finishing --------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._done:
            raise RecordingError(f"dataset {self.out_dir}: the recording was already finalized or aborted")

    def finalize(self) -> Path:
        """Write the metadata and ``card.json`` and move the dataset into ``out_dir``; returns it.

        An unfinished episode is dropped (or stored as truncated, see ``keep_cut_episodes``). With no
        stored episode, or on any error, nothing is written and the staging directory is removed.
        """
        self._check_open()
        try:
            self._end_cut()
            if not self.returns:
                raise RecordingError(f"dataset {self.out_dir}: no finished episode was recorded; nothing written")
            if self.out_dir.exists():
                raise RecordingError(f"dataset {self.out_dir}: appeared while recording; nothing written")
            self._write_metadata()
            card = self._card()
            (self._staging / "card.json").write_text(json.dumps(card, indent=1, allow_nan=False) + "\n",
                                                     encoding="utf-8")
            _fsync_tree(self._staging)
            os.replace(self._staging, self.out_dir)
            fd = os.open(self.out_dir.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.out_dir

    def _write_metadata(self) -> None:
        import minari
        from minari.data_collector.callbacks import EpisodeMetadataCallback

        meta: dict[str, Any] = {"dataset_id": self.dataset_id, "minari_version": minari.__version__,
                                "algorithm_name": self.algorithm_name or f"rlsuite RecordEpisodes ({self.policy})"}
        if self.description is not None:
            meta["description"] = self.description
        if self.refs[0] is not None:
            meta |= {"ref_min_score": float(self.refs[0]), "ref_max_score": float(self.refs[1])}
        self._storage.update_metadata(meta)
        self._storage.update_episode_metadata(self._storage.apply(EpisodeMetadataCallback()))

    def _card(self) -> dict[str, Any]:
        """The card ``rl collect`` writes (experiments.datasets.dataset_card), for recorded episodes."""
        g = np.array(self.returns, np.float64)
        counts, edges = np.histogram(g, bins=min(20, max(1, len(g))))
        files = _file_sha256s(self._staging)
        lines = "".join(f"{rel} {h}\n" for rel, h in files.items())
        spec = self.env.spec
        return {
            "dataset": self.dataset_id, "env_id": spec.id if spec is not None else None, "policy": self.policy,
            "recorder": "envs.recording.RecordEpisodes", "cut_episodes": self.cut_episodes,
            "keep_cut_episodes": self.keep_cut_episodes,
            "episodes": int(len(g)), "steps": int(self._storage.total_steps),
            "mean_return": float(g.mean()), "max_return": float(g.max()), "min_return": float(g.min()),
            "std_return": float(g.std()), "positive_variance": float(np.mean(np.maximum(g - g.mean(), 0.0) ** 2)),
            "return_histogram": {"bin_edges": edges.tolist(), "counts": counts.tolist()},
            "ref_random_return": self.refs[0], "ref_expert_return": self.refs[1],
            "sha256": hashlib.sha256(lines.encode()).hexdigest(), "files": files,
        }

    def abort(self) -> None:
        """Discard the recording: remove the staging directory; ``out_dir`` is left untouched."""
        self._done = True
        self._episode = None
        shutil.rmtree(self._staging, ignore_errors=True)

    def close(self) -> None:
        """Close the env; a recording not finalized is discarded (nothing is written)."""
        if not self._done:
            self.abort()
        super().close()
