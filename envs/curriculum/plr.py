"""Prioritized Level Replay over discrete levels (Jiang, Grefenstette & Rocktäschel 2021).

Each level has a score and the episode count at which it was last sampled. The replay distribution
mixes rank prioritisation and staleness:

    P_S(i) ∝ (1 / rank(S_i))^(1/β),   P_C(i) = (c - C_i) / Σ_j (c - C_j),   P = (1 - ρ) P_S + ρ P_C

over seen levels (c = episodes sampled so far, C_i = when level i was last sampled). A new level is
drawn uniformly from the unseen ones unless the replay decision says otherwise: with the paper's
"proportionate" schedule, replay with probability equal to the seen fraction once it is >= ``rho``.

Score: the paper scores a level by the positive value loss (mean GAE), which needs the agent's
critic. To work with any agent this teacher uses an agent-agnostic learning-progress proxy, the
absolute change of the level's return since its previous episode (the first visit scores ``|R|``),
smoothed as ``S_i <- (1 - α) S_i + α |R - R_prev|``.

Axis letters: L levels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.curriculum.spaces import LEVEL_KEY, CurriculumError, Task, TaskSpace
from envs.curriculum.teachers import rng_state, set_rng_state

__all__ = ["MAX_PLR_LEVELS", "PLRTeacher"]

MAX_PLR_LEVELS = 100_000


class PLRTeacher:
    """Prioritized Level Replay over ``space.levels`` levels (a levels-only task space).

    Example:
        >>> t = PLRTeacher(TaskSpace(levels=3), np.random.default_rng(0))
        >>> seen = []
        >>> for _ in range(3):
        ...     task = t.sample(0)
        ...     t.update(task, ret=1.0, success=True)
        ...     seen.append(task["level"])
        >>> sorted(seen)
        [0, 1, 2]
    """

    def __init__(self, space: TaskSpace, rng: np.random.Generator, temperature: float = 0.1,
                 staleness_coef: float = 0.1, rho: float = 1.0, score_alpha: float = 0.5):
        if not space.levels or space.dim:
            raise CurriculumError("curriculum.teacher: plr needs a task space of discrete levels only; use "
                                  "alp_gmm, schedule or uniform for box parameters")
        if space.levels > MAX_PLR_LEVELS:
            raise CurriculumError(f"curriculum.space.levels: plr keeps a score per level; use at most "
                                  f"{MAX_PLR_LEVELS} levels, got {space.levels}")
        if not 0.0 < temperature <= 10.0:
            raise CurriculumError(f"curriculum.teacher.temperature: must be in (0, 10], got {temperature}")
        if not 0.0 < score_alpha <= 1.0:
            raise CurriculumError(f"curriculum.teacher.score_alpha: must be in (0, 1], got {score_alpha}")
        for name, v in (("staleness_coef", staleness_coef), ("rho", rho)):
            if not 0.0 <= v <= 1.0:
                raise CurriculumError(f"curriculum.teacher.{name}: must be in [0, 1], got {v}")
        self.space, self.rng = space, rng
        self.temperature, self.staleness_coef, self.rho, self.alpha = temperature, staleness_coef, rho, score_alpha
        n = space.levels
        self.seen_l = np.zeros(n, bool)
        self.score_l = np.zeros(n)
        self.last_ret_l = np.zeros(n)
        self.sampled_at_l = np.zeros(n, np.int64)
        self.episodes = 0

    def replay_distribution(self) -> np.ndarray:
        """P over all levels (zero for unseen ones)."""
        seen = np.flatnonzero(self.seen_l)
        p_l = np.zeros(self.space.levels)
        if len(seen) == 0:
            return p_l
        order = np.argsort(-self.score_l[seen], kind="stable")
        rank = np.empty(len(seen))
        rank[order] = np.arange(1, len(seen) + 1)
        h = (1.0 / rank) ** (1.0 / self.temperature)
        p_s = h / h.sum()
        stale = (self.episodes - self.sampled_at_l[seen]).astype(np.float64)
        p_c = stale / stale.sum() if stale.sum() > 0 else np.full(len(seen), 1.0 / len(seen))
        p_l[seen] = (1 - self.staleness_coef) * p_s + self.staleness_coef * p_c
        return p_l

    def sample(self, index: int) -> Task:
        frac_seen = self.seen_l.mean()
        replay = frac_seen >= 1.0 or (frac_seen >= self.rho and frac_seen > 0 and self.rng.random() < frac_seen)
        if replay:
            p_l = self.replay_distribution()
            level = int(self.rng.choice(len(p_l), p=p_l))
        else:
            unseen = np.flatnonzero(~self.seen_l)
            level = int(unseen[self.rng.integers(len(unseen))])
        self.episodes += 1
        self.sampled_at_l[level] = self.episodes
        return {LEVEL_KEY: level}

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        i = int(task[LEVEL_KEY])
        if not self.seen_l[i]:
            self.seen_l[i] = True
            self.score_l[i] = abs(float(ret))
        else:
            self.score_l[i] = (1 - self.alpha) * self.score_l[i] + self.alpha * abs(float(ret) - self.last_ret_l[i])
        self.last_ret_l[i] = float(ret)

    def stats(self) -> dict[str, float]:
        seen = self.seen_l.sum()
        return {"levels_seen": float(seen),
                "mean_score": float(self.score_l[self.seen_l].mean()) if seen else 0.0}

    def state_dict(self) -> dict[str, Any]:
        seen = np.flatnonzero(self.seen_l)
        return {"rng": rng_state(self.rng), "episodes": self.episodes,
                "sampled_at": {str(i): int(self.sampled_at_l[i]) for i in np.flatnonzero(self.sampled_at_l)},
                "seen": [int(i) for i in seen], "score": self.score_l[seen].tolist(),
                "last_ret": self.last_ret_l[seen].tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.episodes = int(state["episodes"])
        self.seen_l[:] = False
        self.score_l[:] = 0.0
        self.last_ret_l[:] = 0.0
        self.sampled_at_l[:] = 0
        for k, v in state["sampled_at"].items():
            self.sampled_at_l[int(k)] = int(v)
        seen = np.asarray(state["seen"], np.int64)
        self.seen_l[seen] = True
        self.score_l[seen] = np.asarray(state["score"], np.float64)
        self.last_ret_l[seen] = np.asarray(state["last_ret"], np.float64)
