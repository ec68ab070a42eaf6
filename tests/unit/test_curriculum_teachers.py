"""Teachers: JSON state round trips give identical futures, each strategy does what it claims, and
teachers refuse task spaces they cannot handle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.curriculum import (
    LEVEL_KEY,
    ALPGMMTeacher,
    CurriculumError,
    LinearScheduleTeacher,
    PLRTeacher,
    StagedTeacher,
    TaskSpace,
    UniformTeacher,
)

BOX = TaskSpace({"distance": (0.0, 1.0), "angle": (-np.pi, np.pi)})
LEVELS = TaskSpace(levels=30)


def _outcome(task: dict, step: int) -> tuple[float, bool]:
    """A learner that gets better over time on near goals / low levels and never on the rest."""
    hard = task.get("distance", task.get(LEVEL_KEY, 0) / 30)
    p = min(1.0, step / 300) if hard < 0.3 else 0.0
    success = (step * 7919 + int(hard * 1000)) % 100 < 100 * p
    return float(success), bool(success)


def _teachers():
    return {
        "uniform": lambda rng: UniformTeacher(BOX, rng),
        "linear": lambda rng: LinearScheduleTeacher(BOX, rng, {"distance": [0.0, 0.1]}, {"distance": [0.0, 1.0]}, 500),
        "staged": lambda rng: StagedTeacher(BOX, rng, [{"distance": [0.0, 0.2]}, {"distance": [0.0, 1.0]}], 0.5, 20),
        "alp_gmm": lambda rng: ALPGMMTeacher(BOX, rng, fit_every=40, fit_window=80, k_max=4),
        "plr": lambda rng: PLRTeacher(LEVELS, rng, rho=0.5),
    }


def _drive(teacher, start: int, stop: int) -> list[dict]:
    tasks = []
    for step in range(start, stop):
        task = teacher.sample(step % 4)
        ret, success = _outcome(task, step)
        teacher.update(task, ret, success, length=10)
        tasks.append(task)
    return tasks


@pytest.mark.parametrize("kind", list(_teachers()))
def test_state_round_trip_through_json_gives_the_same_future(kind):
    make = _teachers()[kind]
    a = make(np.random.default_rng(1))
    _drive(a, 0, 250)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = make(np.random.default_rng(999))
    b.load_state_dict(state)
    assert _drive(a, 250, 400) == _drive(b, 250, 400)
    assert a.stats() == b.stats()


@pytest.mark.parametrize("kind", list(_teachers()))
def test_same_seed_same_tasks_other_seed_different(kind):
    make = _teachers()[kind]
    t0 = _drive(make(np.random.default_rng(5)), 0, 200)
    assert t0 == _drive(make(np.random.default_rng(5)), 0, 200)
    assert t0 != _drive(make(np.random.default_rng(6)), 0, 200)


def test_linear_schedule_moves_the_box_with_steps():
    t = LinearScheduleTeacher(BOX, np.random.default_rng(0), {"distance": [0.0, 0.1]}, {"distance": [0.5, 1.0]}, 100)
    assert all(t.sample(0)["distance"] <= 0.1 for _ in range(50))
    t.update({}, 0.0, None, length=50)
    assert t.box()["distance"] == pytest.approx((0.25, 0.55))
    t.update({}, 0.0, None, length=500)
    assert t.progress == 1.0 and all(t.sample(0)["distance"] >= 0.5 for _ in range(50))


def test_staged_schedule_advances_only_past_the_threshold():
    t = StagedTeacher(BOX, np.random.default_rng(0), [{"distance": [0.0, 0.2]}, {"distance": [0.5, 1.0]}], 0.8, 10)
    for _ in range(10):
        t.update({"distance": 0.1, "angle": 0.0}, 0.0, False)
    assert t.stage == 0
    for _ in range(10):
        t.update({"distance": 0.1, "angle": 0.0}, 0.0, True)
    assert t.stage == 1 and all(t.sample(0)["distance"] >= 0.5 for _ in range(20))
    t.update({"distance": 0.1, "angle": 0.0}, 0.0, True)  # a late episode of stage 0 does not count
    assert len(t.recent) == 0


def test_alp_gmm_concentrates_where_the_learning_progress_is():
    space = TaskSpace({"x": (0.0, 1.0)})
    t = ALPGMMTeacher(space, np.random.default_rng(0), fit_every=50, fit_window=200, k_max=4, random_prob=0.1)
    # Returns change (progress) only for x < 0.3, and flip-flop there so ALP stays high.
    for step in range(600):
        task = t.sample(0)
        t.update(task, float(step % 2) if task["x"] < 0.3 else 0.0, None)
    xs = np.array([t.sample(0)["x"] for _ in range(500)])
    assert t.stats()["components"] >= 2
    assert np.mean(xs < 0.3) > 0.7  # uniform would give 0.3


def test_plr_replays_high_score_levels_and_stale_ones():
    t = PLRTeacher(TaskSpace(levels=5), np.random.default_rng(0), temperature=0.1, staleness_coef=0.1, rho=0.0)
    for level in range(5):
        t.update({LEVEL_KEY: level}, 1.0 if level == 3 else 0.0, None)
    p = t.replay_distribution()
    assert p.argmax() == 3 and p.sum() == pytest.approx(1.0) and p[3] > 0.8
    counts = np.bincount([t.sample(0)[LEVEL_KEY] for _ in range(300)], minlength=5)
    assert counts[3] > 200 and counts.min() > 0  # staleness keeps every seen level alive


def test_plr_visits_unseen_levels_before_replaying_with_rho_one():
    t = PLRTeacher(TaskSpace(levels=6), np.random.default_rng(0), rho=1.0)
    first = []
    for _ in range(6):
        task = t.sample(0)
        t.update(task, 0.0, None)
        first.append(task[LEVEL_KEY])
    assert sorted(first) == list(range(6))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ALPGMMTeacher(LEVELS, np.random.default_rng(0)), "alp_gmm needs a task space of box parameters"),
        (lambda: PLRTeacher(BOX, np.random.default_rng(0)), "plr needs a task space of discrete levels"),
        (lambda: LinearScheduleTeacher(LEVELS, np.random.default_rng(0), {}, {}, 10), "linear schedule needs"),
        (lambda: LinearScheduleTeacher(BOX, np.random.default_rng(0), {"speed": [0, 1]}, {"speed": [0, 1]}, 10),
         r"teacher\.start\.speed: not a box parameter"),
        (lambda: LinearScheduleTeacher(BOX, np.random.default_rng(0), {"distance": [0, 2]}, {"distance": [0, 1]}, 10),
         r"teacher\.start\.distance: \[0\.0, 2\.0\] must satisfy"),
        (lambda: StagedTeacher(BOX, np.random.default_rng(0), [], 0.5), r"teacher\.stages: give at least one"),
        (lambda: ALPGMMTeacher(BOX, np.random.default_rng(0), fit_window=4, k_max=6), r"teacher\.fit_window"),
        (lambda: PLRTeacher(TaskSpace(levels=10**6), np.random.default_rng(0)), r"space\.levels: plr keeps"),
    ],
)
def test_teachers_refuse_what_they_cannot_handle(make, match):
    with pytest.raises(CurriculumError, match=match):
        make()
