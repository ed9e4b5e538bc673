import pytest

from acelib.trainer.loop import group_metrics, step_line
from acelib.trainer.payloads import FinishedGroup


def _group(rewards, outcomes, policy_version, masked=None, step_type="draft", identical=None):
    n = len(rewards)
    return FinishedGroup(task_id="t", index=0, competition_id="c", step_type=step_type, policy_version_started=policy_version,
                         policy_version=policy_version, prompt_ids=[1], samples=[], rewards=rewards,
                         masked=masked or [False] * n, outcomes=outcomes, children=[],
                         identical_to_parent=identical or [False] * n, gen_s=2.0, exec_s=1.0, gen_tokens=40,
                         sandbox_latency_s=[0.5] * n, gen_engine_s=0.5)


def test_group_metrics_rates_variance_and_staleness_against_the_weights_trained():
    groups = [_group([1.0, 0.0], ["valid", "failed"], policy_version=3, step_type="debug"),
              _group([-1.0, -1.0], ["format_error", "format_error"], policy_version=2),
              _group([0.2, 0.0], ["invalid", "infra_error"], policy_version=3, masked=[False, True],
                     step_type="improve", identical=[True, False]),
              _group([1.0, 1.0 + 1e-9], ["valid", "valid"], policy_version=3, step_type="improve")]
    m = group_metrics(groups, trained_from=3)   # the learner updates version-3 weights with this batch
    assert m["rate/valid_submission"] == 3 / 8 and m["rate/format_error"] == 2 / 8
    assert m["rate/infra_masked"] == 1 / 8 and m["rate/identical_to_parent"] == 1 / 8
    # zero variance (acelib.groups): the all-format-error group, the single unmasked sample, equal within 1e-6
    assert m["groups/zero_variance_share"] == 3 / 4
    assert m["staleness/max"] == 1 and m["staleness/mean"] == 1 / 4
    assert m["reward/mean"] == (1.0 + 0.0 - 1.0 - 1.0 + 0.2 + 1.0 + 1.0 + 1e-9) / 7
    # per engine second (each group's share of its batched call), not per second of each group's wait
    assert m["rollout/tokens_per_s"] == 160 / 2.0 and m["rollout/gen_s"] == 8.0 and m["rollout/gen_engine_s"] == 2.0
    # validity by the kind of task answered: debug 1/2, improve 2/4 (a copy of an improve seed counts here)
    assert m["rate/valid/debug"] == 0.5 and m["rate/valid/improve"] == 0.5 and m["rate/valid/draft"] == 0.0
    assert m["groups/improve"] == 2 and m["samples/valid/improve"] == 2
    line = step_line({"train/step": 4, "time/step_s": 81.4, **m}, 9)
    assert line.startswith("step 4/9 | reward") and "debug 0.50" in line and "81 s" in line
    assert "copies of parent 0.12" in line


def test_valid_and_changed_counts_valid_responses_that_are_not_copies():
    from acelib.groups import valid_and_changed
    assert valid_and_changed(["valid", "valid", "error", "format_error"], [False, True, False, False]) == 1
    assert valid_and_changed([], []) == 0
    with pytest.raises(ValueError):
        valid_and_changed(["valid"], [])       # one flag per response, or the count is wrong
