"""The evaluator end to end: ScriptedPolicy episodes on three fast lite-mini competitions through the real bwrap
sandbox and grader (reference solutions, broken-then-fixed, a format error, a program hunting for the answers),
plus the search policy and report aggregation as pure functions (no sandbox, not marked integration).

Budget: two `evaluate` calls with 9 sandbox runs in all (~1 min on 2 busy cores, after the competitions are
prepared into the cache)."""
from __future__ import annotations

import importlib
import json
import math
import random

import pytest

from acelib.agent import AgentConfig, ScriptedPolicy
from acelib.config import ConfigError, from_dict
from acelib.eval import EvalConfig, EvalReport, EpisodeRecord, NodeRecord, best_node, debuggable, select_parent

COMPS = ("nomad-mini", "insults-mini", "pizza-mini")   # lower-is-better RMSLE, AUC, AUC; < 5 s references
LIMITS = {"timeout_s": 90, "memory_mb": 4096}
integration = pytest.mark.integration


@pytest.fixture(scope="module")
def comps():
    from acelib import sandbox
    if sandbox.capabilities()["mode"] != "bwrap":
        pytest.skip(f"no bwrap isolation here: {sandbox.capabilities()['reason']}")
    from acelib.tasks.suites import prepare_competition
    return {c: prepare_competition(c) for c in COMPS}


def leak_script(comp) -> str:
    """Tries every way to the hidden answers; submits them if any read works, else the sample submission."""
    targets = ["../private/test.csv", "../prepared/private/test.csv", "./input/../private/test.csv",
               "../../private/test.csv", "/workspace/../prepared/private/test.csv",
               str(comp.answers_path), str(comp.private_dir), str(comp.root), str(comp.root / "leaderboard.csv")]
    return f'''
import os, pandas as pd
leaked = None
for p in {targets!r}:
    try:
        if os.path.isdir(p):
            print("LEAK dir", p, os.listdir(p))
        else:
            open(p).read(100)
            print("LEAK", p)
            if p.endswith("test.csv"):
                leaked = p
    except OSError as e:
        print("BLOCKED", type(e).__name__)
os.makedirs("submission", exist_ok=True)
pd.read_csv(leaked or "input/sample_submission.csv").to_csv("submission/submission.csv", index=False)
print("VALIDATION_SCORE: 0.5")
'''


@pytest.fixture(scope="module")
def scenario_report(comps):
    """steps=2, one draft then search: nomad reference twice (draft → improve), insults broken → debugged fix,
    pizza format error → (nothing to debug) a new draft that hunts for the answers."""
    from acelib.eval import evaluate
    from acelib.tasks.suites import reference_solution

    policy = ScriptedPolicy({
        "nomad-mini": [reference_solution("nomad-mini")],
        "insults-mini": ["import pandas as pd\npd.read_csv('input/no_such_file.csv')\n",
                         reference_solution("insults-mini")],
        "pizza-mini": ["I will train a model.\n```python\nimport pandas as pd\n# cut off here",
                       leak_script(comps["pizza-mini"])],
    })
    cfg = EvalConfig(steps=2, num_drafts=1, workers=2, limits=LIMITS, progress=False)
    return evaluate(policy, list(comps.values()), cfg, seeds=(0,))


@integration
def test_reference_solutions_across_seeds(comps):
    from acelib.eval import evaluate
    from acelib.tasks.suites import reference_solution

    policy = ScriptedPolicy({c: [reference_solution(c)] for c in COMPS})
    report = evaluate(policy, list(comps.values()), EvalConfig(steps=1, workers=2, limits=LIMITS, progress=False),
                      seeds=(0, 1))
    df = report.dataframe()
    assert len(df) == 6 and set(df["seed"]) == {0, 1}
    for row in df.itertuples():
        # the reference is calibrated between the median and gold; whatever medal it reaches, the grader decides
        assert row.valid_submission and row.above_median and not row.gold_medal, row
        assert row.steps_to_first_valid == 1 and row.final_node == 0
        assert row.any_medal == (row.silver_medal or row.bronze_medal)
        assert 0.5 < row.human_rank < 1 and row.oracle_score == row.score
    s = report.summary()
    assert s["valid_rate_mean"] == 1.0 and s["above_median_mean"] == 1.0 and s["gold_medal_mean"] == 0.0
    assert s["any_medal_mean"] == pytest.approx(df["any_medal"].mean())
    assert s["steps_to_first_valid_mean"] == 1.0
    assert s["valid_rate_sem"] == 0.0 and s["any_medal_sem"] == 0.0   # a deterministic policy: seeds agree
    assert s["mean_human_rank_mean"] == pytest.approx(df["human_rank"].mean())
    assert all(isinstance(v, float) for v in s.values())
    assert (s["competitions"], s["seeds"], s["episodes"], s["steps_run"]) == (3.0, 2.0, 6.0, 6.0)


