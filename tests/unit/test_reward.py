"""Step reward (docs/reward.md): every branch on hand-computed cases, both metric directions, clipping, the span
floor of saturated leaderboards, the ladder check of RewardConfig, and the test-vs-validation score choice made by
`acelib.agent.step.finish_step` (run on a hand-made ExecResult, no sandbox)."""
import pandas as pd
import pytest

from acelib.agent import AgentConfig, RewardConfig, State, parse_response, step_reward
from acelib.agent.reward import Thresholds, improvement, quality, span, thresholds_from_report
from acelib.agent.step import finish_step
from acelib.config import ConfigError, from_dict
from acelib.sandbox import ExecResult
from acelib.tasks import leaderboard as lb
from acelib.tasks.competition import Competition

CFG = RewardConfig()  # format -1, failed 0, invalid 0.2, valid 1, quality 0.3, improve 0.3


def report(median: float, gold: float, lower: bool) -> dict:
    return {"median_threshold": median, "gold_threshold": gold, "is_lower_better": lower}


def valid(child, parent=None, rep=None, config=CFG):
    return step_reward(format_error=False, exec_status="ok", submitted=True, valid=True, child_score=child,
                       parent_score=parent, report=rep or report(0.8, 0.9, False), config=config)


# ------------------------------------------------------------------------------------------- branches
def test_format_error_is_lowest_and_wins_over_everything():
    rb = step_reward(format_error=True, exec_status="infra_error", submitted=True, valid=True, child_score=1.0,
                     parent_score=0.0, report=report(0.8, 0.9, False), config=CFG)
    assert (rb.reward, rb.outcome, rb.masked) == (-1.0, "format_error", False)


@pytest.mark.parametrize("status", ["error", "timeout", "memory", "killed", "ok"])
def test_failed_run_or_no_submission(status):
    rb = step_reward(format_error=False, exec_status=status, submitted=False, valid=False, child_score=None,
                     parent_score=0.5, report=None, config=CFG)
    assert (rb.reward, rb.outcome, rb.masked) == (0.0, "failed", False)


def test_rejected_submission_is_above_a_crash():
    rb = step_reward(format_error=False, exec_status="ok", submitted=True, valid=False, child_score=None,
                     parent_score=None, report=report(0.8, 0.9, False), config=CFG)
    assert (rb.reward, rb.outcome) == (0.2, "invalid")


def test_infra_error_is_masked():
    rb = step_reward(format_error=False, exec_status="infra_error", submitted=False, valid=False,
                     child_score=None, parent_score=None, report=None, config=CFG)
    assert (rb.reward, rb.outcome, rb.masked) == (0.0, "masked", True)


def test_valid_higher_is_better_quality_and_improvement():
    # span = 0.9 - 0.8 = 0.1; q = (0.85 - 0.8) / 0.1 = 0.5; Δ = (0.85 - 0.8) / 0.1 = 0.5
    rb = valid(0.85)
    assert rb.outcome == "valid" and rb.quality == pytest.approx(0.5) and rb.improvement == 0.0
    assert rb.reward == pytest.approx(1 + 0.3 * 0.5)
    rb = valid(0.85, parent=0.8)
    assert rb.improvement == pytest.approx(0.5) and rb.reward == pytest.approx(1 + 0.15 + 0.15)
    rb = valid(0.79, parent=0.82)  # below the median and worse than the parent: both terms negative
    assert rb.quality == pytest.approx(-0.1) and rb.improvement == pytest.approx(-0.3)
    assert rb.reward == pytest.approx(1 - 0.03 - 0.09)


def test_valid_lower_is_better_flips_the_sign():
    rep = report(0.3, 0.2, True)  # span 0.1
    rb = valid(0.25, parent=0.35, rep=rep)
    assert rb.quality == pytest.approx(0.5) and rb.improvement == pytest.approx(1.0)
    assert rb.reward == pytest.approx(1 + 0.15 + 0.3)
    rb = valid(0.32, parent=0.31, rep=rep)
    assert rb.quality == pytest.approx(-0.2) and rb.improvement == pytest.approx(-0.1)


def test_terms_are_clipped_to_plus_minus_one():
    lo, hi = CFG.bounds
    assert valid(5.0, parent=-5.0).reward == pytest.approx(hi) == pytest.approx(1.6)
    rb = valid(-5.0, parent=5.0)
    assert (rb.quality, rb.improvement) == (-1.0, -1.0)
    assert rb.reward == pytest.approx(0.4) and rb.reward > CFG.invalid_reward
    assert lo == -1.0


