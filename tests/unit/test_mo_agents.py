"""Multi-objective agents: mo_dqn's vector targets against a plain loop, its update and state,
and PPO's objective weighting.

Axis letters: B batch, M weights per transition, A actions, K objectives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.base import AgentError
from agents.mo_dqn.agent import MODQNAgent
from agents.mo_dqn.config import MODQNConfig
from agents.mo_dqn.loss import vector_target
from agents.mo_dqn.networks import VectorQ, feature_frequencies
from agents.ppo.agent import PPOAgent
from agents.ppo.config import PPOConfig

OBS = spaces.Box(np.array([0, 0, 0, 0], np.float32), np.array([11, 11, 1, 1], np.float32))


def test_envelope_and_conditioned_targets_match_a_loop():
    g = torch.Generator().manual_seed(0)
    b, m, a, k = 3, 4, 5, 2
    r = torch.randn(b, k, generator=g)
    term = torch.tensor([0.0, 1.0, 0.0])
    w = torch.rand(b, m, k, generator=g)
    q_t, q_s = torch.randn(b, m, a, k, generator=g), torch.randn(b, m, a, k, generator=g)
    env = vector_target(r, term, 0.9, w, q_t, q_s, envelope=True)
    cond = vector_target(r, term, 0.9, w, q_t, q_s, envelope=False)
    for i in range(b):
        for j in range(m):
            u = {(n, c): float(w[i, j] @ q_s[i, n, c]) for n in range(m) for c in range(a)}
            n, c = max(u, key=u.get)
            expected = r[i] + 0.9 * (1 - term[i]) * q_t[i, n, c]
            torch.testing.assert_close(env[i, j], expected)
            c = int(torch.argmax(q_s[i, j] @ w[i, j]))
            torch.testing.assert_close(cond[i, j], r[i] + 0.9 * (1 - term[i]) * q_t[i, j, c])


def batch(rng, b=16):
    obs = np.concatenate([rng.integers(0, 11, (b, 2)), rng.dirichlet([1, 1], b)], 1).astype(np.float32)
    return {"obs": obs, "next_obs": obs.copy(), "action": rng.integers(0, 4, b), "reward": rng.normal(size=(b, 2))
            .astype(np.float32), "terminated": rng.random(b) < 0.2, "truncated": np.zeros(b, bool)}


@pytest.mark.parametrize(("features", "basis"), [(0, "random"), (8, "random"), (8, "fourier")])
def test_mo_dqn_updates_and_round_trips_its_state(features, basis):
    cfg = MODQNConfig(net_arch=[16], num_weight_samples=3, weight_features=features, weight_feature_basis=basis)
    agent = MODQNAgent(cfg, OBS, spaces.Discrete(4), 2, seed=0)
    rng = np.random.default_rng(0)
    metrics = agent.update(batch(rng))
    assert all(np.isfinite(v) for v in metrics.values())
    arrays, json_state = agent.state()
    other = MODQNAgent(cfg, OBS, spaces.Discrete(4), 2, seed=1)
    other.load_state(arrays, json_state)
    b = batch(rng)
    assert agent.update(b) == other.update(b)
    obs = b["obs"][:4]
    assert agent.act(obs, deterministic=True)[0].tolist() == other.act(obs, deterministic=True)[0].tolist()


@pytest.mark.parametrize("features", [0, 6])
def test_vector_q_shares_the_state_part_across_weights(features):
    """forward(obs, w_bmk) is forward of each observation with its weights replaced by each w_bm."""
    torch.manual_seed(0)
    net = VectorQ(5, 3, 2, [16, 8], weight_features=features, feature_scale=3.0)
    obs_bd = torch.rand(4, 5)
    w_bmk = torch.distributions.Dirichlet(torch.ones(2)).sample((4, 7))
    relabelled = obs_bd[:, None, :].repeat(1, 7, 1)
    relabelled[..., -2:] = w_bmk
    torch.testing.assert_close(net(obs_bd, w_bmk), net(relabelled))
    assert net(obs_bd).shape == (4, 3, 2)
    assert ("feature_freqs" in net.state_dict()) == bool(features)


def test_weight_features_resolve_a_sharp_change_in_the_weights():
    """A step in w (a policy switch) is fitted far closer with Fourier features than from w alone."""
    def fit(features):
        torch.manual_seed(0)
        net = VectorQ(3, 1, 2, [32], weight_features=features, feature_scale=3.0)
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        w1 = torch.linspace(0, 1, 256)[:, None]
        obs = torch.cat([torch.ones(256, 1), w1, 1 - w1], 1)
        y = (w1 > 0.53).float().repeat(1, 2)
        for _ in range(600):
            loss = (net(obs)[:, 0] - y).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    plain, fourier = fit(0), fit(16)
    assert fourier < 0.25 * plain, (plain, fourier)


def test_fourier_basis_is_integer_frequencies_per_objective_and_the_same_for_every_seed():
    expected = torch.tensor([[1.0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 2, 0], [0, 0, 1], [0, 0, 2]])
    torch.testing.assert_close(feature_frequencies(6, 3, 3.0, "fourier"), expected)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(VectorQ(5, 3, 3, [8], weight_features=6, basis="fourier"))
    torch.testing.assert_close(nets[0].feature_freqs, nets[1].feature_freqs)
    assert not torch.equal(nets[0].body[0].weight, nets[1].body[0].weight)
    torch.manual_seed(0)
    random_b = VectorQ(5, 3, 3, [8], weight_features=6, feature_scale=3.0).feature_freqs
    assert random_b.shape == (6, 3) and not torch.equal(random_b, expected)


def test_fourier_basis_needs_a_multiple_of_the_objectives():
    cfg = MODQNConfig(net_arch=[16], weight_features=7, weight_feature_basis="fourier")
    with pytest.raises(AgentError, match=r"agent.weight_features=7 must be a multiple of the env's K=2"):
        MODQNAgent(cfg, OBS, spaces.Discrete(4), 2, seed=0)


def test_mo_dqn_needs_weights_in_the_observation():
    with pytest.raises(AgentError, match="WeightConditionedObservation"):
        MODQNAgent(MODQNConfig(), spaces.Box(0, 11, (2,), np.float32), spaces.Discrete(4), 2, seed=0)
    with pytest.raises(AgentError, match="K >= 2"):
        MODQNAgent(MODQNConfig(), OBS, spaces.Discrete(4), 1, seed=0)


def ppo_batch(rng, obs):
    b = len(obs)
    return {"obs": obs, "action": rng.integers(0, 2, b), "logprob": np.full(b, -0.69, np.float32),
            "value": np.zeros((b, 2), np.float32), "advantage": rng.normal(size=(b, 2)).astype(np.float32),
            "returns": rng.normal(size=(b, 2)).astype(np.float32), "valid": np.ones(b, bool)}


def test_ppo_objective_weights_pick_one_objective():
    rng = np.random.default_rng(0)
    obs = np.concatenate([rng.uniform(0, 1, (32, 2)), np.tile([1.0, 0.0], (32, 1))], 1).astype(np.float32)
    data = ppo_batch(rng, obs)
    only_first = dict(data, advantage=np.stack([data["advantage"][:, 0], np.zeros(32, np.float32)], 1))
    runs = []
    for cfg, b in [(PPOConfig(objective_weights=[1.0, 0.0], n_epochs=1), data),
                   (PPOConfig(n_epochs=1), only_first),
                   (PPOConfig(weights_from_obs=True, n_epochs=1), data)]:
        agent = PPOAgent(cfg, OBS, spaces.Discrete(2), 2, seed=0)
        runs.append(agent.update(b, [[np.arange(32)]], 0.0)["train/policy_gradient_loss"])
    assert runs[0] == pytest.approx(runs[1]) and runs[0] == pytest.approx(runs[2])


def test_ppo_objective_weights_bad_input():
    with pytest.raises(AgentError, match="agent.objective_weights: 3 weights for an env with K=2"):
        PPOAgent(PPOConfig(objective_weights=[1.0, 1.0, 1.0]), OBS, spaces.Discrete(2), 2, seed=0)
    with pytest.raises(ValueError, match="objective weights must be >= 0"):
        PPOConfig(objective_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="objective weights must be >= 0"):
        PPOConfig(objective_weights=[0.0, 0.0])
