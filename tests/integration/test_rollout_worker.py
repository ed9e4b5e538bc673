"""The rollout worker in-process (tiny hf engine, real sandbox, real grader): a fault in one sample's grading masks
that sample as an infrastructure error, keeps its traceback, and leaves the rest of the group intact."""
from __future__ import annotations

import pytest

from acelib.agent import AgentConfig
from acelib.agent.policy import fenced
from acelib.agent.state import State
from acelib.rollout import RolloutConfig
from acelib.rollout.base import SamplingParams
from acelib.sandbox.limits import Limits
from acelib.trainer.actors import RolloutWorker

pytestmark = pytest.mark.integration

VALID = """
import os, pandas as pd
os.makedirs("submission", exist_ok=True)
pd.DataFrame({"id": [1, 2], "y": [0, 1]}).to_csv("submission/submission.csv", index=False)
print("VALIDATION_SCORE: 0.5")
"""


class Scripted(RolloutWorker):
    """The engine samples for real; the texts executed are fixed (one valid script, one format error)."""

    def responses(self, state, samples):
        return [fenced(VALID), "no code block at all"][:len(samples)]


def test_a_grading_fault_masks_only_its_sample(fake_competition):
    # A competition without a leaderboard: its valid submission has no median/gold thresholds, so computing its
    # reward raises (review F7's KeyError), a fault that used to end the whole run.
    comp = fake_competition({"train.csv": "id,y\n1,0\n", "sample_submission.csv": "id,y\n1,0\n2,0\n",
                             "description.md": "Predict y."},
                            {"test.csv": "id,y\n1,0\n2,1\n"})
    worker = Scripted.__new__(Scripted)
    RolloutWorker.__init__(worker, 0, "tiny", "hf", RolloutConfig(), SamplingParams(temperature=1.0, max_new_tokens=8),
                           2, {}, Limits(timeout_s=30), 2, AgentConfig(), seed=0, torch_threads=1)
    worker.competitions = {comp.id: comp}
    try:
        task = type("Task", (), {"task_id": "t1", "state": State(competition_id=comp.id), "policy_version": 0,
                                   "index": 0})()
        group = worker.rollout(task)
    finally:
        worker.close()
    assert group.masked == [True, False]
    assert group.outcomes == ["infra_error", "format_error"]
    assert group.rewards[1] == -1.0 and len(group.children) == 1         # the format error still became a child
    assert len(group.errors) == 1 and "KeyError" in group.errors[0] and "thresholds" in group.errors[0]
    assert not group.executor_lost         # a grading fault is not a lost executor: the group is trained on
    rg = group.to_rollout_group()
    assert rg.masked == [True, False] and len(rg.samples) == 2
