"""The SB3 adapter: the VecEnv view of the suite's envs, and the agent's checkpointable state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.base import AgentError
from agents.sb3.agent import SB3Agent
from agents.sb3.config import SB3Config
from agents.sb3.vec_env import SessionVecEnv
from envs.checks import ContractCheck
from envs.make import make_vector_env
from envs.testing import KNOWN_RETURNS_ID


def _known_returns_venv(num_envs: int, horizon: int, truncate: bool, continuous: bool = False):
    envs = ContractCheck(make_vector_env(KNOWN_RETURNS_ID, num_envs,
                                         {"horizon": horizon, "truncate_instead": truncate,
                                          "continuous": continuous}))
    episodes = []
    return SessionVecEnv(envs, on_episode=episodes.append), episodes


@pytest.mark.parametrize("truncate", [False, True])
def test_vec_env_reports_final_obs_time_outs_and_episodes_as_sb3_expects(truncate):
    venv, episodes = _known_returns_venv(2, horizon=3, truncate=truncate)
    venv.seed_each([1, 2])
    assert np.array_equal(venv.reset(), [[0.0], [0.0]])
    for t in range(1, 3):
        obs, reward, done, infos = venv.step(np.zeros(2, np.int64))
        assert np.array_equal(obs, [[t], [t]]) and np.array_equal(reward, [t - 1, t - 1]) and not done.any()
        assert infos == [{}, {}]
    obs, reward, done, infos = venv.step(np.zeros(2, np.int64))
    assert done.all() and np.array_equal(reward, [2.0, 2.0])
    assert np.array_equal(obs, [[0.0], [0.0]])  # SAME_STEP: already the next episode's first observation
    for info in infos:
        assert np.array_equal(info["terminal_observation"], [3.0])
        assert info["TimeLimit.truncated"] is truncate
        assert info["episode"] == {"r": 3.0, "l": 3}
    assert [(e.env_index, float(e.ret_k.sum()), e.length, e.terminated) for e in episodes] == \
        [(0, 3.0, 3, not truncate), (1, 3.0, 3, not truncate)]


def test_sb3_replay_buffer_gets_true_next_obs_and_bootstraps_only_time_outs():
    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import Logger

    venv, _ = _known_returns_venv(1, horizon=4, truncate=True)
    model = DQN("MlpPolicy", venv, learning_starts=1000, seed=0, device="cpu", buffer_size=100)
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger makes a /tmp/SB3-* dir
    model.learn(8)
    buf = model.replay_buffer
    assert buf.pos == 8
    assert np.array_equal(buf.observations[:8, 0, 0], [0, 1, 2, 3, 0, 1, 2, 3])
    assert np.array_equal(buf.next_observations[:8, 0, 0], [1, 2, 3, 4, 1, 2, 3, 4])
    assert np.array_equal(buf.dones[:8, 0], [0, 0, 0, 1, 0, 0, 0, 1])
    assert np.array_equal(buf.timeouts[:8, 0], [0, 0, 0, 1, 0, 0, 0, 1])  # truncated: SB3 bootstraps these


def _sac_agent(seed: int = 0, **kwargs) -> SB3Agent:
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    config = SB3Config(algo="sb3.SAC", kwargs={"policy_kwargs": {"net_arch": [16]}, "learning_starts": 10,
                                               "batch_size": 8, **kwargs})
    return SB3Agent(config, env.observation_space, env.action_space, 1, seed)


def _train_a_little(agent: SB3Agent) -> None:
    from stable_baselines3.common.logger import Logger

    venv = SessionVecEnv(ContractCheck(make_vector_env("Pendulum-v1", 1)))
    agent.bind(venv)
    agent.model.set_logger(Logger(folder=None, output_formats=[]))
    agent.model.learn(40)


def test_state_round_trips_weights_optimizers_entropy_coefficient_and_counters():
    trained = _sac_agent()
    _train_a_little(trained)
    arrays, meta = trained.state()
    assert any(k.startswith("sb3/actor.optimizer/state/") for k in arrays) and "sb3var/log_ent_coef" in arrays
    fresh = _sac_agent(seed=5)
    assert not np.array_equal(fresh.state()[0]["sb3/policy/actor.mu.weight"], arrays["sb3/policy/actor.mu.weight"])
    fresh.load_state(arrays, meta)
    again, meta_again = fresh.state()
    assert meta_again == meta and meta["num_timesteps"] == 40 and meta["n_updates"] == 30
    assert set(again) == set(arrays)
    for key in arrays:
        assert np.array_equal(again[key], arrays[key]), key


def test_policy_state_is_what_acting_needs():
    trained = _sac_agent()
    _train_a_little(trained)
    arrays, meta = trained.policy_state()
    assert meta["policy_only"] and all(k.startswith("sb3/policy/") for k in arrays)
    other = _sac_agent(seed=3)
    other.load_state(arrays, meta)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    assert np.array_equal(other.act(obs, deterministic=True)[0], trained.act(obs, deterministic=True)[0])


def test_acting_leaves_the_global_torch_generator_alone():
    agent = _sac_agent()
    obs = np.zeros((4, 3), np.float32)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    agent.act(obs, deterministic=False)
    assert torch.equal(torch.rand(3), expected)


def test_replay_buffer_round_trips():
    trained = _sac_agent()
    _train_a_little(trained)
    state, arrays = trained.replay_state()
    assert state["pos"] == 40 and arrays["sb3replay/observations"].shape == (40, 1, 3)
    fresh = _sac_agent()
    fresh.load_replay_state(state, arrays)
    buf = fresh.model.replay_buffer
    assert buf.pos == 40
    assert np.array_equal(buf.next_observations[:40], trained.model.replay_buffer.next_observations[:40])


def test_wrong_spaces_and_vector_rewards_are_agent_errors():
    import gymnasium as gym

    cartpole = gym.make("CartPole-v1")
    with pytest.raises(AgentError, match="agent.algo: sb3.SAC cannot act in this env's action space Discrete"):
        SB3Agent(SB3Config(algo="sb3.SAC"), cartpole.observation_space, cartpole.action_space, 1, 0)
    with pytest.raises(AgentError, match="scalar rewards only"):
        SB3Agent(SB3Config(algo="sb3.DQN"), cartpole.observation_space, cartpole.action_space, 2, 0)
    with pytest.raises(AgentError, match=r"agent.kwargs: sb3.PPO rejected its arguments \(AssertionError: `n_steps"):
        SB3Agent(SB3Config(algo="sb3.PPO", kwargs={"n_steps": 1}), cartpole.observation_space,
                 cartpole.action_space, 1, 0)
