"""experiments.phases.lr_progress: the learning-rate policy of a phase."""

from __future__ import annotations

import pytest

from experiments.phases import OnlinePhase, PhaseSpec, lr_progress


def _phase(policy: str, warmup: float = 0.25) -> PhaseSpec:
    return PhaseSpec(online=OnlinePhase(steps=100, lr_policy=policy, lr_warmup=warmup))


@pytest.mark.parametrize("done, run_progress, policy, expected", [
    (0, 0.6, "keep", (0.6, 1.0)),
    (50, 0.8, "keep", (0.8, 1.0)),
    (0, 0.6, "redecay", (0.0, 1.0)),
    (50, 0.8, "redecay", (0.5, 1.0)),
    (0, 0.6, "rewarm", (0.0, 0.0)),
    (10, 0.6, "rewarm", (0.1, 0.4)),
    (25, 0.6, "rewarm", (0.25, 1.0)),
    (100, 1.0, "rewarm", (1.0, 1.0)),
])
def test_lr_progress(done, run_progress, policy, expected):
    assert lr_progress(_phase(policy), done, run_progress) == pytest.approx(expected)


def test_unknown_policy_and_bad_warmup_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lr_policy"):
        OnlinePhase(steps=10, lr_policy="restart")
    with pytest.raises(ValidationError, match="lr_warmup"):
        OnlinePhase(steps=10, lr_warmup=0.0)
