"""Training throughput of rlsuite's PPO against stable-baselines3's PPO on CartPole-v1, 8 envs.

Run ``python benchmarks/ppo_vs_sb3.py [--steps 50000] [--repeats 3] [--vectorization sync|vector]``, or
``--profile`` for a cProfile of one of our runs. ``--vectorization vector`` steps our 8 CartPoles with
gymnasium's own batched CartPole (``env.vectorization: vector``: one numpy step for all 8, NEXT_STEP
autoreset, each episode's reset step stored as invalid) instead of 8 Python envs; at 8 envs it is not
faster end to end (measured: 6,145 vs 6,641 steps/s), it pays from ~32 envs. SB3 always steps its
``DummyVecEnv`` of 8 Python envs.
``benchmarks/ppo_learning.py`` imports the hyperparameter mapping and the shared evaluation from here
(this directory is on ``sys.path`` when a benchmark runs as a script).

Both sides get the hyperparameters of ``experiments/manifests/cartpole_ppo.yaml`` (converted by
:func:`sb3_ppo_kwargs`, which refuses options SB3 cannot match), one torch thread, and the same seed
per round. SB3 steps a ``DummyVecEnv`` of 8 ``CartPole-v1`` (``make_vec_env``'s default), ours a
gymnasium ``SyncVectorEnv`` (or, with ``--vectorization vector``, the batched CartPole). Rounds
alternate ours, SB3, ours, SB3, ... so load from other processes
on the machine falls on both alike. One small untimed warm-up run of each side goes first, so lazy
imports and JAX's one-off compile of the GAE kernel for the ``[32, 8, 1]`` shape are not timed.

What is timed, in env steps per second of wall time:

* ours ``train``: ``experiments.train._train`` as called by ``start_run``: session set-up (vector
  env, agent, CSV and TensorBoard sinks), the loop, the one final evaluation that every run does
  (1 episode here: ``evaluation.every_steps=0``, ``evaluation.episodes=1``), the final checkpoint
  (``checkpoint.every_steps`` is set beyond the budget, so there is only that one) and the final
  policy. ``start_run``'s preflight and run-directory set-up are timed apart (``setup``) and not
  counted. ``loop``: the ``time/elapsed_s`` of the last ``metrics.csv`` row (session start to the last
  update; no final evaluation or checkpoint).
* SB3 ``train``: building the ``DummyVecEnv`` and the ``PPO`` model, plus ``learn()`` (SB3 never
  evaluates unless given a callback). ``learn``: ``learn()`` alone.

The final return of each run is the mean of 10 deterministic episodes on the same 10 env seeds for
both sides (:func:`deterministic_returns`), outside the timed region.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CARTPOLE = ROOT / "experiments" / "manifests" / "cartpole_ppo.yaml"
EVAL_SEEDS = list(range(10_000, 10_010))
"""Reset seeds of the 10 evaluation episodes, the same for every run of either side."""
NO_CHECKPOINT = 10**12
"""A checkpoint interval beyond any budget: only the final checkpoint is written."""


OURS_OVERRIDES: list[str] = []
"""Extra ``--set`` overrides for our side (``--vectorization vector`` adds ``env.vectorization=vector``)."""


def ours_manifest(path: Path, steps: int, seed: int, cheap_eval: bool):
    """The manifest at ``path`` with ``steps`` env steps (and, if asked, only a 1-episode final eval)."""
    from experiments.manifest import load_manifest

    overrides = [f"train.total_steps={steps}", *OURS_OVERRIDES]
    if cheap_eval:
        overrides += ["evaluation.every_steps=0", "evaluation.episodes=1", f"checkpoint.every_steps={NO_CHECKPOINT}"]
    return load_manifest(path, overrides, seed=seed)[0]


def sb3_ppo_kwargs(cfg) -> dict:
    """SB3 ``PPO`` keyword arguments equal to our ``PPOConfig`` (schedules included)."""
    from stable_baselines3.common.utils import LinearSchedule
    from torch import nn

    from agents.common.config import ConstantSchedule

    if cfg.normalize_obs:
        raise ValueError("agent.normalize_obs=true has no PPO keyword in SB3 (it is VecNormalize); set it false")

    def schedule(spec):
        if isinstance(spec, float | int):
            return float(spec)
        if isinstance(spec, ConstantSchedule):
            return spec.value
        # Both clamp at ``end`` after ``fraction`` of training (SB3: end_fraction of progress).
        return LinearSchedule(spec.start, spec.end, spec.fraction)

    return dict(
        learning_rate=schedule(cfg.learning_rate), n_steps=cfg.n_steps, batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=schedule(cfg.clip_range),
        clip_range_vf=cfg.clip_range_vf, normalize_advantage=cfg.normalize_advantage, ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm, target_kl=cfg.target_kl,
        policy_kwargs=dict(net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
                           activation_fn={"tanh": nn.Tanh, "relu": nn.ReLU}[cfg.activation],
                           ortho_init=cfg.ortho_init, log_std_init=cfg.log_std_init),
    )


def deterministic_returns(act, env_id: str, seeds: list[int]) -> np.ndarray:
    """Undiscounted returns of one episode per seed with ``act(obs) -> action`` (Box actions clipped)."""
    import gymnasium as gym

    env = gym.make(env_id)
    space = env.action_space
    out = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            ret, over = 0.0, False
            while not over:
                action = act(obs)
                if isinstance(space, gym.spaces.Box):
                    action = np.clip(action, space.low, space.high)
                obs, reward, terminated, truncated, _ = env.step(action)
                ret += float(reward)
                over = terminated or truncated
            out.append(ret)
    finally:
        env.close()
    return np.asarray(out)


def ours_returns(run_dir: Path, env_id: str, seeds: list[int]) -> np.ndarray:
    """:func:`deterministic_returns` of a finished run's final policy."""
    from experiments.evaluate_run import load_policy_agent

    _, agent, _ = load_policy_agent(run_dir, None)
    return deterministic_returns(lambda obs: agent.act(obs[None], deterministic=True)[0][0], env_id, seeds)


