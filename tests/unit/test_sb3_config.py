"""The ``sb3.*`` manifest section: algorithm lookup, keyword checks, value conversion, metric columns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.sb3.kwargs import convert_kwargs
from agents.sb3.resolve import SB3ConfigError, algorithm_class, check_config, logged_keys
from experiments.manifest import ManifestError, load_manifest, manifest_from_json

BASE = """\
name: p
env:
  id: Pendulum-v1
agent:
  algo: sb3.SAC
  kwargs:
    learning_rate: 1.0e-3
    batch_size: 64
train:
  total_steps: 1000
"""


def _load(tmp_path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_manifest(path)[0]


def test_valid_sb3_manifest_round_trips_through_manifest_json(tmp_path):
    m = _load(tmp_path, BASE)
    assert (m.agent.algo, m.agent.policy, m.agent.kwargs) == ("sb3.SAC", "MlpPolicy", {"learning_rate": 1e-3,
                                                                                      "batch_size": 64})
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(m.resolved()))
    assert manifest_from_json(path) == m


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("algo: sb3.SAC", "algo: sb3.SACC", r"m.yaml:5: agent.algo: unknown stable-baselines3 algorithm 'sb3.SACC'; "
                                            r"did you mean sb3.SAC\?"),
        ("algo: sb3.SAC", "algo: sb3.sac", r"agent.algo: .*did you mean sb3.SAC\?"),
        ("algo: sb3.SAC", "algo: sb3.", r"agent.algo: unknown stable-baselines3 algorithm 'sb3.'"),
        ("    batch_size: 64", "    batch_sise: 64", r"m.yaml:\d+: agent.kwargs.batch_sise: sb3.SAC takes no keyword "
                                                    r"'batch_sise'; did you mean 'batch_size'\?"),
        ("    batch_size: 64", "    seed: 3", r"agent.kwargs.seed: set by the suite"),
        ("    batch_size: 64", "    verbose: 1", r"agent.kwargs.verbose: set by the suite"),
        ("  kwargs:", "  policy: MlpPolcy\n  kwargs:", r"agent.policy: sb3.SAC has no policy 'MlpPolcy'; "
                                                      r"did you mean 'MlpPolicy'\?"),
        ("  kwargs:", "  kwarg:", r"agent.kwarg: unknown field; did you mean 'kwargs'"),
        ("  kwargs:", "  gamma: 0.9\n  kwargs:", r"agent.gamma: unknown field; sb3.\* agents take SB3's constructor "
                                               r"arguments under agent.kwargs \(agent.kwargs.gamma\)"),
        ("    batch_size: 64", "    learning_starts: {kind: linear, start: 1.0, fraction: 2.0}",
         r"agent.kwargs.learning_starts.fraction: .*less than or equal to 1"),
        ("    batch_size: 64", "    policy_kwargs: {activation_fn: Relu}",
         r"agent.kwargs.policy_kwargs.activation_fn: expected a class name in torch.nn"),
        ("    batch_size: 64", "    action_noise: {kind: gaussian, sigma: 0.1}", r"agent.kwargs.action_noise"),
        ("    batch_size: 64", "    train_freq: [1, epoch]", r"agent.kwargs.train_freq"),
        ("algo: sb3.SAC", "algo: sac3", r"agent.algo: unknown algorithm 'sac3'; choose one of .* or sb3.<Name>"),
    ],
)
def test_bad_sb3_sections_name_the_field(tmp_path, old, new, match):
    text = BASE.replace(old, new)
    assert text != BASE
    with pytest.raises(ManifestError, match=match) as info:
        _load(tmp_path, text)
    assert "\n" not in str(info.value)


def test_missing_algo_is_named(tmp_path):
    with pytest.raises(ManifestError, match="agent.algo: required field is missing"):
        _load(tmp_path, BASE.replace("  algo: sb3.SAC\n", ""))


def test_every_sb3_algorithm_is_found_and_checks_its_own_signature():
    for name in ("A2C", "DDPG", "DQN", "PPO", "SAC", "TD3"):
        assert algorithm_class(f"sb3.{name}").__name__ == name
    check_config("sb3.PPO", "MlpPolicy", {"n_epochs": 3, "clip_range": {"kind": "constant", "value": 0.1}})
    with pytest.raises(SB3ConfigError) as info:
        check_config("sb3.DQN", "MlpPolicy", {"n_epochs": 3})  # a PPO keyword
    assert info.value.field == "kwargs.n_epochs"


def test_kwargs_are_converted_to_sb3_objects():
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
    from torch import nn

    out = convert_kwargs({
        "learning_rate": {"kind": "linear", "start": 1.0, "end": 0.0, "fraction": 0.5},
        "clip_range": {"kind": "constant", "value": 0.3},
        "action_noise": {"kind": "normal", "sigma": 0.2},
        "train_freq": [2, "episode"],
        "policy_kwargs": {"activation_fn": "Tanh", "net_arch": [8]},
        "gamma": 0.9,
    }, action_dim=3)
    # SB3 schedules take progress *remaining*: 1 at the start, 0 at the end; held at `end` after `fraction`.
    assert out["learning_rate"](1.0) == 1.0 and out["learning_rate"](0.75) == pytest.approx(0.5)
    assert out["learning_rate"](0.2) == 0.0
    assert out["clip_range"] == 0.3 and out["gamma"] == 0.9 and out["train_freq"] == (2, "episode")
    assert isinstance(out["action_noise"], NormalActionNoise)
    assert np.array_equal(out["action_noise"]._sigma, np.full(3, 0.2))
    assert out["policy_kwargs"] == {"activation_fn": nn.Tanh, "net_arch": [8]}
    ou = convert_kwargs({"action_noise": {"kind": "ornstein_uhlenbeck", "sigma": 0.1, "theta": 0.2}}, 2)
    assert isinstance(ou["action_noise"], OrnsteinUhlenbeckActionNoise)


def test_logged_keys_are_the_algorithms_train_keys_without_the_sessions_own():
    sac = logged_keys(algorithm_class("sb3.SAC"))
    assert set(sac) == {"train/actor_loss", "train/critic_loss", "train/ent_coef", "train/ent_coef_loss",
                        "train/learning_rate", "train/n_updates"}
    ppo = logged_keys(algorithm_class("sb3.PPO"))
    assert {"train/approx_kl", "train/clip_fraction", "train/value_loss", "train/policy_gradient_loss",
            "train/entropy_loss", "train/explained_variance", "train/clip_range"} <= set(ppo)
    dqn = logged_keys(algorithm_class("sb3.DQN"))
    assert "rollout/exploration_rate" in dqn and "train/loss" in dqn
    for keys in (sac, ppo, dqn):
        assert not {"rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/success_rate"} & set(keys)
        assert all(k.startswith(("train/", "rollout/")) for k in keys)