@integration
def test_improve_step_expands_the_best_node(scenario_report):
    ep = scenario_report.episode("nomad-mini")
    assert [n.step_type for n in ep.nodes] == ["draft", "improve"]
    assert ep.nodes[1].parent == 0 and all(n.valid for n in ep.nodes)
    assert ep.final_node == 0            # same validation score: the earlier node wins the tie
    assert ep.report["is_lower_better"] and ep.report["score"] == ep.nodes[0].test_score
    assert ep.nodes[0].validation_score is not None and ep.nodes[0].reward > 1.0


@integration
def test_broken_then_fixed_counts_two_steps(scenario_report):
    ep = scenario_report.episode("insults-mini")
    first, second = ep.nodes
    assert first.outcome == "failed" and first.exec_status == "error" and "FileNotFoundError" in first.output
    assert second.step_type == "debug" and second.parent == 0 and second.debug_depth == 1 and second.valid
    assert ep.steps_to_first_valid == 2 and ep.final_node == 1 and ep.report["valid_submission"]


@integration
def test_format_error_and_answer_hunting(scenario_report, comps):
    from acelib.tasks import grade

    ep = scenario_report.episode("pizza-mini")
    fmt, hunt = ep.nodes
    assert fmt.outcome == "format_error" and fmt.exec_status == "format_error" and fmt.reward == -1.0
    assert fmt.code == "" and "never closed" in fmt.validity_message + fmt.output
    # nothing to debug in a format error, and no valid node yet: the search drafts again
    assert hunt.step_type == "draft" and hunt.parent is None
    assert "LEAK" not in hunt.output and hunt.output.count("BLOCKED") == 9
    sample = grade(comps["pizza-mini"], comps["pizza-mini"].public_dir / "sample_submission.csv")
    assert hunt.valid and hunt.test_score == sample["score"]       # an ordinary (sample) score, no gold
    assert not ep.report["gold_medal"] and not ep.report["above_median"]


@integration
def test_report_outputs(scenario_report):
    df = scenario_report.dataframe()
    assert list(df["competition_id"]) == list(COMPS)
    assert list(df["steps_to_first_valid"]) == [1, 2, 2]
    assert list(df["format_errors"]) == [0, 0, 1] and list(df["failed_nodes"]) == [0, 1, 0]
    nodes = scenario_report.nodes_dataframe()
    assert len(nodes) == 6 and nodes["final"].sum() == 3
    data = json.loads(scenario_report.to_json())            # strict JSON (no NaN)
    assert data["summary"]["steps_to_first_valid_mean"] == pytest.approx(5 / 3)
    assert math.isnan(scenario_report.summary()["valid_rate_sem"]) and data["summary"]["valid_rate_sem"] is None
    ep = data["episodes"][1]
    assert ep["nodes"][1]["code"] and ep["nodes"][1]["report"]["valid_submission"]
    again = EvalReport.from_json(scenario_report.to_json())
    assert again.dataframe().drop(columns="reason").equals(df.drop(columns="reason"))


@integration
def test_seed_states_are_real_runs_cached_and_from_the_chosen_split(comps, monkeypatch):
    """Improve seeds = the valid compact baselines, debug seeds = eval-split mutations that really fail; a second
    call is served from the cache (the sandbox step is not called again)."""
    from acelib.agent import seeds
    from acelib.tasks.suites import compact_baseline, mutations
    from acelib.tasks.suites.solutions import compact_plan

    ids = ["nomad-mini", "insults-mini"]
    states = seeds.seed_states(ids, split="eval", per_competition=2, seed=1, cache=False, workers=2)
    assert [s.competition_id for s in states] == ["nomad-mini"] * 3 + ["insults-mini"] * 3
    for s in states:
        assert s.parent_id is None and s.depth == 0 and s.memory == () and s.plan == compact_plan(s.competition_id)
    for improve in (states[0], states[3]):
        assert improve.step_type == "improve" and improve.code == compact_baseline(improve.competition_id)
        assert improve.score is not None and improve.validity_message == "Submission is valid."
    debug = [s for s in states if s.step_type == "debug"]
    assert len(debug) == 4 and all(s.output and s.validity_message and not s.valid for s in debug)
    held_out = {m.code for cid in ids for m in mutations.mutations(cid, split="eval")}
    assert all(s.code in held_out for s in debug)

    def no_runs(*a, **k):
        raise AssertionError("cached seeds must not run again")
    # the module, not `acelib.agent.step` the function that the package exports under the same name
    monkeypatch.setattr(importlib.import_module("acelib.agent.step"), "step_batch", no_runs)
    assert seeds.seed_states(ids, split="eval", per_competition=2, seed=1) == states


