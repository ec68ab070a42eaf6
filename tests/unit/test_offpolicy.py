"""Off-policy agents and loop: bootstrapping on time-outs, ε schedule, replay schedule, validation, resume."""

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.base import AgentError
from agents.registry import AGENT_CONFIGS, build_agent
from experiments.manifest import ManifestError, load_manifest

BOX_OBS = gym.spaces.Box(-1, 1, (3,), np.float32)
BOX_ACT = gym.spaces.Box(-2, 2, (1,), np.float32)
DISCRETE = gym.spaces.Discrete(2)


# -- targets: a time-out bootstraps, a termination does not ------------------------------------------------


def test_sac_target_bootstraps_truncated_not_terminated():
    from agents.sac.loss import soft_q_target

    reward = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([0.0, 1.0])  # row 0 is a time-out (truncated), row 1 a real end
    next_q = torch.tensor([[5.0, 5.0], [3.0, 7.0]])  # [C, B]: the min is 3 and 5
    next_logp = torch.tensor([-1.0, -1.0])
    y = soft_q_target(reward, terminated, next_q, next_logp, torch.tensor(0.5), 0.9)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * (3.0 + 0.5), 1.0]))


def test_td3_target_bootstraps_truncated_not_terminated():
    from agents.td3.loss import clipped_double_q_target

    y = clipped_double_q_target(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]),
                                torch.tensor([[4.0, 9.0], [6.0, 1.0]]), 0.5)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.5 * 4.0, 2.0]))


def test_dqn_target_double_and_plain():
    from agents.dqn.loss import q_target

    reward, terminated = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0])
    next_target = torch.tensor([[1.0, 10.0], [2.0, 3.0], [7.0, 7.0]])
    next_online = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # online prefers actions 0, 1, 1
    torch.testing.assert_close(q_target(reward, terminated, next_target, next_online, 0.5),
                               torch.tensor([0.5 * 1.0, 0.5 * 3.0, 1.0]))
    torch.testing.assert_close(q_target(reward, terminated, next_target, None, 0.5),
                               torch.tensor([0.5 * 10.0, 0.5 * 3.0, 1.0]))
    # Per-transition discounts (γ^m of m-step returns) broadcast the same way.
    torch.testing.assert_close(q_target(reward, terminated, next_target, None, torch.tensor([1.0, 0.25, 0.5])),
                               torch.tensor([10.0, 0.75, 1.0]))


def _spaces(algo):
    return (BOX_OBS, DISCRETE) if algo == "dqn" else (BOX_OBS, BOX_ACT)


def _batch(agent, terminated, truncated, rows=8):
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (rows, 3)).astype(np.float32)
    return {"obs": obs, "action": agent.act(obs)[0], "reward": np.ones((rows, 1), np.float32),
            "next_obs": rng.uniform(-1, 1, (rows, 3)).astype(np.float32),
            "terminated": np.full(rows, terminated), "truncated": np.full(rows, truncated)}


@pytest.mark.parametrize("algo", ["sac", "td3", "dqn"])
def test_agents_ignore_truncated_and_use_terminated(algo):
    cfg = AGENT_CONFIGS[algo].model_validate({"algo": algo, "net_arch": [8], "batch_size": 8})
    loss_key = "train/loss" if algo == "dqn" else "train/critic_loss"

    def update(terminated, truncated):
        agent = build_agent(cfg, *_spaces(algo), 1, seed=0)
        metrics = agent.update(_batch(agent, terminated, truncated))
        return metrics[loss_key], agent.state()[0]

    (running, w_running), (timed_out, w_timed_out), (ended, _) = update(False, False), update(False, True), \
        update(True, False)
    assert running == timed_out and running != ended
    for key in w_running:
        np.testing.assert_array_equal(w_running[key], w_timed_out[key], err_msg=key)


@pytest.mark.parametrize("algo", ["sac", "td3", "dqn"])
def test_off_policy_agents_need_scalar_rewards(algo):
    cfg = AGENT_CONFIGS[algo].model_validate({"algo": algo})
    with pytest.raises(AgentError, match=f"agent.algo={algo} supports scalar rewards only"):
        build_agent(cfg, *_spaces(algo), 2, seed=0)


