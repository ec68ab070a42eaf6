"""Per-objective GAE cost: one ``[T, N, K]`` call against one scalar ``[T, N, 1]`` call (target < 2x at K=3).

    python benchmarks/mo_gae.py [--shapes 128x8 256x8 256x64 2048x8 1024x256] [--k 3] [--rounds 3]

By default it runs the rollout shapes of the multi-objective PPO manifests (``resource_gathering_ppo.yaml``
128x8, ``minecart_ppo.yaml`` 256x8), then wider ones. Each round times both calls alternately (median
of repeated calls after a compile); the table gives the median ratio over rounds and its range. At
bandwidth-bound shapes a K=3 call moves 2.8x the bytes of a scalar call (three float arrays of K
values each, the two flag arrays once), so < 2x is out of reach there; small rows pay XLA:CPU's
per-iteration cost instead.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rl.core.advantages import gae

MANIFEST_SHAPES = {(128, 8): "resource_gathering_ppo.yaml", (256, 8): "minecart_ppo.yaml"}


def _inputs(t: int, n: int, k: int, rng: np.random.Generator):
    return (rng.normal(size=(t, n, k)).astype(np.float32), rng.normal(size=(t, n, k)).astype(np.float32),
            rng.normal(size=(t, n, k)).astype(np.float32), rng.random((t, n)) < 0.01, rng.random((t, n)) < 0.01)


def median_time(args, budget_s: float = 0.3) -> float:
    """Median seconds of one call, repeated for about ``budget_s`` (at least 5 calls)."""
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        gae(*args, 0.99, 0.95)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["128x8", "256x8", "256x64", "2048x8", "1024x256"],
                   help="TxN rollout shapes")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'T x N':>10} {'scalar ms':>10} {'K=' + str(a.k) + ' ms':>10} {'ratio':>7} {'range':>13}  manifest")
    for shape in a.shapes:
        t, n = (int(x) for x in shape.split("x"))
        scalar_args, vector_args = _inputs(t, n, 1, rng), _inputs(t, n, a.k, rng)
        gae(*scalar_args, 0.99, 0.95)  # compile both shapes before timing
        gae(*vector_args, 0.99, 0.95)
        rounds = [(median_time(scalar_args), median_time(vector_args)) for _ in range(a.rounds)]
        ratios = [v / s for s, v in rounds]
        scalar = statistics.median(s for s, _ in rounds)
        vector = statistics.median(v for _, v in rounds)
        print(f"{shape:>10} {scalar * 1e3:>10.3f} {vector * 1e3:>10.3f} {statistics.median(ratios):>6.2f}x "
              f"{min(ratios):>5.2f}-{max(ratios):.2f}x  {MANIFEST_SHAPES.get((t, n), '')}", flush=True)
    print(f"target: K={a.k} < 2x one scalar call")


if __name__ == "__main__":
    main()
