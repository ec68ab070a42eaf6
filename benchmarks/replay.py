"""Replay throughput: rlsuite's Storage + UniformSampler against stable-baselines3's ReplayBuffer.

Run ``python benchmarks/replay.py [--adds 200000] [--samples 5000] [--repeats 5]``.

Both buffers hold 1e6 transitions of a Hopper-sized problem (obs 17, action 6, float32) in the
layout their off-policy loops use: ours is ``experiments.loops.offpolicy.replay_storage`` (obs,
next_obs, action, reward [K=1], terminated, truncated), SB3's a ``ReplayBuffer`` with
``handle_timeout_termination`` (observations, next_observations, actions, rewards, dones, timeouts).
Inputs are drawn once, up front, and cycled, so neither side pays for random numbers it does not
own. Rounds alternate ours and SB3; the table shows the median of ``--repeats`` rounds.

* ``add, 1 env``: one transition per call, as SB3's loop adds with ``n_envs=1`` (ours the
  ``Storage.row_writer`` the off-policy loop writes with; SB3
  ``ReplayBuffer.add(obs, next_obs, action, reward, done, infos)``). The row below it times ours
  through the keyword ``Storage.add(**fields)`` as well.
* ``add, 16 envs``: one vector step of 16 envs per call (both buffers built with 16 envs);
  transitions per second.
* ``add, batched``: ours ``Storage.extend`` of 1000 rows per call (bulk loading, e.g. an offline
  dataset). SB3 has no batched add; its figure is its 1-env per-call add again.
* ``sample 256``: one uniform batch of 256 from the full buffer, ready for a torch update. Ours:
  ``UniformSampler.sample`` + ``Storage.gather`` of the six fields an update reads, then
  ``torch.from_numpy`` of each (no copy). SB3: ``ReplayBuffer.sample(256)``, which gathers the same
  fields, folds ``timeouts`` into ``dones`` and copies them into torch tensors.

Both sides' arrays are first touched by the timed adds (numpy allocates lazily), so page faults
fall on both alike; the sample benchmark fills both buffers completely first, untimed.

Measured on the 2-core CPU machine, otherwise quiet, ``--adds 200000 --samples 2000 --repeats 7``
three times: 1-env add 3.55x, 3.46x and 3.32x (ours 1.04-1.15 us, SB3 3.69-3.82 us); sample-256
2.99x, 2.98x and 3.03x. The six-field row is written by a writer with its six writes spelled out
(``Storage._row_writer6``); the general writer, which loops over the fields and calls
``_advance``, gave 2.08-2.59x (1.74-1.98 us), and the keyword ``Storage.add`` of seven fields
1.50-1.59x before the row writer existed. The suite generates no code at run time
(``tests/reliability/test_no_code_execution.py``), so the arity is fixed by hand.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

OBS, ACT, CAPACITY = 17, 6, 1_000_000
POOL = 4096
"""Distinct pre-drawn transitions cycled through by the add benchmarks."""
FIELDS = ["obs", "action", "reward", "next_obs", "terminated", "truncated"]
"""What an off-policy update gathers (experiments.loops.offpolicy)."""


class _Agent:
    """The three attributes ``replay_storage`` reads from an agent."""

    obs_dim, action_shape, action_dtype = OBS, (ACT,), "float32"


def pool(n_envs: int, rows: int = POOL) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "obs": rng.standard_normal((rows, n_envs, OBS), dtype=np.float32),
        "next_obs": rng.standard_normal((rows, n_envs, OBS), dtype=np.float32),
        "action": rng.uniform(-1, 1, (rows, n_envs, ACT)).astype(np.float32),
        "reward": rng.standard_normal((rows, n_envs, 1), dtype=np.float32),
        "terminated": rng.random((rows, n_envs)) < 0.01,
        "truncated": rng.random((rows, n_envs)) < 0.001,
    }


def ours_storage(n_envs: int):
    from experiments.loops.offpolicy import replay_storage

    return replay_storage(_Agent(), n_envs, 1, CAPACITY)


def sb3_buffer(n_envs: int):
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    return ReplayBuffer(CAPACITY, spaces.Box(-np.inf, np.inf, (OBS,), np.float32),
                        spaces.Box(-1, 1, (ACT,), np.float32), device="cpu", n_envs=n_envs,
                        handle_timeout_termination=True)


def sb3_infos(data: dict[str, np.ndarray]) -> list[list[dict]]:
    """SB3's per-env info dicts of each pooled row (``TimeLimit.truncated`` marks a time-out)."""
    return [[{"TimeLimit.truncated": bool(tr and not te)} for te, tr in zip(te_n, tr_n, strict=True)]
            for te_n, tr_n in zip(data["terminated"], data["truncated"], strict=True)]


ROW = ("obs", "next_obs", "action", "reward", "terminated", "truncated")
"""The order in which experiments/loops/offpolicy.py's row writer takes the fields."""


def pooled_rows(n_envs: int) -> list[tuple[np.ndarray, ...]]:
    """The pool's transitions as argument tuples in ``ROW`` order."""
    data = pool(n_envs)
    return [tuple(data[k][i] for k in ROW) for i in range(POOL)]


def add_ours(n_envs: int, calls: int) -> float:
    """Transitions per second through ``Storage.row_writer``, called as experiments/loops/offpolicy.py calls it."""
    rows, storage = pooled_rows(n_envs), ours_storage(n_envs)
    write = storage.row_writer(ROW)
    start = time.perf_counter()
    for i in range(calls):  # as add_sb3 calls SB3's add: one pre-built tuple of arguments per row
        write(*rows[i % POOL])
    return calls * n_envs / (time.perf_counter() - start)