def test_missing_or_nonfinite_scores_zero_their_terms():
    assert valid(None, parent=0.5).reward == pytest.approx(1.0)
    assert valid(float("nan")).reward == pytest.approx(1.0)
    rb = valid(0.85, parent=float("nan"))
    assert rb.improvement == 0.0 and rb.reward == pytest.approx(1.15)


def test_valid_needs_the_report():
    with pytest.raises(ValueError, match="grader report"):
        step_reward(format_error=False, exec_status="ok", submitted=True, valid=True, child_score=0.5,
                    parent_score=None, report=None, config=CFG)


# ------------------------------------------------------------------------------------------- span floor
def test_saturated_leaderboard_uses_the_relative_floor():
    th = Thresholds(median=0.5, gold=0.5, is_lower_better=False)
    assert span(th, CFG) == pytest.approx(0.005)          # 1% of |0.5|
    assert quality(0.501, th, CFG) == pytest.approx(0.2)
    assert improvement(0.5, 0.499, th, CFG) == pytest.approx(0.2)


def test_zero_thresholds_use_the_absolute_floor():
    th = Thresholds(median=0.0, gold=0.0, is_lower_better=True)
    assert span(th, CFG) == pytest.approx(1e-6)
    assert quality(-1e-7, th, CFG) == pytest.approx(0.1)
    assert quality(1.0, th, CFG) == -1.0


def test_tiny_gap_is_floored_but_a_wide_gap_is_not():
    assert span(Thresholds(100.0, 100.2, False), CFG) == pytest.approx(1.002)  # 0.2 < 1% of 100.2
    assert span(Thresholds(0.8, 0.9, False), CFG) == pytest.approx(0.1)


def test_thresholds_from_flat_or_nested_report():
    assert thresholds_from_report(report(0.3, 0.2, True)) == Thresholds(0.3, 0.2, True)
    nested = {"thresholds": {"median": 1, "gold": 2}, "is_lower_better": False}
    assert thresholds_from_report(nested) == Thresholds(1.0, 2.0, False)
    with pytest.raises(KeyError, match="thresholds"):
        thresholds_from_report({"median_threshold": None, "gold_threshold": None, "is_lower_better": False})


# ------------------------------------------------------------------------------------------- ladder validation
@pytest.mark.parametrize("kw", [
    {"format_reward": 0.0},                           # format not below failed
    {"failed_reward": 0.3},                           # failed above invalid
    {"invalid_reward": 0.4},                          # invalid not below the worst valid (1 - 0.3 - 0.3)
    {"quality_weight": 0.5, "improve_weight": 0.5},   # worst valid = 0 < invalid
    {"quality_weight": -0.1},
    {"min_span_abs": 0.0},
    {"min_span_rel": -0.01},
])
def test_broken_ladder_is_rejected(kw):
    with pytest.raises(ConfigError):
        RewardConfig(**kw)
    with pytest.raises(ConfigError):
        from_dict(RewardConfig, kw)


def test_ladder_allows_failed_equal_invalid_and_reports_bounds():
    cfg = RewardConfig(failed_reward=0.0, invalid_reward=0.0, quality_weight=0.0, improve_weight=0.0)
    assert cfg.bounds == (-1.0, 1.0)
    with pytest.raises(ConfigError, match="score_source"):
        from_dict(RewardConfig, {"score_source": "oracle"})


# ------------------------------------------------------------------------------------------- score source
@pytest.fixture
def comp(tmp_path) -> Competition:
    """Accuracy toy: answers y = id % 2; leaderboard 0.95 .. 0.36 (60 rows) → gold 0.9, median 0.655."""
    root = tmp_path / "toy"
    (root / "prepared" / "public").mkdir(parents=True)
    (root / "prepared" / "private").mkdir(parents=True)
    pd.DataFrame({"id": range(10), "y": [i % 2 for i in range(10)]}).to_csv(
        root / "prepared" / "private" / "test.csv", index=False)
    c = Competition(id="toy", root=root.resolve(), metric="accuracy", is_lower_better=False, id_column="id",
                    target_columns=("y",), suite="custom")
    lb.write(c.leaderboard_path, [round(0.95 - 0.01 * i, 2) for i in range(60)], False)
    c.save_metadata()
    return c


def submission(n_right: int) -> bytes:
    ys = [i % 2 if i < n_right else 1 - i % 2 for i in range(10)]
    return pd.DataFrame({"id": range(10), "y": ys}).to_csv(index=False).encode()


