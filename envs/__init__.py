"""Gymnasium envs and wrappers for rlsuite: task envs, fixture envs, runtime contract checks.

Only gymnasium and numpy are imported here. Importing ``envs`` registers the fixture envs of
`envs.testing` (``rlsuite/ConstantReward-v0``, ``rlsuite/KnownReturns-v0``, ``rlsuite/FaultyEnv-v0``).
"""

from envs.testing import register_testing_envs

register_testing_envs()
