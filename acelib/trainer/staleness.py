"""Bounded staleness by admission control (AReaL's StalenessManager idea), not by dropping finished groups.

Why: dropping groups that come back too late systematically starves slow (often hard) tasks, which cancels the
learnability curriculum (rl-frameworks.md §11). Instead, a rollout group may only START while

    started_total < (version + max_staleness + 1) * groups_per_step

where `started_total` counts every group ever admitted (finished, queued or running) and `version` counts the
learner steps that consumed a batch so far. A step whose groups were all filtered (zero reward variance) leaves the
weights and the policy version unchanged but still consumed its batch: counting policy versions instead would
stall admission for good after such a step. Generation therefore never runs more than `max_staleness`
steps' worth of groups ahead of the learner; with max_staleness = 0 it is exactly synchronous generate → train.
Groups that finish in admission order are consumed at most `max_staleness` versions after the version that
generated them. A straggler (a slow execution overtaken by later groups) can be older; it is still trained on
(never dropped), its age is logged as `staleness/max`, and the truncated-IS correction in the loss covers the
policy mismatch.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class AdmissionControl:
    groups_per_step: int
    max_staleness: int
    started_total: int = 0

    def capacity(self, version: int) -> int:
        """How many more groups may start now, at learner version `version`."""
        limit = (version + self.max_staleness + 1) * self.groups_per_step
        return max(0, limit - self.started_total)

    def admit(self, version: int, wanted: int = 1) -> int:
        """Admit up to `wanted` groups; returns how many were admitted (and counts them as started)."""
        n = min(wanted, self.capacity(version))
        self.started_total += n
        return n

    def cancel(self, n: int = 1) -> None:
        """A started group was abandoned (e.g. infra failure before any sample): give its slot back."""
        self.started_total = max(0, self.started_total - n)

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, d: dict) -> "AdmissionControl":
        return cls(**d)
