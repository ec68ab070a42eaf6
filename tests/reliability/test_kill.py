"""P1-P3: a run SIGKILLed at a random moment or inside a checkpoint save resumes bit-identically.

CI runs a subset (7 random-kill trials, up to 2 kills each, and 10 hook trials);
``benchmarks/soak_kill.py`` runs the full matrix (every hook x every kind, and many random trials).
Kill moments are drawn from ``metrics.csv`` row counts, never from wall-clock sleeps. The random
draws come from ``RLSUITE_RELIABILITY_SEED`` (default: new each session, printed on failure).
"""

from __future__ import annotations

import os
import time
import zlib

import numpy as np
import pytest

from rl.core.checkpoint import latest_verified, list_checkpoints, load_checkpoint
from tests.reliability.harness import (
    HOOKS,
    HOOKS_BEFORE_PUBLISH,
    KINDS,
    OFFLINE_PHASE_SWITCH,
    TRIALS,
    kill_trial,
    reference_rows,
)

SEED = int(os.environ.get("RLSUITE_RELIABILITY_SEED", time.time_ns() % 2**32))
RANDOM_TRIALS = [(kind, i) for kind in ("ppo", "dqn", "curriculum") for i in range(2)] + [("offline", 0)]
HOOK_TRIALS = [  # every hook once, spread over the kinds, at a mid-run save that also prunes
    ("ppo", "between_components", None), ("dqn", "after_tmp_write", None), ("curriculum", "before_fsync", None),
    ("ppo", "before_replace", None), ("dqn", "after_replace_before_dir_fsync", None),
    ("curriculum", "before_prune", None),
    ("dqn", "after_replace_before_dir_fsync", "final"),  # published final checkpoint: resume only saves final/
    # offline-to-online (phase switch at step 500): killed inside the save at 400, in the offline phase, it
    # resumes from 200; killed inside the save at 600 (online), it resumes from 400: both replay the switch
    ("offline", "before_replace", 400), ("offline", "between_components", None),
    # inside the save of final/ (after the final checkpoint): the resume removes the staged copy, saves it again
    ("ppo", "final_before_replace", "final"),
]
assert set(HOOKS) <= {h for _, h, _ in HOOK_TRIALS}


@pytest.mark.parametrize(("kind", "i"), RANDOM_TRIALS)
def test_random_sigkill_then_resume_is_bit_identical(zygote, reference, tmp_path, kind, i):
    ref = reference(kind)
    rng = np.random.default_rng([SEED, zlib.crc32(kind.encode()), i])
    trial = kill_trial(zygote, KINDS[kind], tmp_path / "runs", "killed", ref, rng, reference_rows(ref),
                       max_kills=2)
    TRIALS.append(trial)
    assert trial.kills >= 1, trial
    assert trial.identical, f"RLSUITE_RELIABILITY_SEED={SEED}: {trial}"


@pytest.mark.parametrize(("kind", "hook", "where"), HOOK_TRIALS)
def test_sigkill_inside_a_checkpoint_save_then_resume_is_bit_identical(zygote, reference, tmp_path, kind, hook,
                                                                        where):
    k = KINDS[kind]
    step = k.checkpoints[-1] if where == "final" else where if isinstance(where, int) else k.fault_step
    published = hook not in HOOKS_BEFORE_PUBLISH  # final_* hooks: the final checkpoint is published
    staged_final = hook.startswith("final_") and hook != "final_after_replace"
    previous = k.checkpoints[k.checkpoints.index(step) - 1]
    seen = {}

    def on_kill(run, n):
        root = run / "checkpoints"
        found, skipped = latest_verified(root)
        seen["newest"], seen["skipped"] = found.step, skipped
        seen["phase"] = found.state["loop"].get("phase", {}).get("index")
        seen["entries"] = sorted(p.name for p in root.iterdir())
        seen["all_verify"] = [load_checkpoint(p).step for p in list_checkpoints(root)]
        seen["final_staging"] = [p.name for p in run.iterdir() if p.name.startswith(".tmp-final-")]

    ref = reference(kind)
    trial = kill_trial(zygote, k, tmp_path / "runs", "killed", ref, np.random.default_rng(0), reference_rows(ref),
                       hook=(hook, step), on_kill=on_kill)
    TRIALS.append(trial)
    assert trial.kills == 1 and trial.identical, trial
    # The state the kill left: the save is all or nothing, and nothing broken is visible.
    assert seen["skipped"] == [], seen
    assert seen["newest"] == (step if published else previous), seen
    assert all(isinstance(s, int) for s in seen["all_verify"])
    staging = [e for e in seen["entries"] if e.startswith(".tmp-")]
    assert bool(staging) == (not published), seen  # leftovers of an unpublished save, cleaned by the resume
    if hook == "before_prune":  # killed before pruning: the oldest checkpoint is still there
        assert len(seen["all_verify"]) == 3, seen
    if kind == "offline":  # the resume starts in the offline phase and crosses the switch to online
        assert seen["phase"] == 0 and seen["newest"] < OFFLINE_PHASE_SWITCH < k.checkpoints[-1], seen
    assert bool(seen["final_staging"]) == staged_final, seen  # a staged final/, never a half-written one
    assert trial.skipped_reports == 0
