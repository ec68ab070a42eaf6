"""The offline / offline-to-online loop: phases of gradient updates on stored data and of env steps.

Axis letters: M offline transitions, T online rows, N envs, K reward objectives, B batch.

The offline dataset is loaded once into a one-env :class:`~rl.core.storage.Storage` tagged
``source = offline``; online steps go into a second storage of the same layout (a ring of
``agent.buffer_size`` transitions) tagged ``source = online``. Each gradient step draws one batch
from both through a :class:`~rl.core.samplers.MixedSampler` at the phase's offline fraction
(optionally return-weighted over the offline trajectories).

The run's step counter (``session.counters.env_steps``: the ``step`` column, checkpoint names,
the eval and checkpoint cadence) counts offline updates plus online env steps, see
:mod:`experiments.phases`. Checkpoints hold the agent, the phase position, the sampler and
exploration generators and the online buffer; never the offline dataset, which is re-read and
verified against the manifest's sha256 on resume. As in the off-policy loop, each checkpoint ends
the env segment (the newest online row is marked truncated and the envs restart with seeds of the
checkpoint index), so a resumed run continues exactly as the uninterrupted one.

An agent with ``mc_return_gamma`` set (Cal-QL) also gets ``mc_return`` in every batch: the discounted
Monte-Carlo return-to-go of the transition's episode. Offline transitions have it from the start;
an online transition holds ``-inf`` (no lower bound) until its episode ends in the env or is cut
(a checkpoint, the end of the online phase), when the whole episode's returns are filled in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from experiments.loops.offpolicy import _Updates, end_segment
from experiments.phases import fraction_at, lr_progress, phase_length, resolved_phases
from rl.core.datasets import SOURCE_ONLINE, offline_fields, offline_storage, returns_to_go
from rl.core.samplers import MixedSampler, return_weights
from rl.core.seeding import generator_state, restore_generator
from rl.core.storage import Storage

__all__ = ["PHASE_COLUMNS", "mixed_batch", "normalized_score", "offline_probs", "reference_scores",
           "resolved_reward_scale", "restored_phase", "run_phased"]

PHASE_COLUMNS = ["time/offline_updates", "time/phase", "train/offline_fraction", "eval/normalized_score"]
"""Columns every run with a dataset adds to ``metrics.csv``. ``eval/normalized_score`` is the D4RL
score ``100 (R − R_random) / (R_expert − R_random)`` of each evaluation's mean return, from the
dataset's ``ref_min_score``/``ref_max_score`` (Minari's metadata; ``rl collect`` writes them); blank
when the dataset has none."""
_BATCH_FIELDS = ["obs", "action", "reward", "next_obs", "terminated", "truncated", "source"]


@dataclass
class PhasePosition:
    """Where a phased run stands; saved in every checkpoint."""

    index: int = 0  # current phase
    done: int = 0  # updates or env steps done in the current phase
    offline_updates: int = 0  # gradient updates of all offline phases so far
    online_steps: int = 0  # env steps of all online phases so far


def reference_scores(metadata: dict) -> tuple[float, float] | None:
    """(random, expert) reference returns from Minari's ``ref_min_score``/``ref_max_score``, or None."""
    lo, hi = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if lo is None or hi is None or not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return None
    return float(lo), float(hi)


def normalized_score(mean_return: float, random_return: float, expert_return: float) -> float:
    """D4RL's normalised score: 0 for the random reference, 100 for the expert one."""
    return 100.0 * (mean_return - random_return) / (expert_return - random_return)


def mixed_batch(offline: Storage | None, online: Storage | None, sampler: MixedSampler,
                fraction: float, fields: list[str] = _BATCH_FIELDS, reward_scale: float = 1.0) -> dict[str, np.ndarray]:
    """One batch of ``fields``: ``round(fraction · B)`` offline transitions, then online ones, with
    ``reward`` (and ``mc_return``, a sum of rewards) multiplied by ``reward_scale``."""
    off_b, on_b = sampler.sample(offline, online, fraction)
    parts = [s.gather(i, fields) for s, i in ((offline, off_b), (online, on_b)) if len(i)]
    batch = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in fields}
    if reward_scale != 1.0:
        for k in ("reward", "mc_return"):
            if k in batch:
                batch[k] = batch[k] * np.float32(reward_scale)
    return batch


