"""Curriculum runs: the manifest's ``curriculum`` section, the run extension that owns the teacher,
and evaluation over a held-out task grid.

The extension wraps every training sub-env in `envs.curriculum.CurriculumWrapper`, hands out tasks
from the teacher (its generator is the run's ``teacher`` stream), hears every finished episode, adds
``curriculum/*`` columns to each metrics row, and stores the teacher's JSON state in checkpoints so
``--resume`` is exact.

It also records the sampled-task distribution over time (`CurriculumLog`): one row per finished
training episode in ``<run>/curriculum.csv`` (``step, env, task/<param>..., return, success,
length``; ``step`` is the env step of the metrics row the episode was counted in) and TensorBoard
histograms ``curriculum/task/<param>`` (and ``curriculum/episode_return``) at every metrics row. On
resume the CSV drops rows after the checkpoint, like ``metrics.csv``, and TensorBoard purges them.

Example manifest section::

    curriculum:
      space: {box: {distance: [0.0, 1.0], angle: [-3.14159, 3.14159]}}
      teacher: {kind: alp_gmm, fit_every: 100}
      eval: {grid_points: 5, episodes: 2}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from agents.common.config import StrictModel
from envs.curriculum import (
    LEVEL_KEY,
    ALPGMMTeacher,
    CurriculumError,
    CurriculumWrapper,
    FixedTasks,
    LinearScheduleTeacher,
    PLRTeacher,
    StagedTeacher,
    Task,
    TaskSpace,
    Teacher,
    UniformTeacher,
    task_space_of,
)
from experiments.extensions import register_extension
from rl.core.rollout import EpisodeRecord
from rl.core.seeding import SeedPlan

__all__ = ["CURRICULUM_CSV", "CurriculumError", "CurriculumExtension", "CurriculumLog", "CurriculumSpec",
           "check_curriculum", "evaluate_heldout", "format_heldout_table", "histogram_edges", "record_columns"]

TEACHER_KINDS = ("uniform", "linear_schedule", "staged_schedule", "alp_gmm", "plr")
CURRICULUM_CSV = "curriculum.csv"
"""The per-episode task record in a run directory."""
HISTOGRAM_BINS = 30
"""Bins of a box parameter's TensorBoard histogram (fixed edges over the sampled space)."""
MAX_LEVEL_BINS = 100
"""Discrete levels get one bin each up to this many levels, then even bins of several levels."""


class TaskSpaceSpec(StrictModel):
    """The space the teacher samples from (a subset of the env's own task space)."""

    box: dict[str, list[float]] = {}
    """Continuous parameters: name -> [low, high] in the env's units."""
    levels: int = Field(0, ge=0)
    """Number of discrete training levels (0 = none); levels are 0 .. levels-1."""


class UniformSpec(StrictModel):
    """Every task equally likely: the baseline."""

    kind: Literal["uniform"] = "uniform"


class LinearScheduleSpec(StrictModel):
    """A sampling box moving linearly from ``start`` to ``end``."""

    kind: Literal["linear_schedule"] = "linear_schedule"
    start: dict[str, list[float]]
    """Parameter -> [low, high] at the start (parameters left out are sampled over the whole space)."""
    end: dict[str, list[float]]
    """Parameter -> [low, high] once ``over_steps`` is reached."""
    over_steps: int = Field(ge=1)
    """Env steps (of finished training episodes, all sub-envs) over which the box moves."""


class StagedScheduleSpec(StrictModel):
    """A list of sampling boxes; move on when the recent success rate passes a threshold."""

    kind: Literal["staged_schedule"] = "staged_schedule"
    stages: list[dict[str, list[float]]] = Field(min_length=1)
    """Parameter -> [low, high] per stage, easiest first."""
    threshold: float
    """Success rate (or mean return, for envs without ``is_success``) that ends a stage."""
    window: int = Field(50, ge=1)
    """Episodes of the current stage the rate is measured over."""


class ALPGMMSpec(StrictModel):
    """ALP-GMM (Portelas et al. 2019)."""

    kind: Literal["alp_gmm"] = "alp_gmm"
    fit_every: int = Field(100, ge=2)
    """Refit the Gaussian mixture every this many episodes (uniform tasks before the first fit)."""
    fit_window: int = Field(200, ge=4)
    """Most recent (task, ALP) points the mixture is fitted on."""
    k_max: int = Field(6, ge=2, le=20)
    """Largest number of mixture components tried (2 .. k_max, chosen by AIC)."""
    random_prob: float = Field(0.2, ge=0.0, le=1.0)
    """Probability of a uniform task after the first fit."""
    max_history: int = Field(10_000, ge=2)
    """Episodes kept for nearest-neighbour ALP (and in checkpoints)."""


