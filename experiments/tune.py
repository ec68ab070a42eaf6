"""``rl tune``: hyperparameter search with Optuna (``pip install 'rlsuite[optuna]'``).

The search space is a small YAML file beside the manifest; each key is a dotted manifest field::

    agent.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}   # float (int if low and high are ints)
    agent.n_epochs: {low: 4, high: 20}
    agent.activation: {choices: [tanh, relu]}

Trial ``n`` trains ``--seeds-per-trial`` seeds (the manifest's seed and the next ones) as the group
``<name>-t<nnn>`` through the sweep machinery (local process pool), so every trial is an ordinary group
of run directories that ``rl report`` can read, and rerunning the same study skips finished trials.
The objective is the mean over seeds of the final ``eval/mean_reward``, maximised by Optuna's TPE
sampler seeded with ``--study-seed``. The best trial's resolved manifest is written as YAML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.manifest import ManifestError, load_manifest
from experiments.yaml_strict import ManifestSyntaxError, load_yaml

__all__ = ["Param", "TuneError", "load_space", "tune"]

OBJECTIVE = "eval/mean_reward"


class TuneError(ValueError):
    """A user mistake in a search space or in tune's arguments; exit code 2."""


@dataclass(frozen=True)
class Param:
    """One searched manifest field: a range (``low``..``high``, optionally log-uniform) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def values_to_check(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _param(path: Path, key: str, spec: Any) -> Param:
    where = f"{path}: {key}"
    if not isinstance(spec, dict):
        raise TuneError(f"{where}: expected {{low: .., high: .., log: ..}} or {{choices: [..]}}, got {spec!r}")
    unknown = set(spec) - {"low", "high", "log", "choices"}
    if unknown:
        raise TuneError(f"{where}: unknown key(s) {sorted(unknown)}; use low, high, log or choices")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise TuneError(f"{where}: choices must be a non-empty list, alone")
        return Param(key, choices=tuple(spec["choices"]))
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    if not (_number(low) and _number(high) and low < high):
        raise TuneError(f"{where}: low and high must be finite numbers with low < high (got {low!r}, {high!r})")
    if not isinstance(log, bool) or (log and low <= 0):
        raise TuneError(f"{where}: log must be true or false, and a log range needs low > 0")
    return Param(key, low, high, log)


def load_space(path: Path | str) -> list[Param]:
    """Parse and check a search-space file (strict YAML)."""
    path = Path(path)
    try:
        data, _ = load_yaml(path)
    except ManifestSyntaxError as err:
        raise TuneError(str(err)) from None
    if not isinstance(data, dict) or not data:
        raise TuneError(f"{path}: expected a mapping of dotted manifest fields to ranges or choices")
    for key in ("seed", "name"):
        if key in data:
            raise TuneError(f"{path}: {key}: cannot be searched")
    return [_param(path, key, spec) for key, spec in data.items()]


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value)


def _overrides(params: list[Param], values: dict[str, Any]) -> list[str]:
    return [f"{p.key}={_format(values[p.key])}" for p in params]


def check_space(manifest_path: Path, params: list[Param], overrides: list[str], space_path: Path) -> None:
    """Every bound and choice must give a valid manifest, before the first trial."""
    for p in params:
        for value in p.values_to_check():
            try:
                load_manifest(manifest_path, [*overrides, f"{p.key}={_format(value)}"])
            except ManifestError as err:
                raise TuneError(f"{space_path}: {p.key}={_format(value)}: {err}") from None


def _suggest(trial, params: list[Param]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params:
        if p.choices is not None:
            index = trial.suggest_categorical(p.key, list(range(len(p.choices))))  # lists are not Optuna choices
            out[p.key] = p.choices[index]
        elif isinstance(p.low, int) and isinstance(p.high, int):
            out[p.key] = trial.suggest_int(p.key, p.low, p.high, log=p.log)
        else:
            out[p.key] = trial.suggest_float(p.key, float(p.low), float(p.high), log=p.log)
    return out


def _run_trial(manifest_path: Path, group: str, seeds: list[int], overrides: list[str], runs_dir: Path,
               jobs: int | None, show_progress: bool) -> float:
    from experiments.report import group_scores
    from experiments.sweep import SweepLock, SweepProgress, _cpus, _run_local, expand, plan_runs

    runs = expand(manifest_path, seeds, (), [*overrides, f"name={group}"])
    with SweepLock(runs_dir, [group]), SweepProgress(len(runs), show_progress) as progress:
        complete, todo = plan_runs(runs, runs_dir)
        progress.skipped(len(complete))
        if todo:
            results = _run_local(todo, runs_dir, jobs or _cpus(), progress.done)
            failed = [r for r in results if r.status == "failed"]
            if failed:
                raise RuntimeError(f"{failed[0].run.run_dir(runs_dir)}: {failed[0].error}")
    scores = group_scores(group, [r.run_dir(runs_dir) for r in runs], OBJECTIVE)
    if scores is None:
        raise RuntimeError(f"group {group}: a run never logged {OBJECTIVE}")
    return float(scores.scores_r.mean())


def tune(manifest_path: Path, space_path: Path, trials: int, seeds_per_trial: int = 1,
         overrides: list[str] | None = None, runs_dir: Path = Path("runs"), jobs: int | None = None,
         out: Path | None = None, study_seed: int = 0, show_progress: bool = True):
    """Run the study; returns it and the path of the best manifest."""
    if trials < 1 or seeds_per_trial < 1:
        raise TuneError(f"--trials {trials} --seeds-per-trial {seeds_per_trial}: both must be at least 1")
    try:
        import optuna
    except ImportError:
        raise TuneError("rl tune needs Optuna: pip install 'rlsuite[optuna]'") from None
    overrides = list(overrides or [])
    params = load_space(space_path)
    try:
        base, _ = load_manifest(manifest_path, overrides)
    except ManifestError as err:
        raise TuneError(str(err)) from None
    check_space(manifest_path, params, overrides, space_path)
    seeds = list(range(base.seed, base.seed + seeds_per_trial))
    out = Path(out) if out is not None else Path(runs_dir) / f"{base.name}-best.yaml"
    if out.suffix not in (".yaml", ".yml"):
        raise TuneError(f"--out {out}: the best manifest is YAML; give a name ending in .yaml")

    def objective(trial) -> float:
        values = _suggest(trial, params)
        group = f"{base.name}-t{trial.number:03d}"
        trial_overrides = _overrides(params, values)
        trial.set_user_attr("group", group)
        trial.set_user_attr("overrides", trial_overrides)
        return _run_trial(manifest_path, group, seeds, [*overrides, *trial_overrides], runs_dir, jobs, show_progress)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=study_seed))
    study.optimize(objective, n_trials=trials)
    _write_best(study, runs_dir, base.name, out)
    return study, out


def _write_best(study, runs_dir: Path, name: str, out: Path) -> None:
    import json

    import yaml

    best = study.best_trial
    run0 = next(p for p in sorted((Path(runs_dir) / best.user_attrs["group"]).iterdir()) if p.is_dir())
    manifest = json.loads((run0 / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = f"{name}-best"
    header = (f"# best of {len(study.trials)} trials (rl tune): mean final {OBJECTIVE} {best.value:g} "
              f"over seeds, trial {best.number} ({best.user_attrs['group']})\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    load_manifest(out)  # the file must load as a manifest again


def main_tune(args) -> int:
    """``rl tune``: run the study and print one line per trial and the best."""
    study, out = tune(args.manifest, args.space, args.trials, args.seeds_per_trial, args.overrides, args.runs_dir,
                      args.jobs, args.out, args.study_seed, show_progress=not args.quiet)
    for t in study.trials:
        value = "—" if t.value is None else f"{t.value:g}"
        print(f"trial {t.number:3d}  {t.user_attrs.get('group', '')}  value {value}  "
              + " ".join(t.user_attrs.get("overrides", [])))
    print(f"best: trial {study.best_trial.number}, mean final {OBJECTIVE} {study.best_value:g}; wrote {out}")
    return 0