# ------------------------------------------------------------------------------------------- pure search policy
def node(index, parent=None, valid=False, score=None, test=None, code="x = 1", step_type="draft", depth=0):
    report = {"score": test, "any_medal": False} if valid else None
    return NodeRecord(index=index, parent=parent, step_type=step_type, debug_depth=depth, plan="", code=code,
                      output="", exec_status="ok" if code else "format_error",
                      outcome="valid" if valid else ("failed" if code else "format_error"),
                      validity_message="", valid=valid, validation_score=score, test_score=test, reward=0.0,
                      masked=False, duration_s=0.0, report=report)


def test_best_node_by_validation_score_with_ties_and_unscored():
    nodes = [node(0, valid=True, score=None), node(1, valid=True, score=0.5), node(2, valid=True, score=0.7),
             node(3, valid=True, score=0.7), node(4, valid=False, score=0.99)]
    assert best_node(nodes, is_lower_better=False) == 2       # tie 0.7: earliest; invalid 0.99 never counts
    assert best_node(nodes, is_lower_better=True) == 1        # unscored valid ranks below every scored one
    assert best_node(nodes[:1], False) == 0 and best_node(nodes[4:], False) is None


def test_search_drafts_then_debugs_then_improves():
    cfg = EvalConfig(num_drafts=2, max_debug_depth=2, progress=False)
    rng = random.Random(0)
    assert select_parent([], cfg, rng, False) is None
    nodes = [node(0)]                                            # one failed draft: still drafting
    assert select_parent(nodes, cfg, rng, False) is None
    nodes.append(node(1, valid=True, score=0.6))
    assert select_parent(nodes, cfg, rng, False) == 0            # debug the failed leaf
    nodes.append(node(2, parent=0, step_type="debug", depth=1))  # its fix failed too (depth 1 < 2)
    assert debuggable(nodes, 2) == [2]
    nodes.append(node(3, parent=2, step_type="debug", depth=2))  # depth 2: give up on this line
    assert debuggable(nodes, 2) == []
    assert select_parent(nodes, cfg, rng, False) == 1            # improve the best valid node
    assert select_parent(nodes, EvalConfig(debug_prob=0.0, progress=False), rng, False) == 1


def test_format_errors_are_not_debugged_and_no_valid_node_means_draft():
    cfg = EvalConfig(num_drafts=1, progress=False)
    nodes = [node(0, code="")]
    assert debuggable(nodes, 3) == [] and select_parent(nodes, cfg, random.Random(0), False) is None


def test_summary_mean_and_sem_over_seeds():
    def episode(cid, seed, medal, first):
        n = node(0, valid=True, score=0.5, test=0.5)
        rep = {"valid_submission": True, "submission_exists": True, "score": 0.5, "any_medal": medal,
               "gold_medal": medal, "silver_medal": False, "bronze_medal": False, "above_median": True,
               "human_rank": 0.5, "gold_threshold": 1, "silver_threshold": 1, "bronze_threshold": 1,
               "median_threshold": 0, "is_lower_better": False, "reason": None}
        return EpisodeRecord(cid, seed, [n], 0, rep, first, 0, "steps", 1.0)

    eps = [episode("a", 0, True, 1), episode("b", 0, True, 3), episode("a", 1, False, 2), episode("b", 1, True, 2),
           episode("a", 2, False, None), episode("b", 2, False, None)]
    s = EvalReport(EvalConfig(progress=False), (0, 1, 2), eps).summary()
    # per seed any_medal: 1.0, 0.5, 0.0 → mean 0.5, sem = std([1, .5, 0], ddof=1) / sqrt(3) = 0.5 / sqrt(3)
    assert s["any_medal_mean"] == pytest.approx(0.5) and s["any_medal_sem"] == pytest.approx(0.5 / math.sqrt(3))
    # steps to first valid per seed: 2, 2, (none) → mean over the seeds that have one
    assert s["steps_to_first_valid_mean"] == 2.0 and s["steps_to_first_valid_sem"] == 0.0


def test_eval_config_validation():
    assert from_dict(EvalConfig, {"steps": 3, "limits": {"timeout_s": 30}}).sandbox_limits().timeout_s == 30
    for bad in ({"steps": 0}, {"debug_prob": 1.5}, {"limits": {"timeut_s": 3}}, {"max_debug_depth": -1},
                {"time_budget_s": 0}, {"stepz": 3}):
        with pytest.raises(ConfigError):
            from_dict(EvalConfig, bad)
    # the run time limit the prompt states: the sandbox's timeout unless the agent config names one
    cfg = EvalConfig()
    assert cfg.agent.prompt_time_limit_s(cfg.sandbox_limits().timeout_s) == 600.0
    cfg = EvalConfig(agent=AgentConfig(time_limit_hint_s=60))
    assert cfg.agent.prompt_time_limit_s(cfg.sandbox_limits().timeout_s) == 60


