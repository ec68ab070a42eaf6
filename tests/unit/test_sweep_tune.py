"""rl tune's search-space file: parsing and checking against the manifest (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.tune import SearchParam, TuneError, check_space, load_space

CARTPOLE = Path(__file__).resolve().parents[2] / "experiments" / "manifests" / "cartpole_ppo.yaml"


def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_load_space_ranges_and_choices(tmp_path):
    path = _space(tmp_path, "agent.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}\n"
                            "agent.n_epochs: {low: 4, high: 20}\nagent.net_arch: {choices: [[64, 64], [32]]}\n")
    assert load_space(path) == {"agent.learning_rate": SearchParam(low=1e-4, high=3e-3, log=True),
                                "agent.n_epochs": SearchParam(low=4, high=20),
                                "agent.net_arch": SearchParam(choices=[[64, 64], [32]])}
    check_space(CARTPOLE, load_space(path), [], path)


@pytest.mark.parametrize("text, words", [
    ("agent.gamma: {low: 0.99, high: 0.9}", "low < high"),
    ("agent.gamma: {low: 0.0, high: 0.9, log: true}", "low > 0"),
    ("agent.gamma: {choices: []}", "non-empty"),
    ("agent.gamma: {choices: [0.9], low: 0.1}", "alone"),
    ("agent.gamma: {low: 0.9}", "give low and high"),
    ("agent.gamma: {low: 0.9, hi: 0.99}", "unknown key"),
    ("agent.gamma: 0.9", "expected"),
    ("seed: {low: 0, high: 9}", "cannot be searched"),
    ("[1, 2]", "mapping"),
])
def test_bad_spaces_name_the_field(tmp_path, text, words):
    with pytest.raises(TuneError, match=words):
        load_space(_space(tmp_path, text + "\n"))


def test_a_space_key_that_is_not_a_manifest_field_is_refused_before_any_trial(tmp_path):
    path = _space(tmp_path, "agent.learnin_rate: {low: 1.0e-4, high: 1.0e-3}\n")
    with pytest.raises(TuneError, match="agent.learnin_rate.*unknown field"):
        check_space(CARTPOLE, load_space(path), [], path)
    path = _space(tmp_path, "agent.n_epochs: {low: 0, high: 5}\n")  # n_epochs must be >= 1
    with pytest.raises(TuneError, match="agent.n_epochs=0"):
        check_space(CARTPOLE, load_space(path), [], path)
