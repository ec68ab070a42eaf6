"""n-step returns from replay rows against a plain per-sample loop and hand-worked cases."""

import numpy as np
import pytest

from rl.core.nstep import nstep_returns


def _reference(reward_tnk, terminated_tn, truncated_tn, t, n, write_pos, n_step, gamma):
    capacity = reward_tnk.shape[0]
    ret = np.zeros(reward_tnk.shape[2])
    row = t
    for k in range(n_step):
        ret += gamma**k * reward_tnk[row, n]
        last, steps = row, k + 1
        nxt = (row + 1) % capacity
        if terminated_tn[row, n] or truncated_tn[row, n] or nxt == write_pos:
            break
        row = nxt
    return ret, last, steps


@pytest.mark.parametrize("n_step", [1, 3, 5])
@pytest.mark.parametrize("write_pos", [0, 7, 19])
def test_matches_a_plain_loop(n_step, write_pos):
    rng = np.random.default_rng(n_step * 100 + write_pos)
    T, N, K = 20, 3, 2
    reward = rng.normal(size=(T, N, K)).astype(np.float32)
    terminated = rng.random((T, N)) < 0.1
    truncated = rng.random((T, N)) < 0.1
    t_b = rng.integers(0, T, 64)
    n_b = rng.integers(0, N, 64)
    ret, last, steps = nstep_returns(reward, terminated, truncated, t_b, n_b, write_pos, n_step, 0.9)
    for i in range(64):
        r_ref, last_ref, steps_ref = _reference(reward, terminated, truncated, t_b[i], n_b[i], write_pos, n_step, 0.9)
        np.testing.assert_allclose(ret[i], r_ref, rtol=1e-5)
        assert (last[i], steps[i]) == (last_ref, steps_ref)


def test_one_step_is_the_stored_transition():
    reward = np.arange(10, dtype=np.float32).reshape(5, 2, 1)
    none = np.zeros((5, 2), bool)
    ret, last, steps = nstep_returns(reward, none, none, np.array([1, 3]), np.array([0, 1]), 0, 1, 0.5)
    np.testing.assert_array_equal(ret[:, 0], [2.0, 7.0])
    np.testing.assert_array_equal(last, [1, 3])
    np.testing.assert_array_equal(steps, [1, 1])


def test_stops_after_an_episode_end_and_at_the_write_position():
    # One env, rows 0..5, rewards 1; row 2 is truncated (a time-out), row 4 terminated; next write row 6 = capacity
    # wraps to 0 so a sample at row 5 cannot continue into row 0 (the oldest data).
    reward = np.ones((6, 1, 1), np.float32)
    terminated = np.zeros((6, 1), bool)
    truncated = np.zeros((6, 1), bool)
    truncated[2, 0] = True
    terminated[4, 0] = True
    t_b = np.array([0, 2, 3, 5])
    ret, last, steps = nstep_returns(reward, terminated, truncated, t_b, np.zeros(4, int), 0, 3, 0.5)
    # From row 0: rows 0, 1, 2 (the time-out ends the sum; row 2's next_obs is its true successor).
    np.testing.assert_allclose(ret[:, 0], [1.75, 1.0, 1.5, 1.0])
    np.testing.assert_array_equal(last, [2, 2, 4, 5])
    np.testing.assert_array_equal(steps, [3, 1, 2, 1])


def test_rejects_n_step_below_one():
    with pytest.raises(ValueError, match="n_step"):
        nstep_returns(np.zeros((2, 1, 1)), np.zeros((2, 1), bool), np.zeros((2, 1), bool), [0], [0], 0, 0, 0.9)
