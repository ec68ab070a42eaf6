"""Running ``experiments.cli.main`` inside the test process (no fork: monkeypatches and audit hooks apply)."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from tests.reliability.harness import Result


def cli(*args: str) -> Result:
    """``rl ARGS`` in this process: exit code and captured output. Exceptions the CLI lets out propagate
    (in a real process they would be a traceback and exit code 1)."""
    from experiments.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as e:  # argparse
            rc = e.code if isinstance(e.code, int) else 1
    return Result(rc, out.getvalue(), err.getvalue())


def copy_run(ref: Path, dest_root: Path, drop_after: int | None = None, name: str = "run") -> Path:
    """A copy of run ``ref`` under ``dest_root/<group>/<name>``; with ``drop_after``, its checkpoints
    after that step and final/ removed, as if it had been killed just after saving ``drop_after``."""
    run = dest_root / ref.parent.name / name
    shutil.copytree(ref, run)
    if drop_after is not None:
        for ck in (run / "checkpoints").iterdir():
            if ck.name.startswith("step-") and int(ck.name[5:]) > drop_after:
                shutil.rmtree(ck)
        shutil.rmtree(run / "final")
    return run
