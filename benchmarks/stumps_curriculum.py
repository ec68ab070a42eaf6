"""ALP-GMM vs uniform task sampling for SAC on the Box2D stump walker: held-out return against env steps.

Trains experiments/manifests/stumps_alpgmm_sac.yaml and its uniform counterpart stumps_uniform_sac.yaml
(identical but for the teacher) for ``--steps`` env steps and ``--seeds`` seeds each, with a checkpoint
every ``--steps / --evals`` steps. Each checkpoint's policy is then evaluated on the held-out task grid
of the manifests (5 stump heights x 5 spacings, cell centres, one deterministic episode per task; see
``rl eval --tasks``). Writes, under ``--out``:

- ``results.json``: per run, the held-out mean / worst-10% return and success rate at every checkpoint;
- ``curves.png``: held-out mean and worst-10% return against env steps, mean over seeds (thin lines:
  single seeds);
- ``tasks.png``: ``rl plot --curriculum`` of both groups (where each teacher sent the walker);

and prints a table. Runs go to ``--out/runs/<manifest name>/s<seed>``; a finished run (``final/``
present, same budget) is not trained again unless ``--force``. Runs are independent processes
(``--jobs`` at a time, one torch thread each).

    python benchmarks/stumps_curriculum.py --steps 40000 --seeds 3 --jobs 2 --out /tmp/stumps_curriculum

The manifests' own budget is 2M steps (TeachMyAgent trains for 20M); a short budget only shows the
start of learning, not whether the curriculum pays off. Until its first mixture fit ALP-GMM samples
uniformly from the same ``teacher`` generator as the uniform teacher, so a pair of runs with one
seed is identical up to that fit: with few episodes (a walker that stands still runs 1600 steps per
episode) lower ``--fit-every`` or the teacher never acts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANIFESTS = {"alp_gmm": "stumps_alpgmm_sac.yaml", "uniform": "stumps_uniform_sac.yaml"}


def _overrides(teacher: str, steps: int, evals: int, learning_starts: int, fit_every: int | None) -> list[str]:
    every = max(1, steps // evals)
    out = [f"train.total_steps={steps}", f"checkpoint.every_steps={every}", f"checkpoint.keep_last={evals + 1}",
           f"train.log_every_steps={min(10_000, every)}", "evaluation.every_steps=0",
           f"agent.learning_starts={learning_starts}", f"agent.buffer_size={min(1_000_000, steps)}",
           # Checkpoints are only evaluated here, never resumed from: no replay buffer in them.
           "agent.save_buffer=false"]
    if fit_every is not None and teacher == "alp_gmm":
        out += [f"curriculum.teacher.fit_every={fit_every}", f"curriculum.teacher.fit_window={fit_every}"]
    return out


def train_and_eval(teacher: str, seed: int, steps: int, evals: int, learning_starts: int, fit_every: int | None,
                   out: str, force: bool, parent: int) -> dict:
    """Train one run (unless already finished with this budget), then evaluate every checkpoint."""
    if os.getppid() != parent:  # the benchmark was stopped: do not start queued runs as an orphan
        os._exit(1)
    from experiments.curriculum import evaluate_heldout
    from experiments.manifest import load_manifest
    from experiments.train import start_run
    from rl.core.checkpoint import list_checkpoints

    manifest, _ = load_manifest(ROOT / "experiments" / "manifests" / MANIFESTS[teacher],
                                _overrides(teacher, steps, evals, learning_starts, fit_every), seed)
    runs = Path(out) / "runs"
    run = runs / manifest.name / f"s{seed}"
    t0 = time.perf_counter()
    stored = run / "manifest.json"
    done = (run / "final").is_dir() and stored.is_file() and \
        json.loads(stored.read_text()) == json.loads(json.dumps(manifest.resolved()))
    if force or not done:
        run = start_run(manifest, runs, run_id=f"s{seed}", force=True, show_progress=False)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    points = []
    for path in list_checkpoints(run / "checkpoints"):
        step = int(path.name.split("-")[1])
        res = evaluate_heldout(run, checkpoint=step)
        points.append({"step": step, "mean_return": res["mean_return"], "worst10_return": res["worst10_return"],
                       "success_rate": res["success_rate"]})
    return {"teacher": teacher, "seed": seed, "run": str(run), "train_s": train_s,
            "eval_s": time.perf_counter() - t1, "trained": force or not done, "points": points}


def _draw_curves(results: list[dict], teachers: list[str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, key, label in zip(axes, ("mean_return", "worst10_return"),
                              ("held-out mean return", "held-out worst-10% return"), strict=True):
        for i, t in enumerate(teachers):
            color = f"C{i}"
            runs = [r for r in results if r["teacher"] == t]
            for r in runs:
                ax.plot([p["step"] for p in r["points"]], [p[key] for p in r["points"]], color=color, alpha=0.35,
                        linewidth=0.8)
            steps, mean = _mean_curve(runs, key)
            ax.plot(steps, mean, color=color, linewidth=2.0, marker="o", markersize=3,
                    label=f"{t} (mean of {len(runs)} seeds)")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False)
    fig.suptitle("SAC on StumpWalker: held-out 5x5 grid (height x spacing), 1 episode per task")
    fig.savefig(path, dpi=120)


def _mean_curve(runs: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Mean over seeds at the checkpoint steps every run has."""
    common = sorted(set.intersection(*[{p["step"] for p in r["points"]} for r in runs])) if runs else []
    return common, [float(np.mean([p[key] for r in runs for p in r["points"] if p["step"] == s])) for s in common]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40_000, help="env steps per run (default: 40000)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per teacher (0 .. N-1; default: 3)")
    p.add_argument("--evals", type=int, default=5, help="checkpoints evaluated on the held-out grid per run")
    p.add_argument("--learning-starts", type=int, help="SAC random steps first (default: min(10000, steps/8))")
    p.add_argument("--fit-every", type=int, help="ALP-GMM: refit every N episodes on the last N (default: the "
                                                 "manifest's 250, which a short budget may not reach)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default: 2)")
    p.add_argument("--out", type=Path, default=Path("/tmp/stumps_curriculum"))
    p.add_argument("--teachers", default=",".join(MANIFESTS), help="comma-separated: alp_gmm,uniform")
    p.add_argument("--force", action="store_true", help="train again even where a finished run exists")
    args = p.parse_args(argv)
    teachers = args.teachers.split(",")
    unknown = [t for t in teachers if t not in MANIFESTS]
    if unknown or args.steps < args.evals or args.seeds < 1 or args.evals < 1 or args.jobs < 1:
        p.error(f"--teachers from {', '.join(MANIFESTS)}; --steps >= --evals >= 1; --seeds, --jobs >= 1 "
                f"(got unknown teachers {unknown})" if unknown else "--steps >= --evals >= 1; --seeds, --jobs >= 1")
    learning_starts = args.learning_starts if args.learning_starts is not None else min(10_000, args.steps // 8)

    jobs = [(t, s) for s in range(args.seeds) for t in teachers]
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(train_and_eval, t, s, args.steps, args.evals, learning_starts, args.fit_every,
                               str(args.out), args.force, os.getpid()) for t, s in jobs]
        results = []
        for fut in futures:
            r = fut.result()
            results.append(r)
            last = r["points"][-1]
            print(f"  {r['teacher']:<8} seed {r['seed']}: train {r['train_s']:.0f}s, eval {r['eval_s']:.0f}s, "
                  f"final held-out return {last['mean_return']:.1f}", flush=True)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    wall = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    _draw_curves(results, teachers, args.out / "curves.png")
    from experiments.plot_curriculum import plot_curriculum

    groups = sorted({str(Path(r["run"]).parent) for r in results})
    plot_curriculum(groups, args.out / "tasks.png")

    from experiments.stats import iqm, stratified_bootstrap_ci

    rng = np.random.default_rng(0)
    steps = _mean_curve(results, "mean_return")[0]
    fit = f"ALP-GMM fit_every = fit_window = {args.fit_every or 'manifest (250)'}"
    print(f"\nSAC on StumpWalker, {args.steps} env steps, {args.seeds} seeds per teacher, learning_starts "
          f"{learning_starts}, {fit}; wall {wall / 60:.1f} min with --jobs {args.jobs}")
    print("held-out mean return (25 tasks x 1 episode), mean ± std over seeds, at env step:")
    print(f"  {'teacher':<9}" + "".join(f"{s:>16,d}" for s in steps))
    for t in teachers:
        runs = [r for r in results if r["teacher"] == t]
        cells = []
        for s in steps:
            v = [p["mean_return"] for r in runs for p in r["points"] if p["step"] == s]
            cells.append(f"{np.mean(v):>9.1f} ± {np.std(v):<4.1f}")
        print(f"  {t:<9}" + "".join(f"{c:>16}" for c in cells))
    print("final checkpoint: IQM over seeds [95% stratified-bootstrap CI]")
    for t in teachers:
        runs = [r for r in results if r["teacher"] == t]
        row = []
        for key in ("mean_return", "worst10_return", "success_rate"):
            v = np.array([r["points"][-1][key] for r in runs], dtype=float)
            point, lo, hi = stratified_bootstrap_ci(v[:, None], iqm, rng, reps=2000)
            row.append(f"{key} {point:.1f} [{lo:.1f}, {hi:.1f}]" if key != "success_rate"
                       else f"{key} {point:.2f} [{lo:.2f}, {hi:.2f}]")
        print(f"  {t:<9} " + "   ".join(row))
    print(f"wrote {args.out / 'results.json'}, {args.out / 'curves.png'}, {args.out / 'tasks.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
