"""Moving torch state into safetensors-friendly dicts of numpy arrays and back (no pickle).

Optimizer state dicts are split: tensors go to ``{prefix}state/{param index}/{key}`` and the
param-group hyperparameters to JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.base import AgentError

__all__ = ["module_arrays", "load_module_arrays", "optimizer_state", "load_optimizer_state",
           "generator_arrays", "load_generator_arrays"]


def module_arrays(module: torch.nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """A module's parameters and buffers as contiguous numpy arrays under ``prefix``."""
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_module_arrays(module: torch.nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Load ``prefix``-keyed arrays into a module; shapes and key sets must match exactly."""
    own = module.state_dict()
    state = {}
    for key, target in own.items():
        name = prefix + key
        if name not in arrays:
            raise AgentError(f"checkpoint has no tensor {name!r}: it was written by another agent or network")
        arr = arrays[name]
        if tuple(arr.shape) != tuple(target.shape):
            raise AgentError(
                f"tensor {name!r} is {list(arr.shape)} in the checkpoint but {list(target.shape)} here: "
                "the checkpoint belongs to other spaces or another net_arch"
            )
        state[key] = torch.from_numpy(np.array(arr, dtype=arr.dtype))
    module.load_state_dict(state)


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Optimizer tensors (by param index) and JSON param groups."""
    sd = opt.state_dict()
    arrays = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            arrays[f"{prefix}state/{idx}/{key}"] = t.detach().cpu().numpy().copy()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return arrays, {"param_groups": groups}


def load_optimizer_state(opt: torch.optim.Optimizer, arrays: dict[str, np.ndarray], meta: dict, prefix: str) -> None:
    """Inverse of :func:`optimizer_state`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, arr in arrays.items():
        if not name.startswith(prefix + "state/"):
            continue
        idx, key = name[len(prefix) + 6 :].split("/", 1)
        state.setdefault(int(idx), {})[key] = torch.from_numpy(np.array(arr))
    groups = meta["param_groups"]
    if len(groups) != len(opt.param_groups):
        raise AgentError("optimizer param groups in the checkpoint do not match this agent")
    opt.load_state_dict({"state": state, "param_groups": groups})


def generator_arrays(gen: torch.Generator, name: str) -> dict[str, np.ndarray]:
    """A torch generator's state as a uint8 array."""
    return {name: gen.get_state().numpy().copy()}


def load_generator_arrays(gen: torch.Generator, arrays: dict[str, np.ndarray], name: str) -> None:
    """Restore a torch generator saved by :func:`generator_arrays`."""
    if name not in arrays:
        raise AgentError(f"checkpoint has no generator state {name!r}")
    gen.set_state(torch.from_numpy(np.array(arrays[name], dtype=np.uint8)))
