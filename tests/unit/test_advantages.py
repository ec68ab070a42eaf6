"""GAE kernel against a numpy loop, the λ=0 / λ=1 limits, a hand-worked truncation and jit vs no jit.

Axis letters: T time rows, N envs, K reward objectives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from rl.core.advantages import SCAN_XLA_OPTION, _kernel, gae, gae_reference, lambda_returns, with_scan_xla_flags

GAMMA, LAM = 0.99, 0.95


def rollout(shape, seed=0, p_term=0.1, p_trunc=0.1):
    """Random float32 reward/value/next_value of ``shape`` and [T, N] flags with both kinds of ends."""
    rng = np.random.default_rng(seed)
    reward, value, next_value = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    terminated = rng.random(shape[:2]) < p_term
    truncated = ~terminated & (rng.random(shape[:2]) < p_trunc)
    if shape[0] >= 3:  # at least one of each end, away from the last row
        terminated[0, 0], truncated[0, 0] = True, False
        terminated[1, -1], truncated[1, -1] = False, True
    return reward, value, next_value, terminated, truncated


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 5), (33, 4, 3), (16, 2, 1)])
def test_matches_numpy_loop(shape):
    args = rollout(shape, seed=len(shape) * 100 + shape[0])
    adv, ret = gae(*args, GAMMA, LAM)
    adv_ref, ret_ref = gae_reference(*args, GAMMA, LAM)
    assert adv.shape == ret.shape == shape
    assert adv.dtype == ret.dtype == np.float32
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ret_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lambda_returns(*args, GAMMA, LAM), ret_ref, rtol=1e-5, atol=1e-5)


def test_lambda_zero_is_td_error():
    reward, value, next_value, terminated, truncated = rollout((20, 4), seed=1)
    adv, ret = gae(reward, value, next_value, terminated, truncated, GAMMA, 0.0)
    delta = reward + GAMMA * (1.0 - terminated) * next_value - value
    np.testing.assert_allclose(adv, delta, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ret, adv + value, rtol=1e-6, atol=1e-6)


def test_lambda_one_without_ends_is_discounted_return():
    reward, value, next_value, _, _ = rollout((30, 3), seed=2)
    next_value[:-1] = value[1:]  # no episode ends, so s'_t = s_{t+1}
    none = np.zeros((30, 3), bool)
    _, ret = gae(reward, value, next_value, none, none, GAMMA, 1.0)
    # Monte Carlo return bootstrapped from V(s'_{T-1}); the intermediate values cancel out.
    expected = np.zeros((30, 3))
    acc = next_value[-1].astype(np.float64)
    for t in reversed(range(30)):
        acc = reward[t] + GAMMA * acc
        expected[t] = acc
    np.testing.assert_allclose(ret, expected, rtol=1e-5, atol=1e-5)


def test_truncation_worked_by_hand():
    # One env, three steps, gamma = 0.5, lambda = 1. Step 1 is truncated: it bootstraps from the
    # final observation's value (next_value[1] = 10) and the trace does not flow from step 2 into it.
    reward = np.array([[1.0], [2.0], [4.0]], np.float32)
    value = np.array([[0.0], [1.0], [2.0]], np.float32)
    next_value = np.array([[1.0], [10.0], [8.0]], np.float32)
    terminated = np.zeros((3, 1), bool)
    truncated = np.array([[False], [True], [False]])
    adv, ret = gae(reward, value, next_value, terminated, truncated, 0.5, 1.0)
    # t=2: δ = 4 + 0.5*8 - 2 = 6;  A = 6
    # t=1: δ = 2 + 0.5*10 - 1 = 6; A = 6 (trace cut by the truncation)
    # t=0: δ = 1 + 0.5*1 - 0 = 1.5; A = 1.5 + 0.5*6 = 4.5
    np.testing.assert_allclose(adv[:, 0], [4.5, 6.0, 6.0])
    np.testing.assert_allclose(ret[:, 0], [4.5, 7.0, 8.0])
    # The same step terminated instead: no bootstrap at all.
    adv_term, _ = gae(reward, value, next_value, truncated, terminated, 0.5, 1.0)
    np.testing.assert_allclose(adv_term[:, 0], [1.5 + 0.5 * 1.0, 1.0, 6.0])


def test_objectives_equal_separate_scalar_calls():
    reward, value, next_value, terminated, truncated = rollout((25, 4, 3), seed=3)
    adv, ret = gae(reward, value, next_value, terminated, truncated, GAMMA, LAM)
    for k in range(3):
        adv_k, ret_k = gae(reward[..., k], value[..., k], next_value[..., k], terminated, truncated, GAMMA, LAM)
        np.testing.assert_allclose(adv[..., k], adv_k, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ret[..., k], ret_k, rtol=1e-6, atol=1e-6)


def test_jit_equals_no_jit():
    args = rollout((12, 3, 2), seed=4)
    adv, ret = gae(*args, GAMMA, LAM)
    with jax.disable_jit():
        adv_eager, ret_eager = gae(*args, GAMMA, LAM)
    np.testing.assert_allclose(adv, adv_eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ret, ret_eager, rtol=1e-6, atol=1e-6)


def test_new_gamma_does_not_recompile():
    args = rollout((9, 2), seed=5)
    gae(*args, 0.9, 0.8)
    before = _kernel()._cache_size()
    gae(*args, 0.5, 0.3)
    gae(*args, np.float64(0.7), np.float32(0.6))
    assert _kernel()._cache_size() == before


def test_bad_shapes_and_ranges_name_the_argument():
    reward, value, next_value, terminated, truncated = rollout((5, 2), seed=6)
    with pytest.raises(ValueError, match="next_value"):
        gae(reward, value, next_value[:4], terminated, truncated, GAMMA, LAM)
    with pytest.raises(ValueError, match="truncated"):
        gae(reward, value, next_value, terminated, truncated[:, :1], GAMMA, LAM)
    with pytest.raises(ValueError, match="lam"):
        gae(reward, value, next_value, terminated, truncated, GAMMA, 1.5)


def test_scan_xla_flags_add_the_option_once_and_keep_the_users():
    assert with_scan_xla_flags("") == f"--xla_backend_extra_options={SCAN_XLA_OPTION}"
    ours = with_scan_xla_flags("--xla_cpu_enable_fast_math=false")
    assert ours.startswith("--xla_cpu_enable_fast_math=false ") and SCAN_XLA_OPTION in ours
    assert with_scan_xla_flags(ours) == ours
    theirs = "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"
    assert with_scan_xla_flags(theirs) == theirs


SCAN_PROBE = """
import json, sys
import numpy as np
from rl.core.advantages import _checked, _kernel, gae
args = [np.asarray(a) for a in json.loads(sys.stdin.read())]
hoisted = "xla_cpu_small_call" in _kernel().lower(*_checked(*args, 0.99, 0.95)).compile().as_text()
print(json.dumps({"hoisted": hoisted, "out": [a.tolist() for a in gae(*args, 0.99, 0.95)]}))
"""


def test_scan_xla_option_makes_one_loop_function_with_identical_results():
    # [64, 40] is over XLA's default 1 KiB, so only the option makes the loop one compiled function
    args = rollout((64, 40), seed=7)
    env = {**os.environ, "XLA_FLAGS": with_scan_xla_flags("")}
    proc = subprocess.run([sys.executable, "-c", SCAN_PROBE], input=json.dumps([a.tolist() for a in args]),
                          capture_output=True, text=True, env=env, check=True)
    probe = json.loads(proc.stdout)
    assert probe["hoisted"]
    for got, want in zip(probe["out"], gae(*args, GAMMA, LAM), strict=True):
        np.testing.assert_array_equal(np.asarray(got, np.float32), want)
