"""What each speed lever gives one SAC gradient step, and the matmul floor under all of them.

Run ``python benchmarks/sac_levers.py [--updates 300] [--rounds 5]`` (about a minute).

One SAC update on a Pendulum-v1-sized problem (obs 3, action 1, the hyperparameters of
``experiments/manifests/pendulum_sac.yaml``: [256, 256] networks, batch 256) is timed with our agent as
it ships and with one lever at a time taken away. Variants alternate round by round so load from other
processes falls on all alike; the table gives the median ms per update.

* ``as shipped``: twin critics as one batched network (``TwinQ``: one ``baddbmm`` per layer),
  ``LeanAdam.fast_step`` (torch's fused Adam kernel without ``Optimizer.step``'s Python), the
  Polyak update as two ``foreach`` kernels, one torch thread.
* ``Optimizer.step``: the same fused Adam called through ``torch.optim.Adam.step``.
* ``per-tensor Polyak``: the target update as a Python loop of ``mul_``/``add_`` per tensor (SB3's way).
* ``foreach Adam``: ``torch.optim.Adam(foreach=True)`` instead of the fused kernel.
* ``2 threads``: ``torch.set_num_threads(2)``.
* ``bfloat16 matmuls``: a lever added rather than taken away, ``agent.matmul_dtype: bfloat16`` (the
  update's matrix products in bf16 under CPU autocast, fp32 weights and accumulation). Its floor is
  the same work at the bf16 GEMM rate, printed beside the fp32 one.

The floor: one update multiplies matrices worth ``F`` floating-point operations (counted from the layer
shapes: critic forward/backward, target forward, actor forward/backward on s and s', the actor
loss's critic forward and its input-gradient backward). ``F`` divided by the GEMM rate this machine
reaches on one thread (or two) for a 256x256x256 product is the least time an fp32 update can take, whatever
the framework; the ratio SB3's measured update time / floor bounds any speed-up over SB3.

Measured on the 2-core CPU machine (``--updates 300 --rounds 5``): as shipped 11.00 ms, 2 threads 6.76
ms, bfloat16 matmuls 6.70 ms, SB3 13.16 ms with one thread and 10.26 ms with two; floor 5.77 ms fp32 on
one thread (95 GFLOP/s), 3.32 ms on two (165 GFLOP/s), 2.69 ms bf16 on one (203 GFLOP/s). So at two
threads each ours is 1.52x SB3's update, and SB3's is 3.09x the two-thread floor: an fp32 update would
have to run at the floor itself to be 3x SB3's at equal threads. (An earlier run of the one-thread rows:
as shipped 9.87 ms, bf16 6.61 ms, SB3 12.91 ms; the machine's speed drifts between sessions, the ratios
less.) Under the torch profiler the bf16 update's matrix products take ~3.6 ms and the rest (casts, ReLU
and its backward, Adam, autograd and dispatch) ~2 ms; at two threads in fp32 the products take ~4.2 ms
of ~6.6; the env step, acting and the replay write are ~7% of a training step (py-spy over a 3,100-step
run at two threads). A lever tried and left out: ``torch.compile`` (inductor) of the critic and actor
losses (noise drawn outside, same math) made the update slower, 12.4 ms against 9.5 ms in fp32 and 8.4
ms against 6.2 ms in bf16, besides ~9 s of compilation per run. Another: the actor's and the critics'
gradients computed at once on two Python threads of one torch thread each, both from the weights before
the update (the original SAC's simultaneous step; noise drawn first, so it stays deterministic), then
both Adam steps: 5.56 ms against 5.66 ms for the shipped update on two torch threads, no gain for a
changed update order. For scale, the same update written in JAX and jitted whole (SBX's approach; XLA
on both cores, a throwaway script) took 5.1 ms in fp32 and 4.2 ms with bf16 matrix products.

On the 2-core Intel Xeon machine (AVX-512 and AVX512-BF16, no AMX; ``--updates 200 --rounds 3``): as
shipped 6.07 ms, 2 threads 4.44 ms, bfloat16 matmuls 9.92 ms, SB3 8.99 ms with one thread and 6.98 ms
with two; GEMM 186 GFLOP/s fp32 and 97 bf16 on one thread, 343 fp32 on two, so floors of 2.94 ms (one
thread) and 1.60 ms (two). SB3's update is 3.06x the one-thread floor and 4.37x the two-thread one: on
this CPU 3x SB3 at two threads is not ruled out by the floor, but it needs an update at 1.46x the floor,
and ours is at 2.79x; under the torch profiler its matrix products alone take ~2.2 ms of its 4.2 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OBS, ACT, BATCH = 3, 1, 256


def make_agent(overrides: tuple[str, ...] = ()):
    import gymnasium as gym

    from agents.registry import build_agent
    from experiments.manifest import load_manifest

    manifest, _ = load_manifest(ROOT / "experiments" / "manifests" / "pendulum_sac.yaml", list(overrides))
    env = gym.make("Pendulum-v1")
    return build_agent(manifest.agent, env.observation_space, env.action_space, 1, 0), manifest.agent


def batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"obs": rng.standard_normal((BATCH, OBS), dtype=np.float32),
            "next_obs": rng.standard_normal((BATCH, OBS), dtype=np.float32),
            "action": rng.uniform(-2, 2, (BATCH, ACT)).astype(np.float32),
            "reward": rng.standard_normal((BATCH, 1), dtype=np.float32),
            "terminated": np.zeros(BATCH, bool), "truncated": np.zeros(BATCH, bool)}


def loop_polyak(target, source, tau):
    with torch.no_grad():
        for t, s in zip(target, source, strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def variant(name: str):
    """(agent, threads) with one lever removed."""
    import agents.sac.agent as sac_agent

    agent, _ = make_agent(("agent.matmul_dtype=bfloat16",) if name == "bfloat16 matmuls" else ())
    threads = 1
    if name == "Optimizer.step":
        for opt in (agent.actor_opt, agent.critic_opt):
            opt.fast_step = opt.step
    elif name == "foreach Adam":
        for attr in ("actor_opt", "critic_opt"):
            old = getattr(agent, attr)
            new = torch.optim.Adam(old.param_groups[0]["params"], lr=old.param_groups[0]["lr"], foreach=True)
            new.fast_step = new.step
            setattr(agent, attr, new)
    elif name == "per-tensor Polyak":
        agent._polyak = loop_polyak
    elif name == "2 threads":
        threads = 2
    return agent, threads, sac_agent


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block on ``threads`` torch threads, then go back to the script's one."""
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(1)


