"""The SB3 backend: stable-baselines3's own ``learn()`` on the run's envs, with the suite's logs,
evaluation, checkpoints and final policy.

What is the suite's and what is SB3's:

* Envs: the run's vector env (wrapper chain, extension wrappers, contract checks) reaches SB3
  through :class:`agents.sb3.vec_env.SessionVecEnv`, reset with ``session.env_seeds()``. Finished
  episodes feed ``rollout/*`` (and extensions) exactly as for the suite's agents.
* Logging: SB3's logger gets no output formats and is never dumped; a callback copies the
  ``train/*`` values SB3 recorded into the suite's rows (same ``metrics.csv`` columns and TensorBoard
  keys, x = env steps). Off-policy algorithms get a row every ``train.log_every_steps`` env steps,
  on-policy ones one per rollout, as in the suite's own loops. The callback acts when SB3 starts
  collecting again (``on_rollout_start``), i.e. after the previous steps were stored and trained on;
  off-policy that is every ``train_freq`` steps, so rows and checkpoints may come that much later.
* Evaluation and checkpoints: ``session.eval_due`` / ``session.save_checkpoint`` from the same
  callback. A checkpoint holds every state dict SB3 itself saves (policy, optimizers, ``log_ent_coef``)
  as safetensors and JSON, and for off-policy algorithms the replay buffer (``agent.save_buffer``).
* Resume is approximate, and says so (``"exact_resume": false`` in every checkpoint's loop state and
  an ``events.jsonl`` entry): SB3 draws from the global python/numpy/torch generators, which are not
  checkpointed; the envs restart fresh episodes; an on-policy rollout in progress is lost. Episodes
  are not cut at checkpoints either (SB3 owns the current observation inside ``learn()``).
"""

from __future__ import annotations

from experiments.manifest import Manifest, ManifestError
from experiments.run_dir import append_event

__all__ = ["run_sb3", "validate_sb3"]

NOT_EXACT = ("the SB3 backend restores weights, optimizer state, counters and (off-policy) the replay buffer, "
             "but not SB3's global python/numpy/torch generators, the env state or an unfinished rollout")


def validate_sb3(manifest: Manifest) -> None:
    """One-line errors for SB3 settings that cannot work with this manifest, before anything is written."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    from agents.sb3.agent import build_model
    from agents.sb3.resolve import algorithm_class, parameter_default
    from agents.sb3.vec_env import placeholder_vec_env
    from envs.make import make_vector_env

    cfg, n = manifest.agent, manifest.env.num_envs
    if getattr(manifest, "dataset", None) is not None:
        raise ManifestError(f"dataset: agent.algo {cfg.algo} trains online only; offline datasets need a suite agent")
    cls = algorithm_class(cfg.algo)
    if issubclass(cls, OffPolicyAlgorithm):
        buffer_size = parameter_default(cls, "buffer_size", cfg.kwargs)
        batch_size = parameter_default(cls, "batch_size", cfg.kwargs)
        starts = parameter_default(cls, "learning_starts", cfg.kwargs)
        if buffer_size is not None and batch_size is not None and buffer_size < batch_size:
            raise ManifestError(f"agent.kwargs.buffer_size ({buffer_size}{_default(cfg, 'buffer_size')}) must be "
                                f">= agent.kwargs.batch_size ({batch_size}{_default(cfg, 'batch_size')})")
        if starts is not None and starts >= manifest.train.total_steps:
            raise ManifestError(f"agent.kwargs.learning_starts ({starts}{_default(cfg, 'learning_starts')}) "
                                f"must be < train.total_steps ({manifest.train.total_steps}): the run would end "
                                "before its first update")
        freq = cfg.kwargs.get("train_freq")
        if isinstance(freq, list) and len(freq) == 2 and freq[1] == "episode" and n > 1:
            raise ManifestError(f"agent.kwargs.train_freq: SB3 trains per episode only with one env; "
                                f"env.num_envs is {n} (use [N, step] or num_envs: 1)")
    envs = make_vector_env(manifest.env.id, 1, manifest.env.kwargs, [(w.name, w.kwargs) for w in manifest.env.wrappers])
    try:
        # Built once on num_envs placeholder envs: what SB3 refuses for this many envs fails here.
        build_model(cfg, placeholder_vec_env(envs.single_observation_space, envs.single_action_space, n), 0)
    finally:
        envs.close()


def _default(cfg, key: str) -> str:
    return "" if key in cfg.kwargs else ", SB3's default"


def run_sb3(session, progress) -> None:
    """Train ``session.agent`` (an :class:`agents.sb3.agent.SB3Agent`) to ``train.total_steps`` with SB3's learn()."""
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    from agents.sb3.vec_env import SessionVecEnv

    agent, counters = session.agent, session.counters
    venv = SessionVecEnv(session.envs, on_episode=session.on_episode)
    agent.bind(venv)
    model = agent.model
    model.set_logger(Logger(folder=None, output_formats=[]))
    if session.restored is not None:
        _restore(session)
    else:
        append_event(session.run_dir, {"event": "backend", "backend": "sb3", "algo": session.manifest.agent.algo,
                                        "exact_resume": False, "reason": NOT_EXACT})
    venv.seed_each(session.env_seeds())
    total = session.manifest.train.total_steps
    callback = _make_callback(session, progress, isinstance(model, OnPolicyAlgorithm))
    if counters.env_steps < total:
        model.learn(total - counters.env_steps, callback=callback, log_interval=None, reset_num_timesteps=False,
                    progress_bar=False)
        callback.count()  # the last rollout has no following rollout start to count it
        row = session.rollout_metrics() | callback.train_metrics() | session.eval_due(True)
        session.log(row)
        progress(session, row)
        if session.checkpoint_due(True):
            _save_checkpoint(session)
    session.save_final()


