"""The agent's state: one node of an MLE agent run, and one training task of the Evolving Data Buffer.

The step type follows from the state alone (paper reconstruction §3):
no code → draft; last run failed or produced no valid submission → debug; valid → improve.

Fields split into what the agent may see (code, plan, output, validity_message, score, memory) and what only the
reward and the evaluator may read (test_score). `acelib.agent.prompts` renders only the former.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Literal

StepType = Literal["draft", "debug", "improve"]


@dataclasses.dataclass
class State:
    competition_id: str
    code: str = ""                  # current solution script ("" for a draft task)
    plan: str = ""                  # the natural-language plan that came with `code`
    output: str = ""                # truncated stdout/stderr of running `code` (what the agent sees)
    exec_status: str = ""           # sandbox termination reason: ok/error/timeout/memory/killed/infra_error,
                                    # or "format_error" when the response had no single code block (nothing ran)
    valid: bool = False             # the grader accepted submission.csv
    validity_message: str = ""      # what the validator told the agent ("Submission is valid." / the reason);
                                    # like MLE-bench's validate endpoint it never contains a score
    score: float | None = None      # validation score the agent printed (visible to the agent)
    test_score: float | None = None # hidden test score from the grader (reward/eval only, never shown)
    memory: tuple[str, ...] = ()    # short summaries of earlier attempts on this competition
    parent_id: str | None = None
    origin_step: str = ""           # step type of the action that produced this state ("" for a root)
    depth: int = 0                  # steps from the root draft
    policy_version: int = 0         # learner version that produced `code`
    id: str = ""                    # stable content id, filled by __post_init__

    def __post_init__(self) -> None:
        if not self.id:
            self.id = state_id(self.competition_id, self.code)

    @property
    def step_type(self) -> StepType:
        if not self.code.strip():
            return "draft"
        return "improve" if self.valid else "debug"


def normalise_code(code: str) -> str:
    """Code with comments, blank lines and trailing spaces removed: two scripts that differ only there are the same task."""
    lines = []
    for line in code.splitlines():
        line = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        line = line.rstrip()
        if line.strip():
            lines.append(line)
    return "\n".join(lines)


def state_id(competition_id: str, code: str) -> str:
    """Deduplication key: competition + normalised code hash."""
    h = hashlib.sha256(f"{competition_id}\0{normalise_code(code)}".encode()).hexdigest()
    return h[:16]
