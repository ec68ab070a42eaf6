"""Curriculum learning: task spaces, task-parameterised envs, the curriculum wrapper and teachers.

Importing this package registers the task envs with gymnasium:

- ``rlsuite/TaskCartPole-v0``: `TaskCartPoleEnv` (pole length, pole mass, gravity; 500 steps);
- ``rlsuite/PointGoal-v0``: `PointGoalEnv` (sparse-reward goal reaching; goal distance and angle);
- ``rlsuite/GridMaze-v0``: `GridMazeEnv` (procedurally generated mazes, one per level);
- ``rlsuite/StumpWalker-v0``: `StumpWalkerEnv` (Box2D walker on stumps; needs ``gymnasium[box2d]``).

Only gymnasium, numpy and (lazily, for ALP-GMM) scikit-learn are imported here.
"""

from __future__ import annotations

import gymnasium

from envs.curriculum.alp_gmm import ALPGMMTeacher
from envs.curriculum.plr import PLRTeacher
from envs.curriculum.spaces import LEVEL_KEY, CurriculumError, Task, TaskSpace
from envs.curriculum.teachers import LinearScheduleTeacher, StagedTeacher, Teacher, UniformTeacher
from envs.curriculum.wrapper import CurriculumWrapper, FixedTasks, TaskSource, resolve_task, task_space_of

__all__ = [
    "LEVEL_KEY",
    "TASK_ENV_IDS",
    "ALPGMMTeacher",
    "CurriculumError",
    "CurriculumWrapper",
    "FixedTasks",
    "LinearScheduleTeacher",
    "PLRTeacher",
    "StagedTeacher",
    "Task",
    "TaskSource",
    "TaskSpace",
    "Teacher",
    "UniformTeacher",
    "register_curriculum_envs",
    "resolve_task",
    "task_space_of",
]

TASK_ENV_IDS = {
    "rlsuite/TaskCartPole-v0": ("envs.curriculum.cartpole:TaskCartPoleEnv", 500),
    "rlsuite/PointGoal-v0": ("envs.curriculum.point_goal:PointGoalEnv", None),
    "rlsuite/GridMaze-v0": ("envs.curriculum.maze:GridMazeEnv", None),
    "rlsuite/StumpWalker-v0": ("envs.curriculum.stumps:StumpWalkerEnv", 1600),
}
"""id -> (entry point, max_episode_steps or None when the env ends its own episodes)."""


def register_curriculum_envs() -> None:
    """Register the task envs with gymnasium; calling it again does nothing."""
    for env_id, (entry_point, max_steps) in TASK_ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


register_curriculum_envs()
