"""Storage and samplers: one code path for rollouts and replay."""

import numpy as np
import pytest

from rl.core.samplers import MinibatchSampler, UniformSampler
from rl.core.storage import Field, Storage, StorageError


def _storage(capacity=4, n=2):
    return Storage({"obs": Field((3,)), "reward": Field((2,)), "terminated": Field((), "bool")}, capacity, n)


def _row(v, n=2):
    return {"obs": np.full((n, 3), v, np.float32), "reward": np.full((n, 2), v, np.float32),
            "terminated": np.zeros(n, bool)}


def test_rollout_fill_and_flat_view_in_time_major_order():
    s = _storage()
    for t in range(4):
        s.add(**_row(t))
    assert s.size == 4 and s.full and s.pos == 0
    flat = s.flat("obs")
    assert flat.shape == (8, 3)
    np.testing.assert_array_equal(flat[:, 0], [0, 0, 1, 1, 2, 2, 3, 3])
    assert np.shares_memory(flat, s.arrays["obs"])
    s.clear()
    assert s.size == 0


def test_ring_wraps_and_overwrites_oldest():
    s = _storage(capacity=3)
    for t in range(5):
        s.add(**_row(t))
    np.testing.assert_array_equal(s.view("obs")[:, 0, 0], [3, 4, 2])
    assert s.last_row() == 1


def test_extend_wraps_like_repeated_add():
    a, b = _storage(capacity=3), _storage(capacity=3)
    rows = [_row(t) for t in range(5)]
    for r in rows:
        a.add(**r)
    b.extend({k: np.stack([r[k] for r in rows]) for k in rows[0]})
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert (a.pos, a.full) == (b.pos, b.full)


@pytest.mark.parametrize("n", [1, 3])
def test_row_writer_matches_add_through_wraparound(n):
    a, b = _storage(capacity=3, n=n), _storage(capacity=3, n=n)
    order = ["terminated", "obs", "reward"]
    write = b.row_writer(order)
    rng = np.random.default_rng(0)
    for _ in range(7):
        row = {"obs": rng.standard_normal((n, 3), dtype=np.float32),
               "reward": rng.standard_normal((n, 2), dtype=np.float32), "terminated": rng.random(n) < 0.5}
        a.add(**row)
        write(*(row[k] for k in order))
        assert (a.pos, a.full) == (b.pos, b.full)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])


def test_row_writer_rejects_wrong_fields_counts_and_shapes():
    s = _storage(n=1)
    with pytest.raises(StorageError, match="every storage field once"):
        s.row_writer(["obs", "reward"])
    with pytest.raises(StorageError, match="every storage field once"):
        s.row_writer(["obs", "reward", "terminated", "obs"])
    write = s.row_writer(["obs", "reward", "terminated"])
    with pytest.raises(TypeError, match="takes 3 values, got 2"):
        write(np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(StorageError, match="field 'reward'"):
        write(np.zeros((1, 3)), np.zeros((1, 5)), np.zeros(1, bool))
    assert s.pos == 0 and not s.full
    one = Storage({"x": Field((2,))}, capacity=2, num_envs=1)
    write_one = one.row_writer(["x"])
    write_one(np.ones((1, 2), np.float32))
    with pytest.raises(StorageError, match="field 'x'"):
        write_one(np.ones((1, 3), np.float32))
    assert one.pos == 1 and one.arrays["x"][0, 0].tolist() == [1.0, 1.0]


REPLAY_ROW = {"obs": Field((3,)), "next_obs": Field((3,)), "action": Field((2,)), "reward": Field((1,)),
              "terminated": Field((), "bool"), "truncated": Field((), "bool")}


@pytest.mark.parametrize("n", [1, 3])
def test_six_field_row_writer_matches_add_and_names_the_misfit(n):
    """The off-policy row (six fields) has its own loop-free writer: same rows, position, wrap and errors."""
    a, b = Storage(REPLAY_ROW, 3, n), Storage(REPLAY_ROW, 3, n)
    order = ["truncated", "obs", "action", "next_obs", "reward", "terminated"]
    write = b.row_writer(order)
    rng = np.random.default_rng(1)
    for _ in range(7):
        row = {name: (rng.random(n) < 0.5 if f.dtype == "bool" else rng.standard_normal((n, *f.shape), np.float32))
               for name, f in REPLAY_ROW.items()}
        a.add(**row)
        write(*(row[k] for k in order))
        assert (a.pos, a.full) == (b.pos, b.full)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    bad = [row[k] for k in order]
    bad[2] = np.zeros((n, 5), np.float32)
    with pytest.raises(StorageError, match="field 'action'"):
        write(*bad)
    with pytest.raises(TypeError):
        write(*bad[:5])
    assert (b.pos, b.full) == (a.pos, a.full)  # a refused row does not advance the position


def test_add_rejects_unknown_missing_and_misshaped_fields():
    s = _storage()
    with pytest.raises(StorageError, match="unknown storage field 'bogus'"):
        s.add(**_row(0), bogus=np.zeros(2))
    with pytest.raises(StorageError, match="missing"):
        s.add(obs=np.zeros((2, 3)))
    with pytest.raises(StorageError, match="field 'obs'"):
        s.add(**{**_row(0), "obs": np.zeros((2, 4))})


def test_state_round_trip_and_shape_mismatch():
    s = _storage(capacity=3)
    for t in range(4):
        s.add(**_row(t))
    t = _storage(capacity=3)
    t.load(s.state(), s.array_state())
    for k in s.arrays:
        np.testing.assert_array_equal(s.arrays[k], t.arrays[k])
    assert (t.pos, t.full) == (s.pos, s.full)
    with pytest.raises(StorageError, match="checkpointed storage is 3x2"):
        _storage(capacity=5).load(s.state(), s.array_state())


def test_gather_returns_requested_transitions():
    s = _storage()
    for t in range(4):
        s.add(**_row(t))
    out = s.gather(np.array([0, 7]), ["obs"])
    np.testing.assert_array_equal(out["obs"][:, 0], [0, 3])


def test_minibatch_sampler_covers_every_transition_each_epoch():
    sampler = MinibatchSampler(np.random.default_rng(0), batch_size=4, epochs=3)
    epochs = list(sampler.epochs_of_batches(16))
    assert len(epochs) == 3
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(16))
    assert not np.array_equal(epochs[0][0], epochs[1][0])


def test_uniform_sampler_is_seeded_and_in_range():
    s = _storage()
    for t in range(3):
        s.add(**_row(t))
    a = UniformSampler(np.random.default_rng(1), 64).sample(s)
    b = UniformSampler(np.random.default_rng(1), 64).sample(s)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() < 6
    with pytest.raises(ValueError, match="empty"):
        UniformSampler(np.random.default_rng(1), 4).sample(_storage())
