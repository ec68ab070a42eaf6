"""MO-Gymnasium envs run through the suite: make_vector_env, the contract check and the collector
carry K > 1 rewards as [N, K].

Axis letters: N envs, K objectives.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.checks import ContractCheck
from envs.make import EnvBuildError, make_vector_env, reward_dim_of
from rl.core.rollout import RolloutCollector

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ENVS = {  # id -> K
    "deep-sea-treasure-v0": 2, "resource-gathering-v0": 3, "four-room-v0": 3, "minecart-v0": 3,
    "mo-mountaincarcontinuous-v0": 2, "fruit-tree-v0": 6, "mo-lunar-lander-v3": 4, "mo-halfcheetah-v5": 2,
}


@pytest.mark.parametrize("env_id", list(ENVS))
def test_env_steps_through_collector_with_vector_rewards(env_id):
    try:
        vec = ContractCheck(make_vector_env(env_id, 2))
    except (EnvBuildError, ImportError) as err:  # an extra (box2d, mujoco) is not installed
        pytest.skip(f"{env_id}: {err}")
    k = reward_dim_of(vec)
    assert k == ENVS[env_id]
    collector = RolloutCollector(vec, k)
    collector.reset([0, 1])
    rng = np.random.default_rng(0)
    space = vec.single_action_space
    for _ in range(5):
        if hasattr(space, "n"):
            action = rng.integers(0, space.n, size=2)
        else:
            action = rng.uniform(space.low, space.high, size=(2, *space.shape)).astype(np.float32)
        tr = collector.step(action)
        assert tr.reward_nk.shape == (2, k) and np.isfinite(tr.reward_nk).all()
    vec.close()
