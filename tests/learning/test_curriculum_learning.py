"""A curriculum beats uniform task sampling on the sparse-reward PointGoal family (~15 s).

PPO, seed 0, 50k env steps each: a linear distance schedule (near goals first) reaches >= 80%
success on the held-out 5x5 grid, uniform sampling of the same space stays below 50%
(benchmarks/curriculum_goal.py measures this over 5 seeds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.curriculum import evaluate_heldout
from experiments.manifest import load_manifest
from experiments.train import start_run

pytestmark = pytest.mark.learning

MANIFEST = Path(__file__).resolve().parents[2] / "experiments" / "manifests" / "goal_uniform_ppo.yaml"
BUDGET = ["train.total_steps=50000", "evaluation.every_steps=0", "checkpoint.every_steps=50000"]


def _heldout_success(tmp_path: Path, teacher: list[str]) -> float:
    manifest, _ = load_manifest(MANIFEST, overrides=BUDGET + teacher)
    run = start_run(manifest, tmp_path / "runs", run_id=teacher[0].split("=")[1], show_progress=False)
    return evaluate_heldout(run)["success_rate"]


def test_linear_schedule_beats_uniform_on_point_goal(tmp_path):
    schedule = ["curriculum.teacher.kind=linear_schedule", "curriculum.teacher.over_steps=30000",
                "curriculum.teacher.start.distance=[0.0, 0.1]", "curriculum.teacher.end.distance=[0.0, 1.0]"]
    scheduled = _heldout_success(tmp_path, schedule)
    uniform = _heldout_success(tmp_path, ["curriculum.teacher.kind=uniform"])
    assert scheduled >= 0.8, scheduled
    assert uniform < 0.5, uniform
