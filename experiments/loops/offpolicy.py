"""The off-policy loop: act, store in replay, update on a schedule, log, evaluate, checkpoint.

Axis letters: T replay rows, N envs, K reward objectives, B sampled transitions.

Schedule (as stable-baselines3): actions are uniformly random until ``learning_starts`` env steps;
every ``train_freq`` vector steps, once more than ``learning_starts`` env steps are done, the agent
takes ``gradient_steps`` gradient steps, or with ``replay_ratio`` set, that many per env step (the
fraction carries over to the next phase). Each gradient step samples one uniform batch.

Checkpoints hold the replay buffer (arrays, write position) and the sampler and exploration
generators, so a resume continues exactly. Every checkpoint ends an env segment (all sub-envs are
reset, see :mod:`experiments.session`): the last stored row of an unfinished episode is marked
truncated first, so n-step returns never run across the reset, and a time-out still bootstraps.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from experiments.manifest import Manifest, ManifestError
from rl.core.nstep import nstep_returns
from rl.core.samplers import UniformSampler
from rl.core.seeding import generator_state, restore_generator
from rl.core.storage import Field, Storage

__all__ = ["replay_storage", "run_off_policy", "validate_off_policy"]

_BATCH_FIELDS = ["obs", "action", "reward", "next_obs", "terminated", "truncated"]


def validate_off_policy(manifest: Manifest) -> None:
    """One-line errors for off-policy settings that cannot work together (nothing for on-policy)."""
    from agents.registry import agent_class

    cfg = manifest.agent
    if agent_class(cfg.algo).on_policy:
        return
    if cfg.buffer_size < cfg.batch_size:
        raise ManifestError(f"agent.buffer_size ({cfg.buffer_size}) must be >= agent.batch_size ({cfg.batch_size})")
    if cfg.learning_starts >= manifest.train.total_steps:
        raise ManifestError(f"agent.learning_starts ({cfg.learning_starts}) must be < train.total_steps "
                            f"({manifest.train.total_steps}): the run would end before its first update")
    n_step = getattr(cfg, "n_step", 1)
    if n_step > 1 and cfg.buffer_size < n_step * manifest.env.num_envs:
        raise ManifestError(f"agent.buffer_size ({cfg.buffer_size}) must hold agent.n_step ({n_step}) rows "
                            f"of env.num_envs ({manifest.env.num_envs}) transitions")


def replay_storage(agent, num_envs: int, reward_dim: int, buffer_size: int) -> Storage:
    """The replay layout, ``ceil(buffer_size / num_envs)`` rows of ``num_envs`` transitions.

    It has no ``valid`` field: the loop steps SAME_STEP vector envs, where every step is a real
    transition, so the flag would hold a constant (and writing it cost a seventh of each add).
    Checkpoints written with one still load; the extra array is ignored."""
    fields = {
        "obs": Field((agent.obs_dim,), "float32"),
        "next_obs": Field((agent.obs_dim,), "float32"),
        "action": Field(agent.action_shape, agent.action_dtype),
        "reward": Field((reward_dim,), "float32"),
        "terminated": Field((), "bool"),
        "truncated": Field((), "bool"),
    }
    return Storage(fields, capacity=math.ceil(buffer_size / num_envs), num_envs=num_envs)


def random_actions(space: spaces.Space, rng: np.random.Generator, num_envs: int) -> np.ndarray:
    """Uniform actions ``[N, ...]`` drawn from ``rng`` (never ``space.sample()``, whose RNG is not ours)."""
    if isinstance(space, spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=num_envs, dtype=np.int64)
    if isinstance(space, spaces.Box):
        return rng.uniform(space.low, space.high, size=(num_envs, *space.shape)).astype(np.float32)
    raise ValueError(f"random exploration supports Discrete and Box action spaces, got {space}")


def sample_batch(storage: Storage, sampler: UniformSampler, n_step: int, gamma: float) -> dict[str, np.ndarray]:
    """One uniform batch of transitions; with ``n_step > 1`` rewards are m-step returns and
    ``discount`` holds ``γ^m`` (see :mod:`rl.core.nstep`)."""
    idx_b = sampler.sample(storage)
    if n_step == 1:
        return storage.gather(idx_b, _BATCH_FIELDS)
    a = storage.arrays
    t_b, n_b = np.divmod(idx_b, storage.num_envs)
    ret_bk, last_b, steps_b = nstep_returns(a["reward"], a["terminated"], a["truncated"], t_b, n_b,
                                            storage.pos, n_step, gamma)
    return {"obs": a["obs"][t_b, n_b], "action": a["action"][t_b, n_b], "reward": ret_bk,
            "next_obs": a["next_obs"][last_b, n_b], "terminated": a["terminated"][last_b, n_b],
            "truncated": a["truncated"][last_b, n_b], "discount": (gamma**steps_b).astype(np.float32)}


def end_segment(storage: Storage) -> None:
    """Mark the newest row truncated for every env whose episode it did not end (envs reset next)."""
    if storage.size == 0:
        return
    last = storage.last_row()
    storage.arrays["truncated"][last] |= ~storage.arrays["terminated"][last]


class _Updates:
    """How many gradient steps each training phase takes (a replay ratio's fraction carries over)."""

    def __init__(self, cfg, num_envs: int, credit: float = 0.0):
        self.cfg = cfg
        self.env_steps_per_phase = cfg.train_freq * num_envs
        self.credit = credit

    def due(self) -> int:
        if self.cfg.replay_ratio is None:
            return self.cfg.gradient_steps
        self.credit += self.cfg.replay_ratio * self.env_steps_per_phase
        steps = int(self.credit)
        self.credit -= steps
        return steps


def run_off_policy(session, progress) -> None:
    """Train ``session.agent`` until ``train.total_steps``; ``progress(session, row)`` refreshes a display.

    Denormal floats are flushed to zero while the loop runs: Adam's moment estimates of dead ReLU
    units decay into the denormal range, where CPU arithmetic is many times slower (~12% of SAC's
    time on Pendulum). Flushing is restored to torch's default (off) when the loop returns.
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        _train(session, progress)
    finally:
        torch.set_flush_denormal(False)


def _train(session, progress) -> None:
    from gymnasium.vector import AutoresetMode

    from rl.core.rollout import RolloutCollector

    m = session.manifest
    agent, cfg, counters = session.agent, session.agent.config, session.counters
    n = m.env.num_envs
    storage = replay_storage(agent, n, session.reward_dim, cfg.buffer_size)
    sampler = UniformSampler(session.plan.generator("sampler"), cfg.batch_size)
    explore = session.plan.generator("explore")
    updates = _Updates(cfg, n)
    min_fill = _restore(session, storage, sampler, explore, updates) if session.restored is not None else 0
    collector = RolloutCollector(session.envs, session.reward_dim)
    if collector.mode != AutoresetMode.SAME_STEP:
        raise ValueError("the off-policy loop stores every step as a transition and needs a SAME_STEP vector env")
    collector.reset(session.env_seeds())
    action_space = session.envs.single_action_space
    n_step = getattr(cfg, "n_step", 1)
    total, log_every = m.train.total_steps, m.train.log_every_steps
    next_log = (counters.env_steps // log_every + 1) * log_every
    train_metrics: dict[str, float] = {}
    write = storage.row_writer(["obs", "next_obs", "action", "reward", "terminated", "truncated"])
    while counters.env_steps < total:
        if counters.env_steps < cfg.learning_starts:
            action = random_actions(action_space, explore, n)
        else:
            action, _ = agent.act(collector.obs)
        tr = collector.step(action)
        assert tr.valid_n.all(), "SAME_STEP envs give a valid transition on every step"
        write(tr.obs, tr.next_obs, action, tr.reward_nk, tr.terminated_n, tr.truncated_n)
        for ep in tr.finished:
            session.on_episode(ep)
        counters.env_steps += n
        counters.iterations += 1
        agent.advance(counters.env_steps, counters.env_steps / total)
        if (counters.iterations % cfg.train_freq == 0 and counters.env_steps > cfg.learning_starts
                and storage.num_transitions >= min_fill):
            for _ in range(updates.due()):
                train_metrics = agent.update(sample_batch(storage, sampler, n_step, cfg.gamma))
        final = counters.env_steps >= total
        evals = session.eval_due(final)
        if evals or final or counters.env_steps >= next_log:
            row = session.rollout_metrics() | train_metrics | evals
            session.log(row)
            progress(session, row)
            next_log = (counters.env_steps // log_every + 1) * log_every
        if session.checkpoint_due(final):
            _save_checkpoint(session, storage, sampler, explore, updates)
            collector.reset(session.env_seeds())
    session.save_final()


def _save_checkpoint(session, storage: Storage, sampler: UniformSampler, explore: np.random.Generator,
                     updates: _Updates) -> None:
    """End the env segment in the buffer, then checkpoint agent, buffer (unless save_buffer is false) and RNGs."""
    save_buffer = session.agent.config.save_buffer
    # Marked before saving, so the saved buffer is exactly what the uninterrupted run continues with.
    end_segment(storage)
    loop_state = {"sampler_rng": generator_state(sampler.rng), "explore_rng": generator_state(explore),
                  "storage": storage.state(), "buffer_saved": save_buffer, "replay_credit": updates.credit}
    if not save_buffer:
        loop_state["approximate_resume"] = True
    session.save_checkpoint(loop_state, buffers=storage.array_state() if save_buffer else None)


def _restore(session, storage: Storage, sampler: UniformSampler, explore: np.random.Generator,
             updates: _Updates) -> int:
    """Restore buffer and generators from the resumed checkpoint; returns the fill needed before updates."""
    from experiments.run_dir import append_event
    from rl.core.checkpoint import CheckpointError

    restored = session.restored
    st = restored.state["loop"]
    restore_generator(sampler.rng, st["sampler_rng"])
    restore_generator(explore, st["explore_rng"])
    updates.credit = float(st.get("replay_credit", 0.0))
    if st.get("buffer_saved"):
        if restored.buffers is None:
            raise CheckpointError(f"{restored.path}: the loop state says the replay buffer was saved, "
                                  "but there is no buffers.npz")
        storage.load(st["storage"], restored.buffers)
        return 0
    session._say("[yellow]this checkpoint has no replay buffer (agent.save_buffer: false): the resume is "
                 "approximate and starts from an empty buffer[/]")
    append_event(session.run_dir, {"event": "approximate_resume", "step": restored.step,
                                   "reason": "checkpoint without replay buffer (agent.save_buffer: false)"})
    # No updates until the empty buffer holds a batch again.
    return session.agent.config.batch_size
