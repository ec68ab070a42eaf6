"""``rl tune``: hyperparameter search with Optuna (``pip install 'rlsuite[optuna]'``).

The search space is declared in the manifest's ``tune`` section (or, with ``--space FILE``, in a small
YAML file beside it); each key is a dotted manifest field::

    tune:
      trials: 20
      seeds_per_trial: 2
      pruner: {kind: median, startup_trials: 2, warmup_evals: 1}
      space:
        agent.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}   # float (int if low and high are ints)
        agent.n_epochs: {low: 4, high: 20}
        agent.activation: {choices: [tanh, relu]}

Trial ``n`` trains ``seeds_per_trial`` seeds (the manifest's seed and the next ones) as the group
``<name>-t<nnn>``, each an ordinary run directory that ``rl report`` can read; rerunning the same study
skips finished runs. The objective is the mean over seeds of the final ``eval/mean_reward``,
maximised by Optuna's TPE sampler seeded with ``--study-seed``. While a trial trains, every periodic
evaluation that all its seeds have reached is reported to Optuna (step = env steps); when the pruner
(median by default) says the trial is behind, its runs are stopped with SIGTERM (they keep their
checkpoints) and the trial is marked pruned. The best trial's resolved manifest is written as YAML,
without the ``tune`` section.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from agents.common.config import StrictModel

__all__ = ["PrunerSpec", "SearchParam", "TuneError", "TuneSpec", "load_space", "tune"]

OBJECTIVE = "eval/mean_reward"
POLL_S = 0.5


class TuneError(ValueError):
    """A user mistake in a search space or in tune's arguments; exit code 2."""


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class SearchParam(StrictModel):
    """One searched manifest field: a range (``low``..``high``, optionally log-uniform) or ``choices``."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchParam:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None or self.log:
                raise ValueError("choices must be a non-empty list, alone (no low, high or log)")
            return self
        if not (_number(self.low) and _number(self.high) and self.low < self.high):
            raise ValueError(f"give low and high (finite numbers, low < high) or choices; got low={self.low!r}, "
                             f"high={self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    def values_to_check(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


class PrunerSpec(StrictModel):
    """When to stop a trial early, from the evaluations all its seeds have reached."""

    kind: Literal["median", "none"] = "median"
    """``median``: Optuna's MedianPruner (stop a trial whose mean eval is below the median of earlier
    trials at the same env step); ``none``: every trial runs to the end."""
    startup_trials: int = Field(2, ge=0)
    """Trials that always run to the end before any pruning."""
    warmup_evals: int = Field(1, ge=0)
    """Evaluations of a trial reported before it can be pruned."""


def _check_space_keys(space: dict[str, SearchParam]) -> dict[str, SearchParam]:
    for key in ("seed", "name"):
        if key in space:
            raise ValueError(f"{key} cannot be searched")
    if any(key.split(".")[0] == "tune" for key in space):
        raise ValueError("tune.* fields cannot be searched")
    return space


class TuneSpec(StrictModel):
    """The ``tune`` section of a manifest: search space, trial count, seeds per trial and pruner."""

    space: dict[str, SearchParam] = Field(min_length=1)
    """Dotted manifest field -> ``{low, high, log}`` or ``{choices}``."""
    trials: int | None = Field(None, ge=1)
    """Number of trials (``rl tune --trials`` overrides)."""
    seeds_per_trial: int = Field(1, ge=1)
    """Seeds trained per trial; the objective is their mean final eval."""
    pruner: PrunerSpec = PrunerSpec()

    @field_validator("space")
    @classmethod
    def _keys(cls, v: dict[str, SearchParam]) -> dict[str, SearchParam]:
        return _check_space_keys(v)


def load_space(path: Path | str) -> dict[str, SearchParam]:
    """Parse and check a search-space file (strict YAML): the same mapping as ``tune.space``."""
    from experiments.yaml_strict import ManifestSyntaxError, load_yaml

    path = Path(path)
    try:
        data, _ = load_yaml(path)
    except ManifestSyntaxError as err:
        raise TuneError(str(err)) from None
    if not isinstance(data, dict) or not data:
        raise TuneError(f"{path}: expected a mapping of dotted manifest fields to ranges or choices")
    space: dict[str, SearchParam] = {}
    for key, spec in data.items():
        if not isinstance(spec, dict):
            raise TuneError(f"{path}: {key}: expected {{low: .., high: .., log: ..}} or {{choices: [..]}}, "
                            f"got {spec!r}")
        unknown = set(spec) - set(SearchParam.model_fields)
        if unknown:
            raise TuneError(f"{path}: {key}: unknown key(s) {sorted(unknown)}; use low, high, log or choices")
        try:
            space[key] = SearchParam.model_validate(spec)
        except ValidationError as err:
            e = err.errors()[0]
            field = ".".join(str(x) for x in e["loc"])
            raise TuneError(f"{path}: {key}{'.' + field if field else ''}: "
                            f"{e['msg'].removeprefix('Value error, ')}") from None
    try:
        return _check_space_keys(space)
    except ValueError as err:
        raise TuneError(f"{path}: {err}") from None


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value)


def _overrides(space: dict[str, SearchParam], values: dict[str, Any]) -> list[str]:
    return [f"{key}={_format(values[key])}" for key in space]


def check_space(manifest_path: Path, space: dict[str, SearchParam], overrides: list[str], where: str) -> None:
    """Every bound and choice must give a valid manifest, before the first trial."""
    from experiments.manifest import ManifestError, load_manifest

    for key, p in space.items():
        for value in p.values_to_check():
            try:
                load_manifest(manifest_path, [*overrides, f"{key}={_format(value)}"])
            except ManifestError as err:
                raise TuneError(f"{where}: {key}={_format(value)}: {err}") from None


def _suggest(trial, space: dict[str, SearchParam]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, p in space.items():
        if p.choices is not None:
            index = trial.suggest_categorical(key, list(range(len(p.choices))))  # lists are not Optuna choices
            out[key] = p.choices[index]
        elif isinstance(p.low, int) and isinstance(p.high, int):
            out[key] = trial.suggest_int(key, p.low, p.high, log=p.log)
        else:
            out[key] = trial.suggest_float(key, float(p.low), float(p.high), log=p.log)
    return out


def _child(run, runs_dir: str, argv: list[str]) -> None:
    """A trial's run in its own process (so a pruned trial can be stopped with SIGTERM)."""
    from experiments.sweep import execute_run

    try:
        execute_run(run, runs_dir, argv)
    except KeyboardInterrupt:  # SIGTERM from the pruner: the run kept its last checkpoint
        sys.exit(143)
    except Exception as err:
        print(f"rl: error: {run.group}/{run.run_id}: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)


def eval_curve(run_dir: Path) -> dict[int, float]:
    """``{env step: eval/mean_reward}`` logged so far (a truncated last row is ignored)."""
    from experiments.plotting import PlotError, read_metrics

    try:
        cols = read_metrics(run_dir)
    except PlotError:
        return {}
    values = cols.get(OBJECTIVE)
    if values is None:
        return {}
    keep = values == values
    return {int(s): float(v) for s, v in zip(cols["step"][keep], values[keep], strict=True)}


class TrialPruned(Exception):
    """The pruner stopped this trial at ``step``."""

    def __init__(self, step: int):
        super().__init__(f"pruned at env step {step}")
        self.step = step


def run_trial_runs(trial, runs: list, todo: list, runs_dir: Path, jobs: int, prune: bool,
                   done=lambda result: None) -> None:
    """Train ``todo`` (at most ``jobs`` at a time), reporting each evaluation that every run of ``runs``
    has reached to ``trial`` (mean over seeds); stop them all and raise TrialPruned when it says so."""
    import multiprocessing

    from experiments.sweep import RunResult

    ctx = multiprocessing.get_context("spawn")
    pending, running, reported = list(todo), {}, set()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                run = pending.pop(0)
                proc = ctx.Process(target=_child, args=(run, str(runs_dir), list(sys.argv)), daemon=True)
                proc.start()
                running[run.run_id] = (run, proc, time.perf_counter())
            for run_id, (run, proc, t0) in list(running.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del running[run_id]
                if proc.exitcode != 0:
                    raise RuntimeError(f"{run.run_dir(runs_dir)}: the run exited with code {proc.exitcode}")
                curve = eval_curve(run.run_dir(runs_dir))
                last = curve[max(curve)] if curve else None
                done(RunResult(run, "started", time.perf_counter() - t0, last))
            if trial is not None:
                curves = [eval_curve(r.run_dir(runs_dir)) for r in runs]
                common = set.intersection(*(set(c) for c in curves)) - reported
                for step in sorted(common):
                    reported.add(step)
                    trial.report(sum(c[step] for c in curves) / len(curves), step)
                    if prune and trial.should_prune():
                        raise TrialPruned(step)
            time.sleep(POLL_S if running else 0)
    finally:
        # Pruned or failed: stop the others now. A first SIGTERM lets a run train on to its next exact
        # checkpoint; a second stops it at once, keeping its last checkpoint (resume stays exact).
        for _run, proc, _t0 in running.values():
            proc.terminate()
        time.sleep(0.2)
        for _run, proc, _t0 in running.values():
            if proc.is_alive():
                proc.terminate()
        for _run, proc, _t0 in running.values():
            proc.join()


def _run_trial(trial, manifest_path: Path, group: str, seeds: list[int], overrides: list[str], runs_dir: Path,
               jobs: int | None, prune: bool, show_progress: bool) -> float:
    from experiments.report import group_scores
    from experiments.sweep import SweepLock, expand, plan_runs
    from experiments.sweep_backends import SweepProgress, cpus

    runs = expand(manifest_path, seeds, (), [*overrides, f"name={group}"])
    with SweepLock(runs_dir, [group]), SweepProgress(len(runs), show_progress) as progress:
        complete, todo = plan_runs(runs, runs_dir)
        progress.skipped(len(complete))
        run_trial_runs(trial, runs, todo, runs_dir, jobs or cpus(), prune, progress.done)
    scores = group_scores(group, [r.run_dir(runs_dir) for r in runs], OBJECTIVE)
    if scores is None:
        raise RuntimeError(f"group {group}: a run never logged {OBJECTIVE}")
    return float(scores.scores_r.mean())


def _settings(manifest_path: Path, space_path: Path | None, overrides: list[str], trials: int | None,
              seeds_per_trial: int | None, pruner: str | None):
    """The manifest, search space, trial count, seeds per trial and pruner, from the manifest's ``tune``
    section and the command line (which wins)."""
    from experiments.manifest import ManifestError, load_manifest

    try:
        base, _ = load_manifest(manifest_path, overrides)
    except ManifestError as err:
        raise TuneError(str(err)) from None
    spec = base.tune
    if space_path is not None:
        space, where = load_space(space_path), str(space_path)
    elif spec is not None:
        space, where = spec.space, f"{manifest_path}: tune.space"
    else:
        raise TuneError(f"{manifest_path}: no tune section; declare tune.space in the manifest or pass --space FILE")
    trials = trials if trials is not None else (spec.trials if spec is not None else None)
    if trials is None:
        raise TuneError(f"{manifest_path}: how many trials? set tune.trials in the manifest or pass --trials N")
    seeds_per_trial = seeds_per_trial or (spec.seeds_per_trial if spec is not None else 1)
    if trials < 1 or seeds_per_trial < 1:
        raise TuneError(f"--trials {trials} --seeds-per-trial {seeds_per_trial}: both must be at least 1")
    pruner_spec = spec.pruner if spec is not None else PrunerSpec()
    if pruner is not None:
        pruner_spec = pruner_spec.model_copy(update={"kind": pruner})
    return base, space, where, trials, seeds_per_trial, pruner_spec


def tune(manifest_path: Path, space_path: Path | None = None, trials: int | None = None,
         seeds_per_trial: int | None = None, overrides: list[str] | None = None, runs_dir: Path = Path("runs"),
         jobs: int | None = None, out: Path | None = None, study_seed: int = 0, pruner: str | None = None,
         show_progress: bool = True):
    """Run the study; returns it and the path of the best manifest."""
    try:
        import optuna
    except ImportError:
        raise TuneError("rl tune needs Optuna: pip install 'rlsuite[optuna]'") from None
    overrides = list(overrides or [])
    base, space, where, trials, seeds_per_trial, pruner_spec = _settings(
        Path(manifest_path), space_path, overrides, trials, seeds_per_trial, pruner)
    check_space(manifest_path, space, overrides, where)
    seeds = list(range(base.seed, base.seed + seeds_per_trial))
    out = Path(out) if out is not None else Path(runs_dir) / f"{base.name}-best.yaml"
    if out.suffix not in (".yaml", ".yml"):
        raise TuneError(f"--out {out}: the best manifest is YAML; give a name ending in .yaml")
    prune = pruner_spec.kind != "none"

    def objective(trial) -> float:
        values = _suggest(trial, space)
        group = f"{base.name}-t{trial.number:03d}"
        trial_overrides = _overrides(space, values)
        trial.set_user_attr("group", group)
        trial.set_user_attr("overrides", trial_overrides)
        try:
            return _run_trial(trial, manifest_path, group, seeds, [*overrides, *trial_overrides], runs_dir, jobs,
                              prune, show_progress)
        except TrialPruned as err:
            trial.set_user_attr("pruned_at", err.step)
            raise optuna.TrialPruned(str(err)) from None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_pruner = (optuna.pruners.MedianPruner(n_startup_trials=pruner_spec.startup_trials,
                                                 n_warmup_steps=0, n_min_trials=1)
                     if prune else optuna.pruners.NopPruner())
    if prune and pruner_spec.warmup_evals:
        optuna_pruner = _warmup_pruner(optuna, optuna_pruner, pruner_spec.warmup_evals)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=study_seed),
                                pruner=optuna_pruner)
    study.optimize(objective, n_trials=trials)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise TuneError(f"all {trials} trials were pruned; run more trials or set tune.pruner.kind: none")
    _write_best(study, runs_dir, base.name, out)
    return study, out


