"""envs.recording.RecordEpisodes: finished episodes go into a Minari dataset the suite and Minari
read, with terminated and truncated kept apart; cut episodes are dropped or kept as truncated; a
failure at any point leaves nothing at the dataset path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np
import pytest
from gymnasium import spaces

from envs.recording import RecordEpisodes, RecordingError
from envs.testing import KNOWN_RETURNS_ID, FaultyEnv
from rl.core.datasets import dataset_sha256, positive_variance, read_dataset


class EndsTwoWays(gym.Env):
    """Observation [t]; reward t + seed. An even seed terminates at step 3, an odd one is truncated at step 4."""

    observation_space = spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.seed_, self.t = seed or 0, 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        reward = float(self.t + self.seed_)
        self.t += 1
        odd = self.seed_ % 2 == 1
        return (np.array([self.t], np.float32), reward, not odd and self.t == 3, odd and self.t == 4, {})


def _play(env, seed: int, steps: int | None = None) -> None:
    env.reset(seed=seed)
    for _ in range(steps or 100):
        _, _, terminated, truncated, _ = env.step(np.full(2, 0.5, np.float32))
        if terminated or truncated:
            return


def _episodes(out: Path) -> list[dict[str, np.ndarray]]:
    with h5py.File(out / "data" / "main_data.hdf5", "r") as f:
        keys = sorted(f, key=lambda k: int(k.split("_")[1]))
        return [{k: f[ep][k][()] for k in ("observations", "actions", "rewards", "terminations", "truncations")}
                for ep in keys]


def test_finished_episodes_keep_terminated_and_truncated_apart(tmp_path):
    out = tmp_path / "datasets" / "test" / "two-ways-v0"
    env = RecordEpisodes(EndsTwoWays(), out, ref_min_score=-1.0, ref_max_score=20.0)
    for seed in (0, 1, 2):
        _play(env, seed)
    with pytest.raises(RecordingError, match="no running episode"):
        env.step(np.zeros(2, np.float32))  # the episode ended: a step would be recorded nowhere
    assert not out.exists()  # nothing at the dataset path before finalize
    assert env.finalize() == out
    eps = _episodes(out)
    assert [e["terminations"].tolist() for e in eps] == [[False, False, True], [False] * 4, [False, False, True]]
    assert [e["truncations"].tolist() for e in eps] == [[False] * 3, [False, False, False, True], [False] * 3]
    assert eps[1]["rewards"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert eps[1]["observations"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # L + 1 observations
    assert eps[0]["actions"].shape == (3, 2) and eps[0]["actions"].dtype == np.float32
    # the suite's reader takes it as it is, with the card's sha256 (same definition as rl.core.datasets)
    card = json.loads((out / "card.json").read_text())
    assert card["sha256"] == dataset_sha256(out)
    data = read_dataset(out, "two-ways", card["sha256"])
    assert data.returns_e.tolist() == [3.0, 10.0, 9.0] and data.lengths_e.tolist() == [3, 4, 3]
    assert data.terminated_m.tolist() == [False, False, True, False, False, False, False, False, False, True]
    assert data.truncated_m.tolist() == [False, False, False, False, False, False, True, False, False, False]
    assert data.metadata["dataset_id"] == "test/two-ways-v0"
    assert (data.metadata["ref_min_score"], data.metadata["ref_max_score"]) == (-1.0, 20.0)
    assert card["episodes"] == 3 and card["steps"] == 10 and card["mean_return"] == pytest.approx(22 / 3)
    assert card["positive_variance"] == pytest.approx(positive_variance(data.returns_e))
    assert card["ref_random_return"] == -1.0 and card["ref_expert_return"] == 20.0
    assert sum(card["return_histogram"]["counts"]) == 3
    # and Minari reads it
    from minari.dataset.minari_dataset import MinariDataset

    ds = MinariDataset(out / "data")
    assert ds.total_episodes == 3 and ds.total_steps == 10
    assert [bool(e.truncations[-1]) for e in ds.iterate_episodes()] == [False, True, False]
    assert sorted(p.name for p in out.parent.iterdir()) == ["two-ways-v0"]  # no staging left beside it


@pytest.mark.parametrize("keep", [False, True])
def test_cut_episodes_are_dropped_or_kept_as_truncated(tmp_path, keep):
    env = RecordEpisodes(gym.make(KNOWN_RETURNS_ID, horizon=5, continuous=True, action_dim=2), tmp_path / "ds",
                         keep_cut_episodes=keep)
    _play(env, 0)  # finished (terminated at step 5)
    _play(env, 1, steps=2)  # cut by the next reset
    _play(env, 2)  # finished
    _play(env, 3, steps=3)  # still running at finalize
    out = env.finalize()
    assert env.cut_episodes == 2
    lengths = [len(e["rewards"]) for e in _episodes(out)]
    card = json.loads((out / "card.json").read_text())
    assert card["dataset"] == "rlsuite/recorded-v0" and card["env_id"] == KNOWN_RETURNS_ID
    if keep:
        assert lengths == [5, 2, 5, 3] and card["cut_episodes"] == 2
        cut = _episodes(out)[1]
        assert cut["truncations"].tolist() == [False, True] and not cut["terminations"].any()
    else:
        assert lengths == [5, 5] and card["episodes"] == 2
        assert [e["terminations"][-1] for e in _episodes(out)] == [True, True]


def test_no_finished_episode_writes_nothing(tmp_path):
    env = RecordEpisodes(EndsTwoWays(), tmp_path / "ds")
    _play(env, 0, steps=2)
    with pytest.raises(RecordingError, match="no finished episode"):
        env.finalize()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RecordingError, match="already finalized or aborted"):
        env.step(np.zeros(2, np.float32))


@pytest.mark.parametrize("fault, match", [("nan_reward", "episode 1: step 2: reward nan"),
                                          ("obs_out_of_space", "episode 1: observation at step 2 is outside")])
def test_bad_step_is_refused_and_close_leaves_nothing(tmp_path, fault, match):
    env = RecordEpisodes(FaultyEnv(fault=fault, fault_step=2, fault_episode=1, horizon=3), tmp_path / "ds")
    env.reset(seed=0)
    for _ in range(3):
        env.step(0)  # episode 0 is fine and finished
    env.reset(seed=1)
    env.step(0)
    with pytest.raises(RecordingError, match=match):
        env.step(0)
    env.close()
    assert list(tmp_path.iterdir()) == []


def test_error_while_finalizing_leaves_nothing(tmp_path, monkeypatch):
    env = RecordEpisodes(EndsTwoWays(), tmp_path / "ds")
    _play(env, 0)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        env.finalize()
    assert list(tmp_path.iterdir()) == []


def test_existing_dataset_and_bad_ids_are_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(RecordingError, match="already exists"):
        RecordEpisodes(EndsTwoWays(), tmp_path / "ds")
    with pytest.raises(RecordingError, match="dataset_id 'no version'"):
        RecordEpisodes(EndsTwoWays(), tmp_path / "other", dataset_id="no version")
    with pytest.raises(RecordingError, match="both ref_min_score and ref_max_score"):
        RecordEpisodes(EndsTwoWays(), tmp_path / "other", ref_min_score=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