def add_ours_keywords(calls: int) -> float:
    """Transitions per second through the keyword ``Storage.add(**fields)``, 1 env."""
    rows, storage = pooled_rows(1), ours_storage(1)
    start = time.perf_counter()
    for i in range(calls):
        obs, next_obs, action, reward, terminated, truncated = rows[i % POOL]
        storage.add(obs=obs, next_obs=next_obs, action=action, reward=reward, terminated=terminated,
                    truncated=truncated)
    return calls / (time.perf_counter() - start)


def add_sb3(n_envs: int, calls: int) -> float:
    """Transitions per second through ``ReplayBuffer.add``."""
    data, buf = pool(n_envs), sb3_buffer(n_envs)
    done = data["terminated"] | data["truncated"]
    infos = sb3_infos(data)
    rows = [(data["obs"][i], data["next_obs"][i], data["action"][i], data["reward"][i, :, 0], done[i], infos[i])
            for i in range(POOL)]
    start = time.perf_counter()
    for i in range(calls):
        buf.add(*rows[i % POOL])
    return calls * n_envs / (time.perf_counter() - start)


def extend_ours(calls: int, rows_per_call: int = 1000) -> float:
    """Transitions per second through ``Storage.extend`` of ``rows_per_call`` rows (1 env)."""
    data, storage = pool(1, rows_per_call), ours_storage(1)
    start = time.perf_counter()
    for _ in range(calls):
        storage.extend(data)
    return calls * rows_per_call / (time.perf_counter() - start)


def full_pair():
    """Both 1-env buffers completely filled with the same transitions (untimed)."""
    data = pool(1, CAPACITY // 100)
    storage, buf = ours_storage(1), sb3_buffer(1)
    for _ in range(100):
        storage.extend(data)
    for ours_name, sb3_name in (("obs", "observations"), ("next_obs", "next_observations"), ("action", "actions"),
                                ("terminated", "dones"), ("truncated", "timeouts")):
        getattr(buf, sb3_name)[:] = storage.arrays[ours_name].astype(getattr(buf, sb3_name).dtype)
    buf.rewards[:] = storage.arrays["reward"][..., 0]
    buf.full, buf.pos = True, 0
    assert storage.full and storage.num_transitions == buf.size() == CAPACITY
    return storage, buf


def sample_ours(storage, calls: int) -> float:
    import torch

    from rl.core.samplers import UniformSampler

    sampler = UniformSampler(np.random.default_rng(0), 256)
    start = time.perf_counter()
    for _ in range(calls):
        batch = storage.gather(sampler.sample(storage), FIELDS)
        _ = {k: torch.from_numpy(v) for k, v in batch.items()}
    return calls / (time.perf_counter() - start)


def sample_sb3(buf, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        buf.sample(256)
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adds", type=int, default=200_000, help="add calls per 1-env round (default 200000)")
    parser.add_argument("--samples", type=int, default=5_000, help="sample calls per round (default 5000)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()
    if min(args.adds, args.samples, args.repeats) < 1:
        parser.error("--adds, --samples and --repeats must be >= 1")
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    storage, buf = full_pair()
    sample_ours(storage, 100), sample_sb3(buf, 100)  # warm-up
    for _ in range(args.repeats):
        record("add1 ours", add_ours(1, args.adds))
        record("add1 sb3", add_sb3(1, args.adds))
        record("add1 ours kw", add_ours_keywords(args.adds))
        record("add16 ours", add_ours(16, args.adds // 4))
        record("add16 sb3", add_sb3(16, args.adds // 4))
        record("extend ours", extend_ours(max(args.adds // 1000, 1)))
        record("sample ours", sample_ours(storage, args.samples))
        record("sample sb3", sample_sb3(buf, args.samples))
    med = {k: statistics.median(v) for k, v in results.items()}
    table = Table(title=f"Replay, obs {OBS}, action {ACT}, capacity {CAPACITY:.0e}, 1 torch thread "
                        f"(median of {args.repeats} rounds)")
    for col in ("operation", "ours", "SB3", "ours/SB3", "target"):
        table.add_column(col, justify="right")
    table.add_row("add, 1 env (transitions/s)", f"{med['add1 ours']:,.0f}", f"{med['add1 sb3']:,.0f}",
                  f"{med['add1 ours'] / med['add1 sb3']:.2f}x", ">= 3x")
    table.add_row("add, 1 env, Storage.add(**fields)", f"{med['add1 ours kw']:,.0f}", f"{med['add1 sb3']:,.0f}",
                  f"{med['add1 ours kw'] / med['add1 sb3']:.2f}x", "")
    table.add_row("add, 16 envs (transitions/s)", f"{med['add16 ours']:,.0f}", f"{med['add16 sb3']:,.0f}",
                  f"{med['add16 ours'] / med['add16 sb3']:.2f}x", "")
    table.add_row("add, batched 1000 rows (transitions/s)", f"{med['extend ours']:,.0f}",
                  f"{med['add1 sb3']:,.0f} (no batch API)", f"{med['extend ours'] / med['add1 sb3']:.0f}x", "")
    table.add_row("sample 256 (batches/s)", f"{med['sample ours']:,.0f}", f"{med['sample sb3']:,.0f}",
                  f"{med['sample ours'] / med['sample sb3']:.2f}x", ">= 1.4x")
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)
    per_call = {k: f"{1e6 / med[k]:.2f} us" for k in ("add1 ours", "add1 sb3")}
    console.print(f"per 1-env add: ours {per_call['add1 ours']}, SB3 {per_call['add1 sb3']}; "
                  f"per sample-256: ours {1e6 / med['sample ours']:.1f} us, SB3 {1e6 / med['sample sb3']:.1f} us",
                  highlight=False)


if __name__ == "__main__":
    main()
