"""Offline agents on the suite's Pendulum-v1 "medium" and "mixed" datasets, by hand (not CI).

Issue 4's two offline acceptance tables, from one command (all data under ``--workdir``)::

    python benchmarks/offline_agents.py --workdir /tmp/o2o_study --seeds 0-4 --jobs 1 \\
        --updates 5000 --updates-for cql:1500 --set cql:agent.net_arch=[128,128] \\
        --algos iql td3bc cql --mixed-algos iql td3bc

1. **medium**: each ``--algos`` agent on ``pendulum/medium-v0`` against the behaviour policy.
2. **mixed**: each ``--mixed-algos`` agent on ``pendulum/mixed-v0`` (10% expert, 90% random
   episodes), with uniform sampling and with return-weighted trajectory sampling
   (``dataset.weighting: {kind: return, temperature: T}``, Hong et al. 2023; T is ``--temperature``,
   default 0.2, or ``--temperature-for ALGO:T`` for one algorithm).

The datasets follow ``experiments/manifests/datasets/pendulum.md`` exactly and are made when
``<workdir>/datasets`` lacks them: behaviour policies ``pendulum_sac.yaml`` after 2,500 env steps
("medium") and 20,000 env steps ("expert"); ``rl collect`` with 100 episodes of stochastic actions,
seed 0. Each run trains ``experiments/manifests/pendulum_<algo>.yaml`` unchanged except the dataset,
``--updates`` gradient updates (``--updates-for ALGO:N`` for one algorithm) and ``--set`` overrides,
and is scored by its final evaluation (10 deterministic episodes on the suite's eval seeds).
Finished runs under ``<workdir>/runs/<dataset>-<updates>/`` are reused, so an interrupted
benchmark resumes and the tables can be printed again for free; ``--tables`` picks which to run.

Per algorithm: the IQM over seeds of the final eval return with a 95% stratified-bootstrap CI
(``experiments.stats``, 2000 replicates), the mean, every seed's score and the mean wall time of a
run. Beside it the behaviour policy's mean episode return in the dataset with its 95% bootstrap CI
(over episodes), and where the algorithm's CI lies against that mean (above / overlaps / below).
The mixed table puts with- and without-weighting side by side and says whether their CIs overlap.

``--jobs 1`` keeps one training process at a time (each uses one torch thread).

Measured with the command above on the shared 2-core CPU machine (other jobs running), 35 training
runs in ~63 min; behaviour policies and datasets ~7 min more. CQL ran with [128, 128] critics and
3,000 updates (its manifest's [256, 256, 256] costs ~250 ms an update here, ~4x the [128, 128] one)::

    == medium ==  100 episodes; behaviour mean return -714.0 [95% CI -770.7, -660.2]
          algo updates      IQM             95% CI     mean  vs behav   run s  per seed
           iql    5000   -258.7 [ -312.4,  -202.9]   -256.5     above      61  -310 -243 -223 -193 -314
         td3bc    5000   -551.1 [ -651.6,  -464.5]   -558.2     above      52  -581 -597 -476 -459 -679
           cql    3000   -653.1 [ -829.0,  -547.5]   -674.7  overlaps     233  -557 -744 -658 -872 -543

    == mixed ==  100 episodes (10 expert, mean -121.2; 90 random, mean -1245.5); mean -1133.1
          algo updates      IQM             95% CI     mean  vs behav   run s  per seed
           iql    5000   -259.0 [ -307.7,  -221.4]   -262.3     above      75  -259 -266 -253 -329 -206
        iql+rw    5000   -266.2 [ -348.4,  -220.6]   -277.8     above      79  -382 -208 -272 -245 -281
         td3bc    5000  -1224.9 [-1295.9, -1151.6]  -1226.1     below      60  -1316 -1243 -1176 -1139 -1256
      td3bc+rw    5000   -708.7 [ -941.0,  -596.1]   -748.7     above      58  -1051 -722 -566 -749 -655

Return weighting (temperature 0.2, the schema default, not tuned) lifts TD3+BC by ~516 with CIs
apart; for IQL it makes no difference (−266 vs −259, CIs overlap): IQL's expectile/advantage
weighting already extracts the expert episodes from uniform draws. A milder weighting,
``--tables mixed --mixed-algos iql --temperature 0.5``, did not help either: IQM −267.6
[−460.2, −189.5] with it against −259.0 without (seeds −244, −521, −220, −174, −339). With more
updates, ``--tables mixed --mixed-algos iql --mixed-updates 20000 --jobs 2``, uniform IQL improves to
IQM −211.9 [−246.8, −195.2] and return weighting (temperature 0.2) falls further behind: −346.1
[−497.4, −214.5] (seeds −324, −532, −429, −179, −285; ~320 s a run).

Scored instead on the same 100 start states for every run (``--final-episodes 100``, which reuses the
finished runs and only evaluates them), the answer sharpens rather than turns. At 5,000 updates: IQL
−263.9 [−314.5, −213.0] uniform, −361.9 [−387.9, −269.1] weighted (CIs overlap); TD3+BC −1154.0
[−1210.8, −1121.2] uniform, −705.4 [−831.0, −592.8] weighted (CIs apart). At 20,000 updates
(``--mixed-updates 20000``): IQL −205.2 [−208.3, −203.5] uniform, −308.6 [−325.1, −233.5] weighted, CIs
apart. On this set weighting helps TD3+BC, whose behaviour-cloning term then clones the expert
episodes, and hurts IQL, which already weights actions by advantage and loses state coverage when
seven tenths of its draws come from the ten expert episodes.

**A milder temperature for IQL, chosen on held-out seeds.** Temperature 0.2 puts ~70% of the draws
on the ten expert episodes; IQL needs the random episodes' state coverage for its value functions.
On seeds 5-7, which no table above uses (``--seeds 5-7 --tables mixed --mixed-algos iql --temperature
T --final-episodes 100``), IQL scored -344.1 uniform, -204.0 at T = 1 and -213.9 at T = 2 (IQM of 3
seeds; both weighted CIs above the uniform one); TD3+BC at T = 1 scored -1177.4 against -1158.3
uniform, so it keeps 0.2. With T = 1 for IQL (17% of the draws from the ten best
episodes), on seeds 0-4 and the 100 shared start states, ``--seeds 0-4 --jobs 2 --tables mixed
--mixed-algos iql td3bc --temperature-for iql:1.0 --final-episodes 100`` gives: IQL -244.3
[-318.8, -205.5] weighted against -263.9 [-314.5, -213.0] uniform (+19.6, the CIs overlap; seeds
-209, -346, -259, -204, -265 against -207, -278, -289, -327, -225), TD3+BC (T = 0.2) -705.4 against
-1154.0 (CIs apart). T = 1 was not run at 20,000 updates.

A larger mixed set, ``--tables mixed --mixed-algos iql --mixed-episodes 500`` (``mixed-500ep-v0``: 500
episodes, 50 of them expert, so the weighting has ten times the expert transitions to draw from), did
not change the answer at 5,000 updates: uniform IQM −272.8 [−485.7, −198.7] (seeds −407, −525, −208,
−194, −204), return-weighted −292.1 [−432.2, −180.0] (seeds −202, −432, −432, −169, −242).
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
BEHAVIOUR_STEPS = {"medium": 2500, "expert": 20000}
"""Env steps of ``pendulum_sac.yaml`` for each behaviour policy (datasets/pendulum.md)."""
DATASETS = {"medium": ("medium", None), "mixed": ("expert", "final:0.1,random:0.9")}
"""Dataset name -> (behaviour policy, --mix); 100 episodes each, collect seed 0."""
EPISODES = 100
FINAL_EVAL_SEED = 1000
"""Seed of the ``--final-episodes`` evaluations here and in offline_pendulum.py, apart from every
training seed: every run is scored on the same start states, so two runs' scores are paired."""


