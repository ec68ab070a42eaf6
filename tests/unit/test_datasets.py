"""Minari datasets: reading what minari.DataCollector writes, the sha256, and every refusal of a
malformed dataset (one line naming the dataset, the episode and the field)."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

from rl.core.datasets import SOURCE_OFFLINE, DatasetError, dataset_sha256, offline_storage, read_dataset
from rl.core.samplers import MixedSampler, return_weights
from rl.core.storage import Field, Storage

HORIZON = 20


@pytest.fixture(scope="module")
def minari_dataset(tmp_path_factory) -> Path:
    """Three 20-step Pendulum episodes written by Minari's own DataCollector."""
    import minari

    root = tmp_path_factory.mktemp("minari")
    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=HORIZON))
    rng = np.random.default_rng(0)
    for ep in range(3):
        env.reset(seed=ep)
        while True:
            *_, term, trunc, _ = env.step(rng.uniform(-2, 2, (1,)).astype(np.float32))
            if term or trunc:
                break
    import os

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        with pytest.warns(UserWarning):
            env.create_dataset("test/pendulum-v0", algorithm_name="random")
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    return root / "test" / "pendulum-v0"


@pytest.fixture
def copy(minari_dataset, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(minari_dataset, dst)
    return dst


def test_reads_a_datacollector_dataset_into_storage_tagged_offline(minari_dataset):
    data = read_dataset(minari_dataset, "test/pendulum-v0", dataset_sha256(minari_dataset))
    assert data.num_transitions == 3 * HORIZON and list(data.lengths_e) == [HORIZON] * 3
    # next_obs of step t is obs of step t+1 within an episode; episodes end truncated, not terminated.
    np.testing.assert_array_equal(data.next_obs_mo[:HORIZON - 1], data.obs_mo[1:HORIZON])
    assert data.truncated_m.sum() == 3 and not data.terminated_m.any()
    np.testing.assert_allclose(data.returns_e.sum(), data.reward_mk.sum(), rtol=1e-5)
    storage = offline_storage(data, "float32")
    assert storage.num_transitions == 60 and (storage.flat("source") == SOURCE_OFFLINE).all()
    assert list(np.unique(storage.flat("episode_id"))) == [0, 1, 2]


def test_sha256_mismatch_is_an_error(minari_dataset):
    with pytest.raises(DatasetError, match="dataset D: sha256 is [0-9a-f]{64}, the manifest expects 0+;"):
        read_dataset(minari_dataset, "D", "0" * 64)


def test_sha256_changes_with_any_byte(copy):
    before = dataset_sha256(copy)
    meta = copy / "data" / "metadata.json"
    meta.write_text(meta.read_text().replace('"random"', '"randoM"'))
    assert dataset_sha256(copy) != before


def test_missing_dataset(tmp_path):
    with pytest.raises(DatasetError, match="dataset D: .* does not exist"):
        read_dataset(tmp_path / "nope", "D")


def test_truncated_file(copy):
    f = copy / "data" / "main_data.hdf5"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DatasetError, match="dataset D: .*(truncated|corrupt)"):
        read_dataset(copy, "D")


def _edit(copy: Path, fn) -> None:
    with h5py.File(copy / "data" / "main_data.hdf5", "r+") as f:
        fn(f)


def _replace(group, name, value):
    del group[name]
    group[name] = value


def test_observations_must_be_one_longer_than_actions(copy):
    _edit(copy, lambda f: _replace(f["episode_1"], "observations", f["episode_1/observations"][:-1]))
    with pytest.raises(DatasetError, match="dataset D: episode 1: field 'observations' has 20 rows, expected "
                                           r"len\(actions\) \+ 1 = 21"):
        read_dataset(copy, "D")


def test_nan_reward(copy):
    def poison(f):
        r = f["episode_2/rewards"][()]
        r[5] = np.nan
        _replace(f["episode_2"], "rewards", r)

    _edit(copy, poison)
    with pytest.raises(DatasetError, match="dataset D: episode 2: field 'rewards' is not finite at step 5"):
        read_dataset(copy, "D")


def test_observation_outside_space(copy):
    def push(f):
        o = f["episode_0/observations"][()]
        o[3, 2] = 9.0  # angular velocity is bounded by 8
        _replace(f["episode_0"], "observations", o)

    _edit(copy, push)
    with pytest.raises(DatasetError, match="episode 0: field 'observations' is outside the declared Box space at "
                                           "step 3"):
        read_dataset(copy, "D")


def test_object_arrays_are_refused(copy):
    _edit(copy, lambda f: _replace(f["episode_0"], "rewards", np.array(["a"] * HORIZON, dtype=object).astype("S1")))
    with pytest.raises(DatasetError, match="episode 0: field 'rewards' has dtype .*refused"):
        read_dataset(copy, "D")


