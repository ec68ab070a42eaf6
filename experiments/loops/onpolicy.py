"""The on-policy loop: collect a rollout, compute advantages, update, log, evaluate, checkpoint.

Axis letters: T rollout rows, N envs, K reward objectives.
"""

from __future__ import annotations

from collections.abc import Callable

from rl.core.advantages import gae
from rl.core.samplers import MinibatchSampler
from rl.core.seeding import generator_state, restore_generator
from rl.core.storage import Field, Storage

__all__ = ["run_on_policy"]


def rollout_storage(agent, num_envs: int, reward_dim: int) -> Storage:
    """The rollout layout: transition fields plus the agent's per-step extras."""
    obs_shape = (agent.obs_dim,)
    fields = {
        "obs": Field(obs_shape, "float32"),
        "action": Field(agent.action_shape, agent.action_dtype),
        "reward": Field((reward_dim,), "float32"),
        "terminated": Field((), "bool"),
        "truncated": Field((), "bool"),
        "valid": Field((), "bool"),
        "next_value": Field((reward_dim,), "float32"),
    }
    for name, (shape, dtype) in agent.extra_fields.items():
        fields[name] = Field(tuple(reward_dim if s == "K" else s for s in shape), dtype)
    return Storage(fields, capacity=agent.config.n_steps, num_envs=num_envs)


def run_on_policy(session, progress, row_hook: Callable[[dict], dict] | None = None,
                  state_hook: Callable[[], dict] | None = None, restore_sampler: bool = True) -> None:
    """Train ``session.agent`` until ``train.total_steps``; ``progress(session)`` refreshes a display.

    A loop that runs this one as its last phase (:mod:`experiments.loops.onpolicy_phased`) passes
    ``row_hook`` (the metrics row → the row to log), ``state_hook`` (its own checkpoint state, merged
    into the loop state) and ``restore_sampler=False`` when the checkpoint it resumed from was written
    before this loop started.
    """
    from rl.core.rollout import RolloutCollector

    m = session.manifest
    agent = session.agent
    cfg = agent.config
    n = m.env.num_envs
    storage = rollout_storage(agent, n, session.reward_dim)
    sampler = MinibatchSampler(session.plan.generator("sampler"), cfg.batch_size, cfg.n_epochs)
    if session.restored is not None and restore_sampler:
        restore_generator(sampler.rng, session.restored.state["loop"]["sampler_rng"])
    collector = RolloutCollector(session.envs, session.reward_dim)
    collector.reset(session.env_seeds())
    total = m.train.total_steps
    while session.counters.env_steps < total:
        collector.collect(agent, storage, session.on_episode)
        adv, ret = gae(storage.arrays["reward"], storage.arrays["value"], storage.arrays["next_value"],
                       storage.arrays["terminated"], storage.arrays["truncated"], cfg.gamma, cfg.gae_lambda)
        rows = storage.num_transitions
        batch = {k: storage.flat(k) for k in ("obs", "action", "logprob", "value", "valid")}
        batch["advantage"] = adv.reshape(rows, -1)
        batch["returns"] = ret.reshape(rows, -1)
        # progress counts this rollout's steps, as SB3's schedules do
        progress_frac = min((session.counters.env_steps + rows) / total, 1.0)
        train_metrics = agent.update(batch, sampler.epochs_of_batches(rows), progress_frac)
        session.counters.env_steps += rows
        session.counters.iterations += 1
        final = session.counters.env_steps >= total
        row = session.rollout_metrics() | train_metrics | session.eval_due(final)
        if row_hook is not None:
            row = row_hook(row)
        session.log(row)
        progress(session, row)
        if session.checkpoint_due(final):
            extra = state_hook() if state_hook is not None else {}
            session.save_checkpoint({"sampler_rng": generator_state(sampler.rng), **extra})
            collector.reset(session.env_seeds())
    session.save_final()
