"""experiments.plotting on hand-written run directories (no training).

The fixture group ``cartpole-ppo`` has three seeds whose reward is ``0.01 * step + seed``, so linear
interpolation onto any grid is exact:

* seed 0 logs every 1000 steps up to 10000 (CRLF line ends, as ``csv.writer`` writes them);
* seed 1 logs every 1500 steps from 500 to 8000 (the shortest run);
* seed 2 logs every 1000 steps up to 10000, but the row for 10000 was cut by a kill.

``eval/mean_reward`` is logged on every other row (empty cells elsewhere).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from experiments.plotting import PlotError, align_runs, discover_runs, plot_curves, read_metrics

HEADER = ["step", "rollout/ep_rew_mean", "rollout/ep_len_mean", "eval/mean_reward", "time/fps"]
MANIFEST = {
    "schema_version": 1, "name": "cartpole-ppo", "seed": 0, "threads": 1,
    "env": {"id": "CartPole-v1", "kwargs": {}, "num_envs": 4, "wrappers": []},
    "agent": {"algo": "ppo", "learning_rate": 0.0003, "n_steps": 128},
    "train": {"total_steps": 10000},
}


def _row(step: int, seed: int, evaluated: bool) -> str:
    reward = 0.01 * step + seed
    evaluation = repr(reward) if evaluated else ""
    return f"{step},{reward!r},{step // 100},{evaluation},1234.5"


def write_run(group: Path, seed: int, steps, *, manifest: dict | None = None, eol: str = "\n",
              tail: str = "") -> Path:
    run_dir = group / f"run-s{seed}"
    run_dir.mkdir(parents=True)
    data = copy.deepcopy(manifest or MANIFEST)
    data["seed"] = seed
    (run_dir / "manifest.json").write_text(json.dumps(data, indent=2))
    lines = [",".join(HEADER)] + [_row(s, seed, i % 2 == 0) for i, s in enumerate(steps)]
    (run_dir / "metrics.csv").write_bytes((eol.join(lines) + eol + tail).encode())
    return run_dir


@pytest.fixture
def group(tmp_path) -> Path:
    g = tmp_path / "runs" / "cartpole-ppo"
    write_run(g, 0, range(0, 10001, 1000), eol="\r\n")
    write_run(g, 1, range(500, 8001, 1500))
    write_run(g, 2, range(0, 9001, 1000), tail="10000,102.0,100,102.0,12")  # fps cut mid-number
    return g


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_read_metrics_empty_cells_and_truncated_last_row(group):
    cols = read_metrics(group / "run-s2")
    assert list(cols) == HEADER
    np.testing.assert_array_equal(cols["step"], np.arange(0, 9001, 1000))  # the cut 10000 row is gone
    assert all(c.dtype == np.float64 for c in cols.values())
    evaluation = cols["eval/mean_reward"]
    np.testing.assert_array_equal(np.isnan(evaluation), cols["step"] % 2000 != 0)
    np.testing.assert_allclose(evaluation[::2], 0.01 * np.arange(0, 9001, 2000) + 2)
    assert len(read_metrics(group / "run-s0")["step"]) == 11  # CRLF rows all complete


def test_read_metrics_drops_a_malformed_last_line_even_with_newline(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("step,a\n0,1.0\n1000,\n2000,3.\x00\n")
    cols = read_metrics(run_dir)
    np.testing.assert_array_equal(cols["step"], [0, 1000])
    assert np.isnan(cols["a"][1])


def test_read_metrics_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(PlotError, match=r"nowhere[/\\]metrics\.csv: no metrics\.csv"):
        read_metrics(tmp_path / "nowhere")
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("step,a\n0,1.0\n1000\n2000,3.0\n")
    with pytest.raises(PlotError, match=r"metrics\.csv:3: malformed row"):
        read_metrics(run_dir)
    (run_dir / "metrics.csv").write_text("a,step\n1,0\n")
    with pytest.raises(PlotError, match="must start with 'step'"):
        read_metrics(run_dir)


def test_discover_runs_groups_by_manifest_name(group, tmp_path):
    other = write_run(tmp_path / "runs" / "elsewhere", 0, [0, 1000],
                      manifest={**MANIFEST, "name": "cartpole-dqn"})
    found = discover_runs([group, group / "run-s1", other])  # run-s1 twice: counted once
    assert list(found) == ["cartpole-dqn", "cartpole-ppo"]
    assert [p.name for p in found["cartpole-ppo"]] == ["run-s0", "run-s1", "run-s2"]
    assert found["cartpole-dqn"] == [other.resolve()]
    with pytest.raises(PlotError, match="no run directories here"):
        discover_runs([tmp_path / "runs"])  # the runs root holds groups, not runs
    with pytest.raises(PlotError, match="not found"):
        discover_runs([tmp_path / "missing"])


def test_align_runs_on_env_steps_with_unequal_lengths(group):
    runs = sorted(group.iterdir())
    x_steps, values_rx = align_runs(runs, "rollout/ep_rew_mean")
    # Only the range every seed covers: seed 1 starts at 500 and stops at 8000.
    assert x_steps[0] == 500 and x_steps[-1] == 8000
    assert {1000, 2000, 3500, 8000} <= set(x_steps.tolist())  # union of logged steps
    assert values_rx.shape == (3, len(x_steps))
    expected_rx = 0.01 * x_steps[None, :] + np.arange(3)[:, None]
    np.testing.assert_allclose(values_rx, expected_rx, rtol=1e-12)


def test_align_runs_uses_only_logged_points_and_caps_the_grid(group):
    runs = sorted(group.iterdir())
    x_steps, values_rx = align_runs(runs, "eval/mean_reward")
    # eval logged at 0, 2000, ... on seeds 0/2 and at 500, 3500, 6500 on seed 1.
    assert x_steps[0] == 500 and x_steps[-1] == 6500
    np.testing.assert_allclose(values_rx, 0.01 * x_steps[None, :] + np.arange(3)[:, None], rtol=1e-12)
    x_steps, values_rx = align_runs(runs, "rollout/ep_rew_mean", max_points=4)
    np.testing.assert_allclose(x_steps, np.linspace(500, 8000, 4))


def test_align_runs_names_an_unknown_metric(group):
    with pytest.raises(PlotError, match=r"run-s0[/\\]metrics\.csv: no column 'rollout/ep_rew'.*ep_rew_mean"):
        align_runs([group / "run-s0"], "rollout/ep_rew")


def test_plot_curves_writes_png_and_svg_and_never_touches_runs(group, tmp_path):
    before = snapshot(tmp_path / "runs")
    png = plot_curves([group], out=tmp_path / "plots" / "curves.png", reps=200)
    svg = plot_curves([group], metric="eval/mean_reward", out=tmp_path / "curves.svg", statistic="mean",
                      reps=200)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5000
    text = svg.read_text()
    assert "<svg" in text and "environment steps" in text and "cartpole-ppo (3 seeds)" in text
    assert snapshot(tmp_path / "runs") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.svg", "plots", "runs"]  # no temp left


def test_plot_curves_is_deterministic_in_its_seed(group, tmp_path):
    a = plot_curves([group], out=tmp_path / "a.svg", rng_seed=3, reps=200).read_bytes()
    b = plot_curves([group], out=tmp_path / "b.svg", rng_seed=3, reps=200).read_bytes()
    c = plot_curves([group], out=tmp_path / "c.svg", rng_seed=4, reps=200).read_bytes()
    assert a == b
    assert a != c


def test_plot_curves_single_seed_draws_a_line(tmp_path):
    run_dir = write_run(tmp_path / "runs" / "cartpole-ppo", 7, range(0, 5001, 1000))
    svg = plot_curves([run_dir], out=tmp_path / "one.svg").read_text()
    assert "cartpole-ppo (1 seed)" in svg


def test_mixed_manifests_are_refused_naming_the_field(group, tmp_path):
    changed = copy.deepcopy(MANIFEST)
    changed["agent"]["learning_rate"] = 0.001
    write_run(group, 3, range(0, 10001, 1000), manifest=changed)
    with pytest.raises(PlotError, match=r"differ in agent\.learning_rate \(0\.0003 vs 0\.001\)"):
        plot_curves([group], out=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert len(discover_runs([group], allow_mixed=True)["cartpole-ppo"]) == 4
    plot_curves([group], out=tmp_path / "x.png", allow_mixed=True, reps=100)
    assert (tmp_path / "x.png").stat().st_size > 0


def test_a_field_present_in_only_one_manifest_is_a_difference(group):
    extra = copy.deepcopy(MANIFEST)
    extra["env"]["max_episode_steps"] = 200
    write_run(group, 3, [0, 1000], manifest=extra)
    with pytest.raises(PlotError, match=r"differ in env\.max_episode_steps \('<missing>' vs 200\)"):
        discover_runs([group])


def test_a_repeated_seed_is_refused(group):
    dup = group / "run-s0-again"
    dup.mkdir()
    for name in ("manifest.json", "metrics.csv"):
        (dup / name).write_bytes((group / "run-s0" / name).read_bytes())
    with pytest.raises(PlotError, match="both have seed 0"):
        discover_runs([group])


def test_out_inside_a_run_dir_or_with_another_suffix_is_refused(group, tmp_path):
    before = snapshot(tmp_path / "runs")
    with pytest.raises(PlotError, match="inside run directory"):
        plot_curves([group], out=group / "run-s1" / "curves.png")
    with pytest.raises(PlotError, match="inside run directory"):
        plot_curves([group / "run-s1"], out=group / "run-s1" / "sub" / "curves.svg")
    with pytest.raises(PlotError, match=r"unsupported suffix '\.jpg'; use \.png or \.svg"):
        plot_curves([group], out=tmp_path / "curves.jpg")
    with pytest.raises(PlotError, match="statistic='median'"):
        plot_curves([group], out=tmp_path / "curves.png", statistic="median")
    assert snapshot(tmp_path / "runs") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
