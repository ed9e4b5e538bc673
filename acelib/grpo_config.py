"""`GRPOConfig`: the knobs of the GRPO advantage and loss (`acelib.grpo`), importable without torch.

The formulas behind every field are written out in docs/learner.md.
"""
from __future__ import annotations

import dataclasses

from acelib.config import ConfigError, option

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")


@dataclasses.dataclass
class GRPOConfig:
    loss_type: str = option(
        "dapo",
        "how per-token losses are aggregated. 'grpo': token-mean within each sequence, then mean over sequences "
        "(short answers weigh more per token: length-biased). 'dr_grpo': token-sum / max_completion_length, mean "
        "over sequences, and rewards are not std-scaled (Dr.GRPO, unbiased). 'dapo': token-mean over all tokens of "
        "the batch (DAPO; every token weighs the same); use with epsilon_high > epsilon_low (clip-higher).",
        choices=LOSS_TYPES)
    scale_rewards: str = option(
        "auto",
        "divide group-centred rewards by the group std: 'group' (GRPO), 'none' (Dr.GRPO), 'auto' = 'none' for "
        "loss_type 'dr_grpo' and 'group' otherwise",
        choices=("auto", "group", "none"))
    advantage_eps: float = option(1e-4, "added to the group std before dividing (keeps near-constant groups finite)")
    epsilon_low: float = option(0.2, "PPO clip: the ratio π_θ/π_old is clipped below at 1 − epsilon_low")
    epsilon_high: float = option(
        0.28, "PPO clip: the ratio is clipped above at 1 + epsilon_high (DAPO clip-higher; set = epsilon_low for "
        "the symmetric PPO clip)")
    max_completion_length: int = option(
        1024, "the constant token count dr_grpo divides each sequence's token-sum by (the generation length cap)")
    beta: float = option(0.0, "weight of the k3 KL penalty to the frozen reference policy (0 = no reference model)")
    old_logprobs: str = option(
        "recompute",
        "where π_old comes from. 'recompute': the learner re-scores the batch under no_grad at the start of the "
        "step (decoupled PPO: the clip is against the learner's own weights, TIS corrects the engine mismatch). "
        "'behaviour': bypass mode, π_old := the engine's log-probs (saves one forward pass; the clip then also "
        "bounds the staleness/mismatch and the TIS weight is identically 1)",
        choices=("recompute", "behaviour"))
    tis_cap: float | None = option(
        2.0, "truncated importance sampling: each token's loss is weighted by min(π_old/π_behaviour, tis_cap) "
        "(π_old from the learner, π_behaviour from the rollout engine); None disables the weight")
    filter_zero_variance: bool = option(
        True, "drop groups whose (unmasked) rewards are all equal: their advantages are 0, they only dilute the "
        "normaliser and cost compute (DAPO dynamic-sampling filter without refill)")
    zero_variance_tol: float = option(1e-6, "a group counts as zero-variance when max − min reward ≤ this")

    def validate(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type: {self.loss_type!r} is not one of {list(LOSS_TYPES)}")
        if not (0 <= self.epsilon_low < 1 and self.epsilon_high >= 0):
            raise ConfigError("epsilon_low must lie in [0, 1) and epsilon_high be ≥ 0")
        if self.max_completion_length < 1:
            raise ConfigError("max_completion_length must be ≥ 1 (dr_grpo divides by it)")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ConfigError("tis_cap must be > 0, or None to disable truncated importance sampling")
        if self.beta < 0:
            raise ConfigError("beta must be ≥ 0")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def std_scaling(self) -> bool:
        """Whether advantages are divided by the group std (resolves scale_rewards='auto')."""
        if self.scale_rewards == "auto":
            return self.loss_type != "dr_grpo"
        return self.scale_rewards == "group"
