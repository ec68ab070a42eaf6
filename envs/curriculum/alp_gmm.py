"""ALP-GMM: sample tasks where the absolute learning progress is high (Portelas et al. 2019,
"Teacher algorithms for curriculum learning of Deep RL in continuously parameterized environments").

For every finished episode of task ``u`` (unit coordinates) with return ``r``, the absolute learning
progress is ``ALP = |r - r_nn|`` where ``r_nn`` is the return of the nearest earlier task in the
history. Every ``fit_every`` episodes a Gaussian mixture is fitted to the recent ``[u, ALP]`` points
(k = 2..k_max, chosen by AIC); a task is then drawn by picking a component with probability
proportional to its mean ALP and sampling ``u`` from its marginal. With probability ``random_prob``,
and until the first fit, tasks are uniform.

Determinism: the mixture is fitted with a ``random_state`` drawn from the teacher's generator, and
the fitted components (weights, means, covariances) are stored in ``state_dict`` as JSON floats, so
a resumed teacher samples exactly what the uninterrupted one would.

Axis letters: H history entries, D box dimensions, C mixture components.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.curriculum.spaces import CurriculumError, Task, TaskSpace
from envs.curriculum.teachers import _need_box, rng_state, set_rng_state

__all__ = ["ALPGMMTeacher"]


class ALPGMMTeacher:
    """Absolute-learning-progress Gaussian-mixture teacher over a box task space.

    Example:
        >>> t = ALPGMMTeacher(TaskSpace({"x": (0.0, 1.0)}), np.random.default_rng(0), fit_every=20)
        >>> for _ in range(40):
        ...     task = t.sample(0)
        ...     t.update(task, ret=float(task["x"] < 0.3) * len(t.ret_h), success=None)
        >>> t.stats()["components"] >= 2
        True
    """

    def __init__(self, space: TaskSpace, rng: np.random.Generator, fit_every: int = 100, fit_window: int = 200,
                 k_max: int = 6, random_prob: float = 0.2, max_history: int = 10_000):
        _need_box(space, "alp_gmm")
        for name, v, lo in (("fit_every", fit_every, 2), ("fit_window", fit_window, 4), ("k_max", k_max, 2),
                            ("max_history", max_history, 2)):
            if v < lo:
                raise CurriculumError(f"curriculum.teacher.{name}: must be >= {lo}, got {v}")
        if fit_window < k_max:
            raise CurriculumError(f"curriculum.teacher.fit_window: {fit_window} points cannot fit k_max={k_max} "
                                  "components; raise fit_window or lower k_max")
        if not 0.0 <= random_prob <= 1.0:
            raise CurriculumError(f"curriculum.teacher.random_prob: must be in [0, 1], got {random_prob}")
        self.space, self.rng = space, rng
        self.fit_every, self.fit_window, self.k_max = fit_every, fit_window, k_max
        self.random_prob, self.max_history = float(random_prob), max_history
        self.u_hd = np.zeros((0, space.dim))
        self.ret_h = np.zeros(0)
        self.alp_h = np.zeros(0)
        self.since_fit = 0
        self.weights_c = np.zeros(0)
        self.means_cx = np.zeros((0, space.dim + 1))
        self.covs_cxx = np.zeros((0, space.dim + 1, space.dim + 1))

    def sample(self, index: int) -> Task:
        if len(self.weights_c) == 0 or self.rng.random() < self.random_prob:
            return self.space.sample_uniform(self.rng)
        alp_c = np.clip(self.means_cx[:, -1], 0.0, None)
        p_c = alp_c / alp_c.sum() if alp_c.sum() > 0 else np.full(len(alp_c), 1.0 / len(alp_c))
        c = int(self.rng.choice(len(p_c), p=p_c))
        d = self.space.dim
        u_d = self.rng.multivariate_normal(self.means_cx[c, :d], self.covs_cxx[c, :d, :d], method="cholesky")
        return self.space.from_unit(u_d)

    def update(self, task: Task, ret: float, success: bool | None, length: int = 0) -> None:
        u_d = self.space.to_unit(task)
        if len(self.ret_h):
            nn = int(np.argmin(np.sum((self.u_hd - u_d) ** 2, axis=1)))
            alp = abs(float(ret) - float(self.ret_h[nn]))
        else:
            alp = 0.0
        keep = self.max_history - 1
        self.u_hd = np.concatenate([self.u_hd[-keep:], u_d[None]])
        self.ret_h = np.append(self.ret_h[-keep:], float(ret))
        self.alp_h = np.append(self.alp_h[-keep:], alp)
        self.since_fit += 1
        if self.since_fit >= self.fit_every and len(self.ret_h) >= self.k_max:
            self._fit()
            self.since_fit = 0

    def _fit(self) -> None:
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        x = np.concatenate([self.u_hd[-self.fit_window:], self.alp_h[-self.fit_window:, None]], axis=1)
        seed = int(self.rng.integers(2**31 - 1))
        best, best_aic = None, np.inf
        # One BLAS/OpenMP thread: ~10x faster for these tiny fits on a busy machine, and the result
        # does not depend on the thread count.
        with threadpool_limits(1):
            for k in range(2, min(self.k_max, len(x)) + 1):
                gmm = GaussianMixture(n_components=k, covariance_type="full", init_params="k-means++",
                                      random_state=seed).fit(x)
                aic = gmm.aic(x)
                if aic < best_aic:
                    best, best_aic = gmm, aic
        self.weights_c = np.asarray(best.weights_, np.float64)
        self.means_cx = np.asarray(best.means_, np.float64)
        self.covs_cxx = np.asarray(best.covariances_, np.float64)

    def stats(self) -> dict[str, float]:
        recent = self.alp_h[-self.fit_window:]
        return {"components": float(len(self.weights_c)), "mean_alp": float(recent.mean()) if len(recent) else 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "u": self.u_hd.tolist(), "ret": self.ret_h.tolist(),
                "alp": self.alp_h.tolist(), "since_fit": self.since_fit, "weights": self.weights_c.tolist(),
                "means": self.means_cx.tolist(), "covs": self.covs_cxx.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        d = self.space.dim
        set_rng_state(self.rng, state["rng"])
        self.u_hd = np.asarray(state["u"], np.float64).reshape(-1, d)
        self.ret_h = np.asarray(state["ret"], np.float64)
        self.alp_h = np.asarray(state["alp"], np.float64)
        self.since_fit = int(state["since_fit"])
        self.weights_c = np.asarray(state["weights"], np.float64)
        self.means_cx = np.asarray(state["means"], np.float64).reshape(-1, d + 1)
        self.covs_cxx = np.asarray(state["covs"], np.float64).reshape(-1, d + 1, d + 1)
