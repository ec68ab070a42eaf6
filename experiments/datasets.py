"""Offline datasets for runs: resolving a manifest's dataset, checking it against the env, and
``rl collect`` (writing a Minari dataset from a saved policy, a random policy or a mix, with a card).

Datasets are written with Minari's own ``DataCollector`` into ``<root>/<namespace>/<name-vN>/``
(``root``: ``--root``, else ``$MINARI_DATASETS_PATH``, else ``data/datasets``), so Minari reads
them and the suite reads Minari's. ``card.json`` beside ``data/`` summarises the returns and holds
the sha256 a manifest must name.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rl.core.datasets import DatasetError, OfflineData, dataset_sha256, file_sha256s, positive_variance, read_dataset

__all__ = ["ID_HINT", "DatasetError", "collect", "dataset_dir", "load_for_manifest", "output_dir", "parse_mix",
           "random_actor", "validate_dataset"]

DEFAULT_ROOT = "data/datasets"
ID_HINT = "a Minari id like pendulum/medium-v0 (namespace/name-v<version>)"


def dataset_root(root: str | os.PathLike | None) -> Path:
    """The directory dataset ids are looked up in."""
    return Path(root or os.environ.get("MINARI_DATASETS_PATH") or DEFAULT_ROOT)


def dataset_dir(spec) -> tuple[Path, str]:
    """(directory, display name) of a manifest's :class:`~experiments.phases.DatasetSpec`."""
    if spec.path is not None:
        return Path(spec.path), spec.path
    return dataset_root(spec.root) / spec.id, spec.id


def _space_json(space) -> dict[str, Any]:
    from minari.serialization import serialize_space

    return json.loads(serialize_space(space))


def _same_space(declared: dict, env_space) -> bool:
    try:
        env = _space_json(env_space)
    except NotImplementedError:
        return False
    if declared.get("type") != env.get("type") or declared.get("shape") != env.get("shape"):
        return False
    if env.get("type") == "Box":
        return (declared.get("dtype") == env.get("dtype")
                and np.allclose(declared["low"], env["low"]) and np.allclose(declared["high"], env["high"]))
    return declared == env


def load_for_manifest(manifest, obs_space, action_space) -> OfflineData:
    """Verify (sha256, structure, spaces against the env's) and read the manifest's dataset."""
    path, name = dataset_dir(manifest.dataset)
    data = read_dataset(path, name, manifest.dataset.sha256)
    for which, space in (("observation", obs_space), ("action", action_space)):
        declared = data.space(which)
        if not _same_space(declared, space):
            raise DatasetError(f"dataset {name}: field {which}_space is {json.dumps(declared)}, but env "
                               f"{manifest.env.id} has {space}; collect the dataset on the manifest's env")
    return data


def validate_dataset(manifest) -> None:
    """The preflight check of a manifest's dataset and phases (ManifestError / DatasetError, one line)."""
    from agents.registry import agent_class
    from envs.make import make_vector_env
    from experiments.manifest import ManifestError
    from experiments.phases import phase_length

    offline_agent = getattr(agent_class(manifest.agent.algo), "offline", False)
    if manifest.dataset is None:
        if offline_agent:
            raise ManifestError(f"agent.algo={manifest.agent.algo} learns from a dataset: add a dataset section "
                                "(id or path, sha256); collect one with 'rl collect'")
        if manifest.phases is not None:
            raise ManifestError("phases need a dataset section (the offline data of the offline phases)")
        return
    if agent_class(manifest.agent.algo).on_policy:
        raise ManifestError(f"agent.algo={manifest.agent.algo} is on-policy; datasets and phases need an "
                            "off-policy or offline agent (bc, td3bc, iql, cql, awac, sac, td3)")
    if manifest.phases is not None:
        total = sum(phase_length(p) for p in manifest.phases)
        if total != manifest.train.total_steps:
            raise ManifestError(f"train.total_steps ({manifest.train.total_steps}) must equal the phases' offline "
                                f"updates plus online steps ({total})")
        from agents.common.offpolicy import BoxActorCritic

        for i, phase in enumerate(manifest.phases):
            spec = phase.offline or phase.online
            if spec.lr_policy != "keep" and not issubclass(agent_class(manifest.agent.algo), BoxActorCritic):
                raise ManifestError(f"phases[{i}].lr_policy={spec.lr_policy}: agent.algo={manifest.agent.algo} "
                                    "takes only 'keep' (its schedule also drives exploration)")
    envs = make_vector_env(manifest.env.id, 1, manifest.env.kwargs,
                           [(w.name, w.kwargs) for w in manifest.env.wrappers])
    try:
        load_for_manifest(manifest, envs.single_observation_space, envs.single_action_space)
    finally:
        envs.close()