def _make_callback(session, progress, on_policy: bool):
    from stable_baselines3.common.callbacks import BaseCallback

    class SessionCallback(BaseCallback):
        """Counts env steps into the session; writes rows, evaluates and checkpoints on its schedule."""

        def __init__(self):
            super().__init__(verbose=0)
            self.columns = set(session.agent.metric_keys)
            every = session.manifest.train.log_every_steps
            self.log_every = every
            self.next_log = (session.counters.env_steps // every + 1) * every
            self.counted = session.counters.env_steps

        def train_metrics(self) -> dict[str, float]:
            """The latest value of every ``train/*`` (and algorithm ``rollout/*``) key SB3 recorded."""
            values = self.model.logger.name_to_value
            return {k: float(v) for k, v in values.items() if k in self.columns}

        def count(self) -> bool:
            """Fold the env steps since the last call into the counters; False if there were none."""
            steps = int(self.model.num_timesteps)
            if steps == self.counted:
                return False
            # iterations: rollouts on-policy, vector steps off-policy (as the suite's own loops count them)
            session.counters.iterations += 1 if on_policy else (steps - self.counted) // self.model.n_envs
            session.counters.env_steps = self.counted = steps
            return True

        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            # SB3's learn() alternates collect_rollouts and train(): here the previous chunk of env steps
            # is stored and trained on, so rows, evaluations and checkpoints see a consistent state.
            if self.count():
                self._row_due(every_call=on_policy)

        def _row_due(self, every_call: bool) -> None:
            counters = session.counters
            if counters.env_steps >= session.manifest.train.total_steps:
                return  # the final row, evaluation and checkpoint come after learn() returns
            evals = session.eval_due(False)
            if every_call or evals or counters.env_steps >= self.next_log:
                row = session.rollout_metrics() | self.train_metrics() | evals
                session.log(row)
                progress(session, row)
                self.next_log = (counters.env_steps // self.log_every + 1) * self.log_every
            if session.checkpoint_due(False):
                _save_checkpoint(session)

    return SessionCallback()


def _save_checkpoint(session) -> None:
    agent = session.agent
    replay = agent.replay_state() if agent.config.save_buffer else None
    loop_state = {"backend": "sb3", "exact_resume": False, "buffer_saved": replay is not None,
                  "replay": replay[0] if replay is not None else None}
    session.save_checkpoint(loop_state, buffers=replay[1] if replay is not None else None)


def _restore(session) -> None:
    """Put the checkpointed replay buffer back, and record that this resume is approximate."""
    from rl.core.checkpoint import CheckpointError

    restored = session.restored
    st = restored.state["loop"]
    if st.get("buffer_saved"):
        if restored.buffers is None:
            raise CheckpointError(f"{restored.path}: the loop state says the replay buffer was saved, "
                                  "but there is no buffers.npz")
        session.agent.load_replay_state(st["replay"], restored.buffers)
    session._say(f"[yellow]this resume is approximate: {NOT_EXACT}[/]")
    append_event(session.run_dir, {"event": "approximate_resume", "step": restored.step, "backend": "sb3",
                                   "exact_resume": False, "buffer_restored": bool(st.get("buffer_saved")),
                                   "reason": NOT_EXACT})
