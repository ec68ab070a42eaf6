"""Gymnasium envs and wrappers for rlsuite: task envs, fixture envs, runtime contract checks.

Only gymnasium and numpy are imported here. Importing ``envs`` registers the fixture envs of
`envs.testing` (``rlsuite/ConstantReward-v0``, ``rlsuite/KnownReturns-v0``, ``rlsuite/FaultyEnv-v0``).
"""

from envs.testing import register_testing_envs

register_testing_envs()

import envs.curriculum  # noqa: E402,F401  (registers rlsuite/TaskCartPole-v0, PointGoal-v0, GridMaze-v0, StumpWalker-v0)
import envs.mo  # noqa: E402,F401  (registers the multi-objective wrappers with envs.make)
from envs.make import register_wrapper  # noqa: E402
from envs.observation import OneHotObservation  # noqa: E402

register_wrapper("OneHotObservation", OneHotObservation)