def output_dir(out: str, root_dir: Path, force: bool) -> Path:
    """Where ``rl collect --out`` writes: ``root_dir / out`` once ``out`` is a Minari id and, unless
    ``force``, nothing is there yet."""
    if not out or "/" not in out or "-v" not in out.rsplit("/", 1)[-1]:
        raise DatasetError(f"--out {out!r}: expected {ID_HINT}")
    target = root_dir / out
    if target.exists() and not force:
        raise DatasetError(f"dataset {out}: {target} already exists; choose another --out or pass --force")
    return target


def parse_mix(text: str | None, have_policy: bool) -> dict[str, float]:
    """``final:0.1,random:0.9`` → ``{"final": 0.1, "random": 0.9}`` (shares normalised to sum 1)."""
    if text is None:
        return {"final": 1.0} if have_policy else {"random": 1.0}
    mix: dict[str, float] = {}
    for item in text.split(","):
        key, _, share = item.partition(":")
        key = key.strip()
        if key not in ("final", "random") or key in mix:
            raise DatasetError(f"--mix {text!r}: components are 'final' and 'random', each once (got {key!r})")
        try:
            mix[key] = float(share)
        except ValueError:
            raise DatasetError(f"--mix {text!r}: share of {key!r} must be a number, got {share!r}") from None
        if not mix[key] >= 0:
            raise DatasetError(f"--mix {text!r}: share of {key!r} must be >= 0")
    if "final" in mix and not have_policy:
        raise DatasetError("--mix uses 'final' but --policy is 'random'; give a run directory as --policy")
    total = sum(mix.values())
    if not total > 0:
        raise DatasetError(f"--mix {text!r}: shares must sum to more than 0")
    return {k: v / total for k, v in mix.items()}


def _episode_sources(mix: dict[str, float], episodes: int, rng: np.random.Generator) -> list[str]:
    """Exactly ``round(share * episodes)`` episodes per component (largest remainder), shuffled."""
    raw = {k: v * episodes for k, v in mix.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: episodes - sum(counts.values())]:
        counts[k] += 1
    order = [k for k, c in counts.items() for _ in range(c)]
    return [order[i] for i in rng.permutation(len(order))]


def _load_policy(run: Path):
    from experiments.evaluate_run import EvalError, load_policy_agent

    try:
        manifest, agent, _ = load_policy_agent(run, None)
    except EvalError as err:
        raise DatasetError(f"--policy {run}: {err}") from None
    return manifest, agent


def policy_for_env(flag: str, run: str, env_id: str):
    """(manifest, agent) of the run directory ``run`` given as ``flag``; it must be trained on ``env_id``."""
    run_manifest, agent = _load_policy(Path(run))
    if run_manifest.env.id != env_id:
        raise DatasetError(f"{flag} {run} was trained on {run_manifest.env.id}, not --env {env_id}")
    return run_manifest, agent