def offline_probs(spec, data) -> np.ndarray | None:
    """Sampling probabilities of the dataset's transitions under ``dataset.weighting`` (None: uniform)."""
    if spec.weighting is None:
        return None
    return return_weights(data.returns_e, data.lengths_e, spec.weighting.temperature)


def resolved_reward_scale(spec: float | str | None, returns_e: np.ndarray) -> float:
    """``dataset.reward_scale`` as a number: 1 for None, ``1000 / (max − min)`` of the dataset's
    episode returns for ``return_range`` (1 when every episode has the same return)."""
    if spec is None:
        return 1.0
    if spec == "return_range":
        spread = float(np.max(returns_e) - np.min(returns_e))
        return 1000.0 / spread if spread > 0.0 else 1.0
    return float(spec)


class MCReturnFiller:
    """Fills the ``mc_return`` of an online storage's rows once their episode ends (Cal-QL).

    Rows are added with ``-inf``; :meth:`step` counts each env's rows of the unfinished episode and
    fills an episode's discounted returns-to-go when its last row (terminated or truncated) is in.
    :meth:`cut` fills every unfinished episode (the envs restart next: a checkpoint, a phase end),
    with no value beyond the cut, as for a time-out in the offline data.
    """

    def __init__(self, storage: Storage, gamma: float):
        self.storage, self.gamma = storage, gamma
        self.open_n = np.zeros(storage.num_envs, np.int64)

    def step(self, ended_n: np.ndarray) -> None:
        """After a row was added: count it, and fill the episodes it ended."""
        self.open_n += 1
        for n in np.flatnonzero(ended_n):
            self._fill(int(n))

    def cut(self) -> None:
        """Fill every unfinished episode."""
        for n in np.flatnonzero(self.open_n):
            self._fill(int(n))

    def forget(self) -> None:
        """The storage was cleared: nothing is open."""
        self.open_n[:] = 0

    def _fill(self, n: int) -> None:
        s = self.storage
        length = min(int(self.open_n[n]), s.capacity)  # a longer episode's first rows are overwritten
        rows = (s.last_row() - np.arange(length - 1, -1, -1)) % s.capacity
        ends = np.zeros(length, bool)
        ends[-1] = True
        s.arrays["mc_return"][rows, n] = returns_to_go(s.arrays["reward"][rows, n, 0], s.arrays["terminated"][rows, n],
                                                       ends, self.gamma)
        self.open_n[n] = 0


