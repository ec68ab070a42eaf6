"""The manifest's curriculum section and the run extension that owns the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envs.curriculum import CurriculumError
from experiments.curriculum import CurriculumExtension, check_curriculum, heldout_tasks
from experiments.extensions import build_extensions
from experiments.manifest import ManifestError, load_manifest
from experiments.session import build_envs
from rl.core.rollout import RolloutCollector
from rl.core.seeding import SeedPlan

MANIFESTS = Path(__file__).resolve().parents[2] / "experiments" / "manifests"
CURRICULUM_MANIFESTS = ["cartpole_curriculum_ppo", "goal_alpgmm_ppo", "goal_uniform_ppo", "mazes_plr_ppo",
                        "stumps_alpgmm_sac", "stumps_uniform_sac"]


@pytest.mark.parametrize("name", CURRICULUM_MANIFESTS)
def test_shipped_curriculum_manifests_validate_against_their_env(name):
    if name.startswith("stumps"):
        pytest.importorskip("Box2D")
    manifest, _ = load_manifest(MANIFESTS / f"{name}.yaml")
    assert check_curriculum(manifest) is not None
    assert heldout_tasks(manifest.curriculum)


def _goal(tmp_path: Path, curriculum: str, env_id: str = "rlsuite/PointGoal-v0") -> Path:
    text = (MANIFESTS / "goal_uniform_ppo.yaml").read_text().split("curriculum:")[0]
    text = text.replace("rlsuite/PointGoal-v0", env_id)
    path = tmp_path / "m.yaml"
    path.write_text(text + "curriculum:\n" + curriculum)
    return path


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ("  space: {box: {distance: [0.0, 1.0]}}\n  teacher: {kind: alpgmm}\n",
         r"curriculum\.teacher: .*unknown teacher 'alpgmm'; choose one of uniform, linear_schedule"),
        ("  space: {box: {distance: [0.0, 1.0]}}\n  teacher: {kind: alp_gmm, fit_evry: 3}\n",
         r"curriculum\.teacher\.alp_gmm\.fit_evry: unknown field"),
        ("  space: {box: {distance: [0.0, 1.0]}, level: 3}\n", r"curriculum\.space\.level: unknown field"),
        ("  space: {levels: -2}\n", r"curriculum\.space\.levels: "),
        ("  space: {box: {distance: [0.0, 1.0]}}\n  teacher: {kind: alp_gmm, random_prob: 1.5}\n",
         r"curriculum\.teacher\.alp_gmm\.random_prob"),
    ],
)
def test_schema_errors_are_manifest_errors_naming_the_field(tmp_path, section, match):
    with pytest.raises(ManifestError, match=match):
        load_manifest(_goal(tmp_path, section))


@pytest.mark.parametrize(
    ("section", "env_id", "match"),
    [
        ("  space: {box: {speed: [0.0, 1.0]}}\n", "rlsuite/PointGoal-v0",
         r"curriculum\.space\.box\.speed: the env has no task parameter 'speed'"),
        ("  space: {box: {distance: [0.0, 2.0]}}\n", "rlsuite/PointGoal-v0",
         r"curriculum\.space\.box\.distance: \[0\.0, 2\.0\] is outside the env's range"),
        ("  space: {box: {distance: [0.5, 0.5]}}\n", "rlsuite/PointGoal-v0",
         r"curriculum\.space\.box\.distance: degenerate"),
        ("  space: {box: {}}\n", "rlsuite/PointGoal-v0", r"curriculum\.space: empty task space"),
        ("  space: {box: {distance: [0.0, 1.0]}}\n  teacher: {kind: plr}\n", "rlsuite/PointGoal-v0",
         "plr needs a task space of discrete levels"),
        ("  space: {levels: 10}\n  teacher: {kind: alp_gmm}\n", "rlsuite/GridMaze-v0",
         "alp_gmm needs a task space of box parameters"),
        ("  space: {box: {distance: [0.0, 1.0]}}\n", "Pendulum-v1", "env.id: PendulumEnv has no task space"),
    ],
)
def test_semantic_errors_are_curriculum_errors_naming_the_field(tmp_path, section, env_id, match):
    manifest, _ = load_manifest(_goal(tmp_path, section, env_id))
    with pytest.raises(CurriculumError, match=match):
        check_curriculum(manifest)


def _ext_and_envs(tmp_path, teacher: str, num_envs: int = 4):
    manifest, _ = load_manifest(_goal(tmp_path, "  space: {box: {distance: [0.0, 0.2], angle: [-3.0, 3.0]}}\n"
                                      f"  teacher: {teacher}\n"), overrides=[f"env.num_envs={num_envs}"])
    exts = build_extensions(manifest, SeedPlan(manifest.seed))
    return exts, build_envs(manifest, num_envs, exts)


def test_extension_gives_each_sub_env_its_own_task_and_logs_columns(tmp_path):
    exts, envs = _ext_and_envs(tmp_path, "{kind: uniform}")
    (ext,) = exts
    assert isinstance(ext, CurriculumExtension)
    assert ext.columns == ["curriculum/episodes", "curriculum/mean_return", "curriculum/success_rate",
                           "curriculum/mean_distance", "curriculum/std_distance", "curriculum/mean_angle",
                           "curriculum/std_angle"]
    collector = RolloutCollector(envs, 1)
    collector.reset([1, 2, 3, 4])
    tasks = envs.unwrapped.get_attr("task")
    assert len({t["distance"] for t in tasks}) == 4
    rng = np.random.default_rng(0)
    for _ in range(300):
        collector.step(rng.uniform(-1, 1, (4, 2)).astype(np.float32))
    row = ext.metrics()
    assert row["curriculum/episodes"] >= 12 and 0.0 <= row["curriculum/mean_distance"] <= 0.2
    assert 0.0 < row["curriculum/success_rate"] <= 1.0
    assert ext.metrics() == {"curriculum/episodes": 0.0}  # a row covers the episodes since the previous one
    envs.close()


def test_extension_state_is_json_and_restores_the_teacher(tmp_path):
    exts, envs = _ext_and_envs(tmp_path, "{kind: alp_gmm, fit_every: 5, fit_window: 10, k_max: 3}")
    collector = RolloutCollector(envs, 1)
    collector.reset([1, 2, 3, 4])
    rng = np.random.default_rng(0)
    for _ in range(250):
        collector.step(rng.uniform(-1, 1, (4, 2)).astype(np.float32))
    state = json.loads(json.dumps(exts[0].state(), allow_nan=False))
    assert exts[0].teacher.stats()["components"] >= 2
    other, envs2 = _ext_and_envs(tmp_path, "{kind: alp_gmm, fit_every: 5, fit_window: 10, k_max: 3}")
    other[0].load(state)
    assert [exts[0].next_task(i) for i in range(20)] == [other[0].next_task(i) for i in range(20)]
    envs.close()
    envs2.close()