def _warmup_pruner(optuna, inner, evals: int):
    """Prune only once a trial has reported ``evals`` evaluations (Optuna's own warmup counts steps, and
    our steps are env steps, whose spacing depends on the manifest)."""

    class WarmupEvals(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return len(trial.intermediate_values) >= evals and inner.prune(study, trial)

    return WarmupEvals()


def _write_best(study, runs_dir: Path, name: str, out: Path) -> None:
    import json

    import yaml

    from experiments.manifest import load_manifest

    best = study.best_trial
    run0 = next(p for p in sorted((Path(runs_dir) / best.user_attrs["group"]).iterdir()) if p.is_dir())
    manifest = json.loads((run0 / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = f"{name}-best"
    manifest.pop("tune", None)
    header = (f"# best of {len(study.trials)} trials (rl tune): mean final {OBJECTIVE} {best.value:g} "
              f"over seeds, trial {best.number} ({best.user_attrs['group']})\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    load_manifest(out)  # the file must load as a manifest again


def main_tune(args) -> int:
    """``rl tune``: run the study and print one line per trial and the best."""
    study, out = tune(args.manifest, args.space, args.trials, args.seeds_per_trial, args.overrides, args.runs_dir,
                      args.jobs, args.out, args.study_seed, args.pruner, show_progress=not args.quiet)
    for t in study.trials:
        if "pruned_at" in t.user_attrs:
            value = f"pruned at step {t.user_attrs['pruned_at']}"
        else:
            value = "—" if t.value is None else f"{t.value:g}"
        print(f"trial {t.number:3d}  {t.user_attrs.get('group', '')}  value {value}  "
              + " ".join(t.user_attrs.get("overrides", [])))
    print(f"best: trial {study.best_trial.number}, mean final {OBJECTIVE} {study.best_value:g}; wrote {out}")
    return 0
