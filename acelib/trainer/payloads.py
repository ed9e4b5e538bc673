"""What crosses Ray between the trainer's actors, typed (no dicts of strings).

curriculum ──TaskAssignment──▶ driver ──▶ rollout worker ──FinishedGroup──▶ driver ──RolloutGroup──▶ learner
`TaskAssignment` is the curriculum's (acelib.curriculum); `RolloutGroup` the learner's (acelib.learner.batch).
"""
from __future__ import annotations

import dataclasses

from acelib.agent.state import State
from acelib.groups import is_zero_variance, valid_and_changed
from acelib.learner.batch import RolloutGroup


@dataclasses.dataclass
class FinishedGroup:
    """G executed and graded responses to one task, as a rollout worker returns them."""
    task_id: str
    index: int                     # admission index (the curriculum's batch windows: index // B)
    competition_id: str
    step_type: str                 # draft / debug / improve: the task's
    policy_version_started: int    # the policy version when the task was acquired (LP ages evidence from it)
    policy_version: int            # the weights that generated the samples
    prompt_ids: list[int]
    samples: list                  # acelib.rollout.base.Sample, one per response (empty tokens when masked)
    rewards: list[float]
    masked: list[bool]             # infra errors: generation, execution or grading failed (not the policy's fault)
    outcomes: list[str]            # reward-ladder outcome per sample ("infra_error" when masked)
    children: list[State]          # child states of the unmasked samples (they become buffer tasks)
    identical_to_parent: list[bool]  # the response's script equals the task's own code (a copy, not a step)
    gen_s: float                   # from asking for the samples to having them (waiting for the engine included)
    exec_s: float
    gen_tokens: int
    sandbox_latency_s: list[float]
    gen_engine_s: float = 0.0      # this group's share of the engine call(s) that generated it (batched: call / groups)
    errors: list[str] = dataclasses.field(default_factory=list)   # tracebacks of masked samples
    executor_lost: bool = False    # a sample's program died with its executor (node lost): run the task again

    @property
    def zero_variance(self) -> bool:
        return is_zero_variance(self.rewards, self.masked)

    def to_rollout_group(self) -> RolloutGroup:
        return RolloutGroup(prompt_ids=self.prompt_ids, samples=self.samples, rewards=self.rewards,
                            masked=self.masked)


@dataclasses.dataclass
class ProbeResult:
    """A policy's answers to the run's fixed probe tasks (no training, no curriculum): one point of the learning
    curve. Lists are per probe task, then per response."""
    policy_version: int
    outcomes: list[list[str]]          # reward-ladder outcome ("infra_error" when masked: not counted)
    identical_to_parent: list[list[bool]]
    texts: list[str]                   # the first response to each task (the before/after examples)
    gen_s: float
    exec_s: float

    def counts(self, tasks: list[int] | None = None) -> tuple[int, int]:
        """(valid responses that changed the script, responses counted) over the given tasks (None = all)."""
        idx = range(len(self.outcomes)) if tasks is None else tasks
        outcomes = [o for i in idx for o in self.outcomes[i]]
        identical = [same for i in idx for same in self.identical_to_parent[i]]
        return valid_and_changed(outcomes, identical), sum(o != "infra_error" for o in outcomes)
