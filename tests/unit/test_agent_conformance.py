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


_SMALL = {
    "ppo": {"n_steps": 8, "batch_size": 8, "n_epochs": 2, "net_arch": [16]},
    "sac": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "learning_starts": 0},
    "td3": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "learning_starts": 0},
    "dqn": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "learning_starts": 0},
    "mo_dqn": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "learning_starts": 0, "num_weight_samples": 2},
    "iql": {"net_arch": [16], "batch_size": 8, "buffer_size": 64},
    "td3bc": {"net_arch": [16], "batch_size": 8, "buffer_size": 64},
    "bc": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "action_noise_std": 0.1},
    "cql": {"net_arch": [16], "batch_size": 8, "buffer_size": 64, "n_action_samples": 3},
    "awac": {"net_arch": [16], "batch_size": 8, "buffer_size": 64},
    "unio4": {"net_arch": [16], "num_policies": 3, "offline_batch_size": 8, "n_steps": 8, "batch_size": 8},
}
_KINDS = {"sac": ["continuous"], "td3": ["continuous"], "dqn": ["discrete"], "mo_dqn": ["discrete"],
          "iql": ["continuous"], "td3bc": ["continuous"], "bc": ["continuous"], "cql": ["continuous"],
          "awac": ["continuous"], "unio4": ["continuous"]}
_VARIANTS = {"cql-calql": ("cql", {"cal_ql": True}), "cql-lagrange": ("cql", {"lagrange": True}),
             "cql-plain-logsumexp": ("cql", {"importance_sample": False, "backup_entropy": True, "ent_coef": 0.2}),
             "unio4-improve": ("unio4", {"pretrain_updates": 1, "ope_every": 1})}
"""Config variants whose update takes other code paths, checked like the registered defaults."""
_REWARD_DIM = {"mo_dqn": 2}
"""K for algorithms that need a multi-objective env (1 when not listed); their observations end with
K weights in [0, 1], as envs.mo.WeightConditionedObservation appends."""


def _build(algo, obs_space, act_space, seed, **kw):
    k = _REWARD_DIM.get(algo, 1)
    if k > 1:
        low = np.r_[obs_space.low, np.zeros(k)].astype(np.float32)
        obs_space = gym.spaces.Box(low, np.r_[obs_space.high, np.ones(k)].astype(np.float32))
    return build_agent(_config(algo, **kw), obs_space, act_space, k, seed=seed)
"""Action-space kinds an algorithm supports (all of SPACES when not listed)."""


def _config(algo, **kw):
    return AGENT_CONFIGS[algo].model_validate({"algo": algo, **_SMALL.get(algo, {}), **kw})


def _batch(agent, rng, rows=16):
    obs = rng.uniform(-1, 1, (rows, agent.obs_dim)).astype(np.float32)
    action, extras = agent.act(obs)
    if not agent.on_policy:
        batch = {"obs": obs, "action": action, "reward": rng.normal(size=(rows, agent.reward_dim)).astype(np.float32),
                 "next_obs": rng.uniform(-1, 1, (rows, agent.obs_dim)).astype(np.float32),
                 "terminated": rng.random(rows) < 0.2, "truncated": rng.random(rows) < 0.2}
        if getattr(agent, "mc_return_gamma", None) is not None:  # Cal-QL: some transitions have no bound
            batch["mc_return"] = np.where(rng.random(rows) < 0.25, -np.inf, rng.normal(size=rows)).astype(np.float32)
        return batch
    adv = rng.normal(size=(rows, agent.reward_dim)).astype(np.float32)
    return {"obs": obs, "action": action, "logprob": extras["logprob"], "value": extras["value"],
            "advantage": adv, "returns": extras["value"] + adv, "valid": np.ones(rows, bool)}


def _update(agent, batch, seed=0):
    if not agent.on_policy:
        # Off-policy update() is one gradient step; two reach TD3's delayed actor step too.
        agent.update(batch)
        return agent.update(batch)
    from rl.core.samplers import MinibatchSampler

    sampler = MinibatchSampler(np.random.default_rng(seed), 8, 2)
    return agent.update(batch, sampler.epochs_of_batches(len(batch["obs"])), 0.5)


def _applicable(algo, kind):
    return kind in _KINDS.get(algo, SPACES)


def _kind(algo):
    """A space kind ``algo`` supports (continuous when it supports both)."""
    return "continuous" if _applicable(algo, "continuous") else "discrete"


def _other_spaces(algo):
    """Two (obs, action) space pairs ``algo`` supports whose network shapes differ."""
    if _applicable(algo, "continuous") and _applicable(algo, "discrete"):
        return SPACES["discrete"], SPACES["continuous"]
    obs_space, act_space = SPACES[_kind(algo)]
    return (obs_space, act_space), (gym.spaces.Box(-1, 1, (obs_space.shape[0] + 2,), np.float32), act_space)


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_agent_updates_with_finite_metrics_and_changes_weights(algo, kind):
    if not _applicable(algo, kind):
        pytest.skip(f"{algo} does not support {kind} actions")
    obs_space, act_space = SPACES[kind]
    agent = _build(algo, obs_space, act_space, 3)
    before, _ = agent.state()
    metrics = _update(agent, _batch(agent, np.random.default_rng(0)))
    assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    after, _ = agent.state()
    changed = [k for k in before if k.startswith("net/") and not np.array_equal(before[k], after[k])]
    assert changed, "update() did not change any weight"


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_state_round_trip_continues_identically(algo, kind):
    if not _applicable(algo, kind):
        pytest.skip(f"{algo} does not support {kind} actions")
    _check_round_trip(algo, kind, {})


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_config_variants_update_and_round_trip_identically(variant):
    algo, kw = _VARIANTS[variant]
    agent = _build(algo, *SPACES["continuous"], 3, **kw)
    metrics = _update(agent, _batch(agent, np.random.default_rng(0)))
    assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    _check_round_trip(algo, "continuous", kw)


def _check_round_trip(algo, kind, kw):
    obs_space, act_space = SPACES[kind]
    a = _build(algo, obs_space, act_space, 5, **kw)
    _update(a, _batch(a, np.random.default_rng(0)))
    arrays, js = a.state()
    b = _build(algo, obs_space, act_space, 99, **kw)
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
    obs_space, act_space = SPACES[_kind(algo)]
    obs = np.zeros((4, obs_space.shape[0] + _REWARD_DIM.get(algo, 0)), np.float32)
    a1 = _build(algo, obs_space, act_space, 1).act(obs)[0]
    a2 = _build(algo, obs_space, act_space, 1).act(obs)[0]
    a3 = _build(algo, obs_space, act_space, 2).act(obs)[0]
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


@pytest.mark.parametrize("algo", sorted(AGENT_CONFIGS))
def test_loading_weights_of_other_spaces_is_a_clear_error(algo):
    from agents.base import AgentError

    spaces_a, spaces_b = _other_spaces(algo)
    a = _build(algo, *spaces_a, 0)
    b = _build(algo, *spaces_b, 0)
    arrays, js = a.state()
    with pytest.raises(AgentError, match="other spaces"):
        b.load_state(arrays, js)