def time_updates(agent, threads: int, module, data, updates: int) -> float:
    polyak = getattr(agent, "_polyak", None)
    saved = module.polyak_update
    if polyak is not None:
        module.polyak_update = polyak
    try:
        with torch_threads(threads):
            agent.update(data)  # warm
            start = time.perf_counter()
            for _ in range(updates):
                agent.update(data)
            return (time.perf_counter() - start) / updates * 1e3
    finally:
        module.polyak_update = saved


def sb3_update_ms(updates: int, threads: int = 1) -> float:
    """SB3 SAC's ``train(gradient_steps=1)`` on a filled buffer, same hyperparameters, ``threads`` torch
    threads."""
    from sac_vs_sb3 import ours_manifest, sb3_sac_kwargs
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    cfg = ours_manifest(1, 0).agent
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    model = SAC("MlpPolicy", env, seed=0, device="cpu", verbose=0, **sb3_sac_kwargs(cfg))
    model.learn(total_timesteps=cfg.learning_starts + 300)
    with torch_threads(threads):
        model.train(gradient_steps=1, batch_size=cfg.batch_size)
        start = time.perf_counter()
        for _ in range(updates):
            model.train(gradient_steps=1, batch_size=cfg.batch_size)
        return (time.perf_counter() - start) / updates * 1e3


