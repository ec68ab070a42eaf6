"""``rl reproduce``: rerun a run from its stored manifest and compare metrics and weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from rl.core.metrics import WALL_CLOCK_KEYS, read_csv_rows

__all__ = ["compare_runs", "reproduce"]


def compare_runs(a: Path, b: Path) -> tuple[bool, str]:
    """Compare metrics.csv (wall-clock columns aside) and final weights; report the first difference."""
    from safetensors.numpy import load_file

    rows_a, rows_b = read_csv_rows(a / "metrics.csv"), read_csv_rows(b / "metrics.csv")
    for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=False)):
        for key in ra:
            if key in WALL_CLOCK_KEYS:
                continue
            if ra[key] != rb.get(key):
                return False, (f"metrics differ first at row {i + 1} (step {ra['step']}), column {key!r}: "
                               f"{ra[key]!r} vs {rb.get(key)!r}")
    if len(rows_a) != len(rows_b):
        return False, f"metrics.csv has {len(rows_a)} rows in {a} but {len(rows_b)} in {b}"
    wa = load_file(str(a / "final" / "policy.safetensors"))
    wb = load_file(str(b / "final" / "policy.safetensors"))
    for name in sorted(wa):
        if name not in wb or wa[name].shape != wb[name].shape or not np.array_equal(wa[name], wb[name]):
            return False, f"final weight tensor {name!r} differs"
    return True, f"identical: {len(rows_a)} metric rows and {len(wa)} weight tensors match"


def reproduce(run: Path, out_dir: Path | None = None) -> tuple[bool, str]:
    """Retrain from ``run/manifest.json`` into ``out_dir`` (or a temp dir) and compare."""
    from experiments.evaluate_run import EvalError
    from experiments.manifest import manifest_from_json
    from experiments.train import start_run

    run = Path(run)
    if not (run / "manifest.json").is_file():
        raise EvalError(f"{run}: not a run directory (no manifest.json)")
    if not (run / "final" / "policy.safetensors").is_file():
        raise EvalError(f"{run}: the run has not finished (no final/); resume it first")
    manifest = manifest_from_json(run / "manifest.json")
    if out_dir is not None:
        rerun = start_run(manifest, Path(out_dir), run_id=run.name + "-reproduce", force=False, show_progress=False)
        return compare_runs(run, rerun)
    with tempfile.TemporaryDirectory(prefix="rl-reproduce-") as tmp:
        rerun = start_run(manifest, Path(tmp), run_id=run.name, show_progress=False)
        return compare_runs(run, rerun)
