"""Does rlsuite's PPO learn? The CartPole acceptance check and Pendulum against stable-baselines3.

Run ``python benchmarks/ppo_learning.py [--jobs 2] [--vectorization sync|vector]`` for CartPole: seeds 0-4 of
``experiments/manifests/cartpole_ppo.yaml`` at its 100k env steps, each final policy evaluated as
``rl eval`` does (``evaluate_run``, 20 deterministic episodes); the acceptance is a mean return of at
least 475 in at least 4 of the 5 seeds.

Run ``python benchmarks/ppo_learning.py --pendulum [--steps 200000] [--jobs 2]`` for Pendulum-v1: seeds
0-4 of ``experiments/manifests/pendulum_ppo.yaml`` against seeds 0-4 of SB3's PPO with the same
hyperparameters (``sb3_ppo_kwargs`` from ``benchmarks/ppo_vs_sb3.py``: n_steps 1024 x 4 envs, batch
64, 10 epochs, gamma 0.9, GAE lambda 0.95, lr 1e-3, clip 0.2, no entropy bonus), the same env steps.
Every final policy plays the same 10 deterministic episodes (same env seeds for both sides). The
mean over seeds gets a 95% percentile bootstrap CI over seeds (``experiments.stats``); the
acceptance is ours' mean within SB3's CI or above it.

``--jobs N`` trains N runs at a time in spawned processes, one torch thread each; ours and SB3 runs
are interleaved so both see the same load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from ppo_vs_sb3 import EVAL_SEEDS, ROOT, last_metrics_row, ours_manifest, ours_returns, sb3_ppo_kwargs, sb3_returns

CARTPOLE = ROOT / "experiments" / "manifests" / "cartpole_ppo.yaml"
PENDULUM = ROOT / "experiments" / "manifests" / "pendulum_ppo.yaml"
SEEDS = range(5)
CARTPOLE_EPISODES = 20
CARTPOLE_THRESHOLD = 475.0
"""Mean return over ``CARTPOLE_EPISODES`` a seed must reach to count as solved."""


def init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def train_cartpole(seed: int, steps: int | None, runs_dir: str, vectorization: str | None = None) -> dict:
    """Train one CartPole seed and evaluate its final policy like ``rl eval --episodes 20``."""
    from experiments.evaluate_run import evaluate_run
    from experiments.manifest import load_manifest
    from experiments.train import start_run

    overrides = [] if vectorization is None else [f"env.vectorization={vectorization}"]
    overrides += [] if steps is None else [f"train.total_steps={steps}"]
    manifest, _ = load_manifest(CARTPOLE, overrides, seed=seed)
    start = time.perf_counter()
    run_dir = start_run(manifest, Path(runs_dir), run_id=f"s{seed}", show_progress=False)
    wall = time.perf_counter() - start
    res = evaluate_run(run_dir, episodes=CARTPOLE_EPISODES, seed=None, checkpoint=None)
    return {"seed": seed, "steps": int(float(last_metrics_row(run_dir)["step"])), "wall_s": wall,
            "returns": np.asarray(res["returns"]), "mean": res["mean_return"]}


def train_pendulum_ours(seed: int, steps: int, runs_dir: str) -> dict:
    """One seed of our PPO on the Pendulum manifest; the return of the shared 10-episode evaluation."""
    from experiments.train import start_run

    manifest = ours_manifest(PENDULUM, steps, seed, cheap_eval=False)
    start = time.perf_counter()
    run_dir = start_run(manifest, Path(runs_dir), run_id=f"s{seed}", show_progress=False)
    wall = time.perf_counter() - start
    returns = ours_returns(run_dir, manifest.env.id, EVAL_SEEDS)
    return {"side": "ours", "seed": seed, "steps": int(float(last_metrics_row(run_dir)["step"])), "wall_s": wall,
            "returns": returns, "mean": float(returns.mean())}


def train_pendulum_sb3(seed: int, steps: int, runs_dir: str) -> dict:
    """One seed of SB3's PPO with the Pendulum manifest's hyperparameters, evaluated the same way."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    manifest = ours_manifest(PENDULUM, steps, seed, cheap_eval=False)
    start = time.perf_counter()
    env = make_vec_env(manifest.env.id, n_envs=manifest.env.num_envs, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **sb3_ppo_kwargs(manifest.agent))
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    returns = sb3_returns(model, manifest.env.id, EVAL_SEEDS)
    env.close()
    return {"side": "SB3", "seed": seed, "steps": int(model.num_timesteps), "wall_s": wall,
            "returns": returns, "mean": float(returns.mean())}


