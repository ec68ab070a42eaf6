"""The multi-objective wrappers of envs.mo: check_env, their one job each, and bad input.

Axis letters: K reward objectives.
"""

from __future__ import annotations

import gymnasium as gym
import mo_gymnasium  # noqa: F401  (registers the MO envs)
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.make import EnvBuildError, make_vector_env, reward_dim_of
from envs.mo import (
    ChebyshevScalarization,
    LinearScalarization,
    MOWrapperError,
    NormalizeRewardVector,
    ObjectiveSubsampling,
    WeightConditionedObservation,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def dst():
    return gym.make("deep-sea-treasure-v0").unwrapped


def rg():
    return gym.make("resource-gathering-v0").unwrapped


WRAPPED = {
    "linear": lambda: LinearScalarization(dst(), weights=[0.3, 0.7]),
    "chebyshev": lambda: ChebyshevScalarization(dst(), weights=[0.5, 0.5], utopia=[24.0, 0.0]),
    "weights": lambda: WeightConditionedObservation(dst(), distribution="dirichlet", alpha=0.5),
    "subsample": lambda: ObjectiveSubsampling(rg(), min_active=1, max_active=2, mask_in_obs=True),
    "subsample+weights": lambda: ObjectiveSubsampling(WeightConditionedObservation(rg()), mask_rewards=False),
    "normalize": lambda: NormalizeRewardVector(gym.make("minecart-v0").unwrapped),
}


@pytest.mark.parametrize("name", list(WRAPPED))
def test_passes_check_env(name):
    check_env(WRAPPED[name]())


def test_linear_scalarisation_keeps_the_vector_in_info():
    env = LinearScalarization(dst(), weights=[0.3, 0.7])
    env.reset(seed=0)
    _, r, *_, info = env.step(1)  # down: treasure 0.7, time -1
    assert info["reward_vector"].tolist() == pytest.approx([0.7, -1.0])
    assert r == pytest.approx(0.3 * 0.7 - 0.7)
    assert env.reward_space.shape == ()


def test_chebyshev_rewards_sum_to_the_utility_of_the_return():
    env = ChebyshevScalarization(dst(), weights=[0.2, 0.8], utopia=[24.0, 0.0])
    env.reset(seed=0)
    total, ret_k = 0.0, np.zeros(2)
    for action in [3, 3, 1, 1, 1]:  # right, right, then down to the 3rd column's treasure
        _, r, terminated, truncated, info = env.step(action)
        total += r
        ret_k += info["reward_vector"]
        if terminated or truncated:
            break
    assert total == pytest.approx(env.utility(ret_k) - env.utility(np.zeros(2)))


def test_weights_are_deterministic_per_seed_and_on_the_simplex():
    a, b = WeightConditionedObservation(dst()), WeightConditionedObservation(dst())
    seq_a = [a.reset(seed=5)[0][-2:]] + [a.reset()[0][-2:] for _ in range(3)]
    seq_b = [b.reset(seed=5)[0][-2:]] + [b.reset()[0][-2:] for _ in range(3)]
    np.testing.assert_array_equal(seq_a, seq_b)
    assert len({tuple(w) for w in seq_a}) == 4
    assert all(np.isclose(w.sum(), 1.0) and (w >= 0).all() for w in seq_a)
    assert not np.array_equal(WeightConditionedObservation(dst()).reset(seed=6)[0][-2:], seq_a[0])


def test_weights_from_options_fixed_and_source():
    env = WeightConditionedObservation(dst())
    obs, info = env.reset(seed=0, options={"weights": [1.0, 3.0]})
    assert obs[-2:].tolist() == [0.25, 0.75] and info["weights"].tolist() == [0.25, 0.75]
    env.set_weights([2.0, 2.0])
    assert env.reset()[0][-2:].tolist() == [0.5, 0.5]
    env.set_weights(None)
    env.weight_source = lambda mask: np.array([0.0, 1.0])
    assert env.reset()[0][-2:].tolist() == [0.0, 1.0]


def test_subsampling_masks_rewards_and_restricts_weights_to_the_face():
    env = ObjectiveSubsampling(WeightConditionedObservation(rg()), min_active=1, max_active=1)
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        mask = info["objective_mask"].astype(bool)
        assert mask.sum() == 1
        assert (obs[-3:][~mask] == 0).all() and obs[-3:][mask] == pytest.approx([1.0])
        _, r, *_ = env.step(0)
        assert (np.asarray(r)[~mask] == 0).all()


def test_normalisation_state_round_trip_and_scale():
    env = NormalizeRewardVector(gym.make("deep-sea-treasure-v0"), gamma=1.0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        env.reset()
        while True:
            _, r, term, trunc, info = env.step(int(rng.integers(4)))
            if term or trunc:
                break
    assert env.count > 0
    env.reset()
    var_k = env.var_k.copy()  # fixed within an episode, updated when it ends
    _, r, *_, info = env.step(1)
    np.testing.assert_allclose(r, info["reward_vector"] / np.sqrt(var_k + env.epsilon), rtol=1e-5)
    other = NormalizeRewardVector(gym.make("deep-sea-treasure-v0"))
    other.load(env.state())
    np.testing.assert_array_equal(other.var_k, env.var_k)


@pytest.mark.parametrize("make, field", [
    (lambda: LinearScalarization(dst(), weights=[1.0]), "weights"),
    (lambda: LinearScalarization(dst(), weights=[1.0, -0.5]), "weights"),
    (lambda: LinearScalarization(dst(), weights=[0.0, 0.0]), "weights"),
    (lambda: ChebyshevScalarization(dst(), weights=[1, 1], utopia=[1.0]), "utopia"),
    (lambda: WeightConditionedObservation(dst(), distribution="fixed"), "weights"),
    (lambda: WeightConditionedObservation(dst(), distribution="gaussian"), "distribution"),
    (lambda: WeightConditionedObservation(dst(), alpha=0.0), "alpha"),
    (lambda: ObjectiveSubsampling(rg(), min_active=4), "min_active"),
    (lambda: LinearScalarization(gym.make("CartPole-v1"), weights=[1.0, 1.0]), "env"),
    (lambda: WeightConditionedObservation(gym.make("CartPole-v1")), "env"),
])
def test_bad_input_is_one_line_naming_the_field(make, field):
    with pytest.raises(MOWrapperError) as err:
        make()
    msg = str(err.value)
    assert msg.startswith(f"{field}:") and "\n" not in msg


def test_wrappers_by_name_in_make_vector_env():
    vec = make_vector_env("deep-sea-treasure-v0", 2, wrappers=[("WeightConditionedObservation", {})])
    assert vec.single_observation_space.shape == (4,) and reward_dim_of(vec) == 2
    vec = make_vector_env("deep-sea-treasure-v0", 2, wrappers=[("LinearScalarization", {"weights": [1, 1]})])
    assert reward_dim_of(vec) == 1
    with pytest.raises(EnvBuildError, match="weights: expected 2 weights"):
        make_vector_env("deep-sea-treasure-v0", 1, wrappers=[("LinearScalarization", {"weights": [1, 1, 1]})])
