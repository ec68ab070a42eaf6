"""Hopper-v5 "medium": the behaviour policy, its datasets, offline IQL and IQL offline-to-online, by hand (not CI).

Issue 4's Hopper line, from one command (everything under ``--workdir``; finished steps are reused)::

    python benchmarks/hopper_o2o.py --workdir /tmp/hopper_o2o [--behaviour-steps 80000] [--seed 0]

1. **behaviour**: ``hopper_sac.yaml`` for ``--behaviour-steps`` env steps, one checkpoint at the end
   (it holds the replay buffer). On seed 0 the SAC curve passes ~1,000-1,300 between 70k and 90k
   steps (``benchmarks/offpolicy_learning.py --which hopper``), about a third of an expert's ~3,200:
   D4RL's "medium".
2. **datasets** (``experiments/manifests/datasets/hopper.md``): ``hopper/medium-v0``, 50 episodes of
   the behaviour policy's stochastic actions, and ``hopper/medium-replay-v0``, the behaviour run's
   replay buffer (``rl collect --replay``). Both take D4RL's Hopper expert reference (3234.3) as the
   100 of normalised scores: an expert of our own would take ~1M SAC steps (hours on this machine).
3. **offline IQL**: ``hopper_iql.yaml`` on ``hopper/medium-v0`` for ``--offline-updates`` updates.
4. **offline-to-online IQL**: ``hopper_iql_to_online.yaml`` as it is (20,000 offline updates, then
   30,000 env steps with the offline share of each batch annealed from 0.5 to 0).

It prints the behaviour policy's dataset return, then each run's evaluation curve (return and
normalised score, 10 deterministic episodes per point) and the O2O metrics from ``o2o.json``.
Measured figures are in the closing notes of the issue; one core per training process.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

MANIFESTS = Path(__file__).resolve().parents[1] / "experiments" / "manifests"
EXPERT_REF = 3234.3
"""D4RL's expert reference return for Hopper (``REF_MAX_SCORE['hopper']`` in d4rl/infos.py)."""


def _done(run: Path) -> bool:
    return (run / "final").is_dir()


def _train(manifest_name: str, overrides: list[str], runs_dir: Path, run_id: str) -> Path:
    from experiments.manifest import load_manifest
    from experiments.train import start_run

    manifest, _ = load_manifest(MANIFESTS / manifest_name, overrides)
    run = runs_dir / manifest.name / run_id
    if _done(run):
        return run
    t0 = time.perf_counter()
    print(f"training {manifest_name} {' '.join(overrides)}", flush=True)
    run = start_run(manifest, runs_dir, run_id=run_id, force=True, show_progress=False, overrides=overrides)
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return run


def _curve(run: Path) -> list[tuple[int, float, str]]:
    with open(run / "metrics.csv") as f:
        return [(int(float(r["step"])), float(r["eval/mean_reward"]), r.get("eval/normalized_score", ""))
                for r in csv.DictReader(f) if r.get("eval/mean_reward")]


def _print_curve(title: str, run: Path) -> None:
    print(f"== {title} ({run})")
    for step, ret, norm in _curve(run):
        score = f"{float(norm):6.1f}" if norm else "     -"
        print(f"  step {step:>7}: return {ret:8.1f}  normalised {score}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hopper_o2o"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--behaviour-steps", type=int, default=80_000)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--offline-updates", type=int, default=50_000)
    args = p.parse_args()

    from experiments.datasets import collect
    from experiments.replay_dataset import collect_replay

    runs = args.workdir / "runs"
    root = args.workdir / "datasets"
    behaviour = _train("hopper_sac.yaml", [f"train.total_steps={args.behaviour_steps}",
                                          f"checkpoint.every_steps={args.behaviour_steps}",
                                          "evaluation.every_steps=10000", f"seed={args.seed}"],
                       runs / "behaviour", "medium")
    cards = {}
    for name, make in (
        ("medium", lambda: collect("Hopper-v5", str(behaviour), args.episodes, "hopper/medium-v0", root=str(root),
                                   ref_expert=str(EXPERT_REF))),
        ("medium-replay", lambda: collect_replay("Hopper-v5", str(behaviour), "hopper/medium-replay-v0",
                                                 root=str(root), ref_expert=str(EXPERT_REF))),
    ):
        card_path = root / "hopper" / f"{name}-v0" / "card.json"
        if not card_path.is_file():
            print(f"collecting hopper/{name}-v0", flush=True)
            make()
        cards[name] = json.loads(card_path.read_text())
    data = ["dataset.id=hopper/medium-v0", f"dataset.root={root}", f"dataset.sha256={cards['medium']['sha256']}",
            f"seed={args.seed}"]
    offline = _train("hopper_iql.yaml", [*data, f"train.total_steps={args.offline_updates}"], runs, f"s{args.seed}")
    o2o = _train("hopper_iql_to_online.yaml", data, runs, f"s{args.seed}")

    _print_curve("behaviour SAC", behaviour)
    for name, card in cards.items():
        print(f"hopper/{name}-v0: {card['episodes']} episodes, {card['steps']} steps, mean return "
              f"{card['mean_return']:.1f} (max {card['max_return']:.1f}); references random "
              f"{card['ref_random_return']:.1f}, expert {card['ref_expert_return']:.1f}")
    _print_curve("offline IQL on hopper/medium-v0", offline)
    _print_curve("IQL offline -> online", o2o)
    if (o2o / "o2o.json").is_file():
        print("o2o.json:", json.dumps(json.loads((o2o / "o2o.json").read_text()), indent=None))


if __name__ == "__main__":
    main()