def test_wrong_action_space_kind_is_an_agent_error():
    with pytest.raises(AgentError, match=r"agent.algo=dqn needs a Discrete action space, got Box\("):
        build_agent(AGENT_CONFIGS["dqn"].model_validate({"algo": "dqn"}), BOX_OBS, BOX_ACT, 1, seed=0)
    for algo in ("sac", "td3"):
        with pytest.raises(AgentError, match=rf"agent.algo={algo} needs a flat Box action space, got Discrete"):
            build_agent(AGENT_CONFIGS[algo].model_validate({"algo": algo}), BOX_OBS, DISCRETE, 1, seed=0)


def test_sac_bfloat16_matmuls_keep_fp32_state_and_stay_close_to_fp32():
    def trained(dtype, updates=5):
        cfg = AGENT_CONFIGS["sac"].model_validate({"algo": "sac", "net_arch": [64, 64], "batch_size": 8,
                                                   "matmul_dtype": dtype})
        agent = build_agent(cfg, BOX_OBS, BOX_ACT, 1, seed=0)
        batch = _batch(agent, False, False)
        metrics = [agent.update(batch) for _ in range(updates)]
        return agent.state()[0], metrics[-1]

    fp32, m32 = trained("float32")
    bf16, m16 = trained("bfloat16")
    again, _ = trained("bfloat16")
    assert fp32.keys() == bf16.keys()
    changed = 0
    for key in fp32:
        assert bf16[key].dtype == fp32[key].dtype, key  # weights and optimizer state stay float32
        np.testing.assert_array_equal(bf16[key], again[key], err_msg=key)  # deterministic
        np.testing.assert_allclose(bf16[key], fp32[key], rtol=0.05, atol=5e-3, err_msg=key)
        changed += not np.array_equal(bf16[key], fp32[key])
    assert changed > 0  # the option takes effect: bf16 products round differently
    assert abs(m16["train/critic_loss"] - m32["train/critic_loss"]) < 0.05 * abs(m32["train/critic_loss"])


def test_sac_matmul_dtype_is_validated():
    with pytest.raises(ValueError, match="matmul_dtype"):
        AGENT_CONFIGS["sac"].model_validate({"algo": "sac", "matmul_dtype": "float16"})


def test_sac_and_td3_act_within_the_box_bounds():
    for algo in ("sac", "td3"):
        agent = build_agent(AGENT_CONFIGS[algo].model_validate({"algo": algo, "net_arch": [8]}),
                            BOX_OBS, gym.spaces.Box(np.array([0.0], np.float32), np.array([10.0], np.float32)),
                            1, seed=0)
        action = agent.act(np.random.default_rng(0).uniform(-1, 1, (256, 3)).astype(np.float32))[0]
        assert action.dtype == np.float32 and action.shape == (256, 1)
        assert action.min() >= 0.0 and action.max() <= 10.0 and action.std() > 0.1


# -- DQN exploration ---------------------------------------------------------------------------------------------


def test_dqn_epsilon_schedule():
    from agents.dqn.loss import epsilon

    assert epsilon(0.0, 1.0, 0.05, 0.1) == 1.0
    assert epsilon(0.05, 1.0, 0.05, 0.1) == pytest.approx(0.525)
    assert epsilon(0.1, 1.0, 0.05, 0.1) == 0.05
    assert epsilon(0.7, 1.0, 0.05, 0.1) == 0.05
    assert epsilon(0.3, 1.0, 0.05, 0.0) == 0.05


def test_dqn_agent_follows_the_schedule_and_syncs_its_target():
    cfg = AGENT_CONFIGS["dqn"].model_validate({"algo": "dqn", "net_arch": [8], "batch_size": 8,
                                               "learning_rate": 0.05, "exploration_fraction": 0.5,
                                               "exploration_initial_eps": 1.0, "exploration_final_eps": 0.0,
                                               "target_update_interval": 100})
    agent = build_agent(cfg, BOX_OBS, DISCRETE, 1, seed=0)
    assert agent.exploration_rate == 1.0
    agent.advance(250, 0.25)
    assert agent.exploration_rate == pytest.approx(0.5)
    obs = np.random.default_rng(1).uniform(-1, 1, (2000, 3)).astype(np.float32)
    greedy = agent.act(obs, deterministic=True)[0]
    share_random = np.mean(agent.act(obs)[0] != greedy)
    assert 0.2 < share_random < 0.3  # half the actions are uniform, half of those differ from greedy
    agent.advance(1000, 1.0)
    assert agent.exploration_rate == 0.0
    np.testing.assert_array_equal(agent.act(obs)[0], greedy)
    agent.update(_batch(agent, False, False))
    q, target = agent.net.q.state_dict(), agent.net.q_target.state_dict()
    assert any(not torch.equal(q[k], target[k]) for k in q)
    agent.advance(1099, 1.0)  # still inside the interval that began at 1000
    assert any(not torch.equal(q[k], target[k]) for k in q)
    agent.advance(1100, 1.0)
    assert all(torch.equal(q[k], target[k]) for k in q)


