"""Can a weight-conditioned Q-network represent Deep Sea Treasure's exact vector Q? With and without
Fourier features of the weights (``agent.weight_features``, ``weight_feature_basis``), by hand (not CI).

A supervised check that leaves out everything of TD learning but the network: value iteration gives
the true vector ``Q*(s, a, w)`` (discount ``--gamma``) for 2,001 weights; ``agents.mo_dqn.networks.VectorQ``
([128, 128], one-hot positions, the manifest's loss ``(1 − λ) Huber(Q) + λ Huber(w · Q)``, λ =
``--utility-coef``) is fitted to it for ``--steps`` Adam steps with a learning rate decaying from 1e-3
to 0; then the greedy policy for each of the 101 sweep weights is rolled out from the start, and the
script counts the true front's 9 strict convex-hull points it reaches (as ``rl eval --pareto`` does for
trained runs). The network of seed S starts from the same weights and frequencies as an ``mo_dqn`` run
of seed S::

    python benchmarks/mo_weight_features.py --seeds 3 4 5 6 7 --variants 0:0 16:3 32:0:fourier [--utility-coef 0.8]

Variants are ``FEATURES:SCALE[:BASIS]``. Measured (2-core machine, other jobs running, 40-90 s per fit):

- seeds 0-5, λ 0.5: raw weights only (``0:0``) reached all 9 hull points in 1 of 6 seeds (5, 9, 7, 6,
  7, 7; loss 0.036-0.067); 16 random features at scale 3 (``16:3``) in 5 of 6 (8, 9, 9, 9, 9, 9; loss
  0.006-0.010). So the network, not only the TD targets, blended the return vectors of neighbouring
  treasures. With other draws of the random frequencies, 32 features at scale 3 and 16 at scale 2 got
  1 of 4 seeds each: the scale and the draw matter.
- held-out seeds 3-7 (the acceptance runs use seeds 0-2): ``16:3`` 5/5 at λ 0.5 and 4/5 at λ 0.8; the
  deterministic basis ``32:0:fourier`` 2/5 at λ 0.5 (9, 8, 9, 8, 8) and 5/5 at λ 0.8 (loss
  0.0037-0.0047). ``experiments/manifests/dst_dqn.yaml`` uses the last: the frequencies no longer
  depend on a draw, and the utility term fits the values the policy acts on more closely. Trained
  with it, seeds 0-2 reach all 9 hull points (``benchmarks/mo_dst.py``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from agents.mo_dqn.networks import VectorQ


def hull_points() -> set[tuple[float, int]]:
    """The true front's strict convex-hull vertices, as ``rl eval --pareto`` reports them (9 points)."""
    from experiments.pareto import convex_hull_points, true_front

    return {(round(float(t), 1), round(float(s))) for t, s in convex_hull_points(true_front("deep-sea-treasure-v0"))}


class Sea:
    """Deep Sea Treasure's map and moves, read from MO-Gymnasium's env."""

    def __init__(self):
        import mo_gymnasium as mo

        env = mo.make("deep-sea-treasure-v0").unwrapped
        self.map, self.moves = np.asarray(env.sea_map), [np.asarray(env.dir[a]) for a in range(4)]
        rows, cols = self.map.shape
        self.states = [(i, j) for i in range(rows) for j in range(cols) if self.map[i, j] == 0]
        self.index = {s: k for k, s in enumerate(self.states)}
        env.close()

    def step(self, s: tuple[int, int], a: int) -> tuple[int, int]:
        p = (s[0] + int(self.moves[a][0]), s[1] + int(self.moves[a][1]))
        h, w = self.map.shape
        return p if 0 <= p[0] < h and 0 <= p[1] < w and self.map[p] != -10 else s

    def true_q(self, w1: float, gamma: float) -> np.ndarray:
        """``Q*[S, A, K]`` for weights ``(w1, 1 − w1)`` by value iteration (greedy in ``w · Q``)."""
        w = np.array([w1, 1.0 - w1])
        q = np.zeros((len(self.states), 4, 2))
        for _ in range(500):
            v = q[np.arange(len(self.states)), (q @ w).argmax(1)]
            new = np.empty_like(q)
            for s in self.states:
                for a in range(4):
                    p = self.step(s, a)
                    terminal = self.map[p] > 0
                    new[self.index[s], a] = [self.map[p], -1.0] if terminal else [0.0, -1.0] + gamma * v[self.index[p]]
            if np.abs(new - q).max() < 1e-9:
                return new
            q = new
        return q

    def onehot(self) -> torch.Tensor:
        out = torch.zeros(len(self.states), self.map.size)
        for k, (i, j) in enumerate(self.states):
            out[k, i * self.map.shape[1] + j] = 1.0
        return out


