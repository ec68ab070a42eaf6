"""Turning ``agent.kwargs`` (plain YAML values) into the Python objects SB3 constructors take.

Most keywords pass through unchanged (numbers, strings, booleans, lists such as ``net_arch``).
A few SB3 keywords want objects, which a manifest spells as data:

* a schedule ``{kind: linear, start: 1.0e-3, end: 0.0, fraction: 1.0}`` or ``{kind: constant, value: …}``
  for any keyword (``learning_rate``, ``clip_range``, ...): SB3's ``LinearSchedule`` of progress;
* ``action_noise: {kind: normal | ornstein_uhlenbeck, sigma: 0.1, theta: 0.15}`` (per action dimension);
* ``train_freq: [4, episode]`` (a YAML list) for SB3's ``(frequency, unit)`` tuple;
* ``policy_kwargs.activation_fn: ReLU`` and ``policy_kwargs.optimizer_class: AdamW``: names in
  ``torch.nn`` and ``torch.optim``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.common.config import ConstantSchedule, LinearSchedule

__all__ = ["convert_kwargs"]

_SCHEDULES = {"constant": ConstantSchedule, "linear": LinearSchedule}
_NOISE_KINDS = ("normal", "ornstein_uhlenbeck")


def convert_kwargs(kwargs: dict[str, Any], action_dim: int) -> dict[str, Any]:
    """SB3 constructor keywords from manifest values; SB3ConfigError names the offending field."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "action_noise" and value is not None:
            out[key] = _action_noise(value, action_dim)
        elif key == "policy_kwargs":
            out[key] = _policy_kwargs(value)
        elif key == "train_freq" and isinstance(value, list):
            out[key] = _train_freq(value)
        elif isinstance(value, dict) and value.get("kind") in _SCHEDULES:
            out[key] = _schedule(key, value)
        else:
            out[key] = value
    return out


def _error(field: str, message: str):
    from agents.sb3.resolve import SB3ConfigError

    return SB3ConfigError(field, message)


def _schedule(key: str, spec: dict):
    from stable_baselines3.common.utils import LinearSchedule as SB3Linear

    try:
        sched = _SCHEDULES[spec["kind"]].model_validate(spec)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        raise _error(f"kwargs.{key}{'.' + where if where else ''}", e["msg"]) from None
    if isinstance(sched, ConstantSchedule):
        return float(sched.value)
    # SB3 schedules take progress_remaining (1 -> 0); LinearSchedule holds `end` after end_fraction.
    return SB3Linear(sched.start, sched.end, sched.fraction)


def _action_noise(spec: Any, action_dim: int):
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    if not isinstance(spec, dict) or spec.get("kind") not in _NOISE_KINDS:
        raise _error("kwargs.action_noise",
                     f"expected {{kind: normal | ornstein_uhlenbeck, sigma: FLOAT}}, got {spec!r}")
    extra = set(spec) - {"kind", "sigma", "theta"}
    if extra or not isinstance(spec.get("sigma"), int | float) or spec["sigma"] < 0:
        raise _error("kwargs.action_noise",
                     f"expected kind, sigma >= 0 (and theta for ornstein_uhlenbeck), got {spec!r}")
    mean, sigma = np.zeros(action_dim), float(spec["sigma"]) * np.ones(action_dim)
    if spec["kind"] == "normal":
        return NormalActionNoise(mean, sigma)
    return OrnsteinUhlenbeckActionNoise(mean, sigma, theta=float(spec.get("theta", 0.15)))


def _train_freq(value: list) -> tuple:
    if len(value) != 2 or not isinstance(value[0], int) or value[1] not in ("step", "episode"):
        raise _error("kwargs.train_freq", f"expected an int or [INT, step | episode], got {value!r}")
    return (value[0], value[1])


def _policy_kwargs(value: Any) -> dict:
    import torch

    if not isinstance(value, dict):
        raise _error("kwargs.policy_kwargs", f"expected a mapping, got {value!r}")
    out = dict(value)
    for key, module, base in (("activation_fn", torch.nn, torch.nn.Module),
                              ("optimizer_class", torch.optim, torch.optim.Optimizer)):
        if key not in out:
            continue
        cls = getattr(module, out[key], None) if isinstance(out[key], str) else None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            example = "ReLU" if key == "activation_fn" else "Adam"
            raise _error(f"kwargs.policy_kwargs.{key}",
                         f"expected a class name in {module.__name__} (e.g. {example}), got {out[key]!r}")
        out[key] = cls
    return out