def test_external_links_are_refused(copy, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as g:
        g["x"] = np.zeros(3)
    _edit(copy, lambda f: f["episode_0"].__setitem__("extra", h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")))
    with pytest.raises(DatasetError, match="/episode_0/extra is an HDF5 external link"):
        read_dataset(copy, "D")


def test_termination_inside_an_episode(copy):
    def stop(f):
        t = f["episode_1/terminations"][()]
        t[4] = True
        _replace(f["episode_1"], "terminations", t)

    _edit(copy, stop)
    with pytest.raises(DatasetError, match="episode 1: field 'terminations' is true at step 4"):
        read_dataset(copy, "D")


def test_spaces_must_match_the_env(minari_dataset):
    from experiments.datasets import load_for_manifest
    from experiments.manifest import Manifest

    m = Manifest.model_validate({
        "name": "x", "env": {"id": "MountainCarContinuous-v0"}, "agent": {"algo": "iql"},
        "train": {"total_steps": 10},
        "dataset": {"path": str(minari_dataset), "sha256": dataset_sha256(minari_dataset)}})
    env = gym.make("MountainCarContinuous-v0")
    with pytest.raises(DatasetError, match=r"dataset .*: field observation_space is .* but env MountainCarContinuous"):
        load_for_manifest(m, env.observation_space, env.action_space)


def test_return_weights_favour_high_return_trajectories_and_sum_to_one():
    p = return_weights(np.array([-100.0, 0.0, -50.0]), np.array([2, 4, 1]), temperature=0.5)
    assert p.shape == (7,) and np.isclose(p.sum(), 1.0)
    per_traj = [p[:2].sum(), p[2:6].sum(), p[6:].sum()]
    assert per_traj[1] > per_traj[2] > per_traj[0]
    np.testing.assert_allclose(per_traj[1] / per_traj[0], np.exp(1 / 0.5))
    # Equal returns: uniform over trajectories, whatever their lengths.
    np.testing.assert_allclose(return_weights(np.zeros(2), np.array([1, 3]), 1.0), [0.5, 1 / 6, 1 / 6, 1 / 6])


def _storage(n: int) -> Storage:
    s = Storage({"x": Field(())}, capacity=max(n, 1), num_envs=1)
    for i in range(n):
        s.add(x=np.array([i], np.float32))
    return s


def test_mixed_sampler_ratio_determinism_and_empty_online():
    off, on = _storage(100), _storage(10)
    a = MixedSampler(np.random.default_rng(0), 8)
    i_off, i_on = a.sample(off, on, 0.25)
    assert len(i_off) == 2 and len(i_on) == 6 and i_on.max() < 10
    assert [len(x) for x in a.sample(off, _storage(0), 0.25)] == [8, 0]
    assert [len(x) for x in a.sample(off, on, 0.0)] == [0, 8]
    b = MixedSampler(np.random.default_rng(0), 8)
    np.testing.assert_array_equal(b.sample(off, on, 0.25)[0], i_off)


def test_mixed_sampler_follows_offline_probabilities():
    probs = np.zeros(100)
    probs[[3, 7]] = 0.5
    s = MixedSampler(np.random.default_rng(1), 1000, probs)
    idx, _ = s.sample(_storage(100), None, 1.0)
    assert set(np.unique(idx)) == {3, 7} and 400 < (idx == 3).sum() < 600


def test_collect_takes_the_expert_reference_from_ref_expert(tmp_path):
    """A random-policy dataset has no expert of its own; --ref-expert gives the 100 of normalised scores."""
    from experiments.datasets import collect
    from rl.core.datasets import read_dataset

    path, card = collect("Pendulum-v1", "random", 2, "pendulum/refs-v0", root=str(tmp_path), ref_episodes=2,
                         ref_expert="-150.5")
    assert card["ref_expert_return"] == -150.5 and card["ref_random_return"] < -500
    meta = read_dataset(path, "pendulum/refs-v0", card["sha256"]).metadata
    assert meta["ref_max_score"] == -150.5 and meta["ref_min_score"] == card["ref_random_return"]
    _, plain = collect("Pendulum-v1", "random", 2, "pendulum/plain-v0", root=str(tmp_path), ref_episodes=2)
    assert plain["ref_expert_return"] is None
    with pytest.raises(DatasetError, match="--ref-expert nan"):
        collect("Pendulum-v1", "random", 2, "pendulum/bad-v0", root=str(tmp_path), ref_episodes=2, ref_expert="nan")
    assert not (tmp_path / "pendulum" / "bad-v0").exists()
