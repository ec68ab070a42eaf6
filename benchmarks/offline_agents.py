"""Every offline agent side by side on the suite's Pendulum-v1 "medium" dataset, by hand (not CI).

    python benchmarks/offline_agents.py --workdir /tmp/o2o --seeds 0-4 --jobs 2 --updates 5000 \\
        [--algos bc td3bc iql cql awac] [--set cql:agent.net_arch=[128,128]]

The dataset is the one ``benchmarks/offline_pendulum.py`` makes (behaviour policy: SAC after 5k env
steps; 50 episodes of its stochastic actions) and is made the same way when ``<workdir>`` lacks it.
Each run trains ``experiments/manifests/pendulum_<algo>.yaml`` offline for ``--updates`` gradient
updates and scores the final evaluation (10 deterministic episodes on the suite's eval seeds).
``--set ALGO:KEY=VALUE`` overrides one algorithm's manifest (repeatable), e.g. a cheaper CQL.
Finished runs under ``<workdir>/runs/bench-<updates>`` are reused, so an interrupted benchmark resumes.

The table: per algorithm the IQM over seeds with a 95% stratified-bootstrap CI
(``experiments.stats``), the mean, every seed's score and the mean wall time of a run; beside it the
behaviour policy's mean episode return in the dataset with its own 95% bootstrap CI, and whether each
algorithm's CI lies above it, overlaps it or lies below it.

Measured on the shared 2-core CPU machine (other jobs running), 31.5 min wall::

    python benchmarks/offline_agents.py --workdir /tmp/o2o --seeds 0-4 --jobs 2 --updates 2000 \
        --set cql:agent.net_arch=[128,128]

    behaviour policy mean return -155.2 [95% CI -178.1, -130.4] (its greedy actions: -184.1)
      algo      IQM             95% CI     mean   run s  per seed
        bc   -173.8 [ -189.2,  -159.9]   -174.7      15  -193 -178 -159 -163 -181
     td3bc   -195.6 [ -218.0,  -179.1]   -197.6      68  -227 -198 -189 -174 -200
       iql   -185.4 [ -219.2,  -163.5]   -188.9      87  -205 -227 -162 -164 -187
       cql   -179.0 [ -378.7,  -158.9]   -233.1     416  -196 -181 -160 -159 -470
      awac   -175.7 [ -198.1,  -160.7]   -177.2     166  -199 -170 -161 -160 -196

CQL's critics were [128, 128] there (a [256, 256, 256] CQL update costs ~20 IQL updates on this CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

MANIFESTS = Path(__file__).resolve().parents[1] / "experiments" / "manifests"
ALGOS = ["bc", "td3bc", "iql", "cql", "awac"]
COST = {"cql": 20.0, "awac": 3.0, "iql": 1.5, "td3bc": 1.0, "bc": 0.3}
"""Relative cost of an update, to start the slow runs first."""


def _final_eval(run: Path) -> float | None:
    if not (run / "final").is_dir() or not (run / "metrics.csv").is_file():
        return None
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/mean_reward")]
    return float(rows[-1]["eval/mean_reward"]) if rows else None


def train_one(algo: str, seed: int, overrides: list[str], runs_dir: str) -> dict:
    """One offline run in this (spawned) process; reuses a finished one."""
    import torch

    from experiments.manifest import load_manifest
    from experiments.train import start_run

    torch.set_num_threads(1)
    manifest, _ = load_manifest(MANIFESTS / f"pendulum_{algo}.yaml", [*overrides, f"seed={seed}"])
    run = Path(runs_dir) / manifest.name / f"s{seed}"
    score, wall = _final_eval(run), None
    if score is None:
        t0 = time.perf_counter()
        run = start_run(manifest, Path(runs_dir), run_id=f"s{seed}", force=True, show_progress=False)
        wall = time.perf_counter() - t0
        (run / "bench_wall_s.json").write_text(json.dumps(wall))
        score = _final_eval(run)
    elif (run / "bench_wall_s.json").is_file():
        wall = json.loads((run / "bench_wall_s.json").read_text())
    return {"algo": algo, "seed": seed, "score": score, "wall_s": wall}


def ensure_dataset(workdir: Path) -> Path:
    """``<workdir>/datasets/pendulum/medium-v0`` as benchmarks/offline_pendulum.py makes it."""
    from experiments.datasets import collect
    from experiments.manifest import load_manifest
    from experiments.train import start_run

    ds = workdir / "datasets" / "pendulum" / "medium-v0"
    if (ds / "card.json").is_file():
        return ds
    behaviour = workdir / "runs" / "pendulum-sac" / "medium"
    if not (behaviour / "final").is_dir():
        manifest, _ = load_manifest(MANIFESTS / "pendulum_sac.yaml", ["train.total_steps=5000",
                                                                      "evaluation.every_steps=0"])
        start_run(manifest, workdir / "runs", run_id="medium", force=True, show_progress=False)
    collect("Pendulum-v1", str(behaviour), 50, "pendulum/medium-v0", root=str(workdir / "datasets"))
    return ds


def _parse_sets(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        algo, sep, kv = item.partition(":")
        if not sep or algo not in ALGOS or "=" not in kv:
            raise SystemExit(f"--set {item!r}: expected ALGO:KEY=VALUE with ALGO one of {', '.join(ALGOS)}")
        out.setdefault(algo, []).append(kv)
    return out


def main() -> None:
    from experiments.stats import iqm, mean, stratified_bootstrap_ci
    from experiments.sweep import parse_seeds
    from rl.core.datasets import read_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/o2o"))
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--updates", type=int, default=5000)
    p.add_argument("--algos", nargs="+", default=ALGOS, choices=ALGOS)
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="ALGO:KEY=VALUE")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    seeds, sets = parse_seeds(args.seeds), _parse_sets(args.sets)
    ds = ensure_dataset(args.workdir)
    card = json.loads((ds / "card.json").read_text())
    behaviour_e = read_dataset(ds, "pendulum/medium-v0", card["sha256"]).returns_e
    common = [f"dataset.root={args.workdir / 'datasets'}", f"dataset.sha256={card['sha256']}",
              f"train.total_steps={args.updates}", f"evaluation.every_steps={args.updates}", "evaluation.episodes=10",
              f"checkpoint.every_steps={args.updates}", f"train.log_every_steps={max(1, args.updates // 10)}"]
    runs_dir = str(args.workdir / "runs" / f"bench-{args.updates}")
    tasks = sorted(((a, s) for a in args.algos for s in seeds), key=lambda t: -COST[t[0]])
    extra = "; ".join(f"{a}: {' '.join(v)}" for a, v in sets.items()) if sets else "none"
    print(f"{len(tasks)} runs of {args.updates} updates, {args.jobs} at a time; overrides: {extra}", flush=True)
    t0 = time.perf_counter()
    results: list[dict] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(train_one, a, s, [*common, *sets.get(a, [])], runs_dir) for a, s in tasks]
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            wall = "reused" if r["wall_s"] is None else f"{r['wall_s']:.0f} s"
            print(f"[{time.perf_counter() - t0:5.0f} s] {r['algo']} seed {r['seed']}: {r['score']:.1f} ({wall})",
                  flush=True)
    rng = np.random.default_rng(0)
    b_mean, b_lo, b_hi = stratified_bootstrap_ci(behaviour_e[:, None], mean, rng)
    print(f"\nPendulum-v1 medium ({card['episodes']} episodes, {card['steps']} steps), {args.updates} updates, "
          f"seeds {args.seeds}, wall {time.perf_counter() - t0:.0f} s")
    print(f"behaviour policy mean return {b_mean:.1f} [95% CI {b_lo:.1f}, {b_hi:.1f}] over its {len(behaviour_e)} "
          f"stochastic episodes; its greedy actions: {card['ref_expert_return']:.1f} (card, 10 episodes)")
    print("vs behaviour: where the algorithm's CI lies against the behaviour's mean return; CIs: whether the "
          "two CIs overlap")
    print(f"{'algo':>6} {'IQM':>8} {'95% CI':>18} {'mean':>8}  {'vs behaviour':>12}  {'CIs':>8}  {'run s':>6}  "
          "per seed")
    for algo in args.algos:
        rs = sorted((r for r in results if r["algo"] == algo), key=lambda r: r["seed"])
        scores = np.array([r["score"] for r in rs])
        point, lo, hi = stratified_bootstrap_ci(scores[:, None], iqm, rng)
        verdict = "above" if lo > b_mean else ("overlaps" if hi >= b_mean else "below")
        cis = "overlap" if lo <= b_hi and hi >= b_lo else "apart"
        walls = [r["wall_s"] for r in rs if r["wall_s"] is not None]
        wall = f"{np.mean(walls):6.0f}" if walls else "     -"
        print(f"{algo:>6} {point:8.1f} [{lo:7.1f}, {hi:7.1f}] {scores.mean():8.1f}  {verdict:>12}  {cis:>8}  {wall}  "
              + " ".join(f"{x:.0f}" for x in scores))


if __name__ == "__main__":
    main()
