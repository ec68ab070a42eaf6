"""dataset.reward_scale: batches carry scaled rewards (and Cal-QL's returns-to-go), storage stays raw."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.loops.offline import mixed_batch, resolved_reward_scale
from rl.core.samplers import MixedSampler
from rl.core.storage import Field, Storage


def _storage(reward: float, rows: int) -> Storage:
    s = Storage({"reward": Field((1,)), "mc_return": Field(()), "obs": Field((2,))}, rows, 1)
    for i in range(rows):
        s.add(reward=np.array([[reward]], np.float32), mc_return=np.array([10.0 * reward], np.float32),
              obs=np.full((1, 2), i, np.float32))
    return s


def test_batches_are_scaled_and_the_stored_data_is_not():
    off, on = _storage(-2.0, 8), _storage(4.0, 8)
    sampler = MixedSampler(np.random.default_rng(0), 8)
    batch = mixed_batch(off, on, sampler, 0.5, ["reward", "mc_return", "obs"], reward_scale=0.25)
    assert batch["reward"][:, 0].tolist() == [-0.5] * 4 + [1.0] * 4
    assert batch["mc_return"].tolist() == [-5.0] * 4 + [10.0] * 4
    assert batch["reward"].dtype == np.float32 and batch["obs"].max() < 8  # observations untouched
    assert off.arrays["reward"].max() == -2.0 and on.arrays["reward"].min() == 4.0
    same = mixed_batch(off, on, MixedSampler(np.random.default_rng(0), 8), 0.5, ["reward", "obs"])
    assert same["reward"][:, 0].tolist() == [-2.0] * 4 + [4.0] * 4


def test_return_range_is_iqls_locomotion_scale():
    assert resolved_reward_scale(None, np.array([1.0, 2.0])) == 1.0
    assert resolved_reward_scale(0.1, np.array([1.0, 2.0])) == pytest.approx(0.1)
    assert resolved_reward_scale("return_range", np.array([-1200.0, -200.0, -700.0])) == pytest.approx(1.0)
    assert resolved_reward_scale("return_range", np.array([500.0, 3000.0])) == pytest.approx(0.4)
    assert resolved_reward_scale("return_range", np.array([5.0, 5.0])) == 1.0  # no spread: unscaled