# -- the loop's pieces -------------------------------------------------------------------------------------------


def test_random_actions_cover_the_space_from_the_given_generator():
    from experiments.loops.offpolicy import random_actions

    box = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
    a1 = random_actions(box, np.random.default_rng(3), 500)
    a2 = random_actions(box, np.random.default_rng(3), 500)
    np.testing.assert_array_equal(a1, a2)
    assert a1.dtype == np.float32 and (a1 >= box.low).all() and (a1 <= box.high).all()
    d = random_actions(gym.spaces.Discrete(3, start=1), np.random.default_rng(0), 500)
    assert d.dtype == np.int64 and set(d.tolist()) == {1, 2, 3}


def test_replay_ratio_carries_fractions():
    from experiments.loops.offpolicy import _Updates

    cfg = AGENT_CONFIGS["sac"].model_validate({"algo": "sac", "train_freq": 1, "replay_ratio": 0.25})
    updates = _Updates(cfg, num_envs=2)
    assert [updates.due() for _ in range(6)] == [0, 1, 0, 1, 0, 1]
    plain = _Updates(AGENT_CONFIGS["sac"].model_validate({"algo": "sac", "gradient_steps": 3}), num_envs=4)
    assert plain.due() == 3


def test_end_segment_truncates_only_unfinished_episodes():
    from experiments.loops.offpolicy import end_segment, replay_storage

    agent = build_agent(AGENT_CONFIGS["sac"].model_validate({"algo": "sac", "net_arch": [8]}), BOX_OBS, BOX_ACT, 1, 0)
    storage = replay_storage(agent, num_envs=3, reward_dim=1, buffer_size=6)
    end_segment(storage)  # empty: nothing to do
    row = {"obs": np.zeros((3, 3), np.float32), "next_obs": np.zeros((3, 3), np.float32),
           "action": np.zeros((3, 1), np.float32), "reward": np.zeros((3, 1), np.float32),
           "terminated": np.array([True, False, False]), "truncated": np.array([False, True, False])}
    storage.add(**row)
    end_segment(storage)
    np.testing.assert_array_equal(storage.arrays["terminated"][0], [True, False, False])
    np.testing.assert_array_equal(storage.arrays["truncated"][0], [False, True, True])


def test_nstep_batch_uses_the_last_rows_successor():
    from experiments.loops.offpolicy import replay_storage, sample_batch
    from rl.core.samplers import UniformSampler

    agent = build_agent(AGENT_CONFIGS["dqn"].model_validate({"algo": "dqn", "net_arch": [8]}), BOX_OBS, DISCRETE, 1, 0)
    storage = replay_storage(agent, num_envs=1, reward_dim=1, buffer_size=10)
    for t in range(4):
        storage.add(obs=np.full((1, 3), t, np.float32), next_obs=np.full((1, 3), t + 1, np.float32),
                    action=np.array([t % 2]), reward=np.ones((1, 1), np.float32), terminated=np.array([t == 3]),
                    truncated=np.zeros(1, bool))

    class FirstRow:
        rng = None

        def sample(self, storage):
            return np.array([0, 2])

    batch = sample_batch(storage, FirstRow(), n_step=3, gamma=0.5)
    np.testing.assert_allclose(batch["reward"][:, 0], [1.75, 1.5])
    np.testing.assert_array_equal(batch["next_obs"][:, 0], [3.0, 4.0])
    np.testing.assert_array_equal(batch["terminated"], [False, True])
    np.testing.assert_allclose(batch["discount"], [0.125, 0.25])
    one = sample_batch(storage, UniformSampler(np.random.default_rng(0), 5), n_step=1, gamma=0.5)
    assert set(one) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    np.testing.assert_array_equal(one["next_obs"], one["obs"] + 1)


# -- validation: one-line errors before anything is written ------------------------------------------------------


