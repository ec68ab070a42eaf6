"""Multi-objective learning: weight-conditioned DQN on Deep Sea Treasure finds most of the true
front's convex hull after 10k env steps (about three minutes on 2 cores).

Measured (seed 0, experiments/manifests/dst_dqn.yaml at 10k steps, its learning rate decaying to 0
over those 10k): 8 of the 9 hull points, HV 394.0 of the true front's 401.8 (6 and 373.2 with the
earlier manifest's 16 random weight features at utility coefficient 0.5); at the manifest's 60k
steps seeds 0-2 reach all 9 (benchmarks/mo_dst.py). The thresholds leave one hull point and ~3% of
HV for platform variation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.manifest import load_manifest
from experiments.mo import evaluate_pareto
from experiments.train import start_run

pytestmark = [pytest.mark.learning, pytest.mark.filterwarnings("ignore::UserWarning")]

MANIFEST = Path(__file__).resolve().parents[2] / "experiments" / "manifests" / "dst_dqn.yaml"


def test_dst_conditioned_dqn_recovers_most_of_the_convex_hull(tmp_path):
    manifest, _ = load_manifest(MANIFEST, ["train.total_steps=10000", "checkpoint.every_steps=10000",
                                           "evaluation.every_steps=0"], seed=0)
    run = start_run(manifest, tmp_path, "s0", show_progress=False)
    res = evaluate_pareto(run)
    assert sum(res["hull_recovered"]) >= 7, res["front"]
    assert res["hypervolume"] >= 0.95 * res["true_hypervolume"]
