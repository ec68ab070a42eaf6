"""Fixtures of the reliability suite: the ``reliability`` marker, the zygote, references, the audit hook."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.reliability.harness import KINDS, Zygote, rl, set_workspace, train_args

_HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: fault injection, corrupted files, hostile inputs (issue 8)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session", autouse=True)
def _workspace(tmp_path_factory):
    """Generated manifests and datasets (the offline-to-online kind's) live in the session's tmp dir."""
    set_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def zygote(tmp_path_factory):
    zyg = Zygote(tmp_path_factory.mktemp("zygote")).start()
    yield zyg
    zyg.close()


class _References:
    """Uninterrupted runs of each kind, trained once per session by a fresh ``python -m`` process."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[str, Path] = {}

    def __call__(self, kind: str) -> Path:
        if kind not in self._done:
            k = KINDS[kind]
            res = rl(*train_args(k, self.root, "ref"))
            assert res.returncode == 0, res.stderr
            self._done[kind] = self.root / k.group / "ref"
        return self._done[kind]


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """``reference("ppo")`` -> the run directory of an uninterrupted tiny run of that kind."""
    return _References(tmp_path_factory.mktemp("references"))


# -- the audit hook (P5) ------------------------------------------------------------------------------

AUDITED = ("pickle.find_class", "marshal.loads", "os.system")
_RECORDING: list[list[tuple[str, str]]] = []


def _audit(event: str, args: tuple) -> None:
    if not _RECORDING or event not in AUDITED:
        return
    if event == "marshal.loads":
        caller = sys._getframe(1).f_code.co_filename
        if "importlib" in caller:  # every import of a .pyc unmarshals its code object
            return
    _RECORDING[-1].append((event, repr(args)[:200]))


sys.addaudithook(_audit)  # cannot be removed: it records only while a test holds the `audit` fixture


@pytest.fixture
def audit(monkeypatch):
    """Events that would mean code execution on load, recorded while the test runs.

    Audit events: ``pickle.find_class`` (any unpickling that resolves a global: pickle, cloudpickle,
    torch's full unpickler), ``marshal.loads`` outside imports, ``os.system``. Tripwires for loaders
    that do not raise ``pickle.find_class`` themselves: ``torch.load`` without ``weights_only=True``
    (torch's restricted weights-only unpickler is pure Python and is allowed), ``yaml.load`` /
    ``yaml.unsafe_load`` and ``numpy.load(allow_pickle=True)``.
    """
    events: list[tuple[str, str]] = []
    _RECORDING.append(events)
    import numpy as np
    import torch
    import yaml

    def trip(name, real, when=lambda *a, **k: True):
        def wrapper(*args, **kwargs):
            if when(*args, **kwargs):
                events.append((name, ""))
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(torch, "load", trip("torch.load(weights_only=False)", torch.load,
                                            lambda *a, **k: k.get("weights_only", True) is not True))
    monkeypatch.setattr(yaml, "unsafe_load", trip("yaml.unsafe_load", yaml.unsafe_load))
    monkeypatch.setattr(yaml, "load", trip("yaml.load", yaml.load))
    monkeypatch.setattr(np, "load", trip("numpy.load(allow_pickle=True)", np.load,
                                         lambda *a, **k: k.get("allow_pickle", False)))
    try:
        yield events
    finally:
        _RECORDING.remove(events)
