"""Curriculum teachers on the sparse-reward PointGoal family: held-out success rate, IQM over seeds.

Trains PPO (experiments/manifests/goal_uniform_ppo.yaml) with each teacher — uniform, ALP-GMM and a
linear distance schedule — for ``--steps`` env steps and ``--seeds`` seeds, evaluates every final
policy on the held-out 5x5 grid (distance x angle, 2 episodes per task), and prints the IQM of the
held-out success rate with a 95% stratified-bootstrap CI (experiments.stats) per teacher.

    python benchmarks/curriculum_goal.py --seeds 5 --steps 100000 --jobs 2 --out /tmp/curriculum_goal
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEACHERS = {
    "uniform": {"kind": "uniform"},
    "alp_gmm": {"kind": "alp_gmm", "fit_every": 100, "fit_window": 200, "k_max": 6, "random_prob": 0.2},
    "linear_schedule": {"kind": "linear_schedule", "start": {"distance": [0.0, 0.1]},
                        "end": {"distance": [0.0, 1.0]}, "over_steps": 0},
}


def train_one(teacher: str, seed: int, steps: int, out: str) -> dict:
    from experiments.curriculum import evaluate_heldout
    from experiments.manifest import _validate
    from experiments.train import start_run
    from experiments.yaml_strict import load_yaml

    data, _ = load_yaml(ROOT / "experiments" / "manifests" / "goal_uniform_ppo.yaml")
    spec = json.loads(json.dumps(TEACHERS[teacher]))
    if teacher == "linear_schedule":
        spec["over_steps"] = int(0.6 * steps)
    data.update(name=f"goal-{teacher}", seed=seed)
    data["train"]["total_steps"] = steps
    data["evaluation"]["every_steps"] = 0
    data["checkpoint"]["every_steps"] = steps
    data["curriculum"]["teacher"] = spec
    manifest = _validate(data, f"benchmark {teacher}", {})
    run = start_run(manifest, Path(out), run_id=f"seed{seed}", force=True, show_progress=False)
    res = evaluate_heldout(run)
    return {"teacher": teacher, "seed": seed, "success_rate": res["success_rate"],
            "worst10_return": res["worst10_return"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="/tmp/curriculum_goal")
    p.add_argument("--teachers", default=",".join(TEACHERS))
    args = p.parse_args(argv)
    from experiments.stats import iqm, stratified_bootstrap_ci

    jobs = [(t, s) for t in args.teachers.split(",") for s in range(args.seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_one, *zip(*jobs, strict=True), [args.steps] * len(jobs), [args.out] * len(jobs)))
    rng = np.random.default_rng(0)
    print(f"PointGoal held-out success (5x5 grid x 2 episodes), PPO {args.steps} steps, {args.seeds} seeds")
    for t in args.teachers.split(","):
        succ = np.array([r["success_rate"] for r in results if r["teacher"] == t])
        point, lo, hi = stratified_bootstrap_ci(succ[:, None], iqm, rng, reps=2000)
        print(f"  {t:<16} IQM {point:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  "
              f"per seed {np.round(succ, 3).tolist()}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