def _manifest(tmp_path, name, *overrides):
    from pathlib import Path

    import experiments

    path = Path(experiments.__file__).parent / "manifests" / f"{name}.yaml"
    return load_manifest(path, [f"checkpoint.every_steps={10**6}", *overrides])[0]


@pytest.mark.parametrize(("name", "overrides", "message"), [
    ("pendulum_sac", ["agent.buffer_size=100"], r"^agent\.buffer_size \(100\) must be >= agent\.batch_size \(256\)$"),
    ("pendulum_td3", ["agent.learning_starts=200000", "train.total_steps=100000"],
     r"^agent\.learning_starts \(200000\) must be < train\.total_steps \(100000\)"),
    ("cartpole_dqn", ["agent.n_step=5", "agent.buffer_size=4", "agent.batch_size=2"], r"agent\.n_step \(5\)"),
])
def test_validation_errors_name_the_fields(tmp_path, name, overrides, message):
    from experiments.train import preflight

    with pytest.raises(ManifestError, match=message):
        preflight(_manifest(tmp_path, name, *overrides))


def test_cli_refuses_a_discrete_agent_on_a_continuous_env(tmp_path, capsys):
    from experiments.cli import main

    path = tmp_path / "m.yaml"
    path.write_text("name: bad\nenv: {id: Pendulum-v1}\nagent: {algo: dqn}\ntrain: {total_steps: 1000}\n")
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rl: error: agent.algo=dqn needs a Discrete action space, got Box(") and "\n" not in err
    assert not (tmp_path / "runs").exists()


# -- checkpoints: the replay buffer makes resume exact ---------------------------------------------------------------


_TINY = ["agent.net_arch=[16]", "agent.batch_size=16", "agent.learning_starts=50", "agent.buffer_size=1000",
         "train.total_steps=400", "train.log_every_steps=100", "evaluation.every_steps=200", "evaluation.episodes=2",
         "checkpoint.every_steps=200"]


def _rows(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]


def _interrupted_after_first_checkpoint(monkeypatch, manifest, runs, run_id):
    from experiments.session import Session
    from experiments.train import start_run

    original = Session.save_checkpoint

    def save_then_stop(self, loop_state, buffers=None):
        original(self, loop_state, buffers)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Session, "save_checkpoint", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            start_run(manifest, runs, run_id=run_id, show_progress=False)
    return runs / manifest.name / run_id


@pytest.mark.parametrize("name", ["pendulum_sac", "pendulum_sac_bf16", "pendulum_td3", "cartpole_dqn"])
def test_resume_with_replay_buffer_is_exact(tmp_path, monkeypatch, name):
    from safetensors.numpy import load_file

    from experiments.train import resume_run, start_run

    extra = {"cartpole_dqn": ["agent.n_step=3", "agent.train_freq=4", "agent.gradient_steps=2"],
             "pendulum_sac_bf16": ["agent.matmul_dtype=bfloat16"]}.get(name, [])
    name = name.removesuffix("_bf16")
    manifest = _manifest(tmp_path, name, *_TINY, *extra)
    full = start_run(manifest, tmp_path / "runs", run_id="full", show_progress=False)
    part = _interrupted_after_first_checkpoint(monkeypatch, manifest, tmp_path / "runs", "part")
    state = json.loads((part / "checkpoints" / "step-000000000200" / "state.json").read_text())
    assert state["loop"]["buffer_saved"] is True and "approximate_resume" not in state["loop"]
    resume_run(part, show_progress=False)
    a, b = load_file(str(full / "final" / "policy.safetensors")), load_file(str(part / "final" / "policy.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _rows(full) == _rows(part)


def test_resume_without_buffer_is_marked_approximate(tmp_path, monkeypatch):
    from experiments.train import resume_run

    manifest = _manifest(tmp_path, "pendulum_sac", *_TINY, "agent.save_buffer=false")
    part = _interrupted_after_first_checkpoint(monkeypatch, manifest, tmp_path / "runs", "part")
    ckpt = part / "checkpoints" / "step-000000000200"
    assert json.loads((ckpt / "state.json").read_text())["loop"]["approximate_resume"] is True
    assert not (ckpt / "buffers.npz").exists()
    resume_run(part, show_progress=False)
    assert (part / "final" / "policy.safetensors").is_file()
    events = [json.loads(line) for line in (part / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "approximate_resume"] == [200]
