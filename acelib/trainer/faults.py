"""Fault injection for the resume tests: `ACELIB_FAULT=<boundary>:<step>` SIGKILLs the driver when the run reaches
that phase boundary of that learner step (1-based), as a user's kill would. Unset (always, outside tests) it does
nothing. Boundaries, in the order a step passes them:

    after_admit       tasks acquired from the curriculum, rollouts not yet started
    mid_rollout       the first group collected after the previous step committed, others still running (in
                      async mode all of a step's groups may be in before that commit: the boundary is then not passed)
    mid_learn         the learner step submitted, not finished
    after_checkpoint  learner checkpoint and buffer copy written, `done` marker not yet
    after_done        the step committed (done marker, run.json)
"""
from __future__ import annotations

import os
import signal

BOUNDARIES = ("after_admit", "mid_rollout", "mid_learn", "after_checkpoint", "after_done")
ENV = "ACELIB_FAULT"


def maybe_kill(boundary: str, step: int) -> None:
    """SIGKILL this process when ACELIB_FAULT names `boundary` at `step` (the step being worked on)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, at = spec.partition(":")
    if name not in BOUNDARIES:
        raise ValueError(f"{ENV}={spec!r}: the boundary must be one of {BOUNDARIES}, e.g. {ENV}=mid_learn:2")
    if name == boundary and int(at or 1) == step:
        os.kill(os.getpid(), signal.SIGKILL)
