"""BC, CQL (and Cal-QL) and AWAC: their losses against hand-computed small examples, the Monte-Carlo
returns Cal-QL bounds with (dataset and online buffer), and time-outs that bootstrap."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.base import AgentError
from agents.registry import AGENT_CONFIGS, build_agent
from rl.core.datasets import OfflineData, offline_storage, returns_to_go
from rl.core.storage import Storage

OBS = gym.spaces.Box(-1, 1, (3,), np.float32)
ACT = gym.spaces.Box(-2, 2, (1,), np.float32)


def _agent(algo, seed=0, **kw):
    cfg = AGENT_CONFIGS[algo].model_validate({"algo": algo, "net_arch": [16], "batch_size": 8, **kw})
    return build_agent(cfg, OBS, ACT, 1, seed)


def _batch(rng, rows=8, mc_return=None):
    b = {"obs": rng.uniform(-1, 1, (rows, 3)).astype(np.float32),
         "action": rng.uniform(-2, 2, (rows, 1)).astype(np.float32),
         "reward": rng.normal(size=(rows, 1)).astype(np.float32),
         "next_obs": rng.uniform(-1, 1, (rows, 3)).astype(np.float32),
         "terminated": np.zeros(rows, bool), "truncated": np.zeros(rows, bool)}
    if mc_return is not None:
        b["mc_return"] = np.full(rows, mc_return, np.float32)
    return b


# -- BC -------------------------------------------------------------------------------------------------


def test_bc_loss_is_the_mean_squared_error():
    from agents.bc.loss import bc_loss

    pi = torch.tensor([[0.5, -1.0], [0.0, 0.2]])
    data = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    torch.testing.assert_close(bc_loss(pi, data), torch.tensor((0.25 + 0.0 + 1.0 + 0.04) / 4))


def test_bc_ignores_rewards_and_moves_towards_the_data_actions():
    a, b = (_agent("bc", learning_rate=1e-2, net_arch=[64]) for _ in range(2))
    batch = _batch(np.random.default_rng(0))
    other = dict(batch, reward=-batch["reward"], terminated=~batch["terminated"])
    losses = [a.update(batch)["train/actor_loss"] for _ in range(200)]
    for _ in range(200):
        b.update(other)
    assert losses[-1] < 0.05 * losses[0]
    cloned = a.act(batch["obs"], deterministic=True)[0]
    np.testing.assert_array_equal(cloned, b.act(batch["obs"], deterministic=True)[0])
    np.testing.assert_allclose(cloned, batch["action"], atol=0.1)


# -- CQL and Cal-QL -------------------------------------------------------------------------------------


def _lse(values, temperature=1.0):
    return temperature * math.log(sum(math.exp(v / temperature) for v in values))


def _toy():
    """One critic, one state, two actions of each kind."""
    q_data = torch.tensor([[1.0]], requires_grad=True)
    q_rand = torch.tensor([[[2.0, -1.0]]], requires_grad=True)
    q_cur = torch.tensor([[[0.5, 1.5]]], requires_grad=True)
    q_next = torch.tensor([[[3.0, 0.0]]], requires_grad=True)
    logp_cur, logp_next = torch.tensor([[0.1, -0.3]]), torch.tensor([[-0.2, 0.4]])
    return q_data, q_rand, q_cur, q_next, logp_cur, logp_next


def test_cql_regularizer_importance_sampled_logsumexp_by_hand():
    from agents.cql.loss import cql_regularizer

    q_data, q_rand, q_cur, q_next, logp_cur, logp_next = _toy()
    gap, below = cql_regularizer(q_data, q_rand, q_cur, q_next, logp_cur, logp_next, act_dim=2)
    log_u = 2 * math.log(0.5)  # U[-1, 1]^2 has density 1/4
    expected = _lse([2.0 - log_u, -1.0 - log_u, 3.0 + 0.2, 0.0 - 0.4, 0.5 - 0.1, 1.5 + 0.3]) - 1.0
    torch.testing.assert_close(gap, torch.tensor([expected]))
    assert float(below) == 0.0
    # The regulariser pushes Q down on the sampled actions (softmax weights summing to 1) and up on the data.
    gap.sum().backward()
    assert float(q_data.grad) == -1.0
    sampled = torch.cat([q_rand.grad, q_cur.grad, q_next.grad], dim=-1)
    assert (sampled > 0).all() and math.isclose(float(sampled.sum()), 1.0, rel_tol=1e-6)
    assert float(q_next.grad[0, 0, 0]) > float(q_next.grad[0, 0, 1])  # the larger Q weighs more


def test_cql_regularizer_without_importance_sampling_and_with_temperature():
    from agents.cql.loss import cql_regularizer

    q_data, q_rand, q_cur, q_next, logp_cur, logp_next = _toy()
    gap, _ = cql_regularizer(q_data, q_rand, q_cur, q_next, logp_cur, logp_next, act_dim=2, temperature=2.0,
                             importance_sample=False)
    expected = _lse([2.0, -1.0, 1.0, 3.0, 0.0, 0.5, 1.5], temperature=2.0) - 1.0
    torch.testing.assert_close(gap, torch.tensor([expected]))


def test_calql_lower_bound_replaces_policy_q_values_below_the_mc_return():
    from agents.cql.loss import cql_regularizer

    q_data, q_rand, q_cur, q_next, logp_cur, logp_next = _toy()
    bound = torch.tensor([1.0])
    gap, below = cql_regularizer(q_data, q_rand, q_cur, q_next, logp_cur, logp_next, act_dim=2, lower_bound_b=bound)
    log_u = 2 * math.log(0.5)
    # q_cur 0.5 -> 1.0 and q_next 0.0 -> 1.0; random actions are never bounded.
    expected = _lse([2.0 - log_u, -1.0 - log_u, 3.0 + 0.2, 1.0 - 0.4, 1.0 - 0.1, 1.5 + 0.3]) - 1.0
    torch.testing.assert_close(gap, torch.tensor([expected]))
    assert math.isclose(float(below), 0.5)  # 2 of the 4 policy-action values were below the bound
    gap.sum().backward()
    assert float(q_cur.grad[0, 0, 0]) == 0.0 and float(q_next.grad[0, 0, 1]) == 0.0  # clamped: no push down
    assert float(q_cur.grad[0, 0, 1]) > 0.0
    # -inf is no bound at all.
    plain, _ = cql_regularizer(*_toy(), act_dim=2)
    none, below = cql_regularizer(*_toy(), act_dim=2, lower_bound_b=torch.tensor([-math.inf]))
    torch.testing.assert_close(none, plain)
    assert float(below) == 0.0


def test_lagrange_multiplier_grows_while_the_gap_exceeds_its_target():
    from agents.cql.loss import lagrange_losses

    log_ap = torch.tensor([0.0], requires_grad=True)
    critic_term, ap_loss, ap = lagrange_losses(torch.tensor([3.0, 1.0]), log_ap, cql_alpha=5.0, target_action_gap=1.5)
    torch.testing.assert_close(critic_term, torch.tensor(5.0 * (1.5 + -0.5)))
    ap_loss.backward()
    assert float(log_ap.grad) < 0  # gradient descent raises log α' (mean gap 2 > 1.5)
    log_ap2 = torch.tensor([0.0], requires_grad=True)
    lagrange_losses(torch.tensor([0.0, 1.0]), log_ap2, 5.0, 1.5)[1].backward()
    assert float(log_ap2.grad) > 0


def test_calql_agent_needs_mc_returns():
    agent = _agent("cql", cal_ql=True)
    assert agent.mc_return_gamma == agent.config.gamma and _agent("cql").mc_return_gamma is None
    with pytest.raises(AgentError, match="mc_return"):
        agent.update(_batch(np.random.default_rng(0)))


def test_calql_bound_changes_the_update_and_minus_inf_is_plain_cql():
    batch = _batch(np.random.default_rng(1))
    plain, unbounded, bounded = _agent("cql"), _agent("cql", cal_ql=True), _agent("cql", cal_ql=True)
    m_plain = plain.update(batch)
    m_unbounded = unbounded.update(dict(batch, mc_return=np.full(8, -np.inf, np.float32)))
    m_bounded = bounded.update(dict(batch, mc_return=np.full(8, 50.0, np.float32)))
    assert m_unbounded["train/critic_loss"] == m_plain["train/critic_loss"]
    assert m_unbounded["train/calql_bound_rate"] == 0.0 and m_bounded["train/calql_bound_rate"] == 1.0
    # Every policy-action Q is raised to 50 inside the logsumexp: a far larger gap than plain CQL's.
    assert m_bounded["train/cql_gap"] > m_plain["train/cql_gap"] + 40


def test_cql_alpha_online_applies_only_in_online_phases():
    batch = _batch(np.random.default_rng(2))

    def losses(online_phase, **kw):
        agent = _agent("cql", **kw)
        agent.online_phase = online_phase
        return agent.update(batch)

    plain_offline = losses(False)
    assert losses(False, cql_alpha_online=0.0) == plain_offline  # offline phases keep cql_alpha
    assert losses(True) == plain_offline  # None: online phases keep cql_alpha too
    sac = losses(True, cql_alpha_online=0.0)
    assert sac["train/cql_gap"] == 0.0  # no regulariser, and no sampled actions evaluated
    assert sac["train/critic_loss"] < plain_offline["train/critic_loss"] - 1.0
    # The same batch and draws give the same TD loss and gaps, so weighting the gaps 5 instead of 10
    # halves what the regulariser adds to the critic loss.
    half = losses(True, cql_alpha_online=5.0)
    assert half["train/cql_gap"] == plain_offline["train/cql_gap"]
    td = sac["train/critic_loss"]
    assert math.isclose(half["train/critic_loss"] - td, (plain_offline["train/critic_loss"] - td) / 2, rel_tol=1e-4)


def test_online_update_order_moves_only_the_actor_and_only_online():
    batch = _batch(np.random.default_rng(3))

    def params(online_phase, order):
        agent = _agent("cql", cql_alpha_online=0.0, online_update_order=order)
        agent.online_phase = online_phase
        agent.update(batch)
        return ([p.detach().clone() for p in agent.net.actor.parameters()],
                [p.detach().clone() for p in agent.net.critic.parameters()])

    def same(xs, ys):
        return all(torch.equal(x, y) for x, y in zip(xs, ys, strict=True))

    corl_actor, corl_critic = params(True, "actor_first")
    sac_actor, sac_critic = params(True, "critic_first")
    # Both orders draw the same actions before either step, so the critics' step is the same; the
    # actor's loss then sees the stepped critics, and its step differs.
    assert same(corl_critic, sac_critic)
    assert not same(corl_actor, sac_actor)
    off_actor, off_critic = params(False, "critic_first")
    first_actor, first_critic = params(False, "actor_first")
    assert same(off_actor, first_actor) and same(off_critic, first_critic)  # offline: always CORL's order


# -- AWAC -----------------------------------------------------------------------------------------------


def test_awac_weights_use_the_min_over_critics_and_are_clipped():
    from agents.awac.loss import actor_loss, advantage_weights

    q_data = torch.tensor([[1.0, 5.0, 0.0], [2.0, 3.0, 0.0]])  # min over critics: [1, 3, 0]
    q_pi = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.6]])  # min over critics: [0, 1, 0]
    w = advantage_weights(q_data, q_pi, awac_lambda=1 / 3, exp_adv_max=100.0)
    # A = [1, 2, 0]: exp(3) = 20.09, exp(6) = 403 -> 100, exp(0) = 1.
    torch.testing.assert_close(w, torch.tensor([math.exp(3.0), 100.0, 1.0]))
    logp = torch.tensor([-1.0, -2.0, 0.5], requires_grad=True)
    loss = actor_loss(logp, w.requires_grad_())
    torch.testing.assert_close(loss, -(w.detach() * logp.detach()).mean())
    loss.backward()
    assert w.grad is None  # the weights are constants of the actor's loss
    torch.testing.assert_close(logp.grad, -w.detach() / 3)


# -- time-outs bootstrap, terminations do not --------------------------------------------------------------


@pytest.mark.parametrize("algo, kw", [("cql", {}), ("cql", {"cal_ql": True}), ("awac", {})])
def test_truncated_is_ignored_terminated_is_not(algo, kw):
    rng = np.random.default_rng(2)
    batch = _batch(rng, mc_return=-1.0 if kw else None)
    runs = {}
    for name, b in {"base": batch, "truncated": dict(batch, truncated=np.ones(8, bool)),
                    "terminated": dict(batch, terminated=np.ones(8, bool))}.items():
        agent = _agent(algo, **kw)
        agent.update(b)
        runs[name] = agent.state()[0]["net/critic.w0"]
    np.testing.assert_array_equal(runs["base"], runs["truncated"])
    assert not np.array_equal(runs["base"], runs["terminated"])


# -- Monte-Carlo returns-to-go ----------------------------------------------------------------------------


def test_returns_to_go_restart_at_episode_ends_and_stop_at_terminations():
    reward = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    terminated = np.array([False, False, False, False, True])
    ends = np.array([False, False, True, False, True])  # episode 0: 3 steps cut by a time-out; episode 1 ends
    np.testing.assert_allclose(returns_to_go(reward, terminated, ends, 0.5), [1.75, 1.5, 1.0, 2.0, 2.0])


def _data(rewards_e, terminal_e):
    lengths = np.array([len(r) for r in rewards_e])
    m = int(lengths.sum())
    term = np.concatenate([np.r_[np.zeros(len(r) - 1, bool), t] for r, t in zip(rewards_e, terminal_e, strict=True)])
    return OfflineData(name="toy", obs_mo=np.zeros((m, 2), np.float32), action_m=np.zeros((m, 1), np.float32),
                       reward_mk=np.concatenate(rewards_e).astype(np.float32)[:, None],
                       next_obs_mo=np.zeros((m, 2), np.float32), terminated_m=term, truncated_m=~term,
                       episode_m=np.repeat(np.arange(len(lengths)), lengths), returns_e=np.zeros(len(lengths)),
                       lengths_e=lengths, metadata={})


def test_offline_storage_holds_mc_returns_only_when_asked():
    data = _data([[-1.0, -1.0], [-2.0, 0.0, -4.0]], [False, True])
    assert "mc_return" not in offline_storage(data, "float32").fields
    storage = offline_storage(data, "float32", mc_return_gamma=0.9)
    np.testing.assert_allclose(storage.flat("mc_return"), [-1.9, -1.0, -2.0 - 0.81 * 4.0, -4.0 * 0.9, -4.0], rtol=1e-6)


def test_online_mc_returns_are_filled_when_episodes_end_or_are_cut():
    from experiments.loops.offline import MCReturnFiller
    from rl.core.datasets import offline_fields

    storage = Storage(offline_fields(2, (1,), "float32", 1, mc_return=True), capacity=4, num_envs=2)
    filler = MCReturnFiller(storage, gamma=0.5)

    def add(reward_n, terminated_n, truncated_n):
        storage.add(obs=np.zeros((2, 2), np.float32), next_obs=np.zeros((2, 2), np.float32),
                    action=np.zeros((2, 1), np.float32), reward=np.array(reward_n, np.float32)[:, None],
                    terminated=np.array(terminated_n), truncated=np.array(truncated_n), valid=np.ones(2, bool),
                    source=np.zeros(2, np.uint8), episode_id=np.full(2, -1), mc_return=np.full(2, -np.inf, np.float32))
        filler.step(np.array(terminated_n) | np.array(truncated_n))

    add([1.0, 4.0], [False, False], [False, False])
    add([2.0, 4.0], [True, False], [False, False])  # env 0's episode ends (terminated)
    mc = storage.arrays["mc_return"]
    np.testing.assert_array_equal(mc[:2, 0], [2.0, 2.0])  # 1 + 0.5 * 2, then 2
    assert np.isneginf(mc[:2, 1]).all()  # env 1's episode is still running: no bound yet
    add([8.0, 4.0], [False, False], [False, False])
    add([8.0, 4.0], [False, False], [False, True])  # env 1 times out after 4 steps
    np.testing.assert_array_equal(mc[:, 1], [4.0 + 2.0 + 1.0 + 0.5, 4.0 + 2.0 + 1.0, 4.0 + 2.0, 4.0])
    assert np.isneginf(mc[2:, 0]).all()
    add([16.0, 1.0], [False, False], [False, False])  # the ring wraps: row 0 is overwritten
    filler.cut()  # a checkpoint cuts env 0's 3-step episode and env 1's 1-step one
    np.testing.assert_array_equal(mc[[2, 3, 0], 0], [8.0 + 4.0 + 4.0, 8.0 + 8.0, 16.0])
    assert mc[0, 1] == 1.0 and not filler.open_n.any()


# -- example manifests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, algo", [("pendulum_bc", "bc"), ("pendulum_cql", "cql"), ("pendulum_awac", "awac"),
                                        ("pendulum_calql_to_online", "cql"), ("pendulum_calql_mixed_to_online", "cql")])
def test_example_manifests_validate_and_name_offline_agents(name, algo):
    import experiments
    from agents.registry import agent_class
    from experiments.manifest import load_manifest
    from experiments.phases import phase_length

    m, _ = load_manifest(Path(experiments.__file__).parent / "manifests" / f"{name}.yaml")
    assert m.agent.algo == algo and agent_class(algo).offline and m.dataset is not None
    if m.phases is not None:
        assert sum(phase_length(p) for p in m.phases) == m.train.total_steps
        assert [p.online is not None for p in m.phases] == [False, True] and m.agent.cal_ql
