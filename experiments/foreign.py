"""``rl eval model.zip --env ID [--trust-pickle]``: evaluate a policy that stable-baselines3 saved.

An SB3 zip (``model.save``) holds ``data``, a JSON object, plus ``policy.pth`` (``torch.save`` of
the policy's state dict) and optimizer files. Whatever JSON cannot hold (spaces, the policy class,
learning-rate schedules) ``data`` carries as a cloudpickle payload, base64 under ``":serialized:"``,
and unpickling a payload runs whatever code its author put there. So:

* ``data`` has payloads and no ``--trust-pickle``: refused with a one-line error naming them.
  (Every zip ``model.save`` writes has some: the policy class and the spaces.)
* ``--trust-pickle``: SB3's own ``ALGO.load`` (everything is unpickled). The algorithm is read from
  the readable ``__module__`` of the payload describing the policy class, before anything is unpickled.
* No payloads: only the policy weights are read, from ``policy.pth`` with
  ``torch.load(weights_only=True)``, torch's restricted unpickler, which rebuilds tensors and plain
  containers and refuses any other object instead of running it (torch >= 2.6; the suite pins 2.13).
  The algorithm is recognised from the tensor names, ``policy_kwargs`` come from ``data``, the spaces
  from ``--env``; a policy that does not fit is an error naming the tensor.

Neither path reads a ``VecNormalize`` statistics file: policies trained with it need it at test time.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from experiments.evaluate_run import EvalError

__all__ = ["evaluate_sb3_zip", "is_sb3_zip", "pickle_payloads", "read_sb3_data"]

SERIALIZED = ":serialized:"


def is_sb3_zip(path: Path) -> bool:
    """Whether ``path`` looks like an SB3 model file (``.zip`` name, or a zip file that is not a directory)."""
    path = Path(path)
    return path.suffix == ".zip" or (path.is_file() and zipfile.is_zipfile(path))


def read_sb3_data(path: Path) -> tuple[dict[str, Any], set[str]]:
    """The zip's ``data`` object (parsed as JSON, nothing unpickled) and its member names."""
    try:
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
            if "data" not in members:
                raise EvalError(f"{path}: not a stable-baselines3 model (no 'data' entry in the zip)")
            data = json.loads(z.read("data"))
    except FileNotFoundError:
        raise EvalError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise EvalError(f"{path}: not a readable zip file ({err})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise EvalError(f"{path}: the zip's 'data' entry is not JSON ({err})") from None
    if not isinstance(data, dict):
        raise EvalError(f"{path}: the zip's 'data' entry is not a JSON object")
    return data, members


def pickle_payloads(data: Any, where: str = "") -> list[str]:
    """Dotted paths of every value in ``data`` that carries a cloudpickle payload."""
    found: list[str] = []
    if isinstance(data, dict):
        if SERIALIZED in data:
            found.append(where or "<data>")
        for key, value in data.items():
            found += pickle_payloads(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += pickle_payloads(value, f"{where}[{i}]")
    return found


def evaluate_sb3_zip(path: Path, env_id: str | None, episodes: int, seed: int | None, deterministic: bool,
                     trust_pickle: bool) -> dict:
    """Play ``episodes`` episodes of ``env_id`` with the zip's policy; the same dict as ``rl eval RUN --json``."""
    path = Path(path)
    if env_id is None:
        raise EvalError(f"{path}: an SB3 zip does not say which env it was trained on; pass --env ID")
    if episodes < 1:
        raise EvalError(f"--episodes must be >= 1, got {episodes}")
    if seed is not None and seed < 0:
        raise EvalError(f"--seed must be non-negative, got {seed}")
    data, members = read_sb3_data(path)
    payloads = pickle_payloads(data)
    envs = _eval_envs(env_id, episodes)
    try:
        if trust_pickle:
            act, label = _trusted_policy(path, data, envs)
        elif payloads:
            shown = ", ".join(payloads[:4]) + (f" and {len(payloads) - 4} more" if len(payloads) > 4 else "")
            raise EvalError(f"{path}: refusing to load: its 'data' carries cloudpickle payloads ({shown}) that would "
                            "run arbitrary code when unpickled; pass --trust-pickle only if you trust where the file "
                            "came from")
        else:
            act, label = _weights_only_policy(path, data, members, envs)
        eval_seed = 0 if seed is None else seed
        res = _play(act, envs, eval_seed, deterministic)
    finally:
        envs.close()
    r = res.scalar_returns
    return {
        "run": str(path), "checkpoint": label, "env": env_id, "episodes": episodes, "seed": eval_seed,
        "deterministic": deterministic, "mean_return": float(r.mean()), "std_return": float(r.std()),
        "returns": [float(x) for x in r], "lengths": [int(x) for x in res.lengths_e],
        "mean_length": float(np.mean(res.lengths_e)),
    }


def _eval_envs(env_id: str, episodes: int):
    from envs.checks import ContractCheck
    from envs.make import make_vector_env

    return ContractCheck(make_vector_env(env_id, episodes), mode="error")


class _Actor:
    """The ``act`` surface :func:`experiments.evaluation.run_episodes` needs, over an SB3 policy."""

    def __init__(self, predict):
        self.predict = predict

    def act(self, obs_n: np.ndarray, deterministic: bool = False):
        action_n, _ = self.predict(obs_n, deterministic=deterministic)
        return action_n, {}


def _play(actor: _Actor, envs, seed: int, deterministic: bool):
    import torch

    from experiments.evaluation import run_episodes
    from rl.core.seeding import SeedPlan

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SeedPlan(seed).integer("rl-eval-torch"))  # stochastic actions repeat run to run
        return run_episodes(actor, envs, SeedPlan(seed).integers("rl-eval", envs.num_envs), deterministic)


def _trusted_policy(path: Path, data: dict, envs) -> tuple[_Actor, str]:
    cls = _algorithm_from_data(path, data)
    try:
        model = cls.load(path, device="cpu")
    except Exception as err:  # anything SB3's loader raises on a foreign file is the file's problem
        raise EvalError(f"{path}: {cls.__name__}.load failed: {type(err).__name__}: {' '.join(str(err).split())}") \
            from None
    for what, theirs, ours in (("observation", model.observation_space, envs.single_observation_space),
                               ("action", model.action_space, envs.single_action_space)):
        if theirs != ours:
            raise EvalError(f"{path}: the model's {what} space {theirs} differs from the env's {ours}; check --env")
    return _Actor(model.predict), f"sb3 zip, trusted pickle ({cls.__name__}.load)"


def _algorithm_from_data(path: Path, data: dict) -> type:
    """The algorithm class whose policies live in the readable ``__module__`` of ``data["policy_class"]``.

    Several algorithms share a policy module (PPO and A2C; TD3 and DDPG): the one with the most
    constructor parameters present in ``data`` wins, ties going to the one with fewer parameters.
    DDPG zips store TD3's attributes too and load as TD3, which builds the same policy.
    """
    from agents.sb3.resolve import SUITE_OWNED, algorithms, constructor_parameters

    entry = data.get("policy_class")
    module = entry.get("__module__") if isinstance(entry, dict) else None
    candidates = [cls for _, cls in sorted(algorithms().items())
                  if any(p.__module__ == module for p in getattr(cls, "policy_aliases", {}).values())]
    if not candidates:
        raise EvalError(f"{path}: cannot tell which SB3 algorithm wrote this zip (policy module {module!r}); "
                        "is sb3-contrib needed?")

    def coverage(cls: type) -> tuple[int, float]:
        params = set(constructor_parameters(cls)) - set(SUITE_OWNED)
        return len(params & set(data)), len(params & set(data)) / max(len(params), 1)

    return max(candidates, key=coverage)


_QF = re.compile(r"^critic\.qf(\d+)\.")
_NET_ARCH = {  # (name in net_arch, tensor prefix of the Linear layers, whether the last layer is the output)
    "sb3.SAC": (("pi", "actor.latent_pi.", False), ("qf", "critic.qf0.", True)),
    "sb3.TD3": (("pi", "actor.mu.", True), ("qf", "critic.qf0.", True)),
    "sb3.DDPG": (("pi", "actor.mu.", True), ("qf", "critic.qf0.", True)),
    "sb3.PPO": (("pi", "mlp_extractor.policy_net.", False), ("vf", "mlp_extractor.value_net.", False)),
    "sb3.DQN": (("", "q_net.q_net.", True),),
}


def _net_arch_from_weights(algo: str, state: dict) -> list[int] | dict[str, list[int]]:
    """Hidden widths read off the Linear layers' shapes (for zips whose policy_kwargs were pickled)."""
    arch = {}
    for name, prefix, has_output in _NET_ARCH[algo]:
        layer = re.compile(re.escape(prefix) + r"(\d+)\.weight$")
        rows = sorted(int(m.group(1)) for k in state if (m := layer.match(k)))
        widths = [int(state[f"{prefix}{i}.weight"].shape[0]) for i in rows]
        arch[name] = widths[:-1] if has_output else widths
    if "" in arch:
        return arch[""]
    return next(iter(arch.values())) if len({tuple(v) for v in arch.values()}) == 1 else arch


def _algorithm_from_weights(path: Path, keys: list[str]) -> tuple[str, dict[str, Any]]:
    """``(sb3.<Name>, extra policy_kwargs)`` recognised from policy.pth's tensor names."""
    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    n_critics = len({m.group(1) for k in keys if (m := _QF.match(k))})
    if has("q_net.q_net."):
        return "sb3.DQN", {}
    if has("actor_target.") and has("critic."):
        return ("sb3.TD3" if n_critics != 1 else "sb3.DDPG"), {"n_critics": n_critics}
    if has("actor.latent_pi.") and has("critic."):
        return "sb3.SAC", {"n_critics": n_critics}
    if has("mlp_extractor.") and has("action_net."):
        return "sb3.PPO", {}  # A2C saves the same ActorCriticPolicy
    raise EvalError(f"{path}: cannot tell which SB3 algorithm wrote policy.pth (tensors: {', '.join(keys[:6])}...); "
                    "rerun with --trust-pickle to let SB3 load it")


def _weights_only_policy(path: Path, data: dict, members: set[str], envs) -> tuple[_Actor, str]:
    import pickle

    import torch
    from pydantic import ValidationError

    from agents.sb3.agent import SB3Agent
    from agents.sb3.config import SB3Config
    from agents.sb3.resolve import algorithm_class, constructor_parameters

    if "policy.pth" not in members:
        raise EvalError(f"{path}: no policy.pth in the zip")
    with zipfile.ZipFile(path) as z:
        raw = z.read("policy.pth")
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError) as err:
        raise EvalError(f"{path}: policy.pth is not a plain tensor file; torch's weights-only loader refused it "
                        f"without running it ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise EvalError(f"{path}: policy.pth does not hold a state dict of tensors")
    algo, extra = _algorithm_from_weights(path, list(state))
    policy_kwargs = data.get("policy_kwargs") or {}
    if not isinstance(policy_kwargs, dict):
        raise EvalError(f"{path}: data.policy_kwargs is not a JSON object")
    if "net_arch" not in policy_kwargs:
        extra["net_arch"] = _net_arch_from_weights(algo, state)
    kwargs: dict[str, Any] = {"policy_kwargs": {**extra, **policy_kwargs}}
    if "use_sde" in data and "use_sde" in constructor_parameters(algorithm_class(algo)):
        kwargs["use_sde"] = bool(data["use_sde"])
    try:
        config = SB3Config(algo=algo, kwargs=kwargs)
    except ValidationError as err:
        raise EvalError(f"{path}: data.policy_kwargs {policy_kwargs} do not fit {algo}: "
                        f"{err.errors()[0]['msg']}") from None
    agent = SB3Agent(config, envs.single_observation_space, envs.single_action_space, 1, 0)
    try:
        agent.model.policy.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise EvalError(f"{path}: policy.pth does not fit a {algo} policy on these spaces with policy_kwargs "
                        f"{policy_kwargs}: {first[0].strip()}") from None
    return _Actor(agent.model.predict), f"sb3 zip, weights only ({algo} policy from policy.pth)"
