"""Uni-O4 offline → online on the suite's Pendulum-v1 "medium" dataset, by hand (not CI).

    nice -n 10 python benchmarks/unio4_pendulum.py --dataset /tmp/o2o_study/datasets/pendulum/medium-v0 \
        [--seeds 0 1] [--workdir /tmp/unio4_bench] [--offline-updates 10000] [--online-steps 20000]

``--dataset`` is a dataset directory (the one holding ``data/`` and ``card.json``, whose sha256 is
used) or a Minari id under ``--root``. Each seed runs ``experiments/manifests/pendulum_unio4.yaml``
(offline updates, then online PPO steps) through ``start_run`` and prints the evaluation returns
(10 greedy episodes each): after behaviour cloning (the end of ``pretrain_updates``), at the end of
the offline phase (= at the switch), the lowest online evaluation (the dip, from ``o2o.json``) and
after the online steps, beside the dataset's mean return.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from experiments.manifest import Manifest, load_manifest
from experiments.train import start_run

MANIFESTS = Path(__file__).resolve().parents[1] / "experiments" / "manifests"


def _dataset(arg: str, root: str | None) -> tuple[Path, dict]:
    from experiments.datasets import dataset_root
    from rl.core.datasets import dataset_sha256

    path = Path(arg) if Path(arg).is_dir() else dataset_root(root) / arg
    card = json.loads((path / "card.json").read_text()) if (path / "card.json").is_file() else {}
    return path, {"path": str(path), "sha256": card.get("sha256") or dataset_sha256(path)}


def run_seed(workdir: Path, dataset: dict, seed: int, offline: int, online: int) -> dict:
    """Train one seed; returns its evaluation returns at the points the module docstring names."""
    _, data = load_manifest(MANIFESTS / "pendulum_unio4.yaml", seed=seed)
    data = {**data, "dataset": dataset, "phases": [{"offline": {"updates": offline}}, {"online": {"steps": online}}]}
    data["train"] = {**data["train"], "total_steps": offline + online}
    manifest = Manifest.model_validate(data)
    t0 = time.perf_counter()
    run = start_run(manifest, workdir / "runs", run_id=f"seed{seed}", force=True, show_progress=False)
    seconds = time.perf_counter() - t0
    with open(run / "metrics.csv") as f:
        evals = [(int(r["step"]), float(r["eval/mean_reward"])) for r in csv.DictReader(f) if r["eval/mean_reward"]]
    sw = json.loads((run / "o2o.json").read_text())["switches"][0]
    pretrain = manifest.agent.pretrain_updates
    bc = [r for s, r in evals if s <= pretrain]
    return {"seed": seed, "bc": bc[-1] if bc else None, "switch": sw["return_at_switch"], "dip": sw["dip_return"],
            "dip_online_step": sw["dip_online_step"], "final": sw["phase_final_return"], "seconds": seconds,
            "evals": evals}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="dataset directory or Minari id (see --root)")
    p.add_argument("--root", default=None, help="where dataset ids are looked up")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/unio4_bench"))
    p.add_argument("--offline-updates", type=int, default=10000)
    p.add_argument("--online-steps", type=int, default=20000)
    args = p.parse_args()
    path, dataset = _dataset(args.dataset, args.root)
    card = json.loads((path / "card.json").read_text()) if (path / "card.json").is_file() else {}
    print(f"dataset {path}: mean return {card.get('mean_return', float('nan')):.1f}, sha256 {dataset['sha256']}")
    print(f"{'seed':>4} {'after BC':>9} {'switch':>9} {'dip':>9} {'dip at':>7} {'final':>9} {'time':>6}")
    for seed in args.seeds:
        r = run_seed(args.workdir, dataset, seed, args.offline_updates, args.online_steps)
        fmt = lambda x: f"{x:9.1f}" if x is not None else f"{'-':>9}"  # noqa: E731
        print(f"{seed:>4} {fmt(r['bc'])} {fmt(r['switch'])} {fmt(r['dip'])} {r['dip_online_step'] or 0:>7} "
              f"{fmt(r['final'])} {r['seconds']:5.0f}s", flush=True)
        print("     evals (step, return): " + ", ".join(f"({s}, {v:.0f})" for s, v in r["evals"]), flush=True)


if __name__ == "__main__":
    main()
