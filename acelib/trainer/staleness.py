"""Bounded staleness by admission control (AReaL's StalenessManager idea), not by dropping finished groups.

Why: dropping groups that come back too late systematically starves slow (often hard) tasks, which cancels the
learnability curriculum. Instead, a rollout group may only START while

    started_total < (steps_done + max_staleness + 1) * groups_per_step

where `started_total` counts every group admitted in this process (finished, queued or running) and `steps_done`
counts the learner steps that consumed a batch so far. It is a count of learner steps, not a policy version: a step
whose groups were all filtered (zero reward variance) leaves the weights and the policy version unchanged but still
consumed its batch, and counting policy versions instead would stall admission for good after such a step.
Generation therefore never runs more than `max_staleness` steps' worth of groups ahead of the learner; with
max_staleness = 0 it is exactly synchronous generate → train. Groups that finish in admission order are consumed at
most `max_staleness` steps after the weights that generated them. A straggler (a slow execution overtaken by later
groups) can be older; it is still trained on (never dropped), its age is logged as `staleness/max`, and the
truncated-IS correction in the loss covers the policy mismatch.

The driver owns it. On resume it is rebuilt from the checkpoint alone (steps_done · groups_per_step started):
groups that were in flight or finished but unconsumed at a crash died with it, so counting them would shrink the
pipeline for the rest of the run, and state written outside the checkpoint's commit could disagree with it.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class AdmissionControl:
    groups_per_step: int
    max_staleness: int
    started_total: int = 0

    @classmethod
    def resumed(cls, groups_per_step: int, max_staleness: int, steps_done: int) -> "AdmissionControl":
        """The admission state right after the learner step `steps_done` committed, nothing in flight."""
        return cls(groups_per_step, max_staleness, started_total=steps_done * groups_per_step)

    def capacity(self, steps_done: int) -> int:
        """How many more groups may start now, after `steps_done` learner steps."""
        limit = (steps_done + self.max_staleness + 1) * self.groups_per_step
        return max(0, limit - self.started_total)

    def admit(self, steps_done: int, wanted: int = 1) -> int:
        """Admit up to `wanted` groups; returns how many were admitted (and counts them as started)."""
        n = min(wanted, self.capacity(steps_done))
        self.started_total += n
        return n

    def cancel(self, n: int = 1) -> None:
        """Started groups were abandoned (a worker died, the curriculum had fewer tasks): give their slots back."""
        self.started_total = max(0, self.started_total - n)
