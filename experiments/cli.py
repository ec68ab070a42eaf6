"""The ``rl`` command: train, eval, plot, reproduce, check-env.

User mistakes (bad manifest, unknown env, existing run, broken checkpoint ...) print one line
``rl: error: ...`` and exit with code 2; nothing is half-written. Heavy libraries are imported
inside the commands so ``rl --help`` answers fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]

EXIT_USER = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rl", description="rlsuite: reproducible RL training from YAML manifests.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train from a manifest, or --resume a run")
    t.add_argument("manifest", nargs="?", type=Path, help="YAML manifest (omit with --resume)")
    t.add_argument("--resume", type=Path, metavar="RUN", help="continue RUN from its newest verified checkpoint")
    t.add_argument("--seed", type=int, help="override the manifest seed")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a manifest field, e.g. --set agent.learning_rate=1e-3 (repeatable)")
    t.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs go (default: runs/)")
    t.add_argument("--run-id", help="run directory name (default: s<seed>-<UTC time>)")
    t.add_argument("--force", action="store_true", help="restart an existing run directory from scratch")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a run's saved policy (never writes into the run), or an SB3 .zip")
    e.add_argument("run", type=Path, help="a run directory, or a stable-baselines3 model .zip (with --env)")
    e.add_argument("--env", help="SB3 .zip: the gymnasium env id to evaluate it on")
    e.add_argument("--trust-pickle", action="store_true",
                   help="SB3 .zip: allow its cloudpickle payloads, which run code when loaded (trusted files only)")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, help="evaluation seed (default: the run's seed)")
    e.add_argument("--checkpoint", type=int, metavar="STEP", help="use checkpoint STEP instead of final/")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--tasks", action="store_true", help="curriculum: evaluate over the held-out task grid")
    e.add_argument("--pareto", action="store_true", help="multi-objective: sweep weights, report the front, HV, EU")
    e.add_argument("--points", type=int, help="--pareto: number of weights (grid or sampled)")
    e.add_argument("--sweep", choices=["grid", "sampled"], help="--pareto: how weights are chosen")
    e.add_argument("--episodes-per-weight", type=int, help="--pareto: episodes per weight")

    pl = sub.add_parser("plot", help="learning curves across seeds (IQM or mean, 95%% bootstrap CI)",
                        description="Learning curves across seeds (IQM or mean, 95% bootstrap CI), one line per "
                                    "group (manifest name). Runs with phases (offline-to-online) get their offline "
                                    "part shaded and a dashed line at each switch, and a table of return at the "
                                    "switch, dip, steps to recover and final return (IQM over seeds) is printed; "
                                    "with --x online, an O2O group and an online-from-scratch group line up on "
                                    "online env steps and the table puts their final returns side by side.")
    pl.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_GROUP")
    pl.add_argument("--metric", default="rollout/ep_rew_mean")
    pl.add_argument("--x", choices=["step", "online"], default="step",
                    help="x axis: the step column (default; offline updates + online env steps for phased runs) "
                         "or online env steps (time/total_timesteps)")
    pl.add_argument("--statistic", choices=["iqm", "mean"], default="iqm")
    pl.add_argument("--out", type=Path, default=Path("curves.png"), help=".png or .svg")
    pl.add_argument("--allow-mixed", action="store_true", help="merge runs whose manifests differ")
    pl.add_argument("--pareto", action="store_true", help="multi-objective: draw each run's Pareto front")
    pl.add_argument("--checkpoint", type=int, metavar="STEP", help="--pareto: use checkpoint STEP, not final/")
    pl.add_argument("--curriculum", action="store_true",
                    help="curriculum: density of the sampled tasks against env steps, one panel per task parameter")

    r = sub.add_parser("reproduce", help="rerun a run from its stored manifest and compare")
    r.add_argument("run", type=Path)
    r.add_argument("--out-dir", type=Path, help="keep the rerun here (default: a temporary directory)")

    c = sub.add_parser("check-env", help="run gymnasium's env checker; fail on any warning")
    c.add_argument("env_id")

    sw = sub.add_parser("sweep", help="many runs from one manifest: seeds x grid, on a local pool or Ray")
    sw.add_argument("manifest", type=Path, help="YAML manifest")
    sw.add_argument("--seeds", required=True, help="seeds, e.g. 0-9 or 0-4,10 (inclusive ranges)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a manifest field and its values, e.g. agent.learning_rate=1e-3,3e-4 (repeatable)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a manifest field in every run (repeatable)")
    sw.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs go (default: runs/)")
    sw.add_argument("--jobs", type=int, help="local processes (default: cores / manifest threads)")
    sw.add_argument("--backend", choices=["local", "ray"], default="local")
    sw.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: start a local Ray instance)")
    sw.add_argument("--max-retries", type=int, default=3, help="Ray: retries of a run whose worker died")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")

    rp = sub.add_parser("report", help="markdown report: IQM and 95%% CI per group, curves, performance profiles")
    rp.add_argument("paths", nargs="+", type=Path, metavar="GROUP", help="group directories (runs/<name>) or runs")
    rp.add_argument("--out", type=Path, default=Path("report.md"), help="the report (.md); PNGs are written beside it")
    rp.add_argument("--metric", dest="metrics", action="append", metavar="M",
                    help="metric column (repeatable; default: eval/mean_reward, rollout/ep_rew_mean and "
                         "extension metrics the runs have)")
    rp.add_argument("--allow-mixed", action="store_true", help="merge runs whose manifests differ")
    rp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")

    tu = sub.add_parser("tune", help="hyperparameter search with Optuna (pip install 'rlsuite[optuna]')")
    tu.add_argument("manifest", type=Path, help="YAML manifest")
    tu.add_argument("--space", type=Path, help="search space YAML (field: {low, high, log} or {choices}); "
                                               "default: the manifest's tune.space")
    tu.add_argument("--trials", type=int, help="number of trials (default: the manifest's tune.trials)")
    tu.add_argument("--seeds-per-trial", type=int, help="seeds per trial (default: tune.seeds_per_trial, or 1)")
    tu.add_argument("--pruner", choices=["median", "none"], help="stop trials behind the median at an eval "
                                                                  "(default: tune.pruner.kind, or median)")
    tu.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a manifest field in every trial (repeatable)")
    tu.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where trial runs go (default: runs/)")
    tu.add_argument("--jobs", type=int, help="local processes per trial (default: cores / manifest threads)")
    tu.add_argument("--out", type=Path, help="best manifest (default: <name>-best.yaml in the runs dir)")
    tu.add_argument("--study-seed", type=int, default=0, help="seed of Optuna's sampler (default: 0)")
    tu.add_argument("--quiet", action="store_true", help="no progress bar")

    co = sub.add_parser("collect", help="write an offline dataset (Minari format) from a policy, random, or a mix")
    co.add_argument("--env", required=True, help="gymnasium env id, e.g. Pendulum-v1")
    source = co.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", help="a run directory (its final/ policy) or 'random'")
    source.add_argument("--replay", metavar="RUN",
                        help="an off-policy run directory: its checkpointed replay buffer becomes the dataset "
                             "(D4RL's medium-replay); --episodes, --mix and --deterministic do not apply")
    co.add_argument("--episodes", type=int, help="episodes to play (required with --policy)")
    co.add_argument("--mix", help="episode shares per source, e.g. final:0.1,random:0.9 (default: all --policy)")
    co.add_argument("--out", required=True, help="dataset id, e.g. pendulum/medium-v0")
    co.add_argument("--root", help="datasets directory (default: $MINARI_DATASETS_PATH or data/datasets)")
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--deterministic", action="store_true", help="policy mean actions instead of samples")
    co.add_argument("--force", action="store_true", help="overwrite an existing dataset of that id")
    co.add_argument("--ref-expert", metavar="RUN_OR_RETURN",
                    help="the expert reference of normalised scores: a run directory (its final policy's "
                         "deterministic return) or a number (default: --policy's own deterministic return)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rl.core.advantages import use_scan_xla_flags

    use_scan_xla_flags()  # before JAX starts
    try:
        return _dispatch(args)
    except KeyboardInterrupt as err:  # experiments.train.Interrupted says which checkpoint it wrote
        print(f"rl: interrupted; {str(err) or 'the last checkpoint is kept'}, continue with 'rl train --resume RUN'",
              file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except Exception as err:  # user mistakes become one line; anything else is a bug with a traceback
        if _is_user_error(err):
            print(f"rl: error: {err}", file=sys.stderr)
            return EXIT_USER
        if isinstance(err, OSError) and err.errno is not None:  # disk full, read-only, permissions: one line
            from experiments.run_dir import os_error_text

            print(f"rl: error: {os_error_text(err)}: {err.filename or 'an unnamed file'}", file=sys.stderr)
            return EXIT_USER
        if type(err).__name__ == "TrainingError":
            print(f"rl: training stopped: {err}", file=sys.stderr)
            return 1
        raise


def _is_user_error(err: Exception) -> bool:
    names = {"ManifestError", "RunDirError", "EnvBuildError", "AgentError", "CheckpointError",
             "EnvContractError", "PlotError", "EvalError", "SweepError", "ReportError", "TuneError",
             "ParetoError", "MOWrapperError", "CurriculumError", "DatasetError", "SB3ConfigError",
             "MetricsFileError"}
    return type(err).__name__ in names


def _dispatch(args) -> int:
    if args.command == "train":
        return _train(args)
    if args.command == "eval" and (args.env is not None or args.trust_pickle or args.run.suffix == ".zip"):
        return _eval_foreign(args)
    if args.command == "eval" and args.tasks:
        from experiments.curriculum import evaluate_heldout, format_heldout_table

        res = evaluate_heldout(args.run, None, args.seed, args.checkpoint, not args.stochastic)
        print(json.dumps(res) if args.json else format_heldout_table(res))
        return 0
    if args.command == "eval" and args.pareto:
        from experiments.mo import evaluate_pareto, format_pareto

        res = evaluate_pareto(args.run, args.checkpoint, args.points, args.sweep, args.episodes_per_weight, args.seed)
        print(json.dumps(res) if args.json else format_pareto(res))
        return 0
    if args.command == "plot" and (args.curriculum or args.pareto) and args.x != "step":
        from experiments.plotting import PlotError

        raise PlotError(f"--x {args.x} is for learning curves, not for --curriculum or --pareto")
    if args.command == "plot" and args.curriculum:
        from experiments.plot_curriculum import plot_curriculum
        from experiments.plotting import PlotError

        if args.pareto:
            raise PlotError("--curriculum and --pareto draw different pictures; give one of them")
        print(f"wrote {plot_curriculum(args.paths, args.out, allow_mixed=args.allow_mixed)}")
        return 0
    if args.command == "plot" and args.pareto:
        from experiments.mo import plot_pareto

        out, summary = plot_pareto(args.paths, args.out, args.checkpoint)
        print(f"wrote {out}")
        print(json.dumps(summary, indent=2))
        return 0
    if args.command == "eval":
        from experiments.evaluate_run import evaluate_run, format_table

        result = evaluate_run(args.run, args.episodes, args.seed, args.checkpoint, not args.stochastic)
        print(json.dumps(result) if args.json else format_table(result))
        return 0
    if args.command == "plot":
        from experiments.o2o import format_o2o_table, o2o_table
        from experiments.plotting import plot_curves

        out = plot_curves(args.paths, metric=args.metric, out=args.out, statistic=args.statistic,
                          allow_mixed=args.allow_mixed, x=args.x)
        print(f"wrote {out if out is not None else args.out}")
        rows = o2o_table(args.paths, allow_mixed=args.allow_mixed, statistic=args.statistic)
        if args.x == "online" or any(r["switch"] is not None for r in rows):  # offline-to-online runs
            print(format_o2o_table(rows, "IQM" if args.statistic == "iqm" else "mean"), end="")
        return 0
    if args.command == "reproduce":
        from experiments.reproduce import reproduce

        same, report = reproduce(args.run, args.out_dir)
        print(report)
        return 0 if same else 1
    if args.command == "check-env":
        from envs.checks import check_env_strict

        problems = check_env_strict(args.env_id)
        for line in problems:
            print(f"- {line}")
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 0 if not problems else 1
    if args.command == "sweep":
        from experiments.sweep import main_sweep

        return main_sweep(args)
    if args.command == "report":
        from experiments.report import write_report

        out = write_report(args.paths, args.out, args.metrics, allow_mixed=args.allow_mixed, seed=args.seed)
        print(f"wrote {out}")
        return 0
    if args.command == "collect":
        path, card = _collect(args)
        print(f"wrote {path} ({card['episodes']} episodes, {card['steps']} steps, mean return "
              f"{card['mean_return']:.1f}, max {card['max_return']:.1f})")
        print(f"sha256: {card['sha256']}")
        return 0
    if args.command == "tune":
        from experiments.tune import main_tune

        return main_tune(args)
    raise AssertionError(args.command)


def _collect(args):
    from experiments.datasets import DatasetError, collect

    if args.replay is None:
        if args.episodes is None:
            raise DatasetError("rl collect --policy: --episodes N is required")
        return collect(args.env, args.policy, args.episodes, args.out, args.mix, args.seed, args.root,
                       args.deterministic, args.force, ref_expert=args.ref_expert)
    from experiments.replay_dataset import collect_replay

    given = [flag for flag, value in (("--episodes", args.episodes), ("--mix", args.mix)) if value is not None]
    given += ["--deterministic"] if args.deterministic else []
    if given:
        raise DatasetError(f"rl collect --replay: {', '.join(given)} do(es) not apply (the buffer's episodes are "
                           "written as they are); drop it")
    return collect_replay(args.env, args.replay, args.out, args.root, args.seed, args.force,
                          ref_expert=args.ref_expert)


def _eval_foreign(args) -> int:
    from experiments.evaluate_run import EvalError, format_table
    from experiments.foreign import evaluate_sb3_zip, is_sb3_zip

    if not is_sb3_zip(args.run):
        raise EvalError(f"{args.run}: --env and --trust-pickle are for stable-baselines3 .zip files; "
                        "a run directory knows its env")
    for flag, used in (("--checkpoint", args.checkpoint is not None), ("--tasks", args.tasks),
                       ("--pareto", args.pareto)):
        if used:
            raise EvalError(f"{flag} is for run directories, not for an SB3 .zip")
    result = evaluate_sb3_zip(args.run, args.env, args.episodes, args.seed, not args.stochastic, args.trust_pickle)
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def _train(args) -> int:
    from experiments.manifest import ManifestError, load_manifest

    if args.resume is not None:
        if args.manifest is not None or args.overrides or args.seed is not None:
            raise ManifestError("--resume continues a run from its stored manifest; "
                                "drop the manifest path, --set and --seed")
        from experiments.train import resume_run

        run = resume_run(args.resume, show_progress=not args.quiet)
    else:
        if args.manifest is None:
            raise ManifestError("give a manifest path, or --resume RUN")
        from experiments.train import start_run

        manifest, _ = load_manifest(args.manifest, args.overrides, args.seed)
        run = start_run(manifest, args.runs_dir, args.run_id, args.force, args.overrides,
                        show_progress=not args.quiet)
    print(f"run finished: {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
