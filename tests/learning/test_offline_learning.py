"""Offline agents learn from a dataset the test writes itself (nothing is committed).

Measured on the 2-core CPU machine (1 torch thread, other jobs running): BC on 20 episodes of a
hand-written Pendulum expert (energy pumping, then PD near the top; -155 mean return on them), 2000
updates: eval -163 in 7 s.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import experiments
from experiments.manifest import load_manifest
from experiments.train import start_run
from rl.core.datasets import dataset_sha256

MANIFESTS = Path(experiments.__file__).parent / "manifests"


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    """A fixed deterministic swing-up controller for Pendulum-v1 (θ = 0 upright, θ̈ = 15 sin θ + 3u).

    Near the top (cos θ > 0.85) a PD law holds it; elsewhere full torque along θ̇ pumps the energy
    ½θ̇² + 15 cos θ towards the upright value 15 (and against θ̇ when above it).
    """
    c, s, w = (float(x) for x in obs)
    if c > 0.85:
        u = -10.0 * np.arctan2(s, c) - 2.0 * w
    else:
        u = 2.0 * np.sign(w) if 0.5 * w * w + 15.0 * (c - 1.0) < 0 else -2.0 * np.sign(w)
    return np.clip(np.array([u], np.float32), -2.0, 2.0)


def _expert_dataset(root: Path, episodes: int) -> tuple[Path, float]:
    import minari

    env = minari.DataCollector(gym.make("Pendulum-v1"))
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=1000 + ep)
        ret, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(pendulum_expert(obs))
            ret, done = ret + float(reward), terminated or truncated
        returns.append(ret)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        with pytest.warns(UserWarning):  # minari's nudges for author, permalink, ...
            env.create_dataset("test/pendulum-expert-v0", algorithm_name="pendulum_expert")
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    return root / "test" / "pendulum-expert-v0", float(np.mean(returns))


@pytest.mark.learning
def test_bc_clones_a_deterministic_expert_to_near_its_return(tmp_path):
    dataset, expert_return = _expert_dataset(tmp_path / "datasets", episodes=20)
    assert expert_return > -250, f"the hand-written expert itself scored {expert_return:.1f}"
    manifest, _ = load_manifest(MANIFESTS / "pendulum_bc.yaml", [
        "dataset.id=null", f"dataset.path={dataset}", f"dataset.sha256={dataset_sha256(dataset)}",
        "train.total_steps=2000", "evaluation.every_steps=0", "evaluation.episodes=10",
        "checkpoint.every_steps=100000", "agent.net_arch=[64,64]", "agent.learning_rate=1e-3"])
    run = start_run(manifest, tmp_path / "runs", run_id="learn", show_progress=False)
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["eval/mean_reward"]]
    ret = float(rows[-1]["eval/mean_reward"])
    # Random and zero torque score about -1200 on Pendulum-v1.
    assert ret >= expert_return - 100, f"BC eval mean {ret:.1f}, expert {expert_return:.1f} (threshold expert - 100)"
