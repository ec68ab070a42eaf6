"""OneHotObservation: one one-hot block per integer dimension, refused for spaces it cannot encode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.make import EnvBuildError, make_vector_env
from envs.observation import OneHotObservation, OneHotObservationError


def test_integer_box_positions_become_one_block_per_dimension():
    import mo_gymnasium  # noqa: F401  (registers deep-sea-treasure-v0)

    env = OneHotObservation(gym.make("deep-sea-treasure-v0"))
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (24,), np.float32)  # rows 0..11, columns 0..11
    obs, _ = env.reset(seed=0)
    assert np.flatnonzero(obs).tolist() == [0, 12]  # (row 0, column 0)
    obs, *_ = env.step(3)  # right
    assert np.flatnonzero(obs).tolist() == [0, 13] and obs.dtype == np.float32


class _MultiDiscreteEnv(gym.Env):
    observation_space = gym.spaces.MultiDiscrete([3, 2], start=[1, -1])
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([3, 0]), {}

    def step(self, action):
        return np.array([1, -1]), 0.0, True, False, {}


@pytest.mark.filterwarnings("ignore::UserWarning")  # check_env's note that the env is wrapped
def test_discrete_and_multidiscrete_spaces_pass_the_env_checker():
    check_env(OneHotObservation(gym.make("FrozenLake-v1")), skip_render_check=True)
    env = OneHotObservation(_MultiDiscreteEnv())
    check_env(env, skip_render_check=True)
    assert env.reset(seed=0)[0].tolist() == [0, 0, 1, 0, 1]  # 3 of 1..3, then 0 of -1..0
    assert env.step(0)[0].tolist() == [1, 0, 0, 1, 0]


def test_out_of_range_values_and_float_spaces_are_refused():
    env = OneHotObservation(gym.make("FrozenLake-v1"))
    with pytest.raises(ValueError, match="dimension 0 is 16, outside 0..15"):
        env.observation(16)
    with pytest.raises(OneHotObservationError, match="not integer"):
        OneHotObservation(gym.make("Pendulum-v1"))
    with pytest.raises(EnvBuildError, match="env.kwargs or env.wrappers: Pendulum-v1 rejected an argument"):
        make_vector_env("Pendulum-v1", 1, wrappers=[("OneHotObservation", {})])
    vec = make_vector_env("FrozenLake-v1", 2, wrappers=[("OneHotObservation", {})])
    assert vec.single_observation_space.shape == (16,)
    vec.close()