def run_step(comp, parent: State, printed: float, n_right: int, source: str):
    cfg = AgentConfig(reward=RewardConfig(score_source=source))
    res = ExecResult("ok", 0, f"training...\nVALIDATION_SCORE: {printed}\n", "", 1.0,
                     submission=submission(n_right))
    return finish_step(parent, parse_response("Plan.\n```python\nprint(1)\n```"), res, comp, cfg)


def test_test_score_source_ignores_what_the_program_prints(comp):
    th = thresholds_from_report(run_step(comp, State("toy"), 0.5, 8, "test").info["report"])
    s = span(th, CFG)
    # the program claims a perfect 1.0, the hidden answers say 0.8
    r = run_step(comp, State("toy"), 1.0, 8, "test")
    assert r.child.test_score == 0.8 and r.child.score == 1.0 and r.info["outcome"] == "valid"
    assert r.reward == pytest.approx(1 + 0.3 * max(-1, min(1, (0.8 - th.median) / s)))
    # its printed score is what it sees; the hidden score is nowhere in its output or verdict
    assert r.child.validity_message == "Submission is valid." and "0.8" not in r.child.output


def test_validation_score_source_uses_the_printed_score(comp):
    r = run_step(comp, State("toy"), 1.0, 8, "validation")
    assert r.info["quality"] == 1.0                      # 1.0 is beyond gold (0.9)
    assert r.reward == pytest.approx(1.3)


def test_improvement_compares_with_the_parent_in_the_same_source(comp):
    parent = State("toy", code="print(0)", exec_status="ok", valid=True, score=0.9, test_score=0.6)
    test = run_step(comp, parent, 0.7, 8, "test")         # test: 0.6 -> 0.8 is a gain
    val = run_step(comp, parent, 0.7, 8, "validation")    # printed: 0.9 -> 0.7 is a loss
    assert test.info["improvement"] > 0 > val.info["improvement"]
    # an invalid parent has no score to improve on
    failed = State("toy", code="print(0)", exec_status="error", valid=False, score=0.9, test_score=None)
    assert run_step(comp, failed, 0.7, 8, "test").info["improvement"] == 0.0
    assert failed.step_type == "debug" and parent.step_type == "improve"


def test_rejected_and_failed_runs_in_finish_step(comp):
    cfg = AgentConfig()
    parsed = parse_response("```python\nprint(1)\n```")
    bad = ExecResult("ok", 0, "VALIDATION_SCORE: 0.9", "", 1.0, submission=b"id,y\n0,1\n")
    r = finish_step(State("toy"), parsed, bad, comp, cfg)
    assert r.info["outcome"] == "invalid" and r.reward == 0.2 and not r.child.valid
    assert r.child.validity_message.startswith("Submission is invalid:") and r.child.test_score is None
    crashed = ExecResult("error", 1, "VALIDATION_SCORE: 0.9", "Traceback ...", 1.0, submission=submission(10))
    r = finish_step(State("toy"), parsed, crashed, comp, cfg)
    assert r.info["outcome"] == "failed" and r.reward == 0.0 and r.info["report"] is None  # files discarded
    infra = ExecResult("infra_error", None, "", "", 0.0, reason="sandbox died")
    r = finish_step(State("toy"), parsed, infra, comp, cfg)
    assert r.masked and r.reward == 0.0 and r.info["outcome"] == "masked"
    r = finish_step(State("toy"), parse_response("no code here"), None, comp, cfg)
    assert r.info["outcome"] == "format_error" and r.reward == -1.0 and r.child.exec_status == "format_error"


def test_an_edit_that_does_not_apply_is_a_format_error_and_nothing_runs(comp):
    from acelib.agent import step_batch

    cfg = AgentConfig(response_format="edit")
    parent = State("toy", code="import pandas as pd\nprint(1)\n", plan="P.", exec_status="error", output="boom")
    edit = "Fix.\n<<<<<<< SEARCH\nimport numpy as np\n=======\nimport os\n>>>>>>> REPLACE\n"
    # a format error runs nothing: no sandbox pool is needed
    r = step_batch([parent], [edit], comp, sandbox=None, config=cfg)[0]
    assert r.info["outcome"] == "format_error" and r.reward == cfg.reward.format_reward
    assert r.child.output.startswith("Format error: block 1: the SEARCH lines are not in the current solution")
    assert r.child.exec_status == "format_error" and r.child.code == "" and not r.child.valid
