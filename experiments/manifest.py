"""The experiment manifest: one YAML file that describes a run completely.

Parsed with :mod:`experiments.yaml_strict` and validated strictly by pydantic before anything is
written; errors name the file, the line and the dotted field, and suggest close matches.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator

from agents.awac.config import AWACConfig
from agents.bc.config import BCConfig
from agents.common.config import StrictModel
from agents.cql.config import CQLConfig
from agents.dqn.config import DQNConfig
from agents.iql.config import IQLConfig
from agents.mo_dqn.config import MODQNConfig
from agents.ppo.config import PPOConfig
from agents.registry import AGENT_CONFIGS, SB3_TAG, agent_tag, config_model
from agents.sac.config import SACConfig
from agents.sb3.config import SB3Config
from agents.td3.config import TD3Config
from agents.td3bc.config import TD3BCConfig
from agents.unio4.config import UniO4Config
from experiments.curriculum import CurriculumSpec
from experiments.mo import ObjectivesSpec
from experiments.phases import DatasetSpec, PhaseSpec
from experiments.tune import TuneSpec
from experiments.yaml_strict import ManifestSyntaxError, load_yaml, parse_override

__all__ = ["Manifest", "ManifestError", "load_manifest", "manifest_from_json", "apply_overrides"]

SCHEMA_VERSION = 1
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
"""Run ids and manifest names; use ``fullmatch`` (``\\Z``, not ``$``, which matches before a final newline)."""


class ManifestError(ValueError):
    """A user mistake in a manifest or an override; the message is one line for people."""


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{what} {value!r} must be 1-100 characters of letters, digits, '_', '-', '.', "
            "start with a letter or digit, and contain no '..' or '/'"
        )
    return value


class WrapperSpec(StrictModel):
    """One env wrapper in the chain, applied to every sub-env in order."""

    name: str
    """A gymnasium wrapper class name (e.g. ``TimeAwareObservation``) or an rlsuite wrapper."""
    kwargs: dict[str, Any] = {}
    """Keyword arguments of the wrapper."""


class EnvSpec(StrictModel):
    """The training env."""

    id: str
    """A registered gymnasium env id, e.g. ``CartPole-v1``."""
    kwargs: dict[str, Any] = {}
    """Keyword arguments for ``gymnasium.make``."""
    num_envs: int = Field(1, ge=1, le=4096)
    """Parallel sub-envs of the vector env (N)."""
    wrappers: list[WrapperSpec] = []
    """Wrapper chain applied to each sub-env."""
    checks: Literal["error", "warn"] = "error"
    """Run-time env contract checks (non-finite values, obs outside its space): fail or warn."""
    vectorization: Literal["sync", "vector"] = "sync"
    """How the training sub-envs are stepped. ``sync``: ``num_envs`` copies of the env in one process
    (gymnasium's ``SyncVectorEnv``, SAME_STEP autoreset). ``vector``: the env's own batched
    implementation (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``, e.g.
    CartPole-v1), one numpy step for every sub-env, NEXT_STEP autoreset (each episode's reset step is
    stored as invalid and masked out), one generator for all sub-envs seeded from the run seed; on-policy
    agents only, no ``wrappers`` or curriculum. Evaluation envs are ``sync`` either way. It pays with
    many sub-envs: CartPole-v1 steps 373k env steps/s at 32 and 1.75M at 128, against ~70k for sync
    envs; at 8 it is no faster end to end."""


class TrainSpec(StrictModel):
    """The training budget."""

    total_steps: int = Field(ge=1)
    """Environment steps (all sub-envs together)."""
    log_every_steps: int = Field(1000, ge=1)
    """Off-policy loops write a metrics row every this many env steps (on-policy: every rollout)."""


class EvalSpec(StrictModel):
    """Periodic evaluation on a separate env with its own seeds."""

    every_steps: int = Field(10_000, ge=0)
    """Evaluate every this many env steps (0 = only at the end)."""
    episodes: int = Field(10, ge=1, le=1000)
    """Episodes per evaluation."""
    deterministic: bool = True
    """Greedy/mean actions instead of samples."""


class CheckpointSpec(StrictModel):
    """Checkpoint cadence and retention."""

    every_steps: int = Field(50_000, ge=1)
    """Write a checkpoint every this many env steps (and at the end). Episodes restart at each one."""
    keep_last: int = Field(3, ge=1)
    """How many checkpoints to keep."""


def _agent_tag(value: Any) -> Any:
    """The union member of an ``agent`` section: its ``algo``, or "sb3" for any ``sb3.<Name>``."""
    return agent_tag(value.get("algo") if isinstance(value, dict) else getattr(value, "algo", None))


# A callable discriminator, because SB3Config's ``algo`` is free-form (``sb3.<Name>``), not a Literal.
AgentSpec = Annotated[
    Annotated[PPOConfig, Tag("ppo")] | Annotated[SACConfig, Tag("sac")] | Annotated[TD3Config, Tag("td3")]
    | Annotated[DQNConfig, Tag("dqn")] | Annotated[MODQNConfig, Tag("mo_dqn")] | Annotated[IQLConfig, Tag("iql")]
    | Annotated[TD3BCConfig, Tag("td3bc")] | Annotated[BCConfig, Tag("bc")] | Annotated[CQLConfig, Tag("cql")]
    | Annotated[AWACConfig, Tag("awac")] | Annotated[UniO4Config, Tag("unio4")]
    | Annotated[SB3Config, Tag(SB3_TAG)],
    Discriminator(_agent_tag),
]


class Manifest(StrictModel):
    """A complete, reproducible description of one run."""

    schema_version: Literal[1] = SCHEMA_VERSION
    """Manifest format version."""
    name: str
    """Experiment name; runs go to ``<runs dir>/<name>/<run id>``."""
    seed: int = Field(0, ge=0, le=2**31 - 1)
    """The run seed every random stream is split from."""
    threads: int = Field(1, ge=1, le=256)
    """torch intra-op threads; results depend on it (a run is bit-identical only at the same count).
    One suits small MLPs and several runs side by side; a lone SAC run with [256, 256] networks
    trains ~1.35x faster with two on a 2-core machine (benchmarks/sac_vs_sb3.py --threads 2)."""
    env: EnvSpec
    agent: AgentSpec
    train: TrainSpec
    evaluation: EvalSpec = EvalSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    objectives: ObjectivesSpec | None = None
    """Multi-objective settings (objective names, sub-sampling, Pareto sweep); None for defaults."""
    curriculum: CurriculumSpec | None = None
    """Curriculum learning: task space and teacher (see experiments/curriculum.py); None = no curriculum."""
    dataset: DatasetSpec | None = None
    """Offline dataset (Minari format) and its sha256 (see experiments/phases.py); None = online only."""
    phases: list[PhaseSpec] | None = Field(None, min_length=1)
    """Offline/online phases in order (see experiments/phases.py); None with a dataset = one offline
    phase of train.total_steps updates."""
    tune: TuneSpec | None = None
    """Hyperparameter search for ``rl tune`` (space, trials, seeds per trial, pruner); ignored by ``rl train``."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "name")

    def resolved(self) -> dict[str, Any]:
        """Every field with defaults filled, as JSON-ready data."""
        return self.model_dump(mode="json")


def _allowed_fields(data: Any, loc: tuple) -> list[str]:
    """Field names valid at ``loc`` (the parent of an unknown key), for suggestions."""
    model: Any = Manifest
    node = data
    for part in loc:
        if model is None:
            return []
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        if part == "agent":
            algo = node.get("algo") if isinstance(node, dict) else None
            model = config_model(algo)
            continue
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, StrictModel) else None
    return list(model.model_fields) if model is not None else []


