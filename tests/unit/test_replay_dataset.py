"""Rebuilding episodes from a replay buffer (``rl collect --replay``): order, wrap-around, validity, continuity."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.replay_dataset import replay_episodes
from rl.core.datasets import DatasetError
from rl.core.storage import Field, Storage


def _buffer(capacity: int, num_envs: int, lengths_n: list[list[int]], steps: int | None = None):
    """A replay Storage filled the way the off-policy loop fills it: env n plays episodes of the given
    lengths back to back (observation = a running counter per env, so continuity is checkable)."""
    fields = {"obs": Field((2,)), "next_obs": Field((2,)), "action": Field((1,)), "reward": Field((1,)),
              "terminated": Field((), "bool"), "truncated": Field((), "bool"), "valid": Field((), "bool")}
    s = Storage(fields, capacity, num_envs)
    counter_n = [0] * num_envs
    plan_n = [[(ep, t, length) for ep, length in enumerate(lengths) for t in range(length)] for lengths in lengths_n]
    rows = steps if steps is not None else len(plan_n[0])
    for row in range(rows):
        obs, nxt, term = np.zeros((num_envs, 2), np.float32), np.zeros((num_envs, 2), np.float32), []
        for n in range(num_envs):
            ep, t, length = plan_n[n][row]
            obs[n] = (n, counter_n[n])
            counter_n[n] += 1
            # the last step of an episode leads to a terminal state that is not the next episode's start
            nxt[n] = (n, counter_n[n]) if t < length - 1 else (n, -1)
            if t == length - 1:
                counter_n[n] += 1000  # the next episode starts elsewhere
            term.append(t == length - 1)
        s.add(obs=obs, next_obs=nxt, action=obs[:, :1], reward=obs[:, 1:] * 0.5,
              terminated=np.array(term), truncated=np.zeros(num_envs, bool), valid=np.ones(num_envs, bool))
    return s


def _episodes(s: Storage):
    return replay_episodes(s.array_state(), s.state(), "buffer")


def test_episodes_come_back_whole_and_in_order_per_env():
    s = _buffer(capacity=20, num_envs=2, lengths_n=[[3, 4, 5], [6, 6]])
    eps = _episodes(s)
    assert [len(e["action"]) for e in eps] == [3, 4, 5, 6, 6]
    first = eps[0]
    assert first["obs"].shape == (4, 2) and first["obs"][:, 1].tolist() == [0, 1, 2, -1]
    assert first["terminated"].tolist() == [False, False, True] and not first["truncated"].any()
    np.testing.assert_array_equal(first["reward"], first["obs"][:-1, 1] * 0.5)
    assert eps[3]["obs"][0, 0] == 1  # env 1's episodes follow env 0's


def test_a_wrapped_buffer_drops_each_envs_first_episode_and_the_unfinished_tail():
    # 12 steps into a 10-row ring: rows 0-1 were overwritten, so episode 0 (steps 0-3) lost its start
    s = _buffer(capacity=10, num_envs=1, lengths_n=[[4, 3, 4, 9]], steps=13)
    assert s.full
    eps = _episodes(s)
    assert [len(e["action"]) for e in eps] == [3, 4]  # episode 0 cut by the wrap, episode 3 unfinished


def test_invalid_rows_are_skipped():
    s = _buffer(capacity=10, num_envs=1, lengths_n=[[3, 3]])
    s.arrays["valid"][3] = False  # the first row of the second episode
    s.arrays["obs"][3] = np.nan
    eps = _episodes(s)
    assert [len(e["action"]) for e in eps] == [3, 2]


def test_a_buffer_without_valid_flags_keeps_every_row():
    """The off-policy loop's replay has no ``valid`` field (every SAME_STEP step is real)."""
    s = _buffer(capacity=20, num_envs=2, lengths_n=[[3, 4, 5], [6, 6]])
    arrays = {k: v for k, v in s.array_state().items() if k != "valid"}
    eps = replay_episodes(arrays, s.state(), "buffer")
    assert [len(e["action"]) for e in eps] == [3, 4, 5, 6, 6]
    for a, b in zip(eps, _episodes(s), strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(DatasetError, match=r"no field\(s\) \['terminated'\]"):
        replay_episodes({k: v for k, v in arrays.items() if k != "terminated"}, s.state(), "buffer")


def test_a_buffer_that_is_not_whole_episodes_is_refused_naming_the_row():
    s = _buffer(capacity=10, num_envs=1, lengths_n=[[5]])
    s.arrays["obs"][2, 0, 1] += 7.0
    with pytest.raises(DatasetError, match=r"buffer: env 0, buffer row 2: obs is not the previous row's next_obs"):
        _episodes(s)


def test_vector_rewards_are_refused():
    s = _buffer(capacity=10, num_envs=1, lengths_n=[[3]])
    arrays = s.array_state()
    arrays["reward"] = np.zeros((3, 1, 2), np.float32)
    with pytest.raises(DatasetError, match="2 objectives"):
        replay_episodes(arrays, s.state(), "buffer")
