"""CQL hyperparameters (defaults follow CORL's ``cql.py`` for D4RL locomotion; Cal-QL as an option)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.common.config import OnlinePhaseConfig, ScheduleSpec

__all__ = ["CQLConfig"]


class CQLConfig(OnlinePhaseConfig):
    """Conservative Q-Learning, Kumar et al. 2020, on SAC: the critics' loss adds
    ``cql_alpha · (logsumexp_a Q(s, a) − Q(s, a_data))``, which pushes Q down on actions away from
    the data. With ``cal_ql`` (Nakamoto et al. 2023) the policy-action Q-values inside that
    logsumexp are first lower-bounded by the Monte-Carlo return-to-go of the data's trajectory,
    so the pessimism never drives Q below a reference policy's value (better offline-to-online)."""

    algo: Literal["cql"] = "cql"
    learning_rate: float | ScheduleSpec = Field(3e-4)
    """Adam step size of the critics (and of the Lagrange multiplier), or a schedule (CORL's qf_lr)."""
    actor_learning_rate: float | ScheduleSpec = Field(3e-5)
    """Adam step size of the policy and of the entropy coefficient, or a schedule (CORL's policy_lr)."""
    batch_size: int = Field(256, ge=1)
    """Transitions per gradient step."""
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    """Discount factor (also of the Monte-Carlo returns of Cal-QL)."""
    tau: float = Field(0.005, gt=0.0, le=1.0)
    """Polyak coefficient of the target critics."""
    target_update_interval: int = Field(1, ge=1)
    """Gradient steps between target-critic updates."""
    ent_coef: Literal["auto"] | float = "auto"
    """SAC's entropy coefficient α, or "auto" to learn it towards target_entropy."""
    ent_coef_init: float = Field(1.0, gt=0.0)
    """Initial α when ent_coef is "auto" (CORL: log α = 0)."""
    target_entropy: Literal["auto"] | float = "auto"
    """Target policy entropy in nats; "auto" is −(action dimensions)."""
    backup_entropy: bool = False
    """Subtract α log π(a'|s') in the critics' target (SAC's soft target); CORL's CQL leaves it out."""
    cql_alpha: float = Field(10.0, ge=0.0)
    """Weight of the conservative regulariser (CORL's D4RL locomotion value; 0 is SAC)."""
    cql_alpha_online: float | None = Field(None, ge=0.0)
    """The regulariser's weight in online phases (CORL's ``cql_alpha_online``); None keeps ``cql_alpha``.
    0 fine-tunes with SAC's update on the pretrained networks and skips the sampled actions' forward."""
    online_update_order: Literal["actor_first", "critic_first"] = "actor_first"
    """Order of the actor's and the critics' steps in online phases: ``actor_first`` is CORL's (the
    actor's loss sees the critics before their step, as in offline phases), ``critic_first`` SAC's and
    SB3's (after it). Offline phases always take CORL's order."""
    n_action_samples: int = Field(10, ge=1)
    """Actions sampled per state for the logsumexp: this many uniform, from π(·|s) and from π(·|s')."""
    cql_temperature: float = Field(1.0, gt=0.0)
    """Temperature T of the soft maximum ``T · logsumexp(Q / T)``."""
    importance_sample: bool = True
    """Estimate the logsumexp by importance sampling (subtract each sample's log density: log 0.5^A
    for uniform actions, log π for policy actions), as CQL(H); false puts the data action's Q in
    the logsumexp and weighs all samples equally."""
    lagrange: bool = False
    """Tune the regulariser's weight α' by dual gradient descent towards ``target_action_gap``."""
    target_action_gap: float = -1.0
    """With ``lagrange``: the gap ``logsumexp Q − Q(s, a_data)`` the multiplier α' aims for."""
    cal_ql: bool = False
    """Cal-QL: lower-bound the policy-action Q-values of the regulariser by the transition's discounted
    Monte-Carlo return-to-go (the loop adds ``mc_return`` from the dataset's episodes; online
    transitions get theirs when their episode ends, and until then no bound)."""
    orthogonal_init: bool = True
    """Critics start orthogonal (gain √2, the output layer 1e-2, zero biases) as CORL's; false keeps
    ``nn.Linear``'s uniform initialisation."""
    net_arch: list[int] = Field([256, 256, 256], min_length=1)
    """Hidden layer widths of the actor and of each critic (ReLU; CORL: three of 256)."""
