"""The seeded evaluation protocol: episodes that start from a held-out broken compact baseline.

The search rules with a given start node are pure functions (not marked integration); one small evaluation runs
the real sandbox and grader (two seed scripts + two repair steps on nomad-mini)."""
import random

import pytest

from acelib.eval import SEED_STEP, EvalConfig, NodeRecord, select_parent


def node(index, parent=None, step_type="draft", valid=False, code="x = 1", depth=0):
    return NodeRecord(index=index, parent=parent, step_type=step_type, debug_depth=depth, plan="", code=code,
                      output="", exec_status="error", outcome="valid" if valid else "failed", validity_message="",
                      valid=valid, validation_score=0.5 if valid else None, test_score=None, reward=0.0,
                      masked=False, duration_s=0.0, report=None)


def test_a_seed_node_stands_for_the_drafting_phase():
    cfg = EvalConfig(num_drafts=2, progress=False)
    rng = random.Random(0)
    assert select_parent([node(0, step_type=SEED_STEP)], cfg, rng, False) == 0      # debug the seed first
    broken = [node(0, step_type=SEED_STEP), node(1, parent=0, step_type="debug", code="", depth=1)]
    assert select_parent(broken, cfg, rng, False) is None                            # nothing left to debug: draft
    fixed = [node(0, step_type=SEED_STEP), node(1, parent=0, step_type="debug", valid=True, depth=1)]
    assert select_parent(fixed, cfg, rng, False) == 1                                # improve the repaired script


@pytest.mark.integration
def test_seeded_episode_repairs_the_given_script():
    from acelib import sandbox
    if sandbox.capabilities()["mode"] != "bwrap":
        pytest.skip(f"no bwrap isolation here: {sandbox.capabilities()['reason']}")
    from acelib.agent import ScriptedPolicy
    from acelib.agent.seeds import seed_states
    from acelib.eval import EvalReport, evaluate
    from acelib.tasks.suites import compact_baseline, prepare_competition

    comp = prepare_competition("nomad-mini")
    limits = {"timeout_s": 90}
    cfg = EvalConfig(steps=1, workers=2, limits=limits, progress=False)
    starts = seed_states(["nomad-mini"], split="eval", per_competition=2, improve=False,
                         limits=cfg.sandbox_limits(), workers=2)
    assert len(starts) == 2 and not any(s.valid for s in starts)
    policy = ScriptedPolicy({"nomad-mini": [compact_baseline("nomad-mini")]})
    report = evaluate(policy, [comp], cfg, seeds=(0, 1), start_states={"nomad-mini": starts})
    for i, ep in enumerate(report.episodes):
        assert ep.start_node == 0 and ep.nodes[0].step_type == SEED_STEP and ep.nodes[0].code == starts[i].code
        assert [n.step_type for n in ep.nodes] == [SEED_STEP, "debug"] and ep.nodes[1].parent == 0
        assert ep.nodes[1].valid and ep.final_node == 1 and ep.steps_to_first_valid == 1
    df = report.dataframe()
    assert list(df["protocol"]) == ["seeded", "seeded"] and list(df["steps"]) == [1, 1]
    assert df["valid_submission"].all() and report.summary()["steps_run"] == 2.0
    again = EvalReport.from_json(report.to_json())
    assert again.episodes[0].start_node == 0 and again.dataframe()["protocol"].tolist() == ["seeded", "seeded"]
    with pytest.raises(ValueError, match="no state for competition"):
        evaluate(policy, [comp], cfg, start_states={"other": starts})