def fit(sea: Sea, q_gsak: np.ndarray, w1_g: np.ndarray, features: int, scale: float, seed: int,
        steps: int, batch: int = 1024, basis: str = "random", utility_coef: float = 0.5) -> tuple[set, float]:
    torch.manual_seed(seed)  # the same initial network and frequencies as an mo_dqn run of this seed
    net = VectorQ(sea.map.size + 2, 4, 2, [128, 128], features, scale, basis)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    rng = np.random.default_rng(seed)
    onehot = sea.onehot()
    for it in range(steps):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * (1 - it / steps)
        s_b, g_b = rng.integers(0, len(sea.states), batch), rng.integers(0, len(w1_g), batch)
        a_b = rng.integers(0, 4, batch)
        w_bk = torch.from_numpy(np.stack([w1_g[g_b], 1 - w1_g[g_b]], 1).astype(np.float32))
        y_bk = torch.from_numpy(q_gsak[g_b, s_b, a_b])
        q_bk = net(torch.cat([onehot[s_b], w_bk], 1))[torch.arange(batch), torch.from_numpy(a_b)]
        loss = ((1 - utility_coef) * F.smooth_l1_loss(q_bk, y_bk)
                + utility_coef * F.smooth_l1_loss((q_bk * w_bk).sum(-1), (y_bk * w_bk).sum(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    reached = set()
    with torch.no_grad():
        for w1 in np.linspace(0, 1, 101):
            w_k = torch.tensor([w1, 1 - w1], dtype=torch.float32)
            s, n = (0, 0), 0
            while n < 50:
                q_ak = net(torch.cat([onehot[sea.index[s]], w_k])[None])[0]
                s, n = sea.step(s, int((q_ak @ w_k).argmax())), n + 1
                if sea.map[s] > 0:
                    reached.add((round(float(sea.map[s]), 1), -n))
                    break
    return reached, loss.item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", nargs="+", default=["0:0", "16:3"],
                   help="FEATURES:SCALE[:BASIS] (BASIS random, the default, or fourier, whose SCALE is unused)")
    p.add_argument("--utility-coef", type=float, default=0.5, help="agent.utility_loss_coef")
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--steps", type=int, default=8000)
    args = p.parse_args()
    torch.set_num_threads(1)
    sea, hull = Sea(), hull_points()
    w1_g = np.linspace(0, 1, 2001)
    t0 = time.perf_counter()
    q_gsak = np.stack([sea.true_q(w1, args.gamma) for w1 in w1_g]).astype(np.float32)
    print(f"value iteration for {len(w1_g)} weights: {time.perf_counter() - t0:.0f} s", flush=True)
    for variant in args.variants:
        features, scale, basis = (variant.split(":") + ["random"])[:3]
        features, scale = int(features), float(scale)
        counts = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            reached, loss = fit(sea, q_gsak, w1_g, features, max(scale, 1e-6), seed, args.steps, basis=basis,
                                utility_coef=args.utility_coef)
            counts.append(len(hull & reached))
            print(f"{variant} seed {seed}: hull {counts[-1]}/{len(hull)}, missing "
                  f"{sorted(hull - reached)}, loss {loss:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        print(f"{variant} (utility coef {args.utility_coef:g}): all {len(hull)} in "
              f"{sum(c == len(hull) for c in counts)}/{len(counts)} seeds ({', '.join(map(str, counts))})", flush=True)


if __name__ == "__main__":
    main()
