"""A Box2D bipedal walker on a track of stumps whose height and spacing are the task parameters, in
the spirit of TeachMyAgent's Stump Tracks (Romac et al. 2021). Needs ``gymnasium[box2d]``.

The walker, its lidar and its reward are gymnasium's ``BipedalWalker`` (v3); only the terrain is
ours: gymnasium's gently rolling grass, with square stumps of side ``height`` placed every
``spacing`` metres after the start pad. ``height = 0`` gives a track without stumps. Unlike
gymnasium's walker the observation keeps to its space: the hull angle is wrapped to [-pi, pi] and
the velocity bounds are Box2D's speed limits (a walker that tumbles or is launched by a stump broke
gymnasium's bounds, and the suite's run-time contract check stopped the run).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.box2d import bipedal_walker as bw

from envs.curriculum.spaces import Task, TaskSpace
from envs.curriculum.wrapper import resolve_task

__all__ = ["StumpWalkerEnv"]

_STUMP_COLOR = ((255, 255, 255), (153, 153, 153))
_MAX_SPEED = bw.Box2D.b2_maxTranslation * bw.FPS
"""Box2D caps a body's speed at ``b2_maxTranslation`` per step (m/s)..."""
_MAX_SPIN = bw.Box2D.b2_maxRotation * bw.FPS
"""... and its angular speed at ``b2_maxRotation`` per step (rad/s)."""
_OBS_BOUNDS = {
    2: 0.3 * _MAX_SPEED * (bw.VIEWPORT_W / bw.SCALE) / bw.FPS,  # hull x velocity
    3: 0.3 * _MAX_SPEED * (bw.VIEWPORT_H / bw.SCALE) / bw.FPS,  # hull y velocity
    5: 2 * _MAX_SPIN / bw.SPEED_HIP, 10: 2 * _MAX_SPIN / bw.SPEED_HIP,  # hip joint speeds
    7: 2 * _MAX_SPIN / bw.SPEED_KNEE, 12: 2 * _MAX_SPIN / bw.SPEED_KNEE,  # knee joint speeds
}
"""Observation entries whose gymnasium bound (5) a walker launched by a stump can exceed, bounded by what
Box2D allows instead (with 1% to spare for rounding)."""


class StumpWalkerEnv(bw.BipedalWalker):
    """BipedalWalker on stumps. Task parameters: ``height`` in [0, 3] (m, the stump side) and
    ``spacing`` in [0.5, 6] (m between stumps). ``info["is_success"]`` is True when the walker
    reaches the end of the track.

    Example:
        >>> env = StumpWalkerEnv()
        >>> _ = env.reset(seed=0, options={"task": {"height": 0.6, "spacing": 2.0}})
        >>> env.task["height"]
        0.6
    """

    task_space = TaskSpace({"height": (0.0, 3.0), "spacing": (0.5, 6.0)}, where="StumpWalker")

    def __init__(self, height: float = 0.0, spacing: float = 3.0, render_mode: str | None = None):
        super().__init__(render_mode=render_mode, hardcore=False)
        high = self.observation_space.high.copy()
        for i, bound in _OBS_BOUNDS.items():
            high[i] = max(high[i], 1.01 * bound)
        low = np.where(self.observation_space.low < 0, -high, self.observation_space.low).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.default_task = self.task_space.validate({"height": height, "spacing": spacing})
        self._task = dict(self.default_task)

    @property
    def task(self) -> Task:
        """The current episode's task."""
        return dict(self._task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._task = resolve_task(self.task_space, self.default_task, options)
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "is_success": False}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        # The hull angle is not wrapped by gymnasium; a tumbling hull passes +-pi before it touches the ground.
        obs[0] = np.float32((float(self.hull.angle) + np.pi) % (2 * np.pi) - np.pi)
        end_x = (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * bw.TERRAIN_STEP
        return obs, reward, terminated, truncated, {**info, "is_success": bool(self.hull.position[0] > end_x)}

    def _generate_terrain(self, hardcore: bool) -> None:
        step, y, velocity = bw.TERRAIN_STEP, bw.TERRAIN_HEIGHT, 0.0
        self.terrain, self.terrain_x, self.terrain_y = [], [], []
        for i in range(bw.TERRAIN_LENGTH):
            self.terrain_x.append(i * step)
            velocity = 0.8 * velocity + 0.01 * np.sign(bw.TERRAIN_HEIGHT - y)
            if i > bw.TERRAIN_STARTPAD:
                velocity += self.np_random.uniform(-1, 1) / bw.SCALE
            y += velocity
            self.terrain_y.append(y)
        self._add_stumps(self._task["height"], self._task["spacing"])
        self.terrain_poly = []
        for i in range(bw.TERRAIN_LENGTH - 1):
            poly = [(self.terrain_x[i], self.terrain_y[i]), (self.terrain_x[i + 1], self.terrain_y[i + 1])]
            self.fd_edge.shape.vertices = poly
            t = self.world.CreateStaticBody(fixtures=self.fd_edge)
            t.color1 = t.color2 = (76, 255 if i % 2 == 0 else 204, 76)
            self.terrain.append(t)
            self.terrain_poly.append((poly + [(poly[1][0], 0), (poly[0][0], 0)], (102, 153, 76)))
        self.terrain.reverse()

    def _add_stumps(self, height: float, spacing: float) -> None:
        if height <= 0.0:
            return
        step = bw.TERRAIN_STEP
        x = (bw.TERRAIN_STARTPAD + 2) * step + spacing
        while x + height < (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * step:
            i0, i1 = int(x // step), int((x + height) // step) + 1
            base = min(self.terrain_y[i0:i1 + 1]) - 0.1
            top = max(self.terrain_y[i0:i1 + 1]) + height
            self.fd_polygon.shape.vertices = [(x, base), (x + height, base), (x + height, top), (x, top)]
            t = self.world.CreateStaticBody(fixtures=self.fd_polygon)
            t.color1, t.color2 = _STUMP_COLOR
            self.terrain.append(t)
            x += height + spacing