class PLRSpec(StrictModel):
    """Prioritized Level Replay (Jiang et al. 2021)."""

    kind: Literal["plr"] = "plr"
    temperature: float = Field(0.1, gt=0.0, le=10.0)
    """β of the rank prioritisation (lower = greedier)."""
    staleness_coef: float = Field(0.1, ge=0.0, le=1.0)
    """ρ: weight of the staleness distribution."""
    rho: float = Field(1.0, ge=0.0, le=1.0)
    """Replay only once this fraction of levels has been seen."""
    score_alpha: float = Field(0.5, gt=0.0, le=1.0)
    """Smoothing of level scores."""


TeacherSpec = Annotated[UniformSpec | LinearScheduleSpec | StagedScheduleSpec | ALPGMMSpec | PLRSpec,
                        Field(discriminator="kind")]


class HeldoutSpec(StrictModel):
    """The held-out task grid of :func:`evaluate_heldout`."""

    grid_points: int = Field(5, ge=1, le=50)
    """Points per box parameter (cell centres of an even grid)."""
    level_start: int | None = Field(None, ge=0)
    """First held-out level (default: ``space.levels``, the first level never trained on)."""
    level_count: int = Field(20, ge=1, le=10_000)
    """Held-out levels."""
    episodes: int = Field(1, ge=1, le=100)
    """Episodes per grid task."""


class CurriculumSpec(StrictModel):
    """Curriculum learning: which tasks a teacher chooses from, and how it chooses."""

    space: TaskSpaceSpec
    teacher: TeacherSpec = UniformSpec()
    eval: HeldoutSpec = HeldoutSpec()

    @field_validator("teacher", mode="before")
    @classmethod
    def _known_teacher(cls, v: Any) -> Any:
        kind = v.get("kind", "uniform") if isinstance(v, dict) else getattr(v, "kind", None)
        if kind not in TEACHER_KINDS:
            raise ValueError(f"unknown teacher {kind!r}; choose one of {', '.join(TEACHER_KINDS)}")
        return v

    def task_space(self) -> TaskSpace:
        return TaskSpace({k: tuple(v) for k, v in self.space.box.items()}, self.space.levels,
                         where="curriculum.space")


def build_teacher(spec: TeacherSpec, space: TaskSpace, rng: np.random.Generator) -> Teacher:
    """The teacher of ``spec`` over ``space``; CurriculumError when they do not fit together."""
    if spec.kind == "uniform":
        return UniformTeacher(space, rng)
    if spec.kind == "linear_schedule":
        return LinearScheduleTeacher(space, rng, spec.start, spec.end, spec.over_steps)
    if spec.kind == "staged_schedule":
        return StagedTeacher(space, rng, spec.stages, spec.threshold, spec.window)
    if spec.kind == "alp_gmm":
        return ALPGMMTeacher(space, rng, spec.fit_every, spec.fit_window, spec.k_max, spec.random_prob,
                             spec.max_history)
    return PLRTeacher(space, rng, spec.temperature, spec.staleness_coef, spec.rho, spec.score_alpha)


def check_curriculum(manifest) -> TaskSpace | None:
    """Check the curriculum section against the env before anything is written; returns its space."""
    spec: CurriculumSpec | None = getattr(manifest, "curriculum", None)
    if spec is None:
        return None
    import gymnasium as gym

    from envs.make import check_env_id

    check_env_id(manifest.env.id)
    env = gym.make(manifest.env.id, **manifest.env.kwargs)
    try:
        env_space = task_space_of(env)
    finally:
        env.close()
    space = spec.task_space()
    env_space.contains_space(space)
    build_teacher(spec.teacher, space, np.random.default_rng(0))
    return space