def sb3_returns(model, env_id: str, seeds: list[int]) -> np.ndarray:
    """:func:`deterministic_returns` of an SB3 model."""
    return deterministic_returns(lambda obs: model.predict(obs, deterministic=True)[0], env_id, seeds)


@contextlib.contextmanager
def timing_inner_train(into: dict):
    """Time ``experiments.train._train`` (everything of ``start_run`` after run-directory set-up)."""
    import experiments.train as train_mod

    inner = train_mod._train

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            into["train_s"] = time.perf_counter() - start

    train_mod._train = timed
    try:
        yield
    finally:
        train_mod._train = inner


def last_metrics_row(run_dir: Path) -> dict[str, str]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))[-1]


def run_ours(steps: int, seed: int, runs_dir: Path, run_id: str, evaluate: bool = True) -> dict:
    """One cheap-eval CartPole run of ours; seconds of set-up, training call and loop, and the return."""
    from experiments.train import start_run

    manifest = ours_manifest(CARTPOLE, steps, seed, cheap_eval=True)
    out: dict = {}
    start = time.perf_counter()
    with timing_inner_train(out):
        run_dir = start_run(manifest, runs_dir, run_id=run_id, show_progress=False)
    out["setup_s"] = time.perf_counter() - start - out["train_s"]
    row = last_metrics_row(run_dir)
    out["steps"] = int(float(row["step"]))
    out["loop_s"] = float(row["time/elapsed_s"])
    if evaluate:
        out["returns"] = ours_returns(run_dir, manifest.env.id, EVAL_SEEDS)
    return out


