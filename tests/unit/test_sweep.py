"""Sweep expansion and validation (no training): seeds, grids, run names, existing runs, locks, Ray address."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from experiments import sweep, sweep_backends
from experiments.sweep import SweepError, SweepLock, expand, parse_grid, parse_seeds, plan_runs

CARTPOLE = Path(__file__).resolve().parents[2] / "experiments" / "manifests" / "cartpole_ppo.yaml"


def test_parse_seeds_ranges_lists_and_single_seeds():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("3") == [3]
    assert parse_seeds("4-5, 0-1,5") == [0, 1, 4, 5]


@pytest.mark.parametrize("text, words", [("5-3", "empty"), ("", "expected"), ("a-b", "expected"),
                                         ("-1", "expected"), ("0-99999", "at most")])
def test_parse_seeds_rejects_empty_and_malformed_ranges(text, words):
    with pytest.raises(SweepError, match=words) as err:
        parse_seeds(text)
    assert "\n" not in str(err.value)


def test_parse_grid_splits_values_outside_brackets():
    grid = parse_grid(["agent.learning_rate=1e-3,3e-4", "agent.net_arch=[64,64],[32]"])
    assert grid == [("agent.learning_rate", ["1e-3", "3e-4"]), ("agent.net_arch", ["[64,64]", "[32]"])]


@pytest.mark.parametrize("item, words", [("agent.learning_rate", "KEY=V1"), ("seed=1,2", "--seeds"),
                                         ("agent.gamma=0.9,,0.99", "empty value"),
                                         ("agent.gamma=0.9,0.9", "repeated"), ("name=a,b", "cannot be")])
def test_parse_grid_rejects_bad_items(item, words):
    with pytest.raises(SweepError, match=words):
        parse_grid([item])


def test_parse_grid_rejects_a_key_given_twice():
    with pytest.raises(SweepError, match="twice"):
        parse_grid(["agent.gamma=0.9", "agent.gamma=0.99"])


def test_expand_seeds_only_gives_one_group_with_deterministic_run_ids():
    runs = expand(CARTPOLE, [0, 1, 2], overrides=["train.total_steps=2048"])
    assert [(r.group, r.run_id, r.seed) for r in runs] == [("cartpole-ppo", f"s{s}", s) for s in range(3)]
    assert [r.manifest["seed"] for r in runs] == [0, 1, 2]
    assert all(r.manifest["train"]["total_steps"] == 2048 for r in runs)
    assert runs[0].overrides == ("train.total_steps=2048",)
    assert runs[1].run_dir(Path("runs")) == Path("runs/cartpole-ppo/s1")


def test_expand_grid_gives_one_group_per_point_with_the_values_applied():
    runs = expand(CARTPOLE, [0, 1], parse_grid(["agent.learning_rate=1e-3,3e-4", "agent.n_epochs=5,10"]))
    assert len(runs) == 8
    groups = sorted({r.group for r in runs})
    assert groups == ["cartpole-ppo-learning_rate_1e-3-n_epochs_10", "cartpole-ppo-learning_rate_1e-3-n_epochs_5",
                      "cartpole-ppo-learning_rate_3e-4-n_epochs_10", "cartpole-ppo-learning_rate_3e-4-n_epochs_5"]
    point = [r for r in runs if r.group == "cartpole-ppo-learning_rate_3e-4-n_epochs_5"]
    assert [r.seed for r in point] == [0, 1]
    assert all(r.manifest["agent"]["learning_rate"] == 3e-4 and r.manifest["agent"]["n_epochs"] == 5 for r in point)
    assert all(r.manifest["name"] == r.group for r in runs)
    assert expand(CARTPOLE, [0, 1], parse_grid(["agent.n_epochs=5,10"]))[0].group == "cartpole-ppo-n_epochs_5"


def test_group_names_fall_back_to_hashes_when_slugs_clash_or_are_too_long():
    clash = sweep._group_names("x", [(("a.k", "1 2"),), (("b.k", "1_2"),)])
    assert len(set(clash)) == 2 and all(n.startswith("x-g") and len(n) == 11 for n in clash)
    long = sweep._group_names("x", [(("a.k", "1" * 120),), (("a.k", "2"),)])
    assert all(n.startswith("x-g") for n in long)
    assert sweep._group_names("x", [()]) == ["x"]
    assert sweep._group_names("x", [(("env.kwargs.g", "9.8"),)]) == ["x-g_9.8"]


def test_a_grid_key_that_is_not_a_manifest_field_is_one_line_naming_it():
    with pytest.raises(SweepError) as err:
        expand(CARTPOLE, [0], parse_grid(["agent.learnin_rate=1e-3,3e-4"]))
    msg = str(err.value)
    assert "agent.learnin_rate" in msg and "learning_rate" in msg and "\n" not in msg


def test_a_grid_value_of_the_wrong_type_is_an_error():
    with pytest.raises(SweepError, match="agent.n_epochs"):
        expand(CARTPOLE, [0], parse_grid(["agent.n_epochs=5,lots"]))


def test_grid_points_that_give_the_same_manifest_are_refused():
    with pytest.raises(SweepError, match="same manifest"):
        expand(CARTPOLE, [0], parse_grid(["agent.learning_rate=1e-3,0.001"]))


def test_no_seeds_is_an_error():
    with pytest.raises(SweepError, match="no seeds"):
        expand(CARTPOLE, [])


def _fake_run(run_dir: Path, manifest: dict, final: bool) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if final:
        (run_dir / "final").mkdir()
        (run_dir / "final" / "policy.safetensors").write_bytes(b"")


def test_plan_skips_complete_runs_and_resumes_the_rest(tmp_path):
    runs = expand(CARTPOLE, [0, 1, 2])
    _fake_run(runs[0].run_dir(tmp_path), runs[0].manifest, final=True)
    _fake_run(runs[1].run_dir(tmp_path), runs[1].manifest, final=False)
    complete, todo = plan_runs(runs, tmp_path)
    assert [r.run_id for r in complete] == ["s0"] and [r.run_id for r in todo] == ["s1", "s2"]


def test_plan_refuses_a_run_directory_with_another_manifest(tmp_path):
    runs = expand(CARTPOLE, [0])
    other = expand(CARTPOLE, [0], overrides=["agent.gamma=0.9"])[0].manifest
    _fake_run(runs[0].run_dir(tmp_path), other, final=True)
    with pytest.raises(SweepError, match=r"agent\.gamma \(0\.9 vs 0\.98\)"):
        plan_runs(runs, tmp_path)


def test_plan_refuses_a_directory_that_is_not_a_run(tmp_path):
    runs = expand(CARTPOLE, [0])
    path = runs[0].run_dir(tmp_path)
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not a run directory"):
        plan_runs(runs, tmp_path)


def test_a_second_sweep_into_the_same_group_is_refused(tmp_path):
    with SweepLock(tmp_path, ["g", "h"]):
        with pytest.raises(SweepError, match="another sweep is running"):
            with SweepLock(tmp_path, ["h"]):
                pass
        with SweepLock(tmp_path, ["other"]):
            pass
    with SweepLock(tmp_path, ["h"]):  # released
        pass


def test_unreachable_ray_address_fails_within_seconds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match=f"127.0.0.1:{port}: no Ray cluster reachable"):
        sweep_backends.probe(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < sweep_backends.RAY_CONNECT_TIMEOUT_S + 1
    with pytest.raises(SweepError, match="HOST:PORT"):
        sweep_backends.probe("nonsense")


@pytest.mark.parametrize("kwargs, words", [({"backend": "slurm"}, "local or ray"), ({"address": "auto"}, "ray"),
                                           ({"jobs": 0}, "--jobs"), ({"max_retries": -1}, "--max-retries")])
def test_run_sweep_rejects_bad_options_before_anything_is_written(tmp_path, kwargs, words):
    with pytest.raises(SweepError, match=words):
        sweep.run_sweep(CARTPOLE, "0-1", runs_dir=tmp_path / "runs", show_progress=False, **kwargs)
    assert not (tmp_path / "runs").exists()
