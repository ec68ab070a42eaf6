"""Every registered agent: builds, acts, updates with finite losses, changes its weights,
round-trips its state exactly, and is deterministic given its seed."""

import gymnasium as gym
import numpy as np
import pytest

from agents.registry import AGENT_CONFIGS, build_agent

SPACES = {
    "discrete": (gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(3)),
    "continuous": (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-2, 2, (2,), np.float32)),
}


def _config(algo, **kw):
    small = {"ppo": {"n_steps": 8, "batch_size": 8, "n_epochs": 2, "net_arch": [16]}}
    return AGENT_CONFIGS[algo].model_validate({"algo": algo, **small.get(algo, {}), **kw})


def _batch(agent, rng, rows=16):
    obs = rng.uniform(-1, 1, (rows, agent.obs_dim)).astype(np.float32)
    action, extras = agent.act(obs)
    adv = rng.normal(size=(rows, agent.reward_dim)).astype(np.float32)
    return {"obs": obs, "action": action, "logprob": extras["logprob"], "value": extras["value"],
            "advantage": adv, "returns": extras["value"] + adv, "valid": np.ones(rows, bool)}


def _update(agent, batch, seed=0):
    from rl.core.samplers import MinibatchSampler

    sampler = MinibatchSampler(np.random.default_rng(seed), 8, 2)
    return agent.update(batch, sampler.epochs_of_batches(len(batch["obs"])), 0.5)


def _applicable(algo, kind):
    return True


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_agent_updates_with_finite_metrics_and_changes_weights(algo, kind):
    if not _applicable(algo, kind):
        pytest.skip(f"{algo} does not support {kind} actions")
    obs_space, act_space = SPACES[kind]
    agent = build_agent(_config(algo), obs_space, act_space, 1, seed=3)
    before, _ = agent.state()
    metrics = _update(agent, _batch(agent, np.random.default_rng(0)))
    assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    after, _ = agent.state()
    changed = [k for k in before if k.startswith("net/") and not np.array_equal(before[k], after[k])]
    assert changed, "update() did not change any weight"


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_state_round_trip_continues_identically(algo, kind):
    obs_space, act_space = SPACES[kind]
    a = build_agent(_config(algo), obs_space, act_space, 1, seed=5)
    _update(a, _batch(a, np.random.default_rng(0)))
    arrays, js = a.state()
    b = build_agent(_config(algo), obs_space, act_space, 1, seed=99)
    b.load_state(arrays, js)
    ba, bb = _batch(a, np.random.default_rng(1)), _batch(b, np.random.default_rng(1))
    for k in ba:
        np.testing.assert_array_equal(ba[k], bb[k])
    ma, mb = _update(a, ba), _update(b, bb)
    assert ma == mb
    sa, sb = a.state()[0], b.state()[0]
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
def test_same_seed_same_actions_other_seed_different(algo):
    obs_space, act_space = SPACES["continuous"]
    obs = np.zeros((4, 3), np.float32)
    a1 = build_agent(_config(algo), obs_space, act_space, 1, seed=1).act(obs)[0]
    a2 = build_agent(_config(algo), obs_space, act_space, 1, seed=1).act(obs)[0]
    a3 = build_agent(_config(algo), obs_space, act_space, 1, seed=2).act(obs)[0]
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
def test_loading_weights_of_other_spaces_is_a_clear_error(algo):
    from agents.base import AgentError

    a = build_agent(_config(algo), *SPACES["discrete"], 1, seed=0)
    b = build_agent(_config(algo), *SPACES["continuous"], 1, seed=0)
    arrays, js = a.state()
    with pytest.raises(AgentError, match="other spaces"):
        b.load_state(arrays, js)
