"""BC agent: acting, one regression step per ``update``, its state.

Axis letters: B batch of transitions, N envs, A action dimensions.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.bc.config import BCConfig
from agents.bc.loss import bc_loss
from agents.bc.networks import BCNetworks
from agents.common.config import schedule_value
from agents.common.offpolicy import BoxActorCritic, DatasetNormalizedObs

__all__ = ["BCAgent"]


class BCAgent(DatasetNormalizedObs, BoxActorCritic):
    """Behaviour cloning on a flat Box observation and a bounded flat Box action space.

    Only ``obs`` and ``action`` of a batch are used: rewards, and with them the quality of the
    data, play no part. In an online phase it keeps cloning the mixed batches (its own actions
    among them), exploring with ``action_noise_std``.
    """

    algo = "bc"
    offline = True
    metric_keys = ["train/actor_loss", "train/learning_rate", "train/n_updates"]

    def __init__(self, config: BCConfig, obs_space: spaces.Space, action_space: spaces.Space,
                 reward_dim: int, seed: int):
        self._setup(config, obs_space, action_space, reward_dim, seed,
                    lambda obs_dim, act_dim: BCNetworks(obs_dim, act_dim, list(config.net_arch)))
        self.actor_opt = torch.optim.Adam(self.net.actor.parameters(), lr=schedule_value(config.learning_rate, 0.0),
                                          fused=True)
        self._init_obs_norm()


    @torch.inference_mode()
    def act(self, obs_n: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``π(s)`` (plus clipped Gaussian noise when exploring), rescaled to the env's Box bounds."""
        action_na = self.net.actor(self._acting_obs(obs_n))
        if not deterministic and self.config.action_noise_std > 0:
            noise = torch.randn(action_na.shape, generator=self.gen) * self.config.action_noise_std
            action_na = (action_na + noise).clamp(-1.0, 1.0)
        return self.env_action(action_na), {}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One Adam step on ``mean (π(s) − a)²``. ``batch``: obs, action (env scale); the rest is ignored."""
        lr = self._set_learning_rate()
        obs, _, action, _, _ = self._offline_batch(batch)
        loss = bc_loss(self.net.actor(obs), action)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        self.updates += 1
        return {"train/actor_loss": loss.item(), "train/learning_rate": lr, "train/n_updates": float(self.updates)}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt}

