"""Offline and offline-to-online on the suite's Pendulum-v1 "medium" (or "mixed") dataset, by hand (not CI).

    python benchmarks/offline_pendulum.py --workdir /tmp/o2o [--seeds 0 1] [--updates 10000]
        [--offline-updates N] [--online-steps N] [--skip-o2o | --skip-offline]
        [--o2o iql|calql|calql_mixed] [--o2o-set KEY=VALUE ...] [--final-episodes 100]

Steps: train the behaviour policy (SAC, 2.5k env steps, as in experiments/manifests/datasets/pendulum.md)
unless ``<workdir>/runs/pendulum-sac/medium`` exists; collect ``pendulum/medium-v0`` (stochastic actions,
100 episodes) unless present; train IQL and TD3+BC offline; then ``--o2o`` offline → online and SAC
from scratch with the same online budget. Prints the behaviour policy's mean return (from the card)
beside each final eval return (the runs' own, 10 episodes), then the paired scores: the final
offline-to-online and SAC policies on the same ``--final-episodes`` start states (seed 1000). Pendulum's
returns swing by ~100 with the start state, so 10 episodes cannot rank two policies near the optimum.

The offline-to-online run takes its manifest's phases; ``--offline-updates`` and ``--online-steps``
replace their lengths. ``--o2o calql_mixed`` pretrains on ``pendulum/mixed-v0`` instead (made as
offline_agents.py makes it: 10 expert episodes, 90 random), with return-weighted trajectory sampling.

Cal-QL on the mixed set, then online (``pendulum_calql_mixed_to_online.yaml``: 5,000 offline updates,
20,000 online steps, the critics' step before the actor's online). Each seed ran
``rl train experiments/manifests/pendulum_calql_mixed_to_online.yaml --set dataset.root=R --set
dataset.sha256=H --set seed=S`` (the manifest's checkpoints every 5,000 steps, which restart the envs)
and SAC from scratch ran as this script runs it; both final policies were scored on the 100 paired
start states. Seeds 0-4, Cal-QL → online against SAC: -146.3 / -148.9, -148.9 / -152.8, -148.3 /
-148.7, -148.4 / -152.0, -149.0 / -147.3; IQM -148.5 [95% CI -149.0, -147.0] against -149.9 [-152.3,
-147.8]: ahead on four seeds, the CIs overlap. At the switch -155.0, -136.1, -178.1, -130.9 and
-216.6 (10 episodes); the lowest online evaluation -189.3, -199.4, -212.8, -167.0 and -180.9, 2,500,
5,000, 15,000, 15,000 and 10,000 online steps on; back to the switch's return 5,000, 7,500, 17,500
and 20,000 steps on (seed 4 never fell below it). Pendulum's 10-episode evaluations swing by tens,
so the dips are mostly start-state noise: on the 100 paired start states seed 5's run scored -177.7
at the switch and -151.5, -147.2, -147.9, -148.5 at 5,000, 10,000, 15,000 and 20,000 online steps.
Chosen on held-out seeds 5 and 6 (SAC -148.0 / -148.8): with weighting -148.5 / -149.6, without
-148.8 / -148.3 (parity, not a win, there). Uni-O4 on the same data (``python
benchmarks/unio4_pendulum.py --dataset <workdir>/datasets/pendulum/mixed-v0``), seed 0: -1182.4 after
behaviour cloning, -234.7 at the switch, a dip to -446.1 8,000 online steps on, -147.6 at the end
(10 episodes each).

On the medium set the gap stays. That machine's medium recipe gave a weaker set than the one below
(mean -869.3, max -574.3: no swing-up), and on it the shipped Cal-QL manifest scored -151.5 / -160.4
on seeds 5 / 6 against SAC's -148.0 / -148.8; the critics' step first online, branched at the switch,
-151.9 / -153.5; that with batches of 512 -154.5 / -156.3; that with α put back to 1 at the switch
-151.4 / -155.6. Per start state the deficit sits in the swing-ups from the bottom (start states SAC
scores -200 to -300 on: -9 and -12 on average, seeds 5 and 6), the policy inheriting the medium
behaviour's slower swing-up; near the top the two match.

Measured before, 5,000 offline updates then 20,000 online steps (the Cal-QL manifest's phases; the IQL
lines ran ``--o2o iql --offline-updates 5000``, its manifest has 10,000):

* IQL → online (seed 0, 10 eval episodes): -193.9 against SAC from scratch at -159.5; on the 100 paired
  start states -203.6 against -151.4. IQL's online phase plateaus near -190 whatever its knobs:
  ``agent.beta=10`` gave -193.6, ``agent.beta=10 agent.expectile=0.9`` -188.4 and
  ``agent.learning_rate=1e-3`` -193.4 (10 episodes).
* Cal-QL → online, ``--o2o calql --skip-offline --seeds S`` for S = 1 to 4 (one process per seed, two at
  a time, ~17 min apiece on the 2-core machine, nearly all of it the [256, 256] critics' offline
  updates). The manifest fine-tunes with SAC's update (``cql_alpha_online: 0``) at step size 1e-3. On
  the 100 paired start states, O2O against SAC from scratch for seeds 0-4: -152.4 / -151.4, -154.4 /
  -151.4, -156.1 / -148.5, -154.4 / -151.0, -161.7 / -147.4; IQM -155.0 [95% CI -159.8, -153.1]
  against -150.3 [-151.4, -147.8]. Both sit near Pendulum's optimum, and Cal-QL → online is 1-14
  behind on every seed, losing on the swing-ups from the bottom. Seed 0 ran the same configuration as
  manifest overrides before the manifest took it. At the switch -453.8, -410.2, -622.0, -578.1 and
  -448.6 (10 episodes); no later evaluation fell below that (no dip), and the first, 2,500 online
  steps on, was already -198.2, -102.9, -145.9, -87.7 and -168.5.
* What the Cal-QL manifest's settings gave, seed 0, on the 100 paired start states: with the regulariser
  kept online (``cql_alpha_online`` unset), [128, 128] critics and step size 3e-4, -195.5 (10 episodes;
  ~24 min); ``cql_alpha_online=0`` at [128, 128] -166.6, with step size 1e-3 -159.2 (seed 1 -160.3),
  with ``backup_entropy=true`` too -159.4; at the manifest's [256, 256] -152.4.
* Two online-phase levers, tried on held-out seeds 5 and 6 (``--o2o calql --skip-offline --seeds S
  --o2o-set checkpoint.every_steps=5000 --o2o-set checkpoint.keep_last=10``, then each run copied at
  its step-5000 checkpoint, the switch, with the lever written into its ``manifest.json``, and
  resumed). On the 100 paired start states, seed 5 / seed 6: SAC from scratch -147.7 / -147.8; the
  manifest's settings -159.5 / -153.7; no offline data online (``offline_fraction: 0.0``) -161.8 /
  -165.1; two gradient steps per env step online (``agent.gradient_steps=2``) -156.8 / -154.7. Neither
  closes the gap, so neither was run on seeds 0-4. Nor does leaving the state normaliser at identity
  instead of fitting it to the medium data (a scratch patch of ``fit_obs_normalizer``, whole runs):
  -156.0 / -156.4.
* More held-out probes, seeds 5 / 6 on the 100 paired start states (SAC from scratch -147.7 / -147.8,
  the manifest -159.5 / -153.7). Branched at the switch: the step sizes annealed linearly from 1e-3 to
  0 over the online phase (``lr_policy: redecay`` with linear ``learning_rate`` and
  ``actor_learning_rate``) -153.1 / -162.7; the offline share held at 0.5 (RLPD's symmetric sampling)
  -153.4 / -160.5; 2,000 online steps with the pretrained policy before the first online update
  (``agent.learning_starts=2000``) -154.9 / -156.4, and with no offline data online as well (WSRL's
  recipe) -157.8 / -162.7; a fresh actor with the pretrained critics (a scratch edit of the switch
  checkpoint) -152.6 / -155.7; shrink-and-perturb of actor and critics (0.8 pretrained + 0.2 a fresh
  initialisation) -154.7 / -153.4. Whole runs: a shorter offline phase, 1,000 updates -150.6 / -154.6
  and 2,000 -152.7 / -156.8; the Cal-QL agent online from scratch (one online phase, no offline share)
  -148.5 / -153.4, and with ``agent.orthogonal_init=false agent.backup_entropy=true`` -150.0 / -150.7.
  None reaches SAC on both seeds. The manifest's run plateaus by 5,000 online steps (-156.6 / -158.3
  there, -155.4 / -155.0 at 10,000, -157.5 / -153.0 at 15,000). On seed 5 it trails SAC on every one
  of the 100 start states, by 11.8 on average: its final policy holds the pendulum 0.23 rad from
  upright against a steady torque of -1.16, where SAC's holds within 0.05 rad.
* A gentler regulariser offline, ``agent.cql_alpha=1`` instead of 10 (whole runs, seeds 5 / 6): the
  policy at the switch is far better (-162.4 / -203.7 against -400 to -620, 10 episodes), but the
  final policies score -155.3 / -155.6 on the 100 paired start states, no closer to SAC's -147.7 / -147.8.
  Branched at the switch with the entropy coefficient put back to SAC's starting 1.0 (it was 0.47):
  -153.7 / -169.7. Pretrained on ``medium-replay`` instead (the medium run's own replay buffer, 13
  episodes, mean return -1260.9; whole runs): -150.1 / -152.3, from -728.5 / -834.4 at the switch.
* A lead, not yet a change: the Cal-QL agent takes its actor step against the critics from before
  their step (CORL's order), SAC after it (SB3's). Online from scratch with SB3-like init and the
  entropy in the backup, a scratch patch putting the critic step first scored -147.9 / -149.7 against
  -150.0 / -150.7 in CORL's order and SAC's -147.7 / -147.8 (two seeds: within the noise). The
  manifest's whole offline-to-online run with that patch: -152.3 / -154.4, against -159.5 / -153.7
  as shipped; closer, still short of SAC on both seeds.
* Two more whole-run probes on held-out seeds 5 / 6 (the 100 paired start states), each with the critic
  step first. Layer norm in the critics (``Linear -> LayerNorm -> ReLU`` per hidden layer, a learned
  gain and bias per critic, RLPD's critic; a scratch patch of ``TwinQ``): a better policy at the switch
  (-291.2 / -219.2, 10 episodes) but an unstable online phase, whose evaluations swung between -121
  and -332, and final policies at -185.6 / -182.4, far behind. SAC's online recipe in full (the entropy
  in the backup, ``agent.backup_entropy=true``, and PyTorch's default initialisation instead of the
  orthogonal one, ``agent.orthogonal_init=false``, offline too): -153.9 / -156.0, no closer than the
  critic-first order alone.
* Where the deficit comes from: three branches of the manifest's runs at the switch (seeds 5 / 6,
  step-5000 checkpoints edited, critic step first online, 100 paired start states). Fresh critics and
  targets, trained alone for the first 2,000 online updates while the pretrained actor and α are held:
  -155.4 / -153.8. Everything fresh (actor, critics, α back to 1.0, optimiser moments zeroed), so only
  the setting is kept (the state normaliser fitted to the dataset, the offline share, the Cal-QL
  agent's recipe): -152.3 / -151.4; the same with no offline data online: -150.5 / -150.5. So the
  pretrained weights cost a few points, the offline share a point or two, and the agent's own recipe
  (CORL's initialisation, no entropy in the backup, no random-action warm-up, the fitted normaliser)
  two or three more against SAC's -147.7 / -147.8: no single lever closes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from offline_agents import ensure_dataset, final_return  # a sibling script: benchmarks/ is sys.path[0] when run

from experiments.manifest import Manifest, load_manifest
from experiments.train import start_run

MANIFESTS = Path(__file__).resolve().parents[1] / "experiments" / "manifests"


def _run(workdir: Path, name: str, run_id: str, overrides: list[str],
         phases: list | None = None) -> tuple[list[dict], Path]:
    manifest, data = load_manifest(MANIFESTS / f"{name}.yaml", overrides)
    if phases is not None:  # --set cannot write a list of mappings
        manifest = Manifest.model_validate({**data, "phases": phases})
    t0 = time.perf_counter()
    run = start_run(manifest, workdir / "runs", run_id=run_id, force=True, show_progress=False)
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/mean_reward")]
    print(f"  {name} {run_id}: final eval {float(rows[-1]['eval/mean_reward']):.1f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows, run



def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", type=Path, default=Path("/tmp/o2o"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--updates", type=int, default=10000)
    p.add_argument("--offline-updates", type=int, default=None,
                   help="offline updates of the offline-to-online run (default: its manifest's)")
    p.add_argument("--online-steps", type=int, default=None,
                   help="online env steps of the offline-to-online run and of SAC from scratch (default: the "
                        "offline-to-online manifest's)")
    p.add_argument("--skip-o2o", action="store_true", help="only the offline IQL and TD3+BC runs")
    p.add_argument("--skip-offline", action="store_true", help="only the offline-to-online and SAC runs")
    p.add_argument("--o2o", choices=["iql", "calql", "calql_mixed"], default="iql",
                   help="the offline-to-online manifest: pendulum_<o2o>_to_online.yaml; calql_mixed pretrains "
                        "on pendulum/mixed-v0 (made as offline_agents.py makes it), the others on medium-v0")
    p.add_argument("--o2o-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override of the offline-to-online manifest")
    p.add_argument("--final-episodes", type=int, default=100,
                   help="episodes of the paired evaluation of the final offline-to-online and SAC policies")
    args = p.parse_args()
    w = args.workdir
    root = w / "datasets"
    behaviour = w / "runs" / "pendulum-sac" / "medium"
    if not (behaviour / "final").is_dir():
        _run(w, "pendulum_sac", "medium", ["train.total_steps=2500", "evaluation.every_steps=0"])
    ds = root / "pendulum" / "medium-v0"
    if not (ds / "card.json").is_file():
        from experiments.datasets import collect

        collect("Pendulum-v1", str(behaviour), 100, "pendulum/medium-v0", root=str(root))
    card = _card(ds)
    data = _dataset_sets(root, card)
    o2o_data = data
    if args.o2o == "calql_mixed" and not args.skip_o2o:
        o2o_data = _dataset_sets(root, _card(ensure_dataset(w, "mixed")))
    results: dict[str, list[float]] = {}
    for seed in args.seeds:
        for algo in () if args.skip_offline else ("iql", "td3bc"):
            rows, _ = _run(w, f"pendulum_{algo}", f"s{seed}",
                           [*data, f"seed={seed}", f"train.total_steps={args.updates}",
                            f"evaluation.every_steps={args.updates}", f"checkpoint.every_steps={args.updates}"])
            results.setdefault(algo, []).append(float(rows[-1]["eval/mean_reward"]))
        if args.skip_o2o:
            continue
        phases = _phases(args.o2o, args.offline_updates, args.online_steps)
        offline_updates, online_steps = phases[0]["offline"]["updates"], phases[1]["online"]["steps"]
        total = offline_updates + online_steps
        rows, o2o_run = _run(w, f"pendulum_{args.o2o}_to_online", f"s{seed}",
                             [*o2o_data, f"seed={seed}", f"train.total_steps={total}", "evaluation.every_steps=2500",
                              f"checkpoint.every_steps={total}", *args.o2o_set], phases)
        results.setdefault(f"{args.o2o}->online", []).append(float(rows[-1]["eval/mean_reward"]))
        _dip(rows, offline_updates)
        rows, sac_run = _run(w, "pendulum_sac", f"scratch-s{seed}",
                             [f"seed={seed}", f"train.total_steps={online_steps}", "evaluation.every_steps=2500",
                              f"checkpoint.every_steps={online_steps}"])
        results.setdefault("sac scratch", []).append(float(rows[-1]["eval/mean_reward"]))
        paired = [final_return(run, args.final_episodes) for run in (o2o_run, sac_run)]
        results.setdefault(f"{args.o2o}->online, {args.final_episodes} ep", []).append(paired[0])
        results.setdefault(f"sac scratch, {args.final_episodes} ep", []).append(paired[1])
    print(f"\nbehaviour policy mean return (dataset): {card['mean_return']:.1f}")
    for k, v in results.items():
        print(f"{k:>12}: final eval {', '.join(f'{x:.1f}' for x in v)}")


def _card(ds: Path) -> dict:
    card = json.loads((ds / "card.json").read_text())
    print(f"dataset {card['dataset']}: {card['episodes']} episodes, behaviour mean return {card['mean_return']:.1f} "
          f"(max {card['max_return']:.1f}; refs random {card['ref_random_return']:.1f}, "
          f"expert {card['ref_expert_return']:.1f})", flush=True)
    return card


def _dataset_sets(root: Path, card: dict) -> list[str]:
    """Manifest overrides naming the carded dataset under ``root``, and 10-episode evaluations."""
    return [f"dataset.root={root}", f"dataset.sha256={card['sha256']}", "evaluation.episodes=10"]


def _phases(o2o: str, offline: int | None, online: int | None) -> list[dict]:
    """The offline-to-online manifest's two phases, with their lengths replaced where given."""
    manifest, _ = load_manifest(MANIFESTS / f"pendulum_{o2o}_to_online.yaml")
    off, on = (p.model_dump(exclude_none=True) for p in manifest.phases)
    if offline is not None:
        off["offline"]["updates"] = offline
    if online is not None:
        on["online"]["steps"] = online
    return [off, on]


def _dip(rows: list[dict], switch: int) -> None:
    at_switch = [float(r["eval/mean_reward"]) for r in rows if int(r["step"]) <= switch]
    after = [(int(r["step"]), float(r["eval/mean_reward"])) for r in rows if int(r["step"]) > switch]
    if at_switch and after:
        low = min(v for _, v in after)
        rec = next((s - switch for s, v in after if v >= at_switch[-1]), None)
        print(f"    return at switch {at_switch[-1]:.1f}, dip {low - at_switch[-1]:.1f}, "
              f"online steps to recover: {rec}", flush=True)


if __name__ == "__main__":
    main()
