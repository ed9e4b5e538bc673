"""What the trainer hands the learner (`RolloutGroup`) and the learner's per-sequence record (`TrainSeq`).

Torch-free: the Ray driver builds groups without loading the training stack. Tensors are attached to a
`TrainSeq` by the learner only (its π_old and π_ref log-probs).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acelib.rollout.base import Sample


@dataclasses.dataclass
class RolloutGroup:
    """G responses to one prompt (one agent state), with their rewards: the trainer → learner contract.

    `samples` carry `token_ids`, `logprobs` (the engine's log-density of each sampled token under the distribution
    it sampled from, i.e. at the run's temperature) and `policy_version`. A masked sample (sandbox/infra error, not
    the policy's fault) is dropped from the loss and from its group's mean/std; its token_ids/logprobs may be empty.
    """
    prompt_ids: list[int]
    samples: list[Sample]
    rewards: list[float]
    masked: list[bool] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.masked:
            self.masked = [False] * len(self.samples)
        if not (len(self.samples) == len(self.rewards) == len(self.masked)):
            raise ValueError(f"RolloutGroup needs one reward and one masked flag per sample, got "
                             f"{len(self.samples)} samples, {len(self.rewards)} rewards, {len(self.masked)} masked")
        if not self.prompt_ids:
            raise ValueError("RolloutGroup.prompt_ids is empty: the learner needs the prompt exactly as sampled")
        for s, m in zip(self.samples, self.masked):
            if not m and len(s.token_ids) != len(s.logprobs):
                raise ValueError(f"a sample has {len(s.token_ids)} tokens but {len(s.logprobs)} behaviour log-probs;"
                                 " the engine must return one log-prob per sampled token")


@dataclasses.dataclass
class TrainSeq:
    """One sample as the learner trains on it: its group's prompt, its completion and everything per token."""
    index: int                     # position in the flattened batch (stable across ranks and minibatch shuffles)
    group: int                     # index of its RolloutGroup in the batch
    prompt: list[int]
    tokens: list[int]
    behaviour: list[float]         # log μ per completion token (the engine's)
    reward: float
    valid: bool                    # False = masked (infra error)
    policy_version: int
    advantage: float = 0.0
    old: Any = None                # log π_old per completion token (tensor [n]), when scored separately
    ref: Any = None                # log π_ref per completion token (tensor [n]), when beta > 0


def flatten(groups: list[RolloutGroup]) -> list[TrainSeq]:
    """Every sample of every group, in order, as a TrainSeq (advantages are filled in by the learner)."""
    pairs = [(gi, g, s, r, m) for gi, g in enumerate(groups) for s, r, m in zip(g.samples, g.rewards, g.masked)]
    return [TrainSeq(index=i, group=gi, prompt=list(g.prompt_ids), tokens=list(s.token_ids),
                     behaviour=list(s.logprobs), reward=float(r), valid=not m, policy_version=int(s.policy_version))
            for i, (gi, g, s, r, m) in enumerate(pairs)]
