"""Task spaces: validation errors name the field, sampling stays inside, unit coordinates round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from envs.curriculum import LEVEL_KEY, CurriculumError, TaskSpace

BOX = TaskSpace({"distance": (0.0, 1.0), "angle": (-np.pi, np.pi)})


@pytest.mark.parametrize(
    ("box", "levels", "match"),
    [
        ({}, 0, "empty task space"),
        ({"x": (1.0, 1.0)}, 0, r"box\.x: degenerate range"),
        ({"x": (2.0, 1.0)}, 0, r"box\.x: degenerate range"),
        ({"x": (0.0, float("inf"))}, 0, r"box\.x: bounds must be finite"),
        ({"x": (0.0,)}, 0, r"box\.x: expected \[low, high\]"),
        ({"level": (0.0, 1.0)}, 0, "reserved for discrete levels"),
        ({"x": (0.0, 1.0)}, -1, r"levels: must be a non-negative integer"),
    ],
)
def test_bad_spaces_name_the_field(box, levels, match):
    with pytest.raises(CurriculumError, match=match):
        TaskSpace(box, levels, where="curriculum.space")


@pytest.mark.parametrize(
    ("task", "match"),
    [
        ({"distance": 0.5, "angle": 0.0, "speed": 1.0}, r"task\.speed: unknown task parameter"),
        ({"distance": 1.5, "angle": 0.0}, r"task\.distance: 1\.5 is outside \[0\.0, 1\.0\]"),
        ({"distance": float("nan"), "angle": 0.0}, r"task\.distance: must be a finite number"),
        ({"distance": "far", "angle": 0.0}, r"task\.distance: must be a finite number"),
        ({"distance": 0.5}, r"task\.angle: missing"),
        ([0.5, 0.0], "a task must be a mapping"),
    ],
)
def test_bad_tasks_name_the_key(task, match):
    with pytest.raises(CurriculumError, match=match):
        BOX.validate(task)


def test_levels_validation_and_partial_tasks():
    space = TaskSpace({"x": (0.0, 1.0)}, levels=10)
    assert space.validate({"x": 0.2, LEVEL_KEY: 3}) == {"x": 0.2, LEVEL_KEY: 3}
    assert space.validate({LEVEL_KEY: 9}, partial=True) == {LEVEL_KEY: 9}
    for bad in (10, -1, 2.0, True):
        with pytest.raises(CurriculumError, match=r"task\.level: must be an integer in \[0, 10\)"):
            space.validate({"x": 0.2, LEVEL_KEY: bad})


def test_uniform_samples_stay_inside_and_unit_round_trip():
    rng = np.random.default_rng(0)
    space = TaskSpace({"a": (-2.0, 3.0), "b": (10.0, 11.0)}, levels=4)
    for _ in range(200):
        task = space.sample_uniform(rng)
        assert space.validate(task) == task
        back = space.from_unit(space.to_unit(task))
        assert np.allclose([back["a"], back["b"]], [task["a"], task["b"]])
    assert space.from_unit(np.array([-1.0, 2.0])) == {"a": -2.0, "b": 11.0}


def test_grid_uses_cell_centres_times_levels():
    grid = TaskSpace({"x": (0.0, 1.0), "y": (0.0, 2.0)}).grid(2)
    assert grid == [{"x": 0.25, "y": 0.5}, {"x": 0.25, "y": 1.5}, {"x": 0.75, "y": 0.5}, {"x": 0.75, "y": 1.5}]
    levels = TaskSpace(levels=100).grid(3, levels=[50, 51])
    assert levels == [{LEVEL_KEY: 50}, {LEVEL_KEY: 51}]


def test_contains_space_names_the_offending_parameter():
    env_space = TaskSpace({"length": (0.1, 2.0), "gravity": (2.0, 20.0)})
    env_space.contains_space(TaskSpace({"length": (0.5, 1.0)}))
    with pytest.raises(CurriculumError, match=r"curriculum\.space\.box\.mass: the env has no task parameter"):
        env_space.contains_space(TaskSpace({"mass": (0.5, 1.0)}, where="curriculum.space"))
    with pytest.raises(CurriculumError, match=r"box\.length: \[0\.0, 1\.0\] is outside the env's range"):
        env_space.contains_space(TaskSpace({"length": (0.0, 1.0)}, where="curriculum.space"))
    with pytest.raises(CurriculumError, match=r"levels: 5 levels, but the env has no levels"):
        env_space.contains_space(TaskSpace(levels=5, where="curriculum.space"))
