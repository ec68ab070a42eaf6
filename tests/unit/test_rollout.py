"""Rollout collection: both autoreset modes, terminated vs truncated, true final observations."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rl.core.rollout import RolloutCollector
from rl.core.storage import Field, Storage


class Counter(gym.Env):
    """obs = [episode step]; reward 1; ends after ``horizon`` steps by truncation or termination."""

    def __init__(self, horizon=3, truncate=True):
        self.observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.horizon, self.truncate = horizon, truncate
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.horizon
        return np.array([self.t], np.float32), 1.0, end and not self.truncate, end and self.truncate, {}


class ObsValueActor:
    """value(obs) = obs itself, so bootstrap values are easy to check."""

    def act(self, obs):
        n = len(obs)
        return np.zeros(n, np.int64), {"value": obs.astype(np.float32).reshape(n, 1)}

    def value(self, obs):
        return obs.astype(np.float32).reshape(len(obs), 1)


def _envs(mode, truncate=True, n=2, horizons=(3, 4)):
    return SyncVectorEnv([lambda h=h: Counter(h, truncate) for h in horizons[:n]], autoreset_mode=mode)


def _storage(rows, n=2):
    fields = {"obs": Field((1,)), "action": Field((), "int64"), "reward": Field((1,)),
              "terminated": Field((), "bool"), "truncated": Field((), "bool"), "valid": Field((), "bool"),
              "next_value": Field((1,)), "value": Field((1,))}
    return Storage(fields, rows, n)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_next_obs_is_the_true_final_observation(mode):
    c = RolloutCollector(_envs(mode), reward_dim=1)
    c.reset([0, 1])
    finals = []
    for _ in range(10):
        tr = c.step(np.zeros(2, np.int64))
        for i in np.flatnonzero(tr.truncated_n & tr.valid_n):
            finals.append((i, float(tr.next_obs[i, 0])))
        assert not tr.terminated_n.any()
    assert (0, 3.0) in finals and (1, 4.0) in finals


def test_same_step_has_no_invalid_rows_next_step_masks_reset_steps():
    same = RolloutCollector(_envs(AutoresetMode.SAME_STEP), 1)
    same.reset([0, 1])
    nxt = RolloutCollector(_envs(AutoresetMode.NEXT_STEP), 1)
    nxt.reset([0, 1])
    v_same = [same.step(np.zeros(2, np.int64)).valid_n.copy() for _ in range(8)]
    v_next = [nxt.step(np.zeros(2, np.int64)).valid_n.copy() for _ in range(8)]
    assert np.stack(v_same).all()
    # env 0 (horizon 3) ends at steps 3 and 7 (1-based); the step after each is a reset step
    np.testing.assert_array_equal(np.stack(v_next)[:, 0], [1, 1, 1, 0, 1, 1, 1, 0])


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_episode_records_have_returns_and_lengths(mode):
    c = RolloutCollector(_envs(mode), 1)
    c.reset([0, 1])
    eps = []
    for _ in range(12):
        eps += c.step(np.zeros(2, np.int64)).finished
    by_env = {(e.env_index, e.length, float(e.ret_k[0])) for e in eps}
    assert (0, 3, 3.0) in by_env and (1, 4, 4.0) in by_env
    assert all(not e.terminated for e in eps)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
@pytest.mark.parametrize("truncate", [True, False])
def test_collect_fills_next_value_with_successor_values(mode, truncate):
    c = RolloutCollector(_envs(mode, truncate), 1)
    c.reset([0, 1])
    s = _storage(rows=6)
    c.collect(ObsValueActor(), s, lambda ep: None)
    obs = s.arrays["obs"][..., 0]
    nv = s.arrays["next_value"][..., 0]
    valid = s.arrays["valid"]
    ended = s.arrays["terminated"] | s.arrays["truncated"]
    for t in range(6):
        for i in range(2):
            if not valid[t, i]:
                continue
            expected = obs[t, i] + 1  # the Counter env's successor observation
            if ended[t, i] and not truncate:
                continue  # terminated: next value is multiplied by zero, any value is fine
            assert nv[t, i] == expected, (t, i, mode, truncate)


def test_box_actions_are_clipped_for_the_env_but_stored_raw():
    env = SyncVectorEnv([lambda: gym.make("Pendulum-v1")], autoreset_mode=AutoresetMode.SAME_STEP)
    c = RolloutCollector(env, 1)
    c.reset([0])
    tr = c.step(np.array([[5.0]], np.float32))
    assert tr.action[0, 0] == 5.0