def run_sb3(steps: int, seed: int, evaluate: bool = True) -> dict:
    """One SB3 CartPole run with our manifest's hyperparameters; seconds of build and learn, and the return."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    manifest = ours_manifest(CARTPOLE, steps, seed, cheap_eval=True)
    kwargs = sb3_ppo_kwargs(manifest.agent)
    start = time.perf_counter()
    env = make_vec_env(manifest.env.id, n_envs=manifest.env.num_envs, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    built = time.perf_counter()
    model.learn(total_timesteps=steps)
    end = time.perf_counter()
    out = {"build_s": built - start, "learn_s": end - built, "steps": int(model.num_timesteps)}
    if evaluate:
        out["returns"] = sb3_returns(model, manifest.env.id, EVAL_SEEDS)
    env.close()
    return out


def preload() -> None:
    """Import what both sides import lazily, so no timed region pays for an import; before JAX starts,
    set ``XLA_FLAGS`` as the ``rl`` command does."""
    from rl.core.advantages import use_scan_xla_flags

    use_scan_xla_flags()
    import jax  # noqa: F401
    import safetensors.numpy  # noqa: F401
    import stable_baselines3  # noqa: F401
    import tensorboard.compat.proto.event_pb2  # noqa: F401
    import tensorboard.summary.writer.event_file_writer  # noqa: F401
    import torch

    import experiments.train  # noqa: F401

    torch.set_num_threads(1)


def compare(steps: int, repeats: int, warmup_steps: int) -> None:
    from rich.console import Console

    preload()
    console = Console()
    console.width = max(console.width, 160)  # the table is wide; rich wraps at 80 columns when piped
    ours, sb3 = [], []
    with tempfile.TemporaryDirectory(prefix="ppo_vs_sb3-") as tmp:
        runs = Path(tmp)
        run_ours(warmup_steps, 0, runs, "warmup", evaluate=False)
        run_sb3(warmup_steps, 0, evaluate=False)
        for r in range(repeats):
            ours.append(run_ours(steps, r, runs, f"r{r}"))
            console.print(f"round {r}: ours {ours[-1]['steps'] / ours[-1]['train_s']:,.0f} steps/s", highlight=False)
            sb3.append(run_sb3(steps, r))
            console.print(f"round {r}: SB3  {sb3[-1]['steps'] / (sb3[-1]['build_s'] + sb3[-1]['learn_s']):,.0f} "
                          "steps/s", highlight=False)
    console.print(results_table(ours, sb3))
    console.print(summary(ours, sb3), highlight=False)


def results_table(ours: list[dict], sb3: list[dict]):
    from rich.table import Table

    table = Table(title="PPO CartPole-v1, 8 envs, 1 torch thread: env steps/s per round (median last)")
    for col in ("round", "env steps", "ours setup s", "ours train s", "ours steps/s", "ours loop steps/s",
                "SB3 build s", "SB3 learn s", "SB3 steps/s", "SB3 learn steps/s", "ours/SB3",
                "ours return", "SB3 return"):
        table.add_column(col, justify="right")
    rows = [per_round(o, s) for o, s in zip(ours, sb3, strict=True)]
    for r, row in enumerate(rows):
        table.add_row(str(r), *fmt_row(row))
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    med["ratio"] = med["ours_sps"] / med["sb3_sps"]
    table.add_section()
    table.add_row("median", *fmt_row(med), style="bold")
    return table


def per_round(o: dict, s: dict) -> dict:
    ours_sps = o["steps"] / o["train_s"]
    sb3_sps = s["steps"] / (s["build_s"] + s["learn_s"])
    return {"steps": o["steps"], "ours_setup": o["setup_s"], "ours_train": o["train_s"], "ours_sps": ours_sps,
            "ours_loop_sps": o["steps"] / o["loop_s"], "sb3_build": s["build_s"], "sb3_learn": s["learn_s"],
            "sb3_sps": sb3_sps, "sb3_learn_sps": s["steps"] / s["learn_s"], "ratio": ours_sps / sb3_sps,
            "ours_ret": float(np.mean(o["returns"])), "sb3_ret": float(np.mean(s["returns"]))}


def fmt_row(row: dict) -> list[str]:
    return [f"{row['steps']:,.0f}", f"{row['ours_setup']:.2f}", f"{row['ours_train']:.2f}", f"{row['ours_sps']:,.0f}",
            f"{row['ours_loop_sps']:,.0f}", f"{row['sb3_build']:.2f}", f"{row['sb3_learn']:.2f}",
            f"{row['sb3_sps']:,.0f}", f"{row['sb3_learn_sps']:,.0f}", f"{row['ratio']:.2f}x",
            f"{row['ours_ret']:.1f}", f"{row['sb3_ret']:.1f}"]


def summary(ours: list[dict], sb3: list[dict]) -> str:
    ours_train = statistics.median(o["steps"] / o["train_s"] for o in ours)
    sb3_train = statistics.median(s["steps"] / (s["build_s"] + s["learn_s"]) for s in sb3)
    ours_loop = statistics.median(o["steps"] / o["loop_s"] for o in ours)
    sb3_learn = statistics.median(s["steps"] / s["learn_s"] for s in sb3)
    ours_ret = np.concatenate([o["returns"] for o in ours])
    sb3_ret = np.concatenate([s["returns"] for s in sb3])
    return "\n".join([
        f"median ratio ours/SB3, training call: {ours_train / sb3_train:.2f}x "
        f"({ours_train:,.0f} vs {sb3_train:,.0f} steps/s); ours loop vs SB3 learn(): {ours_loop / sb3_learn:.2f}x",
        "ours' training call includes its one final evaluation (1 deterministic episode), the final checkpoint "
        "and final policy; SB3 evaluates nothing.",
        f"deterministic return over {len(EVAL_SEEDS)} episodes x {len(ours)} rounds (same env seeds): "
        f"ours {ours_ret.mean():.1f} ± {ours_ret.std():.1f}, SB3 {sb3_ret.mean():.1f} ± {sb3_ret.std():.1f}",
    ])


def profile(steps: int, warmup_steps: int, top: int = 25) -> None:
    """cProfile one of our runs (after a warm-up run) and print the top entries by cumulative time."""
    preload()
    with tempfile.TemporaryDirectory(prefix="ppo_profile-") as tmp:
        runs = Path(tmp)
        run_ours(warmup_steps, 0, runs, "warmup", evaluate=False)
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        out = run_ours(steps, 0, runs, "profiled", evaluate=False)
        prof.disable()
        wall = time.perf_counter() - start
    print(f"ours, {out['steps']:,} env steps: {wall:.2f} s wall under cProfile "
          f"({out['steps'] / wall:,.0f} steps/s with profiling overhead)")
    for key, n in (("cumulative", top), ("tottime", 15)):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(n)
        text = buf.getvalue()
        print(f"\n=== top {n} by {key} ===")
        print(text[text.find("   ncalls"):].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per run (default 50000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of ours then SB3 (default 3)")
    parser.add_argument("--warmup-steps", type=int, default=2048, help="untimed warm-up run of each side")
    parser.add_argument("--profile", action="store_true", help="cProfile one of our runs instead of comparing")
    parser.add_argument("--vectorization", choices=["sync", "vector"], default=None,
                        help="override our env.vectorization (default: the manifest's, sync)")
    args = parser.parse_args()
    if args.vectorization is not None:
        OURS_OVERRIDES.append(f"env.vectorization={args.vectorization}")
    if args.steps < 1 or args.repeats < 1 or args.warmup_steps < 1:
        parser.error("--steps, --repeats and --warmup-steps must be >= 1")
    if args.profile:
        profile(args.steps, args.warmup_steps)
    else:
        compare(args.steps, args.repeats, args.warmup_steps)


if __name__ == "__main__":
    main()
