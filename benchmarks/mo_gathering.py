"""Resource Gathering: HV/EU of weight-conditioned PPO's learned front over training, objective
sub-sampling vs none, IQM with 95% stratified-bootstrap CIs over seeds.

Trains ``experiments/manifests/resource_gathering_ppo.yaml`` (weights uniform on the simplex) twice per
seed: as written (``none``) and with ``objectives.subsample: {min_active: 1, max_active: 2}``
(``subsample``: each episode's weights lie on the face of a random subset of 1 or 2 objectives).
Every checkpoint's policy is swept over the manifest's weight grid (21 weights, 10 episodes each, the
vector returns averaged; enemies kill at random) and the front's hypervolume (reference
``experiments.pareto.REFERENCE_POINTS``) and expected utility are printed per checkpoint as IQM
[95% CI] over seeds (``experiments.stats``), with the probability that sub-sampling beats none at the
end. Minecart was too slow to learn in a ~30-minute budget on 2 cores, hence Resource Gathering.

Read the figures knowing the env: undiscounted, an enemy-free path collects both the gold and the gem,
so the true front is the single point (death, gold, gem) = (0, 1, 1); with the reference (-1, -1, -1)
the largest HV is 1 * 2 * 2 = 4 and the largest EU over the grid is 2/3. The curves therefore
measure how fast each variant's greedy policy reaches that point, not the shape of a front.
Run by hand (one core: 10 runs of 200k steps took about 8 minutes in all):

    python benchmarks/mo_gathering.py --seeds 0 1 2 3 4 --steps 200000 --checkpoints 8 --jobs 1 \
        [--out /tmp/mo_gathering] [--set agent.learning_rate=1e-3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANIFEST = ROOT / "experiments" / "manifests" / "resource_gathering_ppo.yaml"
VARIANTS = {
    "none": [],
    "subsample": ["objectives.subsample.min_active=1", "objectives.subsample.max_active=2"],
}


def train_one(variant: str, seed: int, steps: int, every: int, out: str, overrides: list[str]) -> dict:
    """Train one run, then sweep the weights with every checkpoint's policy; JSON-able results."""
    warnings.filterwarnings("ignore", category=UserWarning)
    from experiments.manifest import load_manifest
    from experiments.mo import evaluate_pareto
    from experiments.train import start_run
    from rl.core.checkpoint import list_checkpoints

    sets = [*overrides, *VARIANTS[variant], f"name=rg-ppo-{variant}", f"train.total_steps={steps}",
            f"checkpoint.every_steps={every}", f"checkpoint.keep_last={steps // every + 2}",
            "evaluation.every_steps=0"]
    manifest, _ = load_manifest(MANIFEST, sets, seed)
    t0 = time.perf_counter()
    run = start_run(manifest, Path(out), f"s{seed}", force=True, overrides=sets, show_progress=False)
    wall = time.perf_counter() - t0
    curve = []
    for path in list_checkpoints(Path(run) / "checkpoints"):
        step = int(path.name.split("-")[1])
        res = evaluate_pareto(run, checkpoint=step)
        curve.append({"step": step, "hypervolume": res["hypervolume"], "expected_utility": res["expected_utility"],
                      "cardinality": res["cardinality"], "front": res["front"]})
    return {"variant": variant, "seed": seed, "train_seconds": wall, "curve": curve}


def _cell(values: np.ndarray, rng: np.random.Generator, reps: int) -> str:
    from experiments.stats import iqm, stratified_bootstrap_ci

    point, lo, hi = stratified_bootstrap_ci(values[:, None], iqm, rng, reps=reps)
    return f"{point:6.3f} [{lo:6.3f}, {hi:6.3f}]"


def table(results: list[dict], variants: list[str], reps: int = 2000) -> str:
    """Per checkpoint: HV and EU IQM [95% CI] over seeds for each variant, side by side."""
    from experiments.stats import probability_of_improvement

    rng = np.random.default_rng(0)
    steps = [c["step"] for c in results[0]["curve"]]
    by = {v: sorted((r for r in results if r["variant"] == v), key=lambda r: r["seed"]) for v in variants}
    n = {v: len(rs) for v, rs in by.items()}
    head = "".join(f" | {v + ' HV (' + str(n[v]) + ' seeds)':<24} {v + ' EU':<24}" for v in variants)
    lines = [f"{'step':>8}{head}", "-" * (8 + 52 * len(variants))]
    for i, step in enumerate(steps):
        row = f"{step:>8}"
        for v in variants:
            hv = np.array([r["curve"][i]["hypervolume"] for r in by[v]])
            eu = np.array([r["curve"][i]["expected_utility"] for r in by[v]])
            row += f" | {_cell(hv, rng, reps):<24} {_cell(eu, rng, reps):<24}"
        lines.append(row)
    if len(variants) == 2:
        a, b = variants
        for metric in ("hypervolume", "expected_utility"):
            x = np.array([[r["curve"][-1][metric]] for r in by[b]])
            y = np.array([[r["curve"][-1][metric]] for r in by[a]])
            lines.append(f"P({b} > {a}) on final {metric}: {probability_of_improvement(x, y):.2f}")
    for v in variants:
        first = np.array([r["curve"][0]["hypervolume"] for r in by[v]])
        last = np.array([r["curve"][-1]["hypervolume"] for r in by[v]])
        lines.append(f"{v}: HV rose from first to last checkpoint in {int((last > first).sum())}/{n[v]} seeds; "
                     f"train seconds per run {np.mean([r['train_seconds'] for r in by[v]]):.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=100_000, help="env steps per run")
    p.add_argument("--checkpoints", type=int, default=5, help="evaluated checkpoints, evenly spaced")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", type=Path, default=Path("/tmp/mo_gathering"))
    p.add_argument("--set", dest="overrides", action="append", default=[], help="manifest override for every run")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or args.steps < args.checkpoints or args.checkpoints < 1:
        p.error(f"unknown variant(s) {unknown}" if unknown else "--steps must be >= --checkpoints >= 1")
    every = args.steps // args.checkpoints
    steps = every * args.checkpoints
    jobs = [(v, s) for s in args.seeds for v in variants]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(train_one, v, s, steps, every, str(args.out), args.overrides) for v, s in jobs]
        results = [f.result() for f in futures]
    print(f"Resource Gathering, weight-conditioned PPO, {steps} env steps, {len(args.seeds)} seeds, "
          f"HV reference (-1, -1, -1), IQM [95% CI]; {time.perf_counter() - t0:.0f} s in all")
    print(table(results, variants))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
