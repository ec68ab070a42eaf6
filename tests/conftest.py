"""Session hooks for the whole suite: the kill-trial summary line after the run."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

# -- the kill-trial summary line -----------------------------------------------------------------------
# Under pytest-xdist (the README's test command runs two workers) every worker keeps its own TRIALS; each
# hands its tallies to the controller when it finishes, and the controller prints one line for all.

_WORKER_TRIALS: list[dict] = []


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is None:  # not an xdist worker
        return
    from tests.reliability.harness import TRIALS  # imported late: the harness pulls in numpy

    workeroutput["reliability_trials"] = json.dumps([asdict(t) for t in TRIALS])  # execnet carries plain data


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _WORKER_TRIALS.extend(json.loads(getattr(node, "workeroutput", {}).get("reliability_trials", "[]")))


def pytest_terminal_summary(terminalreporter):
    from tests.reliability.harness import TRIALS, Trial, summary

    trials = TRIALS + [Trial(**t) for t in _WORKER_TRIALS]
    if trials:
        terminalreporter.write_line(f"reliability: {summary(trials)}")
