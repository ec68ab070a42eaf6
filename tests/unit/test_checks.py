"""Runtime env-contract checks (envs/checks.py) on 3-env vector envs with env 1 faulty."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorWrapper

import envs  # noqa: F401  (registers the fixture envs)
from envs.checks import ContractCheck, EnvContractError, EnvContractWarning, check_env_strict
from envs.testing import CONSTANT_REWARD_ID, FAULTS, FAULTY_ENV_ID, KNOWN_RETURNS_ID

SAME, NEXT = AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP
VALUE_FAULTS = ["nan_reward", "inf_reward", "nan_obs", "inf_obs", "obs_out_of_space"]
OBS_KIND = {
    "nan_obs": "obs_nonfinite",
    "inf_obs": "obs_nonfinite",
    "obs_out_of_space": "obs_out_of_space",
    "wrong_dtype": "obs_dtype",
    "wrong_shape": "obs_shape",
}


def vector_env(autoreset_mode=SAME, horizons=(10, 10, 10), faulty=None, env_id=CONSTANT_REWARD_ID, **kwargs):
    """A SyncVectorEnv of len(horizons) envs; env 1 is FaultyEnv(**faulty) when faulty is given."""

    def make(i: int):
        if i == 1 and faulty is not None:
            return lambda: gymnasium.make(FAULTY_ENV_ID, horizon=horizons[i], disable_env_checker=True, **faulty)
        return lambda: gymnasium.make(env_id, horizon=horizons[i], disable_env_checker=True, **kwargs)

    return SyncVectorEnv([make(i) for i in range(len(horizons))], autoreset_mode=autoreset_mode)


def run_until_error(vec: ContractCheck, steps: int = 100) -> EnvContractError:
    with pytest.raises(EnvContractError) as caught:
        vec.reset(seed=0)
        for _ in range(steps):
            vec.step(vec.action_space.sample())
    return caught.value


def assert_names(err: EnvContractError, kind: str, env: int, episode: int, step: int, vector_step: int) -> None:
    assert (err.kind, err.env_index, err.episode, err.step, err.vector_step) == (
        kind,
        env,
        episode,
        step,
        vector_step,
    ), str(err)
    assert str(err).startswith(f"env {env}, episode {episode}, step {step} (vector step {vector_step}): ")
    assert "\n" not in str(err)


@pytest.mark.parametrize("fault", VALUE_FAULTS)
def test_fault_at_step_5_names_env_episode_and_step(fault):
    # The fault is in episode 1, so the counters must survive an autoreset: vector step 10 + 5.
    vec = ContractCheck(vector_env(faulty={"fault": fault, "fault_step": 5, "fault_episode": 1}))
    err = run_until_error(vec)
    kind = "reward_nonfinite" if fault.endswith("reward") else OBS_KIND[fault]
    assert_names(err, kind, env=1, episode=1, step=5, vector_step=15)


def test_reward_message_has_value_and_remedy():
    err = run_until_error(ContractCheck(vector_env(faulty={"fault": "nan_reward", "fault_step": 5})))
    assert str(err) == (
        "env 1, episode 0, step 5 (vector step 5): reward is nan; "
        "the env returned a non-finite reward — fix the env or add a reward-clipping wrapper"
    )


def test_out_of_space_message_names_the_value_and_bounds():
    err = run_until_error(ContractCheck(vector_env(faulty={"fault": "obs_out_of_space", "fault_step": 5})))
    assert "observation[0] = 2.0 is outside [-1.0, 1.0]" in str(err)


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_in_final_obs_is_caught(fault):
    # Fault on the last step of episode 1: under SAME_STEP the bad obs is only in info["final_obs"].
    # SyncVectorEnv casts or rejects a sub-env's wrong dtype/shape in the batch, so final_obs is where
    # a ContractCheck can see them per env.
    vec = ContractCheck(vector_env(horizons=(5, 5, 5), faulty={"fault": fault, "fault_step": 5, "fault_episode": 1}))
    err = run_until_error(vec)
    kind = "reward_nonfinite" if fault.endswith("reward") else "final_" + OBS_KIND[fault]
    assert_names(err, kind, env=1, episode=1, step=5, vector_step=10)
    if not fault.endswith("reward"):
        assert 'info["final_obs"]' in str(err)


@pytest.mark.parametrize(("fault", "step", "vector_step"), [("nan_reward", 5, 16), ("nan_obs", 10, 21)])
def test_next_step_autoreset_counts_the_reset_step(fault, step, vector_step):
    # NEXT_STEP spends one vector step on each reset: episode 1 starts at vector step 11.
    vec = ContractCheck(vector_env(NEXT, faulty={"fault": fault, "fault_step": step, "fault_episode": 1}))
    assert_names(run_until_error(vec), OBS_KIND.get(fault, "reward_nonfinite"), 1, 1, step, vector_step)


def test_fault_in_reset_obs_is_caught_on_reset_and_on_autoreset():
    faulty = {"fault": "nan_obs", "fault_step": 0, "fault_episode": 0}
    assert_names(run_until_error(ContractCheck(vector_env(faulty=faulty))), "obs_nonfinite", 1, 0, 0, 0)
    faulty["fault_episode"] = 2
    vec = ContractCheck(vector_env(horizons=(4, 4, 4), faulty=faulty))
    assert_names(run_until_error(vec), "obs_nonfinite", 1, 2, 0, 8)


def test_warn_mode_warns_once_per_kind_and_counts_every_violation():
    vec = ContractCheck(vector_env(faulty={"fault": "nan_reward", "fault_step": 5}), mode="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vec.reset(seed=0)
        for _ in range(50):
            vec.step(vec.action_space.sample())
    contract = [w for w in caught if issubclass(w.category, EnvContractWarning)]
    assert len(contract) == 1 and len(caught) == 1
    assert str(contract[0].message).startswith("env 1, episode 0, step 5 (vector step 5): reward is nan; ")
    assert vec.violation_counts == {"reward_nonfinite": 5}


@pytest.mark.parametrize("autoreset_mode", [SAME, NEXT])
def test_clean_envs_run_200_steps_with_correct_counters(autoreset_mode):
    horizons = np.array([7, 10, 13])
    vec = ContractCheck(vector_env(autoreset_mode, horizons=tuple(horizons)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vec.reset(seed=0)
        for _ in range(200):
            vec.step(vec.action_space.sample())
    period_n = horizons if autoreset_mode == SAME else horizons + 1  # NEXT_STEP adds a reset step
    assert vec.vector_step == 200 and vec.violation_counts == {}
    np.testing.assert_array_equal(vec.episode_n, 200 // period_n)
    np.testing.assert_array_equal(vec.step_in_episode_n, 200 % period_n)


def test_clean_continuous_truncating_envs_pass():
    vec = ContractCheck(vector_env(env_id=KNOWN_RETURNS_ID, continuous=True, truncate_instead=True))
    vec.reset(seed=0)
    for _ in range(50):
        vec.step(vec.action_space.sample())
    assert vec.episode_n.tolist() == [5, 5, 5]


def test_results_pass_through_unchanged():
    plain, checked = vector_env(), ContractCheck(vector_env())
    np.testing.assert_array_equal(plain.reset(seed=1)[0], checked.reset(seed=1)[0])
    for _ in range(12):
        actions = plain.action_space.sample()
        for a, b in zip(plain.step(actions)[:4], checked.step(actions)[:4], strict=True):
            np.testing.assert_array_equal(a, b)


class Tamper(VectorWrapper):
    """Applies ``edit(obs, reward, terminated, truncated, info)`` to the step output at ``vector_step``."""

    def __init__(self, env, vector_step, edit):
        super().__init__(env)
        self.at, self.edit, self.count = vector_step, edit, 0

    def step(self, actions):
        result = self.env.step(actions)
        self.count += 1
        return self.edit(*result) if self.count == self.at else result


def test_batch_dtype_error_names_all_envs():
    vec = ContractCheck(Tamper(vector_env(), 3, lambda o, *rest: (o.astype(np.float64), *rest)))
    err = run_until_error(vec)
    assert (err.kind, err.env_index, err.vector_step) == ("obs_dtype", None, 3)
    assert str(err).startswith("all envs (vector step 3): observation batch dtype is float64, expected float32")


def test_inf_obs_in_an_unbounded_box_is_an_error():
    # CartPole's velocities have infinite bounds, so inf lies inside the Box but is still non-finite.
    def inf_velocity(o, *rest):
        o = o.copy()
        o[1, 1] = np.inf
        return (o, *rest)

    cartpole = SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3, autoreset_mode=SAME)
    assert cartpole.single_observation_space.high[1] == np.inf
    err = run_until_error(ContractCheck(Tamper(cartpole, 2, inf_velocity)))
    assert_names(err, "obs_nonfinite", env=1, episode=0, step=2, vector_step=2)
    assert "observation[1] is inf" in str(err)


def test_multi_objective_reward_is_checked_per_env():
    def two_objectives(nan_at=None):
        def edit(o, r, *rest):
            reward_nk = np.stack([r, -r], axis=1)
            if nan_at is not None:
                reward_nk[nan_at, 1] = np.nan
            return (o, reward_nk, *rest)

        return edit

    clean = ContractCheck(Tamper(vector_env(), 2, two_objectives()))
    clean.reset(seed=0)
    for _ in range(4):
        clean.step(clean.action_space.sample())
    err = run_until_error(ContractCheck(Tamper(vector_env(), 2, two_objectives(nan_at=1))))
    assert_names(err, "reward_nonfinite", env=1, episode=0, step=2, vector_step=2)
    assert "reward is [1.0, nan]" in str(err)


def test_reward_of_wrong_shape_is_an_error():
    vec = ContractCheck(Tamper(vector_env(), 1, lambda o, r, *rest: (o, np.append(r, 0.0), *rest)))
    err = run_until_error(vec)
    assert err.kind == "reward" and "shape (4,)" in str(err)


def test_missing_final_obs_is_an_error():
    def drop_final_obs(o, r, term, trunc, info):
        return o, r, term, trunc, {k: v for k, v in info.items() if "final" not in k}

    vec = ContractCheck(Tamper(vector_env(horizons=(3, 3, 3)), 3, drop_final_obs))
    assert_names(run_until_error(vec), "final_obs_missing", env=0, episode=0, step=3, vector_step=3)


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        ContractCheck(vector_env(), mode="ignore")


class OutOfSpaceResetEnv(gymnasium.Env):
    """reset() returns 5.0 for a Box(-1, 1) observation."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(2, 5.0, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


