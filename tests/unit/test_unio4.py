"""Uni-O4's pieces: the losses on hand-computed values, the evaluation gate, behaviour cloning of the
ensemble, and the handover that folds the selected member into PPO's actor-critic."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.registry import AGENT_CONFIGS, build_agent
from agents.unio4.loss import ensemble_bc_loss, improvement_loss, normalized_advantage, ope_gate

OBS = gym.spaces.Box(-1, 1, (3,), np.float32)
ACT = gym.spaces.Box(-2, 2, (1,), np.float32)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread, as runs use (``threads: 1``): two threads on small MLPs are ~40x slower on a
    busy two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _agent(seed=0, **kw):
    cfg = AGENT_CONFIGS["unio4"].model_validate({"algo": "unio4", "net_arch": [32], "num_policies": 3,
                                                 "offline_batch_size": 64, **kw})
    return build_agent(cfg, OBS, ACT, 1, seed)


def _linear_dataset(rng, rows=64):
    """States in [-1, 1]³; the behaviour's action is ``2 · s_0`` (env units, inside [-2, 2])."""
    obs = rng.uniform(-1, 1, (rows, 3)).astype(np.float32)
    return {"obs": obs, "action": (2.0 * obs[:, :1]).astype(np.float32),
            "reward": -np.abs(obs[:, :1]).astype(np.float32),
            "next_obs": rng.uniform(-1, 1, (rows, 3)).astype(np.float32),
            "terminated": np.zeros(rows, bool), "truncated": np.zeros(rows, bool)}


def test_improvement_loss_is_ppo_clipped_surrogate_per_member():
    # member 0: ratios e^0.1 (inside 1 ± 0.2) and e^0.5 (clipped at 1.2 for A > 0); member 1: ratio 1.
    logp = torch.tensor([[0.1, 0.5], [0.0, 0.0]])
    ref = torch.zeros(2, 2)
    adv = torch.tensor([[1.0, 2.0], [-1.0, 3.0]])
    loss, stats = improvement_loss(logp, ref, adv, torch.tensor([0.7, 0.3]), clip=0.2, ent_coef=0.1)
    surrogate = [math.exp(0.1) * 1.0, 1.2 * 2.0, -1.0, 3.0]
    expected = 2 * (-sum(surrogate) / 4 - 0.1 * (0.7 + 0.7 + 0.3 + 0.3) / 4)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats["train/clip_fraction"].item() == pytest.approx(0.25)


def test_bc_loss_and_advantage_normalisation_by_hand():
    assert ensemble_bc_loss(torch.tensor([[-1.0, -3.0], [0.5, 1.5]])).item() == pytest.approx(2.0 - 1.0)
    adv = normalized_advantage(torch.tensor([[1.0, 3.0], [5.0, 5.0]]))
    np.testing.assert_allclose(adv[0].numpy(), [-1 / math.sqrt(2), 1 / math.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(adv[1].numpy(), [0.0, 0.0])


def test_ope_gate_replaces_only_where_the_score_improves():
    replace, best = ope_gate(torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, -1.0, 3.0]))
    assert replace.tolist() == [True, False, False]  # equal is not better
    assert best.tolist() == [1.0, -1.0, 3.0]


def test_agent_gate_moves_references_of_improved_members_and_acts_with_the_best():
    agent = _agent(pretrain_updates=1, ope_every=1)
    batch = _linear_dataset(np.random.default_rng(0))
    agent.update(batch)  # behaviour cloning
    scores = iter([torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, -1.0, 0.0]), torch.tensor([0.5, 2.0, -3.0])])
    agent.ope_scores = lambda: next(scores)
    ref0 = {k: v.clone() for k, v in agent.net.policy.state_dict().items()}  # the references it starts from
    agent.update(batch)  # starts the improvement (scores [0, 0, 0]), one step, gate with [1, -1, 0]
    ref1 = agent.net.reference.state_dict()
    pol1 = agent.net.policy.state_dict()
    for k in ref0:
        torch.testing.assert_close(ref1[k][0], pol1[k][0])  # member 0 improved: reference = policy
        for e in (1, 2):
            torch.testing.assert_close(ref1[k][e], ref0[k][e])  # not improved: reference kept
        assert not torch.equal(pol1[k][1], ref0[k][1]) or k.startswith("log_std")  # the policy itself moved
    assert agent.best_score == [1.0, 0.0, 0.0] and agent.selected == 0 and agent.reference_updates == 1
    agent.update(batch)  # gate with [0.5, 2, -3]: only member 1 beats its best
    assert agent.best_score == [1.0, 2.0, 0.0] and agent.selected == 1 and agent.reference_updates == 2


