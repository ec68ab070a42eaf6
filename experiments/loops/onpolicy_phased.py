"""Offline-to-online with an on-policy online phase (Uni-O4): offline updates on the dataset, then the
on-policy loop (:func:`experiments.loops.onpolicy.run_on_policy`) from the handed-over agent.

Axis letters: M dataset transitions, B batch.

The manifest's phases are one offline phase, optionally followed by one online phase. The offline
phase draws batches from the dataset, loaded once into a one-env :class:`~rl.core.storage.Storage`
tagged ``source = offline`` as in :mod:`experiments.loops.offline`, and calls ``agent.update(batch)``
once per step; logging, evaluation and checkpoints follow the phased loop's step counter (offline
updates plus online env steps, see :mod:`experiments.phases`). At the switch the agent's
``start_online()`` builds its on-policy learner, and the on-policy loop runs the online steps with
the suite's rollout storage, GAE kernel and minibatch sampler; its rows get the phase columns, its
checkpoints the phase position. Online rollouts hold only the agent's own steps: the dataset takes
no part in them.

Checkpoints of the offline phase hold the agent, the phase position and the offline sampler's
generator; the dataset is re-read and verified against the manifest's sha256 on resume. A resumed
run continues exactly as the uninterrupted one from either phase.
"""

from __future__ import annotations

from dataclasses import asdict

from experiments.loops.offline import (
    PhasePosition,
    mixed_batch,
    normalized_score,
    offline_probs,
    reference_scores,
    restored_phase,
)
from experiments.manifest import ManifestError
from experiments.phases import resolved_phases
from rl.core.datasets import offline_storage
from rl.core.samplers import MixedSampler
from rl.core.seeding import generator_state, restore_generator

__all__ = ["run_phased_on_policy", "validate_on_policy_phases"]

_FIELDS = ["obs", "action", "reward", "next_obs", "terminated", "truncated"]


def validate_on_policy_phases(manifest) -> None:
    """One-line errors for phases an agent with on-policy online phases cannot run."""
    algo = manifest.agent.algo
    phases = resolved_phases(manifest.phases, manifest.train.total_steps)
    if phases[0].offline is None or len(phases) > 2 or (len(phases) == 2 and phases[1].online is None):
        raise ManifestError(f"phases: agent.algo={algo} runs one offline phase, optionally followed by one online "
                            "phase: [{offline: {updates: N}}, {online: {steps: M}}]")
    if manifest.dataset.reward_scale is not None:
        raise ManifestError(f"dataset.reward_scale: agent.algo={algo} hands its offline critic to an on-policy learner "
                            "that sees the env's own rewards; remove it")
    offline = phases[0].offline
    for field in _changed(offline, ("offline_fraction", "lr_policy")):
        raise ManifestError(f"phases[0].offline.{field}: agent.algo={algo} trains on the dataset alone with its own "
                            "offline step sizes; remove it")
    if len(phases) == 2:
        for field in _changed(phases[1].online, ("offline_fraction", "keep_online_data", "lr_policy")):
            raise ManifestError(f"phases[1].online.{field}: agent.algo={algo} fine-tunes on-policy from its own "
                                "rollouts (no offline data, no replay buffer, the learning_rate schedule runs over "
                                "the whole run); remove it")
    pretrain = manifest.agent.pretrain_updates
    if pretrain >= offline.updates:
        raise ManifestError(f"agent.pretrain_updates ({pretrain}) must be < the offline phase's updates "
                            f"({offline.updates}): the policy improvement would never start")


def _changed(spec, fields: tuple[str, ...]) -> list[str]:
    """The ``fields`` of a phase the manifest sets: written in it, or (a stored, resolved manifest has
    every field) different from their defaults."""
    model_fields = type(spec).model_fields
    written = spec.model_fields_set if spec.model_fields_set != set(model_fields) else set()
    return [f for f in fields if f in written or getattr(spec, f) != model_fields[f].default]


def run_phased_on_policy(session, progress) -> None:
    """Run the offline phase, then (when the manifest has one) the on-policy online phase, to the end."""
    _Run(session, progress).run()