class CurriculumExtension:
    """Owns the teacher: tasks out to sub-envs, outcomes in, ``curriculum/*`` metrics, JSON state."""

    name = "curriculum"

    def __init__(self, spec: CurriculumSpec, space: TaskSpace, plan: SeedPlan):
        self.space = space
        self.teacher = build_teacher(spec.teacher, space, plan.generator("teacher"))
        self._teacher_keys = list(self.teacher.stats())
        self.columns = ["curriculum/episodes", "curriculum/mean_return", "curriculum/success_rate"]
        for name in space.names:
            self.columns += [f"curriculum/mean_{name}", f"curriculum/std_{name}"]
        if space.levels:
            self.columns.append("curriculum/unique_levels")
        self.columns += [f"curriculum/{k}" for k in self._teacher_keys]
        self._row: list[list] = []  # [task, return, success, sub-env, length] since the last metrics row
        self._logged: list[list] | None = None  # rows counted by metrics() until CurriculumLog writes them

    def wrap_env(self, env, index: int):
        return CurriculumWrapper(env, self, index)

    def next_task(self, index: int) -> Task:
        return self.teacher.sample(index)

    def episode_end(self, index: int, task: Task, ret: float, success: bool | None, length: int) -> None:
        self.teacher.update(task, ret, success, length)
        self._row.append([task, float(ret), success, int(index), int(length)])

    def on_episode(self, ep: EpisodeRecord) -> None:
        pass  # the wrapper reports episodes as they end, in sub-env order

    def metrics(self) -> dict[str, float]:
        """Statistics of the episodes finished since the previous row, plus the teacher's own."""
        out = {f"curriculum/{k}": v for k, v in self.teacher.stats().items()}
        rows, self._row = self._row, []
        if self._logged is not None:
            self._logged.extend(rows)
        out["curriculum/episodes"] = float(len(rows))
        if not rows:
            return out
        out["curriculum/mean_return"] = float(np.mean([r[1] for r in rows]))
        succ = [float(r[2]) for r in rows if r[2] is not None]
        if succ:
            out["curriculum/success_rate"] = float(np.mean(succ))
        for name in self.space.names:
            v = np.array([r[0][name] for r in rows])
            out[f"curriculum/mean_{name}"], out[f"curriculum/std_{name}"] = float(v.mean()), float(v.std())
        if self.space.levels:
            out["curriculum/unique_levels"] = float(len({r[0][LEVEL_KEY] for r in rows}))
        return out

    def state(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict(), "row": self._row}

    def load(self, state: dict[str, Any]) -> None:
        self.teacher.load_state_dict(state["teacher"])
        # Checkpoints written before the record existed hold [task, return, success] rows.
        self._row = [[*r, None, None][:5] if len(r) == 3 else list(r) for r in state["row"]]

    def log_sinks(self, run_dir: Path, resume_step: int | None, tensorboard) -> list[CurriculumLog]:
        """The sink that writes this run's task record and histograms at every metrics row."""
        return [CurriculumLog(self, Path(run_dir) / CURRICULUM_CSV, resume_step, tensorboard)]

    def take_logged(self) -> list[list]:
        """The episodes counted in the metrics rows since the last call (kept only once a
        `CurriculumLog` is attached, so an extension without one holds nothing back)."""
        rows, self._logged = self._logged or [], []
        return rows


def record_columns(space: TaskSpace) -> list[str]:
    """Columns of ``curriculum.csv`` for ``space``."""
    params = [f"task/{n}" for n in space.names] + ([f"task/{LEVEL_KEY}"] if space.levels else [])
    return ["step", "env", *params, "return", "success", "length"]


def histogram_edges(space: TaskSpace, name: str) -> np.ndarray:
    """Fixed bin edges of task parameter ``name`` (a box name or ``"level"``) over ``space``."""
    if name == LEVEL_KEY:
        width = math.ceil(space.levels / MAX_LEVEL_BINS)
        return np.arange(math.ceil(space.levels / width) + 1, dtype=np.float64) * width
    low, high = space.box[name]
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


class CurriculumLog:
    """A metrics sink (see `rl.core.metrics.MetricLogger`) that writes, at every metrics row, the
    episodes that row counted: one ``curriculum.csv`` row each, and TensorBoard histograms of each
    task parameter (``curriculum/task/<param>``) and of the episode returns.

    ``curriculum.csv`` is a `rl.core.metrics.CsvSink`: flushed with ``metrics.csv`` and fsynced
    before every checkpoint, and on resume cut back to the rows at or before the checkpoint's step.
    """

    def __init__(self, ext: CurriculumExtension, path: Path, resume_step: int | None, tensorboard=None):
        from rl.core.metrics import CsvSink

        if path.is_symlink():
            raise CurriculumError(f"{path}: is a symlink; a run's own files must be inside it. Replace the link "
                                  "by the real file and resume again")
        self.ext = ext
        ext.take_logged()  # from now on metrics() keeps its rows for this sink
        self.space = ext.space
        self.tensorboard = tensorboard
        self.csv = CsvSink(path, record_columns(self.space), resume_step=resume_step)
        self._edges = {n: histogram_edges(self.space, n) for n in self.space.names}
        if self.space.levels:
            self._edges[LEVEL_KEY] = histogram_edges(self.space, LEVEL_KEY)

    def write(self, step: int, values) -> None:
        rows = self.ext.take_logged()
        if not rows:
            return
        for task, ret, success, index, length in rows:
            record = {f"task/{k}": float(v) for k, v in task.items()}
            record |= {"env": index, "return": ret, "success": None if success is None else float(success),
                       "length": length}
            self.csv.write(step, record)
        if self.tensorboard is not None:
            for name, edges in self._edges.items():
                self.tensorboard.histogram(step, f"curriculum/task/{name}", [r[0][name] for r in rows], edges)
            returns = np.array([r[1] for r in rows])
            lo, hi = float(returns.min()), float(returns.max())
            self.tensorboard.histogram(step, "curriculum/episode_return", returns,
                                       np.linspace(lo, hi if hi > lo else lo + 1.0, HISTOGRAM_BINS + 1))

    def flush(self, durable: bool = False) -> None:
        self.csv.flush(durable)

    def close(self) -> None:
        self.csv.close()