@pytest.fixture
def out_of_space_id():
    env_id = "rlsuite_test/OutOfSpaceReset-v0"
    gymnasium.register(env_id, entry_point=OutOfSpaceResetEnv)
    yield env_id
    del gymnasium.registry[env_id]


@pytest.mark.parametrize("env_id", ["CartPole-v1", CONSTANT_REWARD_ID, KNOWN_RETURNS_ID, FAULTY_ENV_ID])
def test_check_env_strict_passes_good_envs(env_id):
    assert check_env_strict(env_id) == []


def test_check_env_strict_reports_obs_outside_space(out_of_space_id):
    problems = check_env_strict(out_of_space_id)
    assert problems and any("not within the observation space" in p for p in problems)


def test_check_env_strict_turns_exceptions_and_warnings_into_strings():
    problems = check_env_strict(FAULTY_ENV_ID, fault="nan_reward", fault_step=1)
    assert "UserWarning: WARN: The reward is a NaN value." in problems
    assert problems[-1].startswith("AssertionError: ")


@pytest.mark.parametrize("fault", FAULTS)
def test_check_env_strict_fails_every_fault_on_step_1(fault):
    assert check_env_strict(FAULTY_ENV_ID, fault=fault, fault_step=1)


def test_check_env_strict_restores_logger_level_and_lets_make_errors_through():
    gymnasium.logger.min_level = gymnasium.logger.ERROR
    try:
        with pytest.raises(gymnasium.error.Error):
            check_env_strict("rlsuite/NoSuchEnv-v0")
        assert gymnasium.logger.min_level == gymnasium.logger.ERROR
        assert check_env_strict(FAULTY_ENV_ID, fault="wrong_dtype", fault_step=1)  # warnings still seen
    finally:
        gymnasium.logger.min_level = gymnasium.logger.WARN
