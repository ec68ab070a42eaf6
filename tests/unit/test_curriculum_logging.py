"""The sampled-task record of curriculum runs: TensorBoard histograms (read back with tensorboard's
EventAccumulator), ``curriculum.csv`` and its truncation on resume, and ``rl plot --curriculum``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envs.curriculum import TaskSpace
from experiments.cli import main as rl_main
from experiments.curriculum import (
    CurriculumExtension,
    CurriculumLog,
    CurriculumSpec,
    histogram_edges,
    record_columns,
)
from experiments.plot_curriculum import density, plot_curriculum, read_task_record
from experiments.plotting import PlotError
from rl.core.metrics import MetricsFileError, TensorBoardSink, read_csv_rows
from rl.core.seeding import SeedPlan


def _histograms(logdir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={HISTOGRAMS: 0})
    acc.Reload()
    return {tag: acc.Histograms(tag) for tag in acc.Tags()[HISTOGRAMS]}


# -- TensorBoardSink.histogram ------------------------------------------------------------------------
def test_histogram_bucket_counts_read_back(tmp_path):
    values = np.array([0.05, 0.15, 0.15, 0.5, 0.95, 1.0, np.nan, -0.3, 1.7])  # NaN dropped, outliers clipped
    edges = np.linspace(0.0, 1.0, 11)
    sink = TensorBoardSink(tmp_path)
    sink.histogram(7, "curriculum/task/x", values, edges)
    sink.histogram(8, "curriculum/task/x", [], edges)  # nothing to write
    sink.close()
    (event,) = _histograms(tmp_path)["curriculum/task/x"]
    h = event.histogram_value
    finite = values[np.isfinite(values)]
    assert event.step == 7
    assert list(h.bucket_limit) == pytest.approx(edges.tolist())
    # One empty bucket up to edges[0], then numpy's counts of the clipped values.
    assert list(h.bucket) == [0, 2, 2, 0, 0, 0, 1, 0, 0, 0, 3]
    assert h.num == len(finite) and h.min == -0.3 and h.max == 1.7
    assert h.sum == pytest.approx(finite.sum()) and h.sum_squares == pytest.approx(finite @ finite)


def test_histogram_rejects_bad_edges(tmp_path):
    sink = TensorBoardSink(tmp_path)
    with pytest.raises(ValueError, match="'t': edges must be at least two increasing"):
        sink.histogram(1, "t", [1.0], [0.0, 0.0])
    sink.close()


def test_histograms_after_the_resume_step_are_purged(tmp_path):
    edges = [0.0, 1.0, 2.0]
    sink = TensorBoardSink(tmp_path)
    for step in (10, 20, 30):
        sink.histogram(step, "h", [0.5] * (step // 10), edges)
    sink.close()
    resumed = TensorBoardSink(tmp_path, purge_step=21)  # as the session does after a checkpoint at 20
    resumed.histogram(30, "h", [1.5], edges)
    resumed.close()
    events = _histograms(tmp_path)["h"]
    assert [e.step for e in events] == [10, 20, 30]
    assert list(events[-1].histogram_value.bucket) == [0, 0, 1]


# -- CurriculumLog: curriculum.csv and histograms ------------------------------------------------------
def _extension(space: dict) -> CurriculumExtension:
    spec = CurriculumSpec.model_validate({"space": space, "teacher": {"kind": "uniform"}})
    return CurriculumExtension(spec, spec.task_space(), SeedPlan(0))


def _episodes(ext: CurriculumExtension, n: int, start: int = 0) -> list[dict]:
    tasks = []
    for i in range(start, start + n):
        task = ext.next_task(i % 2)
        ext.episode_end(i % 2, task, float(i), i % 3 == 0, 10 + i)
        tasks.append(task)
    return tasks


def test_record_rows_and_task_histograms(tmp_path):
    ext = _extension({"box": {"x": [0.0, 2.0]}, "levels": 5})
    log = ext.log_sinks(tmp_path, None, TensorBoardSink(tmp_path / "tb"))[0]
    tasks = _episodes(ext, 6)
    metrics = ext.metrics()  # the session's row first, then the sinks write it
    assert metrics["curriculum/episodes"] == 6.0
    log.write(500, metrics)
    log.write(600, ext.metrics())  # no episodes since: no rows
    log.tensorboard.close()
    log.close()
    rows = read_csv_rows(tmp_path / "curriculum.csv")
    assert list(rows[0]) == record_columns(ext.space) == ["step", "env", "task/x", "task/level", "return",
                                                          "success", "length"]
    assert [float(r["task/x"]) for r in rows] == [t["x"] for t in tasks]
    assert [int(float(r["task/level"])) for r in rows] == [t["level"] for t in tasks]
    assert [(r["step"], r["env"], r["return"], r["success"], r["length"]) for r in rows][:2] == [
        ("500", "0.0", "0.0", "1.0", "10.0"), ("500", "1.0", "1.0", "0.0", "11.0")]
    hists = _histograms(tmp_path / "tb")
    assert set(hists) == {"curriculum/task/x", "curriculum/task/level", "curriculum/episode_return"}
    (x,) = hists["curriculum/task/x"]
    expected, _ = np.histogram([t["x"] for t in tasks], histogram_edges(ext.space, "x"))
    assert x.step == 500 and list(x.histogram_value.bucket) == [0, *expected.tolist()]
    (level,) = hists["curriculum/task/level"]
    assert list(level.histogram_value.bucket_limit) == [0, 1, 2, 3, 4, 5]
    assert list(level.histogram_value.bucket)[1:] == np.bincount([t["level"] for t in tasks], minlength=5).tolist()


def test_level_edges_group_levels_beyond_the_bin_cap():
    assert histogram_edges(TaskSpace({}, 3), "level").tolist() == [0, 1, 2, 3]
    wide = histogram_edges(TaskSpace({}, 250), "level")
    assert wide[0] == 0 and wide[-1] >= 250 and np.all(np.diff(wide) == 3) and len(wide) - 1 <= 100


def test_record_on_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    ext = _extension({"box": {"x": [0.0, 1.0]}})
    log = CurriculumLog(ext, tmp_path / "curriculum.csv", None)
    for step in (100, 200, 300):
        _episodes(ext, 2)
        log.write(step, ext.metrics())
        log.flush(durable=True)
    log.close()
    path = tmp_path / "curriculum.csv"
    with open(path, "a", encoding="utf-8") as f:
        f.write("400,0.0,0.3")  # a row cut by a kill
    resumed = CurriculumLog(_extension({"box": {"x": [0.0, 1.0]}}), path, resume_step=200)
    assert [r["step"] for r in read_csv_rows(path)] == ["100", "100", "200", "200"]
    _episodes(resumed.ext, 1)
    resumed.write(300, resumed.ext.metrics())
    resumed.close()
    assert [r["step"] for r in read_csv_rows(path)] == ["100", "100", "200", "200", "300"]


def test_record_of_another_task_space_is_refused_on_resume(tmp_path):
    path = tmp_path / "curriculum.csv"
    CurriculumLog(_extension({"box": {"x": [0.0, 1.0]}}), path, None).close()
    with pytest.raises(MetricsFileError, match="curriculum.csv: columns"):
        CurriculumLog(_extension({"box": {"y": [0.0, 1.0]}}), path, resume_step=0)


def test_checkpoints_from_before_the_record_still_load():
    ext = _extension({"box": {"x": [0.0, 1.0]}})
    state = ext.state()
    state["row"] = [[{"x": 0.5}, 1.0, True]]  # the old 3-field rows
    ext.load(state)
    log_rows = ext._row
    assert log_rows == [[{"x": 0.5}, 1.0, True, None, None]]
    assert ext.metrics()["curriculum/mean_x"] == 0.5
    assert json.loads(json.dumps(ext.state()))  # still JSON


# -- rl plot --curriculum ------------------------------------------------------------------------------
def write_run(group: Path, seed: int, space: dict, rows: list[str], tail: str = "") -> Path:
    run = group / f"s{seed}"
    run.mkdir(parents=True)
    manifest = {"name": group.name, "seed": seed, "env": {"id": "rlsuite/PointGoal-v0"},
                "curriculum": {"space": space, "teacher": {"kind": "uniform"}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    spec = CurriculumSpec.model_validate({"space": space})
    header = ",".join(record_columns(spec.task_space()))
    (run / "curriculum.csv").write_text("\n".join([header, *rows]) + "\n" + tail)
    return run


def _goal_rows(seed: int, steps=range(1000, 10001, 1000)) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for step in steps:
        for env in range(4):  # the distance drifts from easy to hard
            d = float(np.clip(step / 10000 + rng.normal(0, 0.05), 0.0, 1.0))
            out.append(f"{step},{env}.0,{d!r},{rng.uniform(-3, 3)!r},{-d!r},0.0,{50 + env}.0")
    return out


@pytest.fixture
def groups(tmp_path) -> Path:
    box = {"box": {"distance": [0.0, 1.0], "angle": [-3.14159, 3.14159]}, "levels": 0}
    runs = tmp_path / "runs"
    write_run(runs / "goal-alpgmm", 0, box, _goal_rows(0))
    write_run(runs / "goal-alpgmm", 1, box, _goal_rows(1), tail="10000,3.0,0.9")  # cut by a kill
    levels = [f"{s},{e}.0,{(s // 1000 + e) % 12}.0,1.0,1.0,20.0" for s in range(500, 6001, 500) for e in range(2)]
    write_run(runs / "mazes-plr", 0, {"box": {}, "levels": 12}, levels)
    return runs


def _snapshot(root: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_density_columns_sum_to_one():
    step_e = np.array([10, 10, 10, 20, 20, 40], float)
    value_e = np.array([0.1, 0.1, 0.9, 0.5, 1.0, 0.2])
    share_xy, mean_x = density(step_e, value_e, np.array([0, 10, 20, 30, 40.0]), np.array([0.0, 0.5, 1.0]))
    assert share_xy[0].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert share_xy[1].tolist() == [0.0, 1.0]  # 0.5 and the closed last bin's 1.0
    assert np.isnan(share_xy[2]).all() and np.isnan(mean_x[2])
    assert mean_x[0] == pytest.approx(1.1 / 3)


def test_read_task_record_drops_a_cut_last_row(groups):
    columns, space = read_task_record(groups / "goal-alpgmm" / "s1")
    assert space.names == ["distance", "angle"]
    assert len(columns["step"]) == 40 and columns["step"][-1] == 10000


def test_rl_plot_curriculum_writes_a_png_and_leaves_runs_alone(groups, tmp_path, capsys):
    before = _snapshot(groups)
    out = tmp_path / "plots" / "tasks.png"
    assert rl_main(["plot", str(groups / "goal-alpgmm"), str(groups / "mazes-plr"), "--curriculum",
                    "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert _snapshot(groups) == before
    from matplotlib.image import imread

    height, width, _ = imread(out).shape
    assert width > height  # two groups x two columns (distance, angle; the maze's level)


def test_plot_curriculum_is_deterministic_svg(groups, tmp_path):
    a = plot_curriculum([groups / "goal-alpgmm"], tmp_path / "a.svg")
    b = plot_curriculum([groups / "goal-alpgmm"], tmp_path / "b.svg")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("no_section", r"manifest\.json: no curriculum section"),
        ("no_record", r"curriculum\.csv: not found; the run has no task record"),
        ("bad_row", r"curriculum\.csv:3: malformed row"),
        ("other_space", r"curriculum\.csv: no column 'task/height'"),
        ("inside_run", r"inside run directory"),
    ],
)
def test_plot_curriculum_errors_are_one_line_exit_2(groups, tmp_path, capsys, setup, match):
    run = groups / "goal-alpgmm" / "s0"
    out = tmp_path / "tasks.png"
    if setup == "no_section":
        data = json.loads((run / "manifest.json").read_text())
        del data["curriculum"]
        (run / "manifest.json").write_text(json.dumps(data))
    elif setup == "no_record":
        (run / "curriculum.csv").unlink()
    elif setup == "bad_row":
        lines = (run / "curriculum.csv").read_text().splitlines(keepends=True)
        lines[2] = "2000,x,y\n"
        (run / "curriculum.csv").write_text("".join(lines))
    elif setup == "other_space":
        data = json.loads((run / "manifest.json").read_text())
        data["curriculum"]["space"]["box"] = {"height": [0.0, 3.0]}
        (run / "manifest.json").write_text(json.dumps(data))
    else:
        out = run / "tasks.png"
    assert rl_main(["plot", str(run), "--curriculum", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert pytest.importorskip("re").search(match, err), err
    assert not out.exists()


def test_plot_curriculum_refuses_pareto_too(groups, tmp_path, capsys):
    assert rl_main(["plot", str(groups / "mazes-plr"), "--curriculum", "--pareto", "--out",
                    str(tmp_path / "t.png")]) == 2
    assert "--curriculum and --pareto" in capsys.readouterr().err


def test_plot_curriculum_with_no_episodes_yet_says_so(tmp_path):
    run = write_run(tmp_path / "runs" / "g", 0, {"box": {"x": [0.0, 1.0]}}, [])
    with pytest.raises(PlotError, match="no finished training episodes recorded yet"):
        plot_curriculum([run], tmp_path / "t.png")