class _Run:
    """The offline phase's storage, sampler and position; the handover to the on-policy loop."""

    def __init__(self, session, progress):
        from experiments.datasets import load_for_manifest

        m = session.manifest
        self.session, self.progress, self.m, self.agent = session, progress, m, session.agent
        data = load_for_manifest(m, session.envs.single_observation_space, session.envs.single_action_space)
        if session.restored is None:  # a restored agent carries both in its checkpoint
            self.agent.fit_obs_normalizer(data.obs_mo)
            self.agent.set_evaluation_states(data.obs_mo)
        self.dataset_sha256 = m.dataset.sha256
        self.score_refs = reference_scores(data.metadata)
        self.offline = offline_storage(data, self.agent.action_dtype)
        self.sampler = MixedSampler(session.plan.generator("offline-sampler"), self.agent.config.offline_batch_size,
                                    offline_probs(m.dataset, data))
        self.phases = resolved_phases(m.phases, m.train.total_steps)
        self.pos = PhasePosition()
        self.online_checkpoint = False  # the run resumed from a checkpoint of the online phase
        self.train_metrics: dict[str, float] = {}
        if session.restored is not None:
            self._restore()
        log_every = m.train.log_every_steps
        self.next_log = (session.counters.env_steps // log_every + 1) * log_every

    def run(self) -> None:
        from experiments.loops.onpolicy import run_on_policy
        from experiments.o2o import record_o2o

        if self.pos.index == 0:
            self._offline_phase()
        if len(self.phases) == 1:
            self.session.save_final()
        else:
            self.pos.index, self.pos.done = 1, 0
            if not self.agent.online:
                self.agent.start_online()
            run_on_policy(self.session, self.progress, row_hook=self._row, state_hook=self._state,
                          restore_sampler=self.online_checkpoint)
        record_o2o(self.session)

    def _offline_phase(self) -> None:
        counters, updates = self.session.counters, self.phases[0].offline.updates
        while self.pos.done < updates:
            self.train_metrics = self.agent.update(mixed_batch(self.offline, None, self.sampler, 1.0, _FIELDS))
            self.pos.done += 1
            self.pos.offline_updates += 1
            counters.env_steps += 1
            counters.iterations += 1
            self._after_update(phase_end=self.pos.done == updates)

    def _after_update(self, phase_end: bool) -> None:
        """Log, evaluate and checkpoint on the run's step counter, as the off-policy phased loop does
        (the offline phase ends with an evaluation, whatever the cadence: the return at the switch)."""
        session, counters = self.session, self.session.counters
        final = phase_end and len(self.phases) == 1
        evals = session.eval_due(phase_end)
        if evals or final or counters.env_steps >= self.next_log:
            row = self._row(session.rollout_metrics() | self.train_metrics | evals)
            session.log(row)
            self.progress(session, row)
            log_every = self.m.train.log_every_steps
            self.next_log = (counters.env_steps // log_every + 1) * log_every
        if session.checkpoint_due(final):
            session.save_checkpoint({**self._state(), "offline_sampler_rng": generator_state(self.sampler.rng)})

    def _row(self, row: dict[str, float]) -> dict[str, float]:
        """The phase columns (env steps on ``time/total_timesteps``, updates on ``time/offline_updates``)
        and the normalised score of an evaluation."""
        if "eval/mean_reward" in row and self.score_refs is not None:
            row["eval/normalized_score"] = normalized_score(row["eval/mean_reward"], *self.score_refs)
        online = self.session.counters.env_steps - self.pos.offline_updates
        return row | {"time/total_timesteps": float(online), "time/offline_updates": float(self.pos.offline_updates),
                      "time/phase": float(self.pos.index), "train/offline_fraction": 1.0 - self.pos.index}

    def _state(self) -> dict:
        online = self.session.counters.env_steps - self.pos.offline_updates
        pos = PhasePosition(self.pos.index, self.pos.done if self.pos.index == 0 else online,
                            self.pos.offline_updates, online)
        return {"phase": asdict(pos), "dataset_sha256": self.dataset_sha256}

    def _restore(self) -> None:
        st, self.pos = restored_phase(self.session.restored, self.dataset_sha256)
        self.online_checkpoint = self.pos.index == 1
        if "offline_sampler_rng" in st:
            restore_generator(self.sampler.rng, st["offline_sampler_rng"])
