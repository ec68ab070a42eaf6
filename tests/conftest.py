"""Session hooks for the whole suite: the kill-trial summary line after the run."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import pytest

# -- the kill-trial summary line -----------------------------------------------------------------------
# Under pytest-xdist (the README's test command runs two workers) every worker keeps its own TRIALS; each
# hands its tallies to the controller when it finishes, and the controller prints one line for all.

_WORKER_TRIALS: list[dict] = []


def _own_trials() -> list:
    """This process's trials; the harness is imported only by the reliability tests that run trials."""
    harness = sys.modules.get("tests.reliability.harness")
    return list(harness.TRIALS) if harness is not None else []


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker; execnet carries plain data
        workeroutput["reliability_trials"] = json.dumps([asdict(t) for t in _own_trials()])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _WORKER_TRIALS.extend(json.loads(getattr(node, "workeroutput", {}).get("reliability_trials", "[]")))


def pytest_terminal_summary(terminalreporter):
    trials, shipped = _own_trials(), _WORKER_TRIALS
    if not trials and not shipped:
        return
    from tests.reliability.harness import Trial, summary

    terminalreporter.write_line(f"reliability: {summary(trials + [Trial(**t) for t in shipped])}")