def _final_eval(run: Path) -> float | None:
    if not (run / "final").is_dir() or not (run / "metrics.csv").is_file():
        return None
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/mean_reward")]
    return float(rows[-1]["eval/mean_reward"]) if rows else None


def final_return(run: Path, episodes: int) -> float:
    """Mean return of the run's final policy over ``episodes`` greedy episodes from ``FINAL_EVAL_SEED``."""
    from experiments.evaluate_run import evaluate_run

    return float(evaluate_run(run, episodes, FINAL_EVAL_SEED, None)["mean_return"])


def train_one(algo: str, seed: int, overrides: list[str], runs_dir: str, run_name: str,
              final_episodes: int = 0) -> dict:
    """One offline run in this (spawned) process; reuses a finished one. Scored by its own final
    evaluation, or with ``final_episodes`` by that many greedy episodes from ``FINAL_EVAL_SEED``."""
    import torch

    from experiments.manifest import load_manifest
    from experiments.train import start_run

    torch.set_num_threads(1)
    manifest, _ = load_manifest(MANIFESTS / f"pendulum_{algo}.yaml", [*overrides, f"seed={seed}"])
    manifest = manifest.model_copy(update={"name": run_name})
    run = Path(runs_dir) / run_name / f"s{seed}"
    score, wall = _final_eval(run), None
    if score is None:
        t0 = time.perf_counter()
        run = start_run(manifest, Path(runs_dir), run_id=f"s{seed}", force=True, show_progress=False)
        wall = time.perf_counter() - t0
        (run / "bench_wall_s.json").write_text(json.dumps(wall))
        score = _final_eval(run)
    elif (run / "bench_wall_s.json").is_file():
        wall = json.loads((run / "bench_wall_s.json").read_text())
    if final_episodes:
        score = final_return(run, final_episodes)
    return {"seed": seed, "score": score, "wall_s": wall}