def test_ensemble_behaviour_cloning_learns_the_dataset_actions():
    agent = _agent(seed=1, bc_learning_rate=3e-3, pretrain_updates=10_000)
    rng = np.random.default_rng(1)
    data = _linear_dataset(rng, rows=512)
    agent.fit_obs_normalizer(data["obs"])
    before = agent.net.policy.mean(agent._acting_obs(data["obs"])).detach()
    for _ in range(300):
        idx = rng.integers(0, 512, 64)
        agent.update({k: v[idx] for k, v in data.items()})
    mean_eba = agent.net.policy.mean(agent._acting_obs(data["obs"])).detach()
    target = torch.from_numpy(data["action"]) / 2.0  # [-1, 1] units
    err_e = (mean_eba - target).square().mean((1, 2))
    assert (err_e < 0.01).all(), err_e  # every member fits a = 2 s_0
    assert ((before - target).square().mean((1, 2)) > 0.1).all()
    assert not torch.equal(mean_eba[0], mean_eba[1])  # members are distinct networks


def test_start_online_folds_the_selected_member_and_value_into_ppo():
    agent = _agent(seed=2, pretrain_updates=2, ope_every=1)
    rng = np.random.default_rng(2)
    data = _linear_dataset(rng, rows=128)
    agent.fit_obs_normalizer(data["obs"] * 3.0 + 1.0)  # a normaliser far from the identity
    for _ in range(5):
        agent.update(data)
    offline_action, extras = agent.act(data["obs"], deterministic=True)
    assert extras == {}
    agent.start_online()
    online_action, extras = agent.act(data["obs"], deterministic=True)
    np.testing.assert_allclose(online_action, np.clip(offline_action, -2, 2), atol=1e-4)
    with torch.no_grad():
        v = agent.net.value(agent._acting_obs(data["obs"])).numpy()
    np.testing.assert_allclose(extras["value"][:, 0], v, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(agent.value(data["obs"])[:, 0], v, rtol=1e-4, atol=1e-4)
    std = agent.ppo.net.log_std.exp().item()
    ref_std = agent.net.reference.log_std[agent.selected].exp().item() * 2.0
    assert std == pytest.approx(ref_std, rel=1e-5)


def test_discrete_actions_are_refused_with_the_field():
    from agents.base import AgentError

    cfg = AGENT_CONFIGS["unio4"].model_validate({"algo": "unio4"})
    with pytest.raises(AgentError, match="agent.algo=unio4 needs a flat Box action space"):
        build_agent(cfg, OBS, gym.spaces.Discrete(3), 1, 0)


def test_example_manifest_validates_with_the_iql_budget_shape():
    from pathlib import Path

    import experiments
    from experiments.loops.onpolicy_phased import validate_on_policy_phases
    from experiments.manifest import load_manifest
    from experiments.phases import phase_length

    root = Path(experiments.__file__).parent / "manifests"
    m, _ = load_manifest(root / "pendulum_unio4.yaml")
    iql, _ = load_manifest(root / "pendulum_iql_to_online.yaml")
    validate_on_policy_phases(m)
    assert [phase_length(p) for p in m.phases] == [phase_length(p) for p in iql.phases] == [10_000, 20_000]
    assert m.dataset.id == iql.dataset.id and m.train.total_steps == 30_000
    assert m.phases[1].online.steps % (m.agent.n_steps * m.env.num_envs) == 0  # no rollout runs past the budget
