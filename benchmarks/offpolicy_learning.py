"""Do rlsuite's off-policy agents learn? Issue-3 acceptance over 5 seeds, and a Hopper-v5 SAC curve.

    python benchmarks/offpolicy_learning.py [--which sac td3 dqn] [--seeds 0-4] [--jobs 2] [--runs-dir DIR]
    python benchmarks/offpolicy_learning.py --which hopper --seeds 0 [--steps 100000]

Each check trains seeds of an example manifest with ``rl sweep`` (ordinary run directories, finished
runs are skipped on a rerun) and reads the periodic evaluation (10 deterministic episodes) at the
budget the acceptance names: SAC Pendulum-v1 >= -200 by 20k env steps, TD3 Pendulum-v1 >= -200 by
30k, DQN CartPole-v1 >= 450 by 50k, each in at least 4 of 5 seeds. "By N steps" is the best
evaluation at or before N. ``hopper`` trains ``hopper_sac.yaml`` for ``--steps`` env steps
and prints its evaluation curve (no threshold: a curve for the record).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from experiments.plotting import read_metrics
from experiments.sweep import parse_seeds, run_sweep

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "manifests"
CHECKS = {  # name: (manifest, env-step budget, threshold)
    "sac": ("pendulum_sac.yaml", 20_000, -200.0),
    "td3": ("pendulum_td3.yaml", 30_000, -200.0),
    "dqn": ("cartpole_dqn.yaml", 50_000, 450.0),
}


def eval_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    cols = read_metrics(run_dir)
    keep = ~np.isnan(cols["eval/mean_reward"])
    return cols["time/total_timesteps"][keep], cols["eval/mean_reward"][keep]


def check(name: str, seeds: list[int], jobs: int, runs_dir: Path) -> None:
    manifest, budget, threshold = CHECKS[name]
    t0 = time.perf_counter()
    results = run_sweep(ROOT / manifest, ",".join(map(str, seeds)), overrides=[f"train.total_steps={budget}"],
                        runs_dir=runs_dir, jobs=jobs, show_progress=False)
    wall = time.perf_counter() - t0
    passed = 0
    print(f"\n{name}: {manifest}, {budget} env steps, threshold {threshold:g} ({wall:.0f} s)")
    for r in sorted(results, key=lambda r: r.run.seed):
        steps, values = eval_curve(r.run.run_dir(runs_dir))
        best = float(values[steps <= budget].max())
        ok = best >= threshold
        passed += ok
        curve = " ".join(f"{int(s) // 1000}k:{v:.0f}" for s, v in zip(steps, values, strict=True))
        print(f"  seed {r.run.seed}: best eval by {budget // 1000}k {best:8.1f} {'PASS' if ok else 'fail'}   {curve}")
    print(f"  {passed} of {len(seeds)} seeds reach {threshold:g} (acceptance: at least 4 of 5)")


def hopper(seeds: list[int], steps: int, jobs: int, runs_dir: Path) -> None:
    t0 = time.perf_counter()
    results = run_sweep(ROOT / "hopper_sac.yaml", ",".join(map(str, seeds)),
                        overrides=[f"train.total_steps={steps}", "evaluation.every_steps=10000",
                                   "checkpoint.every_steps=50000"],
                        runs_dir=runs_dir, jobs=jobs, show_progress=False)
    print(f"\nhopper_sac.yaml, {steps} env steps ({time.perf_counter() - t0:.0f} s)")
    for r in sorted(results, key=lambda r: r.run.seed):
        steps_e, values = eval_curve(r.run.run_dir(runs_dir))
        print(f"  seed {r.run.seed}: " + " ".join(f"{int(s) // 1000}k:{v:.0f}" for s, v in zip(steps_e, values,
                                                                                               strict=True)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", nargs="+", default=["sac", "td3", "dqn"], choices=[*CHECKS, "hopper"])
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--steps", type=int, default=100_000, help="hopper: env steps")
    p.add_argument("--runs-dir", type=Path, default=Path("/tmp/offpolicy_learning"))
    args = p.parse_args()
    seeds = parse_seeds(args.seeds)
    for name in args.which:
        if name == "hopper":
            hopper(seeds, args.steps, args.jobs, args.runs_dir)
        else:
            check(name, seeds, args.jobs, args.runs_dir)


if __name__ == "__main__":
    main()
