"""Task envs and the curriculum wrapper: check_env, tasks change the env, per-sub-env tasks in a
SAME_STEP vector env, outcomes reported in sub-env order."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from envs.curriculum import TASK_ENV_IDS, CurriculumError, CurriculumWrapper, FixedTasks
from envs.curriculum.maze import generate_maze

TASKS = {
    "rlsuite/TaskCartPole-v0": {"length": 1.2, "masspole": 0.3, "gravity": 5.0},
    "rlsuite/PointGoal-v0": {"distance": 0.3, "angle": 1.0},
    "rlsuite/GridMaze-v0": {"level": 12},
    "rlsuite/StumpWalker-v0": {"height": 0.5, "spacing": 2.0},
}


def _make(env_id: str) -> gym.Env:
    if env_id == "rlsuite/StumpWalker-v0":
        pytest.importorskip("Box2D")
    return gym.make(env_id)


@pytest.mark.parametrize("env_id", list(TASK_ENV_IDS))
def test_task_envs_and_wrapper_pass_check_env(env_id):
    env = _make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advisory warnings (CartPole's infinite bounds) are not failures
        check_env(env.unwrapped, skip_render_check=True)
        check_env(CurriculumWrapper(env, FixedTasks([TASKS[env_id]])), skip_render_check=True)


@pytest.mark.parametrize("env_id", list(TASK_ENV_IDS))
def test_reset_takes_the_task_from_options_and_defaults_without(env_id):
    env = _make(env_id).unwrapped
    env.reset(seed=0, options={"task": TASKS[env_id]})
    assert env.task == TASKS[env_id]
    env.reset(seed=0)
    assert env.task == env.default_task
    with pytest.raises(CurriculumError, match=r"task\.bogus: unknown task parameter"):
        env.reset(options={"task": {"bogus": 1.0}})


def test_cartpole_task_changes_physics_not_the_seeded_start():
    env = gym.make("rlsuite/TaskCartPole-v0")
    trajectories = []
    for length in (0.5, 2.0):
        obs, _ = env.reset(seed=3, options={"task": {"length": length}})
        trajectories.append([obs] + [env.step(1)[0] for _ in range(10)])
    assert np.array_equal(trajectories[0][0], trajectories[1][0])
    assert not np.allclose(trajectories[0][-1], trajectories[1][-1])
    assert env.unwrapped.polemass_length == pytest.approx(0.1 * 2.0)


def test_point_goal_reaches_a_near_goal_and_reports_success():
    env = gym.make("rlsuite/PointGoal-v0")
    obs, _ = env.reset(seed=0, options={"task": {"distance": 0.2, "angle": np.pi / 2}})
    assert np.allclose(obs, [0.0, 0.0, 0.0, 0.2], atol=1e-6)
    steps = 0
    for steps in range(1, 101):  # noqa: B007 (steps is read after the loop)
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        if terminated:
            break
    assert terminated and reward == 1.0 and info["is_success"] and steps == 10  # (0.2 - 0.05) / 0.015
    env.reset(options={"task": {"distance": 1.0, "angle": 0.0}})
    for _ in range(100):
        *_, terminated, truncated, info = env.step(np.array([-1.0, 0.0], np.float32))
    assert truncated and not terminated and not info["is_success"]


def test_maze_levels_are_fixed_by_the_level_not_the_seed():
    a = generate_maze(7, 5, 0.3)
    assert all(np.array_equal(x, y) for x, y in zip(a, generate_maze(7, 5, 0.3), strict=True))
    layouts = {generate_maze(k, 5, 0.3)[0].tobytes() for k in range(20)}
    assert len(layouts) > 15
    env = gym.make("rlsuite/GridMaze-v0")
    o1, _ = env.reset(seed=1, options={"task": {"level": 4}})
    o2, _ = env.reset(seed=2, options={"task": {"level": 4}})
    assert np.array_equal(o1, o2)


class Recorder(FixedTasks):
    """Hands out task k to the k-th request and records the order of calls."""

    def __init__(self):
        super().__init__([{"distance": 0.0, "angle": 0.0}])
        self.calls: list[tuple] = []
        self.count = 0

    def next_task(self, index):
        self.count += 1
        self.calls.append(("sample", index))
        return {"distance": 0.01 * self.count, "angle": 0.0}

    def episode_end(self, index, task, ret, success, length):
        self.calls.append(("end", index, task["distance"], ret, success, length))


def test_vector_autoreset_fetches_a_new_task_per_sub_env_and_reports_in_order():
    src = Recorder()
    fns = [lambda i=i: CurriculumWrapper(gym.make("rlsuite/PointGoal-v0", horizon=3), src, i) for i in range(2)]
    envs = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    envs.reset(seed=[0, 1])
    assert src.calls == [("sample", 0), ("sample", 1)]
    # sub-env 0 (goal 0.01 away) succeeds on step 1; sub-env 1 (0.02 away) also, both reset at once
    _, _, terminated, _, _ = envs.step(np.zeros((2, 2), np.float32))
    assert terminated.tolist() == [True, True]
    assert src.calls[2:] == [("end", 0, 0.01, 1.0, True, 1), ("sample", 0), ("end", 1, 0.02, 1.0, True, 1),
                             ("sample", 1)]
    tasks = envs.get_attr("task")
    assert [t["distance"] for t in tasks] == [0.03, 0.04]
    envs.reset(seed=[0, 1])  # cut episodes are not reported
    assert [c[0] for c in src.calls[6:]] == ["sample", "sample"]


def test_wrapper_rejects_envs_without_a_task_space_and_bad_sources():
    with pytest.raises(CurriculumError, match="env.id: CartPoleEnv has no task space"):
        CurriculumWrapper(gym.make("CartPole-v1"), FixedTasks([{}]))
    with pytest.raises(CurriculumError, match="source must have next_task"):
        CurriculumWrapper(gym.make("rlsuite/PointGoal-v0"), object())
    with pytest.raises(CurriculumError, match="index must be a non-negative int"):
        CurriculumWrapper(gym.make("rlsuite/PointGoal-v0"), FixedTasks([{}]), index=-1)


def test_stump_walker_observations_stay_in_their_space_when_it_tumbles_or_is_launched():
    env = _make("rlsuite/StumpWalker-v0")
    assert np.isfinite(env.observation_space.low).all() and np.isfinite(env.observation_space.high).all()
    for angle in (4.0, -4.0):  # a hull past +-pi (gymnasium reports it unwrapped)
        env.reset(seed=0)
        env.unwrapped.hull.angle = angle
        obs, *_ = env.step(np.zeros(4, np.float32))
        assert env.observation_space.contains(obs) and obs[0] == pytest.approx(angle - np.sign(angle) * 2 * np.pi,
                                                                               abs=0.5)
    env.reset(seed=0)
    u = env.unwrapped
    for body in (u.hull, *u.legs):  # far beyond Box2D's speed caps, which bound the observation
        body.linearVelocity, body.angularVelocity = (1000.0, -1000.0), 1000.0
    u.legs[0].angularVelocity = u.legs[2].angularVelocity = -1000.0
    obs, *_ = env.step(np.ones(4, np.float32))
    assert env.observation_space.contains(obs) and abs(obs[2]) > 5.0