def dataset_stem(table: str, episodes: int) -> str:
    """The dataset name of a table: ``medium`` / ``mixed`` with the recipe's 100 episodes, else
    ``mixed-500ep`` and the like."""
    return table if episodes == EPISODES else f"{table}-{episodes}ep"


def ensure_dataset(workdir: Path, name: str, episodes: int = EPISODES) -> Path:
    """``<workdir>/datasets/pendulum/<stem>-v0`` made by the recipe in datasets/pendulum.md, with
    ``episodes`` episodes (the recipe's 100 by default)."""
    from experiments.datasets import collect
    from experiments.manifest import load_manifest
    from experiments.train import start_run

    stem = dataset_stem(name, episodes)
    ds = workdir / "datasets" / "pendulum" / f"{stem}-v0"
    if (ds / "card.json").is_file():
        return ds
    policy, mix = DATASETS[name]
    runs = workdir / "runs" / "behaviour" / "pendulum-sac"
    for which in sorted({policy, "expert"}):  # the expert run is every dataset's reference (--ref-expert)
        if not (runs / which / "final").is_dir():
            print(f"training the {which} behaviour policy (SAC, {BEHAVIOUR_STEPS[which]} env steps)", flush=True)
            manifest, _ = load_manifest(MANIFESTS / "pendulum_sac.yaml",
                                        [f"train.total_steps={BEHAVIOUR_STEPS[which]}", "evaluation.every_steps=0"])
            start_run(manifest, runs.parent, run_id=which, force=True, show_progress=False)
    print(f"collecting pendulum/{stem}-v0", flush=True)
    collect("Pendulum-v1", str(runs / policy), episodes, f"pendulum/{stem}-v0", mix_text=mix,
            root=str(workdir / "datasets"), ref_expert=str(runs / "expert"))
    return ds