def update_flops(hidden: list[int]) -> float:
    """Multiply-add work of one SAC update, 2 flops per multiply-add (see the module docstring)."""
    def mlp_fwd(in_dim: int, out_dim: int) -> float:
        dims = [in_dim, *hidden, out_dim]
        return sum(2.0 * BATCH * a * b for a, b in zip(dims[:-1], dims[1:], strict=True))

    critic, actor = 2 * mlp_fwd(OBS + ACT, 1), mlp_fwd(OBS, 2 * ACT)  # twin critics
    return (3 * critic        # critic forward + backward (weight and input gradients)
            + critic          # target critics on (s', a')
            + 3 * actor       # actor on s: forward + backward
            + actor           # actor on s' (no grad)
            + 2 * critic)     # actor loss: critics' forward + input-gradient backward


def gemm_gflops(dtype: torch.dtype = torch.float32, threads: int = 1) -> float:
    with torch_threads(threads):
        a, b = torch.randn(256, 256, dtype=dtype), torch.randn(256, 256, dtype=dtype)
        for _ in range(50):
            a @ b
        start, n = time.perf_counter(), 1000
        for _ in range(n):
            a @ b
        return 2 * 256**3 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = batch(np.random.default_rng(0))
    names = ["as shipped", "Optimizer.step", "foreach Adam", "per-tensor Polyak", "2 threads", "bfloat16 matmuls"]
    variants = {n: variant(n) for n in names}
    sb3 = ["SB3 train(1)", "SB3 2 threads"]
    times: dict[str, list[float]] = {n: [] for n in names + sb3}
    for _ in range(args.rounds):
        for n, (agent, threads, module) in variants.items():
            times[n].append(time_updates(agent, threads, module, data, args.updates))
        times["SB3 train(1)"].append(sb3_update_ms(args.updates // 3))
        times["SB3 2 threads"].append(sb3_update_ms(args.updates // 3, threads=2))
    med = {n: statistics.median(v) for n, v in times.items()}
    base = med["as shipped"]
    print(f"SAC update, batch {BATCH}, [256, 256], median of {args.rounds} rounds x {args.updates} updates")
    print(f"{'variant':>22} {'ms/update':>10} {'vs shipped':>11}")
    for n in names + sb3:
        print(f"{n:>22} {med[n]:10.3f} {med[n] / base:10.2f}x")
    flops = update_flops([256, 256])
    gf = gemm_gflops()
    floor = flops / gf / 1e6
    print(f"matmul work {flops / 1e6:.0f} MFLOP per update; 1-thread GEMM {gf:.0f} GFLOP/s -> floor {floor:.2f} ms")
    print(f"ours {base / floor:.2f}x the floor; SB3 {med['SB3 train(1)'] / floor:.2f}x; "
          f"no fp32 1-thread update can beat SB3's by more than {med['SB3 train(1)'] / floor:.2f}x")
    gf16 = gemm_gflops(torch.bfloat16)
    floor16 = flops / gf16 / 1e6
    print(f"bf16: 1-thread GEMM {gf16:.0f} GFLOP/s -> floor {floor16:.2f} ms; ours with bfloat16 matmuls "
          f"{med['bfloat16 matmuls'] / floor16:.2f}x that floor, {med['SB3 train(1)'] / med['bfloat16 matmuls']:.2f}x "
          f"faster than SB3's update")
    gf2 = gemm_gflops(threads=2)
    floor2 = flops / gf2 / 1e6
    print(f"2 threads: GEMM {gf2:.0f} GFLOP/s -> fp32 floor {floor2:.2f} ms; ours {med['2 threads'] / floor2:.2f}x "
          f"that floor, SB3 with 2 threads {med['SB3 2 threads'] / floor2:.2f}x; ours/SB3 at 2 threads each "
          f"{med['SB3 2 threads'] / med['2 threads']:.2f}x")


if __name__ == "__main__":
    main()