def run_phased(session, progress) -> None:
    """Run the manifest's phases to the end; ``progress(session, row)`` refreshes a display.

    Denormals are flushed while it runs, as in the off-policy loop (Adam state of dead ReLUs).
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        _Run(session, progress).run()
    finally:
        torch.set_flush_denormal(False)


class _Run:
    """The state of one phased run: storages, sampler, generators and the phase position."""

    def __init__(self, session, progress):
        from experiments.datasets import load_for_manifest

        m = session.manifest
        self.session, self.progress, self.m = session, progress, m
        self.agent = session.agent
        cfg = self.agent.config
        envs = session.envs
        data = load_for_manifest(m, envs.single_observation_space, envs.single_action_space)
        if hasattr(self.agent, "fit_obs_normalizer") and session.restored is None:
            # state statistics of the whole dataset (a restored agent carries them in its checkpoint)
            self.agent.fit_obs_normalizer(data.obs_mo)
        self.dataset_sha256 = m.dataset.sha256
        self.score_refs = reference_scores(data.metadata)
        mc_gamma = getattr(self.agent, "mc_return_gamma", None)
        self.fields = [*_BATCH_FIELDS, "mc_return"] if mc_gamma is not None else _BATCH_FIELDS
        self.offline = offline_storage(data, self.agent.action_dtype, mc_gamma)
        self.sampler = MixedSampler(session.plan.generator("sampler"), cfg.batch_size, offline_probs(m.dataset, data))
        self.reward_scale = resolved_reward_scale(m.dataset.reward_scale, data.returns_e)
        self.explore = session.plan.generator("explore")
        self.phases = resolved_phases(m.phases, m.train.total_steps)
        n = m.env.num_envs
        self.online = None
        self.mc_returns = None
        if any(p.online is not None for p in self.phases):
            fields = offline_fields(self.agent.obs_dim, self.agent.action_shape, self.agent.action_dtype,
                                    session.reward_dim, mc_return=mc_gamma is not None)
            self.online = Storage(fields, capacity=math.ceil(cfg.buffer_size / n), num_envs=n)
            if mc_gamma is not None:
                self.mc_returns = MCReturnFiller(self.online, mc_gamma)
        self.updates = _Updates(cfg, n)
        self.pos = PhasePosition()
        self.collector = None
        self.train_metrics: dict[str, float] = {}
        self.fraction = 1.0
        if session.restored is not None:
            self._restore()
        log_every = m.train.log_every_steps
        self.next_log = (session.counters.env_steps // log_every + 1) * log_every

    def run(self) -> None:
        while self.pos.index < len(self.phases):
            phase = self.phases[self.pos.index]
            self._advance_agent(phase)  # a phase's own learning-rate policy applies from its first step
            self.agent.online_phase = phase.online is not None
            if phase.offline is not None:
                self._offline_phase(phase)
            else:
                self._online_phase(phase)
            if self.pos.index < len(self.phases) - 1:
                self.pos.index += 1
                self.pos.done = 0
            else:
                break
        self.session.save_final()
        from experiments.o2o import record_o2o  # o2o.json and a summary in events.jsonl

        record_o2o(self.session)

    def _offline_phase(self, phase) -> None:
        counters = self.session.counters
        while self.pos.done < phase.offline.updates:
            self.fraction = fraction_at(phase, self.pos.done)
            self.train_metrics = self.agent.update(mixed_batch(self.offline, self.online, self.sampler,
                                                               self.fraction, self.fields, self.reward_scale))
            self.pos.done += 1
            self.pos.offline_updates += 1
            counters.env_steps += 1
            counters.iterations += 1
            self._after_step(phase)

    def _online_phase(self, phase) -> None:
        from gymnasium.vector import AutoresetMode

        from rl.core.rollout import RolloutCollector

        session, counters, cfg = self.session, self.session.counters, self.agent.config
        if self.pos.done == 0 and not phase.online.keep_online_data:
            self.online.clear()
            if self.mc_returns is not None:
                self.mc_returns.forget()
        if self.collector is None:
            self.collector = RolloutCollector(session.envs, session.reward_dim)
            if self.collector.mode != AutoresetMode.SAME_STEP:
                raise ValueError("online phases store every step as a transition and need a SAME_STEP vector env")
        self._end_segment()
        self.collector.reset(session.env_seeds())
        n = self.m.env.num_envs
        extra = {} if self.mc_returns is None else {"mc_return": np.full(n, -np.inf, np.float32)}
        while self.pos.done < phase.online.steps:
            self.fraction = fraction_at(phase, self.pos.done)
            action, _ = self.agent.act(self.collector.obs)
            tr = self.collector.step(action)
            self.online.add(obs=tr.obs, next_obs=tr.next_obs, action=action, reward=tr.reward_nk,
                            terminated=tr.terminated_n, truncated=tr.truncated_n, valid=tr.valid_n,
                            source=np.full(n, SOURCE_ONLINE, np.uint8), episode_id=np.full(n, -1, np.int64),
                            **extra)
            if self.mc_returns is not None:
                self.mc_returns.step(tr.terminated_n | tr.truncated_n)
            for ep in tr.finished:
                session.on_episode(ep)
            self.pos.done += n
            self.pos.online_steps += n
            counters.env_steps += n
            counters.iterations += 1
            if counters.iterations % cfg.train_freq == 0 and self.pos.done > cfg.learning_starts:
                for _ in range(self.updates.due()):
                    self.train_metrics = self.agent.update(mixed_batch(self.offline, self.online, self.sampler,
                                                                       self.fraction, self.fields, self.reward_scale))
            if self._after_step(phase):
                self.collector.reset(session.env_seeds())
        if self.mc_returns is not None:
            self.mc_returns.cut()  # the envs restart before the next online step

    def _end_segment(self) -> None:
        """Mark the newest online row truncated where it ended no episode (the envs restart next)."""
        end_segment(self.online)
        if self.mc_returns is not None:
            self.mc_returns.cut()

    def _advance_agent(self, phase) -> None:
        steps = self.session.counters.env_steps
        progress, scale = lr_progress(phase, self.pos.done, steps / self.m.train.total_steps)
        if scale == 1.0:
            self.agent.advance(steps, progress)
        else:
            self.agent.advance(steps, progress, lr_scale=scale)

    def _after_step(self, phase) -> bool:
        """Advance schedules, log, evaluate, checkpoint; True when a checkpoint was written."""
        session, counters = self.session, self.session.counters
        self._advance_agent(phase)
        phase_end = self.pos.done >= phase_length(phase)
        final = phase_end and self.pos.index == len(self.phases) - 1
        # every phase ends with an evaluation, whatever the cadence, so the offline-to-online metrics
        # (return at the switch, dip, recovery) always have the policy at the switch to start from
        evals = session.eval_due(phase_end)
        if evals or final or counters.env_steps >= self.next_log:
            if evals and self.score_refs is not None:
                evals["eval/normalized_score"] = normalized_score(evals["eval/mean_reward"], *self.score_refs)
            row = session.rollout_metrics() | self.train_metrics | evals
            row |= {"time/total_timesteps": float(self.pos.online_steps),
                    "time/offline_updates": float(self.pos.offline_updates),
                    "time/phase": float(self.pos.index), "train/offline_fraction": self.fraction}
            session.log(row)
            self.progress(session, row)
            log_every = self.m.train.log_every_steps
            self.next_log = (counters.env_steps // log_every + 1) * log_every
        if not session.checkpoint_due(final):
            return False
        self._save_checkpoint()
        return True

    def _save_checkpoint(self) -> None:
        save_buffer = self.online is not None and self.agent.config.save_buffer
        if self.online is not None:
            self._end_segment()
        state = {"phase": asdict(self.pos), "sampler_rng": generator_state(self.sampler.rng),
                 "explore_rng": generator_state(self.explore), "replay_credit": self.updates.credit,
                 "dataset_sha256": self.dataset_sha256, "buffer_saved": save_buffer,
                 "storage": None if self.online is None else self.online.state()}
        if self.online is not None and not save_buffer:
            state["approximate_resume"] = True
        self.session.save_checkpoint(state, buffers=self.online.array_state() if save_buffer else None)

    def _restore(self) -> None:
        from rl.core.checkpoint import CheckpointError

        restored = self.session.restored
        st, self.pos = restored_phase(restored, self.dataset_sha256)
        restore_generator(self.sampler.rng, st["sampler_rng"])
        restore_generator(self.explore, st["explore_rng"])
        self.updates.credit = float(st.get("replay_credit", 0.0))
        if st.get("buffer_saved"):
            if restored.buffers is None:
                raise CheckpointError(f"{restored.path}: the loop state says the online buffer was saved, "
                                      "but there is no buffers.npz")
            self.online.load(st["storage"], restored.buffers)


def restored_phase(restored, dataset_sha256: str) -> tuple[dict, PhasePosition]:
    """(loop state, phase position) of a checkpoint a phased loop resumes from; refuses one written by
    another loop or trained on another dataset."""
    from rl.core.checkpoint import CheckpointError

    st = restored.state["loop"]
    if "phase" not in st:
        raise CheckpointError(f"{restored.path}: not written by the phased loop (no phase position)")
    if st.get("dataset_sha256") != dataset_sha256:
        raise CheckpointError(f"{restored.path}: trained on dataset sha256 {st.get('dataset_sha256')}, the "
                              f"manifest names {dataset_sha256}")
    return st, PhasePosition(**st["phase"])