def _factory(manifest, plan: SeedPlan) -> CurriculumExtension | None:
    space = check_curriculum(manifest)
    return None if space is None else CurriculumExtension(manifest.curriculum, space, plan)


register_extension("curriculum", _factory)


def heldout_tasks(spec: CurriculumSpec) -> list[Task]:
    """The held-out grid: ``grid_points`` cell centres per box parameter x the held-out levels."""
    space = spec.task_space()
    levels: list[int] = []
    if space.levels:
        start = space.levels if spec.eval.level_start is None else spec.eval.level_start
        levels = list(range(start, start + spec.eval.level_count))
        space = TaskSpace(space.box, start + spec.eval.level_count, where="curriculum.space")
    return space.grid(spec.eval.grid_points, levels)


def evaluate_heldout(run: Path, episodes: int | None = None, seed: int | None = None, checkpoint: int | None = None,
                     deterministic: bool = True) -> dict:
    """Evaluate a curriculum run over its held-out task grid: mean, per-task and worst-10% returns.

    ``episodes`` per task defaults to ``curriculum.eval.episodes``. Read-only, like ``rl eval``.
    """
    from envs.make import make_vector_env
    from experiments.evaluate_run import EvalError, load_policy_agent
    from experiments.evaluation import run_episodes

    manifest, agent, label = load_policy_agent(run, checkpoint)
    spec = getattr(manifest, "curriculum", None)
    if spec is None:
        raise EvalError(f"{run}: the manifest has no curriculum section, so there is no task grid to evaluate")
    episodes = spec.eval.episodes if episodes is None else episodes
    if episodes < 1:
        raise EvalError(f"--episodes must be >= 1, got {episodes}")
    tasks = heldout_tasks(spec)
    source = FixedTasks([t for t in tasks for _ in range(episodes)])
    n = len(tasks) * episodes
    envs = make_vector_env(manifest.env.id, n, manifest.env.kwargs, [(w.name, w.kwargs) for w in manifest.env.wrappers],
                           sub_env_hook=lambda env, i: CurriculumWrapper(env, source, i))
    eval_seed = manifest.seed if seed is None else seed
    try:
        res = run_episodes(agent, envs, SeedPlan(eval_seed).integers("rl-eval-tasks", n), deterministic)
    finally:
        envs.close()
    first: dict[int, tuple] = {}
    for index, _task, _ret, success, _length in source.outcomes:
        first.setdefault(index, success)
    ret_te = res.scalar_returns.reshape(len(tasks), episodes)
    succ = [first.get(i) for i in range(n)]
    has_succ = all(s is not None for s in succ)
    succ_te = np.array([float(s) for s in succ]).reshape(len(tasks), episodes) if has_succ else None
    per_task = [{"task": t, "mean_return": float(ret_te[i].mean()),
                 **({"success_rate": float(succ_te[i].mean())} if has_succ else {})} for i, t in enumerate(tasks)]
    task_means = np.sort(ret_te.mean(axis=1))
    worst = task_means[:max(1, math.ceil(0.1 * len(tasks)))]
    return {"run": str(run), "checkpoint": label, "seed": eval_seed, "deterministic": deterministic,
            "tasks": len(tasks), "episodes_per_task": episodes, "mean_return": float(ret_te.mean()),
            "worst10_return": float(worst.mean()),
            "success_rate": float(succ_te.mean()) if has_succ else None, "per_task": per_task}


def format_heldout_table(result: dict) -> str:
    """A one-screen text summary of :func:`evaluate_heldout`."""
    lines = [f"{result['run']} ({result['checkpoint']}): {result['tasks']} held-out tasks x "
             f"{result['episodes_per_task']} episodes",
             f"mean return {result['mean_return']:.3f}   worst-10% return {result['worst10_return']:.3f}"
             + (f"   success rate {result['success_rate']:.3f}" if result["success_rate"] is not None else "")]
    for row in result["per_task"]:
        task = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["task"].items())
        extra = f"  success {row['success_rate']:.2f}" if "success_rate" in row else ""
        lines.append(f"  {task:<40} return {row['mean_return']:.3f}{extra}")
    return "\n".join(lines)