def _play(env, act, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    ret = 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        ret += float(reward)
        if terminated or truncated:
            return ret


def collect(env_id: str, policy: str, episodes: int, out: str, mix_text: str | None = None, seed: int = 0,
            root: str | None = None, deterministic: bool = False, force: bool = False,
            ref_episodes: int = 10, ref_expert: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the Minari dataset ``out`` and its card; returns (dataset directory, card).

    The card's reference returns (Minari's ``ref_min_score``/``ref_max_score``, the 0 and 100 of
    normalised scores) are the random policy's mean return and the expert's: ``ref_expert`` names the
    expert as a run directory (its final policy's deterministic return is measured) or a number;
    without it, the collected ``--policy``'s own deterministic return stands in, which is right for an
    expert dataset only (a medium dataset would score 100 for medium play).
    """
    import gymnasium as gym
    import minari

    from rl.core.seeding import SeedPlan

    if episodes < 1:
        raise DatasetError(f"--episodes must be >= 1, got {episodes}")
    have_policy = policy != "random"
    mix = parse_mix(mix_text, have_policy)
    root_dir = dataset_root(root)
    target = output_dir(out, root_dir, force)
    agent = None
    kwargs: dict[str, Any] = {}
    if have_policy:
        run_manifest, agent = policy_for_env("--policy", policy, env_id)
        if run_manifest.env.wrappers:
            raise DatasetError(f"--policy {policy}: its env has wrappers; collecting through wrappers is not "
                               "supported yet")
        kwargs = dict(run_manifest.env.kwargs)
    plan = SeedPlan(seed)
    random_rng = plan.generator("collect-random")
    env = gym.make(env_id, **kwargs)
    space = env.action_space

    act_random = random_actor(space, random_rng)

    def act_policy(obs):
        return agent.act(np.asarray(obs, np.float32)[None], deterministic=deterministic)[0][0]

    actors = {"random": act_random, "final": act_policy}
    expert, expert_return = (agent, None) if ref_expert is None else expert_reference(ref_expert, env_id)
    refs = reference_returns(env, act_random, expert, plan, ref_episodes)
    if expert_return is not None:
        refs["expert"] = expert_return
    sources = _episode_sources(mix, episodes, plan.generator("collect-mix"))
    seeds = plan.integers("collect", episodes)
    if force and target.exists():
        import shutil

        shutil.rmtree(target)
    collector = minari.DataCollector(env, record_infos=False)
    for src, s in zip(sources, seeds, strict=True):
        _play(collector, actors[src], s)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root_dir.resolve())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # minari's nudges for author, permalink, eval_env
            collector.create_dataset(out, algorithm_name=f"rlsuite collect ({policy}, mix {mix})",
                                     ref_min_score=refs["random"], ref_max_score=refs["expert"],
                                     description=f"rl collect --env {env_id} --policy {policy} --episodes {episodes}")
    except ValueError as err:
        raise DatasetError(f"dataset {out}: minari refused it ({err}); use {ID_HINT}") from None
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
        collector.close()
    card = dataset_card(read_dataset(target, out), target, env_id, policy, mix, sources, seed, refs)
    (target / "card.json").write_text(json.dumps(card, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return target, card


def random_actor(space, rng: np.random.Generator):
    """A uniform random policy over a Box or Discrete ``space`` drawing from ``rng`` only."""
    import gymnasium as gym

    def act(obs):
        if isinstance(space, gym.spaces.Box):
            return rng.uniform(space.low, space.high).astype(space.dtype)
        return int(rng.integers(space.n)) + int(getattr(space, "start", 0))

    return act


def expert_reference(ref_expert: str, env_id: str) -> tuple[Any, float | None]:
    """``--ref-expert`` as (an agent whose deterministic return is measured, None) or (None, a return)."""
    try:
        value = float(ref_expert)
    except ValueError:
        return policy_for_env("--ref-expert", ref_expert, env_id)[1], None
    if not math.isfinite(value):
        raise DatasetError(f"--ref-expert {ref_expert}: must be a finite return or a run directory")
    return None, value


def reference_returns(env, act_random, agent, plan, episodes: int) -> dict[str, float | None]:
    """Mean return of the random policy and (with a policy) of its deterministic actions, on seeds
    of their own, for normalised scores ``100 (G − random) / (expert − random)``."""
    seeds = plan.integers("collect-ref", episodes)
    random_ref = float(np.mean([_play(env, act_random, s) for s in seeds]))
    expert_ref = None
    if agent is not None:
        def greedy(obs):
            return agent.act(np.asarray(obs, np.float32)[None], deterministic=True)[0][0]

        expert_ref = float(np.mean([_play(env, greedy, s) for s in seeds]))
    return {"random": random_ref, "expert": expert_ref}


def dataset_card(data: OfflineData, path: Path, env_id: str, policy: str, mix: dict[str, float],
                 sources: list[str], seed: int, refs: dict) -> dict[str, Any]:
    """The dataset card: sizes, return statistics and histogram, references, sha256 of the data."""
    g = data.returns_e
    counts, edges = np.histogram(g, bins=min(20, max(1, len(g))))
    by_source = {k: float(g[[s == k for s in sources]].mean()) for k in mix if any(s == k for s in sources)}
    return {
        "dataset": data.name, "env_id": env_id, "policy": policy, "mix": mix, "seed": seed,
        "episodes": int(len(g)), "steps": int(data.num_transitions),
        "mean_return": float(g.mean()), "max_return": float(g.max()), "min_return": float(g.min()),
        "std_return": float(g.std()), "positive_variance": positive_variance(g),
        "mean_return_by_source": by_source,
        "return_histogram": {"bin_edges": edges.tolist(), "counts": counts.tolist()},
        "ref_random_return": refs["random"], "ref_expert_return": refs["expert"],
        "sha256": dataset_sha256(path), "files": file_sha256s(path),
    }
