"""``rl eval model.zip``: pickle payloads are refused unless trusted; weights load without running code."""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest

from experiments.evaluate_run import EvalError
from experiments.foreign import (
    _algorithm_from_data,
    _algorithm_from_weights,
    _net_arch_from_weights,
    evaluate_sb3_zip,
    pickle_payloads,
)


class _OpensAFile:
    """Unpickling this calls ``open(path, "w")``: proof that a loader ran the file's code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _save(tmp_path: Path, algo: str, env_id: str, **kwargs) -> Path:
    import stable_baselines3

    cls = getattr(stable_baselines3, algo)
    model = cls("MlpPolicy", env_id, seed=0, device="cpu", **kwargs)
    path = tmp_path / f"{algo.lower()}.zip"
    model.save(path)
    return path


def _rewrite(src: Path, dst: Path, data: dict | None = None, policy: bytes | None = None,
             drop_payloads: bool = False) -> Path:
    """Copy an SB3 zip with its data (payload entries dropped, or replaced) and/or policy.pth replaced."""
    with zipfile.ZipFile(src) as z:
        old = json.loads(z.read("data"))
        raw_policy = z.read("policy.pth")
    if drop_payloads:
        old = {k: v for k, v in old.items() if not (isinstance(v, dict) and ":serialized:" in v)}
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("data", json.dumps(data if data is not None else old))
        z.writestr("policy.pth", policy if policy is not None else raw_policy)
    return dst


@pytest.fixture(scope="module")
def sac_zip(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("sac"), "SAC", "Pendulum-v1", policy_kwargs={"net_arch": [16, 16]})


def test_every_zip_sb3_writes_carries_payloads_and_is_refused_without_trust(sac_zip):
    with zipfile.ZipFile(sac_zip) as z:
        payloads = pickle_payloads(json.loads(z.read("data")))
    assert {"policy_class", "observation_space", "action_space", "lr_schedule"} <= set(payloads)
    with pytest.raises(EvalError, match=r"refusing to load: its 'data' carries cloudpickle payloads \(policy_class"
                                        r".*run arbitrary code.*--trust-pickle") as info:
        evaluate_sb3_zip(sac_zip, "Pendulum-v1", 1, None, True, trust_pickle=False)
    assert "\n" not in str(info.value)


def test_a_hostile_payload_is_never_unpickled_without_trust(sac_zip, tmp_path):
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(sac_zip) as z:
        data = json.loads(z.read("data"))
    payload = base64.b64encode(pickle.dumps(_OpensAFile(marker))).decode()
    data["extra"] = {":type:": "<class 'x'>", ":serialized:": payload}
    hostile = _rewrite(sac_zip, tmp_path / "hostile.zip", data=data)
    assert "extra" in pickle_payloads(data)
    with pytest.raises(EvalError, match="refusing to load"):
        evaluate_sb3_zip(hostile, "Pendulum-v1", 1, None, True, trust_pickle=False)
    assert not marker.exists()


def test_a_hostile_policy_pth_is_refused_by_the_weights_only_loader(sac_zip, tmp_path):
    marker = tmp_path / "pwned"
    hostile = _rewrite(sac_zip, tmp_path / "hostile.zip", policy=pickle.dumps(_OpensAFile(marker), protocol=2),
                       drop_payloads=True)
    with pytest.raises(EvalError, match="policy.pth is not a plain tensor file; torch's weights-only loader refused"):
        evaluate_sb3_zip(hostile, "Pendulum-v1", 1, None, True, trust_pickle=False)
    assert not marker.exists()


def test_weights_only_and_trusted_loading_play_the_same_policy(sac_zip, tmp_path):
    clean = _rewrite(sac_zip, tmp_path / "clean.zip", drop_payloads=True)
    safe = evaluate_sb3_zip(clean, "Pendulum-v1", 3, 4, True, trust_pickle=False)
    trusted = evaluate_sb3_zip(sac_zip, "Pendulum-v1", 3, 4, True, trust_pickle=True)
    assert safe["returns"] == trusted["returns"] and len(safe["returns"]) == 3
    assert "weights only (sb3.SAC" in safe["checkpoint"] and "SAC.load" in trusted["checkpoint"]
    again = evaluate_sb3_zip(clean, "Pendulum-v1", 3, 4, False, trust_pickle=False)
    assert again == evaluate_sb3_zip(clean, "Pendulum-v1", 3, 4, False, trust_pickle=False)  # stochastic, seeded


def test_weights_that_do_not_fit_the_env_or_the_data_are_named(sac_zip, tmp_path):
    clean = _rewrite(sac_zip, tmp_path / "clean.zip", drop_payloads=True)
    with pytest.raises(EvalError, match=r"does not fit a sb3.SAC policy .*actor\.latent_pi\.0\.weight"):
        evaluate_sb3_zip(clean, "MountainCarContinuous-v0", 1, None, True, trust_pickle=False)
    with zipfile.ZipFile(clean) as z:
        data = json.loads(z.read("data"))
    data["policy_kwargs"]["net_arch"] = [32]
    wrong = _rewrite(clean, tmp_path / "wrong.zip", data=data)
    with pytest.raises(EvalError, match="does not fit"):
        evaluate_sb3_zip(wrong, "Pendulum-v1", 1, None, True, trust_pickle=False)


@pytest.mark.parametrize("algo, env_id, from_weights, from_data", [
    ("SAC", "Pendulum-v1", "sb3.SAC", "SAC"), ("TD3", "Pendulum-v1", "sb3.TD3", "TD3"),
    ("DDPG", "Pendulum-v1", "sb3.DDPG", "TD3"),  # DDPG stores TD3's attributes; TD3.load builds the same policy
    ("DQN", "CartPole-v1", "sb3.DQN", "DQN"), ("PPO", "CartPole-v1", "sb3.PPO", "PPO"),
    ("A2C", "CartPole-v1", "sb3.PPO", "A2C"),  # A2C's policy is PPO's ActorCriticPolicy
])
def test_algorithm_is_recognised_from_tensor_names_and_from_readable_data(tmp_path, algo, env_id, from_weights,
                                                                           from_data):
    import torch

    path = _save(tmp_path, algo, env_id, policy_kwargs={"net_arch": [8, 4]})
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
        state = torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)
    assert _algorithm_from_weights(path, list(state))[0] == from_weights
    assert _algorithm_from_data(path, data).__name__ == from_data
    assert _net_arch_from_weights(from_weights, state) == [8, 4]
    # A2C's policy_kwargs are a payload (RMSprop): the weights-only path reads net_arch off the tensor shapes.
    clean = _rewrite(path, tmp_path / "clean.zip", drop_payloads=True)
    res = evaluate_sb3_zip(clean, env_id, 2, 0, True, trust_pickle=False)
    assert res["returns"] == evaluate_sb3_zip(path, env_id, 2, 0, True, trust_pickle=True)["returns"]


def test_user_mistakes(tmp_path, sac_zip):
    with pytest.raises(EvalError, match="pass --env ID"):
        evaluate_sb3_zip(sac_zip, None, 1, None, True, False)
    with pytest.raises(EvalError, match="no such file"):
        evaluate_sb3_zip(tmp_path / "none.zip", "Pendulum-v1", 1, None, True, False)
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(EvalError, match="not a readable zip"):
        evaluate_sb3_zip(tmp_path / "junk.zip", "Pendulum-v1", 1, None, True, False)
    with pytest.raises(EvalError, match="differs from the env's"):
        evaluate_sb3_zip(sac_zip, "MountainCarContinuous-v0", 1, None, True, trust_pickle=True)
