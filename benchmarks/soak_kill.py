"""Random-kill soak: many SIGKILL + ``rl train --resume`` trials, each compared bit for bit with an
uninterrupted run (issue 8, acceptance: >= 50 trials across the kinds of run, 0 lost, all identical).

Run by hand (it takes minutes; CI runs the subset in tests/reliability/test_kill.py)::

    python benchmarks/soak_kill.py                          # 5 kinds: every hook, final-save hooks, random kills
    python benchmarks/soak_kill.py --random 10 --max-kills 4 --kinds ppo,sac --seed 7

Trials per kind: every checkpoint-writing hook (``RLSUITE_FAULT``) at a mid-run save that prunes,
the publish-boundary hooks of the final checkpoint and of ``final/`` (for the offline-to-online
kind also every hook at a save inside its offline phase, so the resume crosses the phase switch),
and ``--random`` trials in which the run is SIGKILLed when ``metrics.csv`` reaches a random row
count, resumed, killed again (up to ``--max-kills``), and resumed to the end. A trial is *lost* if
a resume fails; *identical* if the final policy, the final checkpoint (weights, optimizer and
generator state, replay buffer, state.json with counters and teacher state) and metrics.csv
(wall-clock columns aside) equal the reference's. Exit code 1 unless every trial is identical. The
run kinds and the harness are those of tests/reliability/harness.py; the offline-to-online kind's
dataset is collected into the work directory (never committed).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.harness import (  # noqa: E402
    HOOKS,
    KINDS,
    OFFLINE_PHASE_SWITCH,
    Zygote,
    kill_trial,
    reference_rows,
    rl,
    set_workspace,
    summary,
    train_args,
)

FINAL_HOOKS = ("before_replace", "after_replace_before_dir_fsync", "final_before_replace", "final_after_replace")
"""At the last step: the publish boundary of the final checkpoint, then of ``final/`` (``save_final_policy``)."""


def plan(kinds: list[str], random_per_kind: int) -> list[tuple[str, tuple[str, int] | None]]:
    trials = []
    for kind in kinds:
        k = KINDS[kind]
        trials += [(kind, (hook, k.fault_step)) for hook in HOOKS]
        trials += [(kind, (hook, k.checkpoints[-1])) for hook in FINAL_HOOKS]
        if kind == "offline":  # a save inside the offline phase that has an earlier checkpoint before it
            offline_step = max(s for s in k.checkpoints[1:] if s < OFFLINE_PHASE_SWITCH)
            trials += [(kind, (hook, offline_step)) for hook in HOOKS]
        trials += [(kind, None)] * random_per_kind
    return trials


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", default="ppo,dqn,sac,curriculum,offline", help=f"comma-separated, from {sorted(KINDS)}")
    p.add_argument("--random", type=int, default=6, help="random-kill trials per kind (default 6)")
    p.add_argument("--max-kills", type=int, default=3, help="SIGKILLs per random trial (default 3)")
    p.add_argument("--seed", type=int, default=None, help="seed of the kill moments (default: from the clock)")
    p.add_argument("--workdir", type=Path, help="keep runs here (default: a temporary directory, removed)")
    args = p.parse_args(argv)
    kinds = args.kinds.split(",")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        p.error(f"unknown kinds {sorted(unknown)}")
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    rng = np.random.default_rng(seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rlsuite-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    set_workspace(work / "workspace")
    (work / "workspace").mkdir(exist_ok=True)
    trials = plan(kinds, args.random)
    print(f"soak: {len(trials)} trials over {', '.join(kinds)}; seed {seed}; work dir {work}", flush=True)
    t0 = time.perf_counter()
    refs, done = {}, []
    zyg = Zygote(work / "zygote").start()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID` stops the forked runs too
    try:
        for kind in kinds:  # references: real `python -m experiments.cli` processes, uninterrupted
            res = rl(*train_args(KINDS[kind], work / "ref", "ref"))
            if res.returncode != 0:
                print(f"reference {kind} failed:\n{res.stderr}")
                return 2
            refs[kind] = work / "ref" / KINDS[kind].group / "ref"
        for n, (kind, hook) in enumerate(trials, 1):
            ref = refs[kind]
            t = time.perf_counter()
            trial = kill_trial(zyg, KINDS[kind], work / "trials", f"t{n:03d}", ref, rng, reference_rows(ref),
                               max_kills=args.max_kills, hook=hook)
            done.append(trial)
            what = f"{hook[0]}@{hook[1]}" if hook else "random"
            verdict = "identical" if trial.identical else f"LOST: {trial.error}" if trial.lost else \
                f"DIFFERS: {trial.difference}"
            print(f"[{n:3d}/{len(trials)}] {kind:10s} {what:36s} kills={trial.kills} resumes={trial.resumes} "
                  f"restarts={trial.restarts} {time.perf_counter() - t:5.1f}s  {verdict}", flush=True)
            if trial.identical:
                shutil.rmtree(work / "trials" / KINDS[kind].group / f"t{n:03d}", ignore_errors=True)
    finally:
        zyg.close()
        if args.workdir is None and all(t.identical for t in done):
            shutil.rmtree(work, ignore_errors=True)
    print(f"soak: {summary(done)}; {time.perf_counter() - t0:.0f} s; seed {seed}")
    return 0 if done and all(t.identical for t in done) else 1


if __name__ == "__main__":
    sys.exit(main())
