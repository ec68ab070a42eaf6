"""P6: the env contract is enforced on every step, and non-finite weights are never checkpointed.

A NaN reward at episode 5 of ``rl train`` is also tests/integration/test_cli_errors.py::
test_env_nan_reward_names_env_episode_and_step; the checks themselves are tests/unit/test_checks.py.
"""

from __future__ import annotations

import gymnasium
import pytest

from rl.core.checkpoint import list_checkpoints, load_checkpoint
from tests.reliability.harness import KINDS, assert_one_line_error
from tests.reliability.inprocess import cli

PPO = KINDS["ppo"]
BUDGET = ["--quiet", "--set", "train.total_steps=2048", "--set", "checkpoint.every_steps=512", "--set",
          "evaluation.every_steps=0", "--set", "evaluation.episodes=1", "--set", "agent.n_epochs=2"]
RUN_TIME_FAULTS = {
    "nan_reward": "reward is nan", "inf_reward": "reward is inf", "nan_obs": "observation[0] is nan",
    "inf_obs": "observation[0] is inf", "obs_out_of_space": "observation[0] = 2.0 is outside [-1.0, 1.0]",
    "wrong_shape": "observation shape is (4,), expected (3,)", "wrong_dtype": "observation dtype is float64",
}


def _faulty_manifest(tmp_path, fault: str, step: int, episode: int):
    text = PPO.manifest.read_text().replace(
        "  id: CartPole-v1",
        f"  id: rlsuite/FaultyEnv-v0\n  kwargs: {{fault: {fault}, fault_step: {step}, fault_episode: {episode}}}")
    path = tmp_path / f"{fault}.yaml"
    path.write_text(text)
    return path


def _checkpoints_intact(run, steps):
    root = run / "checkpoints"
    assert [load_checkpoint(p).step for p in list_checkpoints(root)] == steps  # sha256 as saved: unchanged
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert not (run / "final").exists()


@pytest.mark.parametrize("fault", RUN_TIME_FAULTS)
def test_env_fault_after_a_checkpoint_names_env_episode_and_step(tmp_path, fault):
    """Episode 9 step 7 of each 10-step episode: vector step 91, after the checkpoint at vector step 64."""
    manifest = _faulty_manifest(tmp_path, fault, 7, 9)
    res = cli("train", str(manifest), "--runs-dir", str(tmp_path), "--run-id", "r", *BUDGET)
    _checkpoints_intact(tmp_path / PPO.group / "r", [512])
    assert_one_line_error(res, 2, "env 0, episode 9, step 7 (vector step 91)", RUN_TIME_FAULTS[fault])


def _poison_after(monkeypatch, agent_cls, update: int):
    """Make ``agent_cls.update`` write NaN into every weight on its ``update``-th call."""
    import torch

    real, calls = agent_cls.update, []

    def update_then_poison(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == update:
            with torch.no_grad():
                for p in self.net.parameters():
                    p.fill_(float("nan"))
        return out
    monkeypatch.setattr(agent_cls, "update", update_then_poison)


@pytest.mark.parametrize(("update", "kept"), [(4, [512]), (1, [])])
def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch, update, kept):
    """Update 4 ends at a checkpoint step (1024); update 1 diverges mid-segment, before the first save."""
    from agents.ppo.agent import PPOAgent

    _poison_after(monkeypatch, PPOAgent, update)
    res = cli("train", str(PPO.manifest), "--runs-dir", str(tmp_path), "--run-id", "r", *BUDGET)
    step = 1024 if update == 4 else 512
    assert_one_line_error(res, 1, "training stopped", f"step {step}", "is not finite")
    _checkpoints_intact(tmp_path / PPO.group / "r", kept)


def test_nan_action_of_a_continuous_policy_is_blamed_on_the_policy(tmp_path, monkeypatch):
    from agents.ppo.agent import PPOAgent

    _poison_after(monkeypatch, PPOAgent, 1)
    res = cli("train", str(PPO.manifest.with_name("pendulum_ppo.yaml")), "--runs-dir", str(tmp_path),
              "--run-id", "r", "--quiet", "--set", "train.total_steps=1024", "--set", "agent.n_steps=64",
              "--set", "checkpoint.every_steps=512", "--set", "agent.batch_size=64", "--set", "agent.n_epochs=1",
              "--set", "evaluation.every_steps=0", "--set", "evaluation.episodes=1")
    assert list_checkpoints(tmp_path / "pendulum-ppo" / "r" / "checkpoints") == []
    # update 1 ends at vector step 64 (n_steps=64, one env): the next action is the first non-finite one
    assert_one_line_error(res, 1, "training stopped", "env 0, episode 0, step 65 (vector step 65): action[0] is nan",
                          "the policy returned a non-finite action")
    assert "the env returned" not in res.stderr


@pytest.fixture(scope="module")
def faulty_ids():
    from envs.testing import FAULTS

    ids = {}
    for fault in FAULTS:
        env_id = f"rlsuite-reliability/Faulty-{fault}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="envs.testing:FaultyEnv",
                               kwargs={"fault": fault, "fault_step": 1})
        ids[fault] = env_id
    return ids


@pytest.mark.parametrize("fault", ["nan_reward", "inf_reward", "nan_obs", "inf_obs", "obs_out_of_space",
                                   "wrong_dtype", "wrong_shape"])
def test_check_env_fails_on_each_fault_at_step_1(faulty_ids, fault):
    res = cli("check-env", faulty_ids[fault])
    assert res.returncode == 1, res.stdout
    assert "problem(s)" in res.stdout and "Traceback" not in res.stderr


def test_check_env_passes_cartpole():
    res = cli("check-env", "CartPole-v1")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout
