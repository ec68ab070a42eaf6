"""The fixture envs of envs/testing.py: API conformance, closed-form returns, injected faults."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the fixture envs)
from envs.testing import (
    CONSTANT_REWARD_ID,
    FAULTS,
    FAULTY_ENV_ID,
    KNOWN_RETURNS_ID,
    FaultyEnv,
    known_returns,
    register_testing_envs,
)

ENDINGS = [{"continuous": c, "truncate_instead": t} for c in (False, True) for t in (False, True)]


def rollout(env: gymnasium.Env, seed: int = 0):
    """Run one episode with action 0 (or zeros); return obs [T+1], rewards [T], terminated, truncated."""
    obs, _ = env.reset(seed=seed)
    action = 0 if isinstance(env.action_space, gymnasium.spaces.Discrete) else np.zeros(env.action_space.shape)
    obs_t, reward_t = [obs], []
    while True:
        obs, reward, terminated, truncated, _ = env.step(action)
        obs_t.append(obs)
        reward_t.append(reward)
        if terminated or truncated:
            return np.array(obs_t), np.array(reward_t), terminated, truncated


@pytest.mark.parametrize("kwargs", ENDINGS, ids=str)
@pytest.mark.parametrize("env_id", [CONSTANT_REWARD_ID, KNOWN_RETURNS_ID, FAULTY_ENV_ID])
def test_check_env_passes_without_warnings(env_id, kwargs):
    env = gymnasium.make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_register_is_idempotent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered twice
        register_testing_envs()
        register_testing_envs()
    assert {CONSTANT_REWARD_ID, KNOWN_RETURNS_ID, FAULTY_ENV_ID} <= set(gymnasium.registry)


@pytest.mark.parametrize("truncate_instead", [False, True])
def test_constant_reward_has_fixed_horizon_and_reward(truncate_instead):
    env = gymnasium.make(CONSTANT_REWARD_ID, reward=-0.5, horizon=7, obs_dim=4, truncate_instead=truncate_instead)
    obs_t, reward_t, terminated, truncated = rollout(env)
    assert reward_t.tolist() == [-0.5] * 7
    assert obs_t.shape == (8, 4) and obs_t.dtype == np.float32
    assert (terminated, truncated) == (not truncate_instead, truncate_instead)


def test_seed_fixes_the_episode_and_another_seed_changes_it():
    env = gymnasium.make(CONSTANT_REWARD_ID)
    first, second, other = rollout(env, seed=3)[0], rollout(env, seed=3)[0], rollout(env, seed=4)[0]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kwargs", ENDINGS, ids=str)
def test_known_returns_rewards_are_step_indices(kwargs):
    horizon = 6
    obs_t, reward_t, terminated, truncated = rollout(gymnasium.make(KNOWN_RETURNS_ID, horizon=horizon, **kwargs))
    assert reward_t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert reward_t.sum() == horizon * (horizon - 1) / 2
    assert obs_t[:, 0].tolist() == list(range(horizon + 1))
    assert (terminated, truncated) == (not kwargs["truncate_instead"], kwargs["truncate_instead"])


@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.0])
def test_known_returns_matches_the_discounted_rollout(gamma):
    horizon = 9
    _, reward_t, _, _ = rollout(gymnasium.make(KNOWN_RETURNS_ID, horizon=horizon))
    expected_t = [np.sum(gamma ** np.arange(horizon - t) * reward_t[t:]) for t in range(horizon)]
    np.testing.assert_allclose(known_returns(horizon, gamma), expected_t)


def test_known_returns_by_hand():
    assert known_returns(4).tolist() == [6.0, 6.0, 5.0, 3.0]
    # G_2 = 2, G_1 = 1 + 0.5 * 2, G_0 = 0 + 0.5 * 2
    assert known_returns(3, gamma=0.5).tolist() == [1.0, 2.0, 2.0]


@pytest.mark.parametrize("fault", FAULTS)
def test_faulty_env_faults_only_at_its_step_and_episode(fault):
    env = FaultyEnv(fault=fault, fault_step=3, fault_episode=1, horizon=5)
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        for step in range(1, 6):
            obs, reward, _, _, _ = env.step(0)
            faulty = (episode, step) == (1, 3)
            in_contract = obs in env.observation_space and obs.dtype == np.float32 and np.isfinite(reward)
            assert in_contract != faulty, (episode, step, obs, reward)


def test_faulty_env_can_fault_on_reset():
    env = FaultyEnv(fault="nan_obs", fault_step=0)
    assert np.isnan(env.reset(seed=0)[0][0])


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"horizon": 0}, "horizon"),
        ({"obs_dim": 2.5}, "obs_dim"),
        ({"fault": "bogus"}, "fault"),
        ({"fault_step": 11}, "fault_step"),
        ({"fault": "nan_reward", "fault_step": 0}, "fault_step"),
        ({"fault_episode": -1}, "fault_episode"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, named):
    with pytest.raises(ValueError, match=named):
        FaultyEnv(**kwargs)


def test_step_after_the_episode_ended_raises():
    env = gymnasium.make(CONSTANT_REWARD_ID, horizon=2).unwrapped
    env.reset(seed=0)
    env.step(0)
    env.step(0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_bad_actions_are_rejected():
    with pytest.raises(ValueError, match="Discrete"):
        gymnasium.make(CONSTANT_REWARD_ID).unwrapped.step(5)
    env = gymnasium.make(CONSTANT_REWARD_ID, continuous=True, action_dim=2).unwrapped
    env.reset(seed=0)
    env.step(np.array([3.0, -3.0]))  # unclipped but finite is fine
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
