"""Per-objective GAE cost: one ``[T, N, K]`` call against one scalar ``[T, N, 1]`` call (target < 2x at K=3).

    python benchmarks/mo_gae.py [--t 256] [--n 64] [--k 3] [--repeats 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rl.core.advantages import gae


def _inputs(t: int, n: int, k: int, rng: np.random.Generator):
    return (rng.normal(size=(t, n, k)).astype(np.float32), rng.normal(size=(t, n, k)).astype(np.float32),
            rng.normal(size=(t, n, k)).astype(np.float32), rng.random((t, n)) < 0.01, rng.random((t, n)) < 0.01)


def best_time(args, repeats: int) -> float:
    gae(*args, 0.99, 0.95)  # compile this shape
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gae(*args, 0.99, 0.95)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--t", type=int, default=256)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--repeats", type=int, default=50)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    scalar = best_time(_inputs(a.t, a.n, 1, rng), a.repeats)
    vector = best_time(_inputs(a.t, a.n, a.k, rng), a.repeats)
    print(f"T={a.t} N={a.n}: scalar {scalar * 1e3:.3f} ms, K={a.k} {vector * 1e3:.3f} ms, "
          f"ratio {vector / scalar:.2f}x (target < 2x)")


if __name__ == "__main__":
    main()
