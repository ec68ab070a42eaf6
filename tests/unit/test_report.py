"""experiments.report on hand-written run directories (no training).

Group ``good`` has five seeds whose final ``eval/mean_reward`` is ``100 + 10 * seed``; group ``bad``
has four seeds at ``10 * seed``. Rewards grow linearly with the step, so values at any step are known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from experiments.report import ReportError, group_scores, write_report

HEADER = ["step", "rollout/ep_rew_mean", "time/fps", "eval/mean_reward", "o2o/offline_fraction"]
MANIFEST = {"schema_version": 1, "name": "good", "seed": 0, "threads": 1,
            "env": {"id": "CartPole-v1", "kwargs": {}, "num_envs": 4, "wrappers": []},
            "agent": {"algo": "ppo", "learning_rate": 0.0003}, "train": {"total_steps": 1000}}


def write_run(root: Path, name: str, seed: int, final: float, last_step: int = 1000, tail: str = "",
              extra: dict | None = None, finished: bool = True) -> Path:
    run = root / name / f"s{seed}"
    run.mkdir(parents=True)
    manifest = {**MANIFEST, "name": name, "seed": seed, **(extra or {})}
    (run / "manifest.json").write_text(json.dumps(manifest))
    rows = [",".join(HEADER)]
    for step in range(100, last_step + 1, 100):
        value = final * step / 1000
        evaluation = repr(value) if step % 200 == 0 else ""
        rows.append(f"{step},{value!r},999.0,{evaluation},0.5")
    (run / "metrics.csv").write_text("\n".join(rows) + "\n" + tail)
    if finished:
        (run / "final").mkdir()
    return run


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for seed in range(5):
        write_run(root, "good", seed, 100.0 + 10 * seed, tail="1100,9" if seed == 0 else "")  # s0: row cut by a kill
    for seed in range(4):
        write_run(root, "bad", seed, 10.0 * seed, extra={"agent": {"algo": "ppo", "learning_rate": 0.1}})
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_group_scores_take_the_last_value_at_the_common_final_step(tmp_path):
    root = tmp_path / "runs"
    runs = [write_run(root, "g", 0, 100.0), write_run(root, "g", 1, 100.0, last_step=600, finished=False)]
    g = group_scores("g", runs, "rollout/ep_rew_mean")
    assert g.step == 600 and g.unfinished == 1
    np.testing.assert_allclose(g.scores_r, [60.0, 60.0])
    g = group_scores("g", runs, "eval/mean_reward")  # eval logged every 200 steps: both at 600
    np.testing.assert_allclose(g.scores_r, [60.0, 60.0])
    assert group_scores("g", runs, "nope") is None


def test_report_tables_agree_with_scipy_and_files_sit_beside_it(runs, tmp_path):
    before = snapshot(runs)
    out = write_report([runs / "good", runs / "bad"], tmp_path / "out" / "report.md")
    text = out.read_text()
    assert snapshot(runs) == before  # nothing written into the runs
    good = np.array([100.0, 110, 120, 130, 140])
    assert f"| {scipy.stats.trim_mean(good, 0.25):.4g} |" in text  # IQM of the good group
    assert "| good | 5 | 1000 |" in text and "| bad | 4 | 1000 |" in text
    p = scipy.stats.mannwhitneyu(np.array([0.0, 10, 20, 30]), good).statistic / 20
    assert f"| bad | good | {p:.3f} |" in text and p == 0.0
    assert "`agent.learning_rate` | `0.1` | `0.0003` |" in text  # how the groups differ
    assert "## `o2o/offline_fraction`" in text  # an extension metric the runs have
    for png in ("report-eval_mean_reward.png", "report-rollout_ep_rew_mean.png", "report-profiles.png"):
        assert f"]({png})" in text
        assert (out.parent / png).read_bytes().startswith(b"\x89PNG")


def test_report_is_deterministic(runs, tmp_path):
    a = write_report([runs / "good", runs / "bad"], tmp_path / "a.md", ["eval/mean_reward"])
    b = write_report([runs / "good", runs / "bad"], tmp_path / "b.md", ["eval/mean_reward"])
    assert a.read_text().replace("(a-", "(b-") == b.read_text()
    assert (tmp_path / "a-profiles.png").read_bytes() == (tmp_path / "b-profiles.png").read_bytes()


def test_report_refuses_mixed_groups_unless_allowed(runs, tmp_path):
    write_run(runs, "good", 9, 50.0, extra={"threads": 2})
    with pytest.raises(ReportError, match="threads.*--allow-mixed"):
        write_report([runs / "good"], tmp_path / "r.md")
    text = write_report([runs / "good"], tmp_path / "r.md", ["eval/mean_reward"], allow_mixed=True).read_text()
    assert "| good | 6 |" in text


def test_report_refuses_to_write_into_a_run_or_a_non_markdown_file(runs):
    with pytest.raises(ReportError, match="inside run directory"):
        write_report([runs / "good"], runs / "good" / "s1" / "report.md")
    with pytest.raises(ReportError, match=r"\.md"):
        write_report([runs / "good"], runs / "report.html")


def test_a_metric_some_runs_never_logged_is_marked_not_plotted(runs, tmp_path):
    metrics = ["rollout/ep_rew_mean", "eval/missing"]
    text = write_report([runs / "good", runs / "bad"], tmp_path / "r.md", metrics).read_text()
    assert "| bad | 4 | not logged by every run |" in text
    assert "r-eval_missing.png" not in text


def test_setup_differences_line_up_sb3_kwargs_with_suite_fields(tmp_path):
    """A suite PPO against sb3.PPO with the same hyperparameters differs only in ``algo``; the fields
    one side leaves to its library's default are listed per group, not as rows of ``<unset>``."""
    from experiments.report import _differences

    ours = {"seed": 0, "name": "a", "agent": {"algo": "ppo", "n_steps": 32, "gamma": 0.98, "vf_coef": 0.5}}
    sb3 = {"seed": 0, "name": "b", "agent": {"algo": "sb3.PPO", "policy": "MlpPolicy",
                                              "kwargs": {"n_steps": 32, "gamma": 0.99}}}
    groups = {}
    for name, manifest in (("a", ours), ("b", sb3)):
        run = tmp_path / name / "s0"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps(manifest))
        groups[name] = [run]
    lines = _differences(groups)
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == ["| `agent.algo` | `ppo` | `sb3.PPO` |", "| `agent.gamma` | `0.98` | `0.99` |"]
    assert "- `a`: `vf_coef=0.5`" in lines and "- `b`: `policy=MlpPolicy`" in lines
