"""Finding a stable-baselines3 algorithm by name and checking what a manifest passes to it.

``algo: sb3.<Name>`` names any :class:`~stable_baselines3.common.base_class.BaseAlgorithm` exported
by ``stable_baselines3`` or, if installed, ``sb3_contrib`` (e.g. ``sb3.SAC``, ``sb3.PPO``,
``sb3.TQC``). Keyword arguments are checked against the algorithm's constructor signature, so a
typo is a one-line error naming ``agent.kwargs.<key>`` before anything is built. stable_baselines3
(and torch with it) is imported only when an ``sb3.*`` manifest is validated.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from functools import cache

__all__ = ["SB3_PREFIX", "SB3ConfigError", "algorithm_class", "algorithms", "check_config", "logged_keys",
           "parameter_default"]

SB3_PREFIX = "sb3."
_MODULES = ("stable_baselines3", "sb3_contrib")
_NAME = re.compile(r"^sb3\.[A-Za-z_][A-Za-z0-9_]*$")

SUITE_OWNED = {
    "policy": "use agent.policy",
    "env": "from the manifest's env section",
    "seed": "from the manifest's seed",
    "verbose": "the suite writes metrics.csv and TensorBoard itself",
    "tensorboard_log": "TensorBoard events go to the run directory's tb/",
    "_init_setup_model": "the model is always set up",
}
"""Constructor arguments the suite sets; a manifest that passes them in ``agent.kwargs`` is refused."""

SESSION_KEYS = frozenset({"rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/success_rate"})
"""Keys SB3 logs that the suite computes itself (from every finished episode, as for its own agents)."""


class SB3ConfigError(ValueError):
    """A bad ``sb3.*`` agent section; ``field`` is the dotted path under ``agent`` (e.g. ``kwargs.tau``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"agent.{field}: {message}")
        self.field = field
        self.message = message


@cache
def algorithms() -> dict[str, type]:
    """Every algorithm class of stable_baselines3 and (if installed) sb3_contrib, by class name."""
    from stable_baselines3.common.base_class import BaseAlgorithm

    found: dict[str, type] = {}
    for module_name in _MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, BaseAlgorithm) and not inspect.isabstract(obj):
                found.setdefault(name, obj)
    return found


def algorithm_class(algo: str) -> type:
    """The class named by ``sb3.<Name>``; SB3ConfigError with close matches otherwise."""
    known = algorithms()
    name = algo[len(SB3_PREFIX):] if algo.startswith(SB3_PREFIX) else algo
    if _NAME.match(algo) and name in known:
        return known[name]
    choices = [SB3_PREFIX + n for n in sorted(known)]
    by_case = [c for c in choices if c.lower() == algo.lower()]
    close = by_case or difflib.get_close_matches(algo, choices, n=1, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    contrib = "" if "sb3_contrib" in {c.__module__.split(".")[0] for c in known.values()} else \
        " (sb3-contrib is not installed)"
    raise SB3ConfigError("algo", f"unknown stable-baselines3 algorithm {algo!r}{hint} "
                                 f"Available: {', '.join(choices)}{contrib}")


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Keyword parameters of ``cls.__init__`` (without ``self``)."""
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    return params


def parameter_default(cls: type, name: str, kwargs: dict):
    """The value ``name`` will have: from ``kwargs``, else the constructor's default (None if neither)."""
    if name in kwargs:
        return kwargs[name]
    param = constructor_parameters(cls).get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def check_config(algo: str, policy: str, kwargs: dict) -> None:
    """Raise SB3ConfigError for an unknown algorithm or policy, or a keyword it does not take."""
    from agents.sb3.kwargs import convert_kwargs

    cls = algorithm_class(algo)
    aliases = sorted(getattr(cls, "policy_aliases", {}))
    if policy not in aliases:
        close = difflib.get_close_matches(policy, aliases, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SB3ConfigError("policy", f"{algo} has no policy {policy!r}{hint} (choose one of {', '.join(aliases)})")
    params = constructor_parameters(cls)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = sorted(k for k, p in params.items() if k not in SUITE_OWNED and p.kind is not p.VAR_KEYWORD)
    for key in kwargs:
        if key in SUITE_OWNED:
            raise SB3ConfigError(f"kwargs.{key}", f"set by the suite ({SUITE_OWNED[key]}); remove it")
        if key not in params and not takes_any:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(accepted)}"
            raise SB3ConfigError(f"kwargs.{key}", f"{algo} takes no keyword {key!r}; {hint}")
    convert_kwargs(kwargs, action_dim=1)


_RECORD = re.compile(r"""\.record(?:_mean)?\(\s*["']((?:train|rollout)/[\w./-]+)["']""")


@cache
def logged_keys(cls: type) -> tuple[str, ...]:
    """The ``train/*`` and ``rollout/*`` keys that ``cls`` and its bases record, minus :data:`SESSION_KEYS`.

    Read from the source of the SB3 classes in ``cls``'s MRO, so algorithms from sb3-contrib or newer
    releases get their columns without a table here to keep up to date. ``dump_logs`` is skipped: the
    suite never lets SB3 dump (it writes its own rows), so what only ``dump_logs`` records never arrives.
    """
    keys = {"train/learning_rate", "train/n_updates"}
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] not in _MODULES:
            continue
        for name, member in vars(klass).items():
            if name == "dump_logs" or not inspect.isfunction(member):
                continue
            try:
                keys.update(_RECORD.findall(inspect.getsource(member)))
            except (OSError, TypeError):
                continue
    return tuple(sorted(keys - SESSION_KEYS))