def run_all(tasks: list[tuple], jobs: int) -> list[dict]:
    """Run ``(fn, *args)`` tasks, ``jobs`` at a time in spawned processes; results in task order."""
    results: list[dict | None] = [None] * len(tasks)
    start = time.perf_counter()

    def done(i: int, res: dict) -> None:
        results[i] = res
        who = f"{res.get('side', 'ours')} seed {res['seed']}"
        print(f"[{time.perf_counter() - start:6.0f} s] {who}: mean return {res['mean']:.1f} "
              f"({res['steps']:,} env steps, {res['wall_s']:.0f} s)", flush=True)

    if jobs == 1:
        init_worker()
        for i, (fn, *args) in enumerate(tasks):
            done(i, fn(*args))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker) as pool:
            futures = {pool.submit(fn, *args): i for i, (fn, *args) in enumerate(tasks)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
    return results


def cartpole(steps: int | None, jobs: int, vectorization: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="ppo_cartpole-") as tmp:
        results = run_all([(train_cartpole, s, steps, tmp, vectorization) for s in SEEDS], jobs)
    table = Table(title=f"PPO CartPole-v1 (cartpole_ppo.yaml, env.vectorization={vectorization or 'sync'}): "
                        f"{CARTPOLE_EPISODES} deterministic episodes per seed")
    for col in ("seed", "env steps", "mean return", "std", "min", f">= {CARTPOLE_THRESHOLD:g}", "train s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r["seed"]), f"{r['steps']:,}", f"{r['mean']:.1f}", f"{r['returns'].std():.1f}",
                      f"{r['returns'].min():.1f}", "yes" if r["mean"] >= CARTPOLE_THRESHOLD else "no",
                      f"{r['wall_s']:.1f}")
    solved = sum(r["mean"] >= CARTPOLE_THRESHOLD for r in results)
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)
    verdict = "PASS" if solved >= 4 else "FAIL"
    console.print(f"{solved}/{len(results)} seeds reach a mean return >= {CARTPOLE_THRESHOLD:g} "
                  f"(acceptance: at least 4 of 5): {verdict}", highlight=False)


def pendulum(steps: int, jobs: int) -> None:
    from rich.console import Console

    with tempfile.TemporaryDirectory(prefix="ppo_pendulum-") as tmp:
        tasks = [t for s in SEEDS for t in ((train_pendulum_ours, s, steps, tmp), (train_pendulum_sb3, s, steps, tmp))]
        results = run_all(tasks, jobs)
    ours = [r for r in results if r["side"] == "ours"]
    sb3 = [r for r in results if r["side"] == "SB3"]
    console = Console()
    console.width = max(console.width, 120)  # rich wraps at 80 columns when piped
    console.print(pendulum_table(ours, sb3, steps))
    console.print(pendulum_verdict(ours, sb3), highlight=False)


def pendulum_table(ours: list[dict], sb3: list[dict], steps: int):
    from rich.table import Table

    table = Table(title=f"PPO Pendulum-v1 (pendulum_ppo.yaml), {steps:,} env steps: "
                        f"mean return of {len(EVAL_SEEDS)} deterministic episodes")
    for col in ("seed", "ours return", "SB3 return", "ours env steps", "SB3 env steps", "ours train s", "SB3 train s"):
        table.add_column(col, justify="right")
    for o, s in zip(ours, sb3, strict=True):
        table.add_row(str(o["seed"]), f"{o['mean']:.1f}", f"{s['mean']:.1f}", f"{o['steps']:,}", f"{s['steps']:,}",
                      f"{o['wall_s']:.0f}", f"{s['wall_s']:.0f}")
    table.add_section()
    cis = {side: mean_ci(runs) for side, runs in (("ours", ours), ("SB3", sb3))}
    table.add_row("mean [95% CI]", *(f"{m:.1f} [{lo:.1f}, {hi:.1f}]" for m, lo, hi in cis.values()), "", "",
                  f"{np.mean([o['wall_s'] for o in ours]):.0f}", f"{np.mean([s['wall_s'] for s in sb3]):.0f}",
                  style="bold")
    return table


def mean_ci(runs: list[dict]) -> tuple[float, float, float]:
    """Mean over seeds and its 95% percentile bootstrap CI (seeds resampled, rng seed 0)."""
    from experiments.stats import mean, stratified_bootstrap_ci

    scores_rt = np.array([[r["mean"]] for r in runs])
    return stratified_bootstrap_ci(scores_rt, mean, np.random.default_rng(0))


def pendulum_verdict(ours: list[dict], sb3: list[dict]) -> str:
    ours_mean, _, _ = mean_ci(ours)
    _, lo, hi = mean_ci(sb3)
    if ours_mean > hi:
        where, ok = "above SB3's 95% CI", True
    elif ours_mean >= lo:
        where, ok = "within SB3's 95% CI", True
    else:
        where, ok = "below SB3's 95% CI", False
    return (f"ours' mean {ours_mean:.1f} lies {where} [{lo:.1f}, {hi:.1f}] "
            f"(acceptance: within or above): {'PASS' if ok else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pendulum", action="store_true", help="Pendulum-v1, ours vs SB3, instead of CartPole")
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps per run (default: the manifest's, 100000 for CartPole, 200000 for Pendulum)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once in separate processes")
    parser.add_argument("--vectorization", choices=["sync", "vector"], default=None,
                        help="CartPole: override env.vectorization of our runs (default: the manifest's, sync)")
    args = parser.parse_args()
    if args.jobs < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--jobs and --steps must be >= 1")
    if args.pendulum:
        from experiments.manifest import load_manifest

        pendulum(args.steps or load_manifest(PENDULUM)[0].train.total_steps, args.jobs)
    else:
        cartpole(args.steps, args.jobs, args.vectorization)


if __name__ == "__main__":
    main()