def _parse_sets(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        algo, sep, kv = item.partition(":")
        if not sep or algo not in ALGOS or "=" not in kv:
            raise SystemExit(f"--set {item!r}: expected ALGO:KEY=VALUE with ALGO one of {', '.join(ALGOS)}")
        out.setdefault(algo, []).append(kv)
    return out


def _parse_per_algo(flag: str, items: list[str], default: float, kind: type) -> dict[str, float]:
    """``ALGO:VALUE`` items of ``flag`` over ``default`` for every algorithm; values positive ``kind``."""
    out = dict.fromkeys(ALGOS, default)
    for item in items:
        algo, sep, v = item.partition(":")
        try:
            value = kind(v)
        except ValueError:
            value = 0
        if not sep or algo not in ALGOS or not value > 0:
            raise SystemExit(f"{flag} {item!r}: expected ALGO:{kind.__name__.upper()} > 0 with ALGO one of "
                             f"{', '.join(ALGOS)}")
        out[algo] = value
    return out


def _card(workdir: Path, name: str) -> tuple[dict, np.ndarray]:
    from rl.core.datasets import read_dataset

    ds = workdir / "datasets" / "pendulum" / f"{name}-v0"
    card = json.loads((ds / "card.json").read_text())
    return card, read_dataset(ds, f"pendulum/{name}-v0", card["sha256"]).returns_e


def _common(workdir: Path, name: str, sha: str, updates: int) -> list[str]:
    return [f"dataset.id=pendulum/{name}-v0", f"dataset.root={workdir / 'datasets'}", f"dataset.sha256={sha}",
            f"train.total_steps={updates}", f"evaluation.every_steps={updates}", "evaluation.episodes=10",
            f"checkpoint.every_steps={updates}", f"train.log_every_steps={max(1, updates // 10)}"]


def run_all(jobs: list[tuple[str, str, list[str], str, str]], seeds: list[int], n_jobs: int,
            final_episodes: int = 0) -> dict[str, list[dict]]:
    """``jobs``: (key, algo, overrides, runs_dir, run_name); every seed of each; results by key."""
    tasks = sorted(((j, s) for j in jobs for s in seeds), key=lambda t: -COST[t[0][1]])
    print(f"{len(tasks)} runs, {n_jobs} at a time", flush=True)
    t0 = time.perf_counter()
    out: dict[str, list[dict]] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
        futures = {pool.submit(train_one, algo, s, ov, rd, rn, final_episodes): key
                   for (key, algo, ov, rd, rn), s in tasks}
        for fut in as_completed(futures):
            r = fut.result()
            out.setdefault(futures[fut], []).append(r)
            wall = "reused" if r["wall_s"] is None else f"{r['wall_s']:.0f} s"
            print(f"[{time.perf_counter() - t0:5.0f} s] {futures[fut]} seed {r['seed']}: {r['score']:.1f} ({wall})",
                  flush=True)
    return {j[0]: sorted(out[j[0]], key=lambda r: r["seed"]) for j in jobs}


def _row(label: str, updates: int, rs: list[dict], rng, b_mean: float, b_lo: float, b_hi: float) -> tuple[str, tuple]:
    from experiments.stats import iqm, stratified_bootstrap_ci

    scores = np.array([r["score"] for r in rs])
    point, lo, hi = stratified_bootstrap_ci(scores[:, None], iqm, rng)
    verdict = "above" if lo > b_mean else ("overlaps" if hi >= b_mean else "below")
    walls = [r["wall_s"] for r in rs if r["wall_s"] is not None]
    wall = f"{np.mean(walls):6.0f}" if walls else "     -"
    line = (f"{label:>10} {updates:>7} {point:8.1f} [{lo:7.1f}, {hi:7.1f}] {scores.mean():8.1f}  {verdict:>8}  {wall}  "
            + " ".join(f"{x:.0f}" for x in scores))
    return line, (point, lo, hi)


def _behaviour(card: dict, returns_e: np.ndarray, rng) -> tuple[float, float, float]:
    from experiments.stats import mean, stratified_bootstrap_ci

    b = stratified_bootstrap_ci(returns_e[:, None], mean, rng)
    src = ", ".join(f"{k} {v:.1f}" for k, v in card["mean_return_by_source"].items())
    print(f"dataset {card['dataset']}: {card['episodes']} episodes, {card['steps']} steps, policy {card['policy']}, "
          f"mix {card['mix']}")
    print(f"  behaviour mean return {b[0]:.1f} [95% CI {b[1]:.1f}, {b[2]:.1f}] (bootstrap over episodes); "
          f"max {card['max_return']:.1f}, min {card['min_return']:.1f}; by source: {src}")
    print(f"  references: random {card['ref_random_return']:.1f}, behaviour policy's greedy actions "
          f"{card['ref_expert_return']:.1f} (10 episodes each)")
    print(f"  sha256 {card['sha256']}")
    return b


HEADER = f"{'algo':>10} {'updates':>7} {'IQM':>8} {'95% CI':>18} {'mean':>8}  {'vs behav':>8}  {'run s':>6}  per seed"


def main() -> None:
    from experiments.sweep import parse_seeds

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/o2o_study"))
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--updates", type=int, default=5000)
    p.add_argument("--updates-for", action="append", default=[], metavar="ALGO:N")
    p.add_argument("--mixed-updates", type=int, default=None, help="updates of every mixed-table run "
                   "(default: as in the medium table)")
    p.add_argument("--algos", nargs="+", default=["iql", "td3bc", "cql"], choices=ALGOS)
    p.add_argument("--mixed-algos", nargs="+", default=["iql", "td3bc"], choices=ALGOS)
    p.add_argument("--temperature", type=float, default=0.2, help="return weighting's temperature (schema default)")
    p.add_argument("--temperature-for", action="append", default=[], metavar="ALGO:T",
                   help="return weighting's temperature for one algorithm")
    p.add_argument("--tables", nargs="+", default=["medium", "mixed"], choices=["medium", "mixed"])
    p.add_argument("--mixed-episodes", type=int, default=EPISODES,
                   help="episodes of the mixed dataset (the recipe's 100 by default; others get their own name)")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="ALGO:KEY=VALUE")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--final-episodes", type=int, default=0,
                   help="score each run by this many greedy episodes from one fixed seed (the same start "
                        "states for every run) instead of its own 10-episode final evaluation")
    args = p.parse_args()
    seeds, sets = parse_seeds(args.seeds), _parse_sets(args.sets)
    updates = _parse_per_algo("--updates-for", args.updates_for, args.updates, int)
    temperature = _parse_per_algo("--temperature-for", args.temperature_for, args.temperature, float)
    per_table = {"medium": updates,
                 "mixed": updates if args.mixed_updates is None else dict.fromkeys(ALGOS, args.mixed_updates)}
    extra = "; ".join(f"{a}: {' '.join(v)}" for a, v in sets.items()) if sets else "none"
    print(f"seeds {args.seeds}; updates {', '.join(f'{a} {updates[a]}' for a in ALGOS)}, mixed table "
          f"{args.mixed_updates or 'same'}; overrides: {extra}", flush=True)
    episodes = {"medium": EPISODES, "mixed": args.mixed_episodes}
    stems = {table: dataset_stem(table, n) for table, n in episodes.items()}
    t0 = time.perf_counter()
    results: dict[str, dict[str, list[dict]]] = {}
    for table in args.tables:
        stem = stems[table]
        ensure_dataset(args.workdir, table, episodes[table])
        card, _ = _card(args.workdir, stem)
        jobs = []
        algos = args.algos if table == "medium" else args.mixed_algos
        for algo in algos:
            n = per_table[table][algo]
            base = [*_common(args.workdir, stem, card["sha256"], n), *sets.get(algo, [])]
            runs_dir = str(args.workdir / "runs" / f"{stem}-{n}")
            jobs.append((algo, algo, base, runs_dir, f"pendulum-{algo}"))
            if table == "mixed":
                t = temperature[algo]
                rw = ["dataset.weighting.kind=return", f"dataset.weighting.temperature={t}"]
                jobs.append((f"{algo}+rw", algo, [*base, *rw], runs_dir, f"pendulum-{algo}-rw{t:g}"))
        results[table] = run_all(jobs, seeds, args.jobs, args.final_episodes)
    print(f"\nwall {time.perf_counter() - t0:.0f} s; seeds {args.seeds}; 'vs behav': where the algorithm's IQM CI "
          "lies against the behaviour's mean return")
    for table in args.tables:
        rng = np.random.default_rng(0)
        card, returns_e = _card(args.workdir, stems[table])
        print(f"\n== {table} ==")
        b = _behaviour(card, returns_e, rng)
        print(HEADER)
        cis = {}
        for key, rs in results[table].items():
            algo = key.split("+")[0]
            line, cis[key] = _row(key, per_table[table][algo], rs, rng, *b)
            print(line)
        if table == "mixed":
            print("return weighting vs uniform sampling:")
            for algo in args.mixed_algos:
                (p0, lo0, hi0), (p1, lo1, hi1) = cis[algo], cis[f"{algo}+rw"]
                overlap = "overlap" if lo1 <= hi0 and hi1 >= lo0 else "do not overlap"
                print(f"  {algo:>6}, temperature {temperature[algo]:g}: IQM {p1:.1f} with vs {p0:.1f} without "
                      f"({p1 - p0:+.1f}); the CIs {overlap}")


if __name__ == "__main__":
    main()