def _format_error(err: ValidationError, data: Any, source: str, lines: dict[str, int]) -> str:
    e = err.errors()[0]
    loc = tuple(e["loc"])
    if e["type"] == "agent_field":  # a config validator naming a field below agent (e.g. kwargs.<key>)
        field, msg = f"agent.{e['ctx']['field']}", e["ctx"]["message"]
    elif e["type"] in ("union_tag_invalid", "union_tag_not_found") or (loc and loc[-1] == "algo"):
        field = "agent.algo"
        algo = data.get("agent", {}).get("algo") if isinstance(data.get("agent"), dict) else None
        close = difflib.get_close_matches(str(algo), list(AGENT_CONFIGS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        what = "required field is missing" if algo is None else f"unknown algorithm {algo!r}"
        msg = (f"{what}; choose one of {', '.join(sorted(AGENT_CONFIGS))} or sb3.<Name> "
               f"(a stable-baselines3 algorithm, e.g. sb3.SAC){hint}")
    else:
        loc = tuple(p for p in loc if (p not in AGENT_CONFIGS and p != SB3_TAG) or loc.index(p) != 1)
        field = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _allowed_fields(data, loc[:-1]), n=1)
            msg = f"unknown field{f'; did you mean {close[0]!r}' if close else ''}"
            if not close and loc[0] == "agent" and config_model(data["agent"].get("algo")) is SB3Config:
                msg += f"; sb3.* agents take SB3's constructor arguments under agent.kwargs (agent.kwargs.{loc[-1]})"
        elif e["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = f"{e['msg']} (got {e.get('input')!r})"
    line = lines.get(field) or lines.get(field.rsplit(".", 1)[0]) if lines else None
    where = f"{source}:{line}" if line else source
    return f"{where}: {field}: {msg}"


def _validate(data: Any, source: str, lines: dict[str, int]) -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        raise ManifestError(_format_error(err, data, source, lines)) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides to manifest data: a value is a YAML scalar, or a YAML flow
    collection such as ``[64, 64]`` or ``{kind: return, temperature: 0.2}``, under the manifest's rules."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ManifestError(f"--set {item!r}: expected KEY=VALUE, e.g. agent.learning_rate=1e-3")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ManifestError(f"--set {item!r}: empty field name in {key!r}")
        try:
            value = parse_override(raw.strip(), key.strip())
        except ManifestSyntaxError as err:
            raise ManifestError(str(err)) from None
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {} if p not in node else node[p]
                if not isinstance(node[p], dict):
                    raise ManifestError(f"--set {key}: {p!r} is not a section")
            node = node[p]
        node[parts[-1]] = value
    return out


def load_manifest(path: Path | str, overrides: list[str] | None = None,
                  seed: int | None = None) -> tuple[Manifest, dict]:
    """Read, override and validate a manifest; returns the model and the raw data used."""
    try:
        data, lines = load_yaml(path)
    except ManifestSyntaxError as err:
        raise ManifestError(str(err)) from None
    if overrides:
        data = apply_overrides(data, overrides)
    if seed is not None:
        data["seed"] = seed
    return _validate(data, str(path), lines), data


def _strict_json_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def read_json_strict(path: Path) -> Any:
    """JSON with no NaN/Infinity and no duplicate keys."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_strict_json_constant,
                          object_pairs_hook=_no_duplicates)
    except (ValueError, OSError) as err:
        raise ManifestError(f"{path}: {err}") from None


def manifest_from_json(path: Path) -> Manifest:
    """Load a stored ``manifest.json`` (the resolved manifest of a run)."""
    return _validate(read_json_strict(path), str(path), {})