def test_eval_module_imports_without_torch():
    import subprocess
    import sys
    code = "import sys, acelib.eval; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _toy_competitions(tmp_path) -> list:
    """Two prepared two-row competitions (no sandbox run needed: the tests below never run a script)."""
    import pandas as pd

    from acelib.tasks import leaderboard as lb
    from acelib.tasks.competition import Competition

    comps = []
    for cid in ("toy-a", "toy-b"):
        public = tmp_path / cid / "prepared" / "public"
        public.mkdir(parents=True)
        (public / "description.md").write_text("Predict y.")
        pd.DataFrame({"id": [1, 2], "y": [0, 1]}).to_csv(public / "train.csv", index=False)
        comp = Competition(id=cid, root=(tmp_path / cid).resolve(), metric="accuracy", is_lower_better=False,
                           id_column="id", target_columns=("y",), suite="custom")
        lb.write(comp.leaderboard_path, [0.9 - 0.01 * i for i in range(20)], False)
        comps.append(comp)
    return comps


class _NoSandbox:
    def submit(self, *a, **k):
        raise AssertionError("a format error must not reach the sandbox")


def test_batched_policy_calls_and_time_budget(tmp_path):
    """Without any sandbox run (every response is a format error): one batched call per step for all active
    episodes, contexts carry state/step/episode, and the wall-clock budget stops episodes early."""
    import time

    from acelib.agent import Response
    from acelib.eval import evaluate

    comps = _toy_competitions(tmp_path)
    calls = []

    def policy(prompts, n=1, contexts=None):
        calls.append([(c.episode, c.step, c.state.step_type) for c in contexts])
        time.sleep(0.4)
        return [[Response("no code, sorry")] for _ in prompts]

    cfg = EvalConfig(steps=50, num_drafts=1, time_budget_s=1.0, progress=False)
    report = evaluate(policy, comps, cfg, seeds=(0, 3), sandbox=_NoSandbox())
    assert calls[0] == [("toy-a/seed0", 0, "draft"), ("toy-b/seed0", 0, "draft"),
                        ("toy-a/seed3", 0, "draft"), ("toy-b/seed3", 0, "draft")]
    assert 2 <= len(calls) <= 5 and all(len(c) == 4 for c in calls)
    assert [c[0][1] for c in calls] == list(range(len(calls)))
    df = report.dataframe()
    assert set(df["stopped"]) == {"time"} and (df["steps"] == len(calls)).all()
    assert not df["valid_submission"].any() and (df["human_rank"] == 0.0).all()   # beats nobody
    assert df["steps_to_first_valid"].isna().all() and (df["format_errors"] == len(calls)).all()
    s = report.summary()
    assert s["valid_rate_mean"] == 0.0 and math.isnan(s["steps_to_first_valid_mean"])
    assert report.episode("toy-b", 3).report["reason"] == "no step of the episode produced a valid submission"


def test_eval_prompts_as_the_trained_agent_was_prompted(tmp_path):
    """The seeded protocol with `agent.response_format: edit` and a stated time limit: the policy is asked for
    SEARCH/REPLACE edits with that limit, exactly the prompt rollouts use (`agent_messages`), so a policy trained on
    edits is not evaluated on full-script prompts."""
    from acelib.agent import Response, State, agent_messages
    from acelib.eval import evaluate

    comps = _toy_competitions(tmp_path)
    agent = AgentConfig(response_format="edit", time_limit_hint_s=45)
    starts = {c.id: [State(competition_id=c.id, code="import pandas as pd\nprint(1)\n", output="no submission")]
              for c in comps}
    seen = []

    def policy(prompts, n=1, contexts=None):
        seen.extend(zip(prompts, contexts))
        return [[Response("no code, sorry")] for _ in prompts]

    evaluate(policy, comps, EvalConfig(steps=1, agent=agent, progress=False), seeds=(0,), sandbox=_NoSandbox(),
             start_states=starts)
    assert len(seen) == 2
    for prompt, ctx in seen:
        assert ctx.state.step_type == "debug"
        assert prompt == agent_messages(ctx.state, next(c for c in comps if c.id == ctx.state.competition_id), agent,
                                        600.0)
        text = prompt[-1]["content"]
        assert "SEARCH/REPLACE" in text and "45 seconds" in text
