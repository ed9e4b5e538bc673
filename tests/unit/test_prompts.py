"""Prompts: built from agent-visible fields only (never the hidden test score, the private folder or its answers),
the step type follows from the state, and every variable part is cut to its budget."""
from pathlib import Path

import pandas as pd
import pytest

from acelib.agent import PromptConfig, State, build_messages
from acelib.agent import prompts as P
from acelib.tasks.competition import Competition

SECRET = "ZQX-ANSWER-7781"       # sits only in the private answers
HIDDEN_SCORE = 0.918273645       # a test score no prompt may show


@pytest.fixture
def comp(tmp_path) -> Competition:
    root = tmp_path / "toy-comp"
    public, private = root / "prepared" / "public", root / "prepared" / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    (public / "description.md").write_text("# Toy\n\nPredict `y` from `x`. " + "Lorem ipsum. " * 20)
    pd.DataFrame({"id": range(50), "x": range(50), "y": [i % 2 for i in range(50)]}).to_csv(
        public / "train.csv", index=False)
    pd.DataFrame({"id": range(50, 60), "x": range(10)}).to_csv(public / "test.csv", index=False)
    pd.DataFrame({"id": range(50, 60), "y": 0}).to_csv(public / "sample_submission.csv", index=False)
    (public / "images").mkdir()
    for i in range(3):
        (public / "images" / f"{i}.png").write_bytes(b"\x89PNG")
    pd.DataFrame({"id": range(50, 60), "y": [SECRET] * 10}).to_csv(private / "test.csv", index=False)
    return Competition(id="toy-comp", root=root.resolve(), metric="auc", is_lower_better=False, id_column="id",
                       target_columns=("y",), suite="custom", name="Toy competition")


def text_of(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def states():
    draft = State("toy-comp", memory=("[draft] tried ridge -> run error: KeyError",))
    debug = State("toy-comp", code="import pandas\nraise KeyError('x')\n", plan="Ridge on x.",
                  output="Traceback...\nKeyError: 'x'", exec_status="error",
                  validity_message="No submission: the run did not finish successfully (error), so its files were "
                                   "discarded.", test_score=None)
    improve = State("toy-comp", code="print('VALIDATION_SCORE: 0.8')\n", plan="Logistic regression.",
                    output="VALIDATION_SCORE: 0.8", exec_status="ok", valid=True,
                    validity_message="Submission is valid.", score=0.8, test_score=HIDDEN_SCORE)
    return {"draft": draft, "debug": debug, "improve": improve}


@pytest.mark.parametrize("kind", ["draft", "debug", "improve"])
def test_step_type_follows_from_the_state(comp, kind):
    state = states()[kind]
    assert state.step_type == kind
    text = text_of(build_messages(state, comp))
    assert P.INSTRUCTIONS[kind] in text
    for other in {"draft", "debug", "improve"} - {kind}:
        assert P.INSTRUCTIONS[other] not in text
    assert ("# Current solution" in text) == (kind != "draft")   # a draft has no previous code to show


def test_step_type_rules():
    assert State("c").step_type == "draft"
    assert State("c", code="   \n").step_type == "draft"
    assert State("c", code="x", exec_status="ok", valid=False).step_type == "debug"
    assert State("c", code="x", exec_status="timeout").step_type == "debug"
    assert State("c", code="x", exec_status="ok", valid=True, score=None).step_type == "improve"


@pytest.mark.parametrize("kind", ["draft", "debug", "improve"])
def test_prompt_never_shows_hidden_things(comp, kind):
    text = text_of(build_messages(states()[kind], comp))
    assert SECRET not in text                             # the answers
    assert str(HIDDEN_SCORE)[:6] not in text              # the test score (0.9182...)
    assert "private" not in text.lower()                  # the private folder, by name or path
    assert str(comp.root) not in text and str(Path.home()) not in text   # no host paths at all
    assert "./input/" in text and "VALIDATION_SCORE" in text


def test_improve_prompt_shows_the_printed_score_not_the_test_score(comp):
    text = text_of(build_messages(states()["improve"], comp))
    assert "Printed validation score: 0.8" in text and "Submission check: Submission is valid." in text


def test_structure_and_system_role(comp):
    msgs = build_messages(states()["improve"], comp)
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[0]["content"] == P.SYSTEM
    user = msgs[1]["content"]
    order = ["# Competition: Toy competition", "# Data (read-only, in ./input/)", "# Current solution",
             "# Your task: improve", "# Response format", "# Rules for the script"]
    assert [user.index(h) for h in order] == sorted(user.index(h) for h in order)
    assert "auc, higher is better" in user
    one = build_messages(states()["draft"], comp, PromptConfig(system_prompt=False))
    assert len(one) == 1 and one[0]["role"] == "user" and one[0]["content"].startswith(P.SYSTEM)


@pytest.mark.parametrize("kind", ["draft", "debug", "improve"])
def test_response_format_section_follows_agent_response_format(comp, kind):
    script = text_of(build_messages(states()[kind], comp))
    edit = text_of(build_messages(states()[kind], comp, response_format="edit"))
    assert P.RESPONSE_FORMAT in script and P.RESPONSE_FORMAT_EDIT not in script
    if kind == "draft":  # nothing to edit yet: a first solution is always a full script
        assert edit == script
    else:
        assert P.RESPONSE_FORMAT_EDIT in edit and P.RESPONSE_FORMAT not in edit
        assert "<<<<<<< SEARCH" in edit and ">>>>>>> REPLACE" in edit


def test_the_edit_example_in_the_prompt_parses():
    from acelib.agent.parse import parse_edit

    example = P.RESPONSE_FORMAT_EDIT[P.RESPONSE_FORMAT_EDIT.index("<<<<<<<"):]
    p = parse_edit("Add the import.\n" + example, "import pandas as pd\nprint(1)\n")
    assert p.ok and p.code == "import os\nimport pandas as pd\nprint(1)\n"


def test_data_preview_shows_public_files_and_heads(comp):
    preview = P.data_preview(comp)
    assert "- train.csv" in preview and "- sample_submission.csv" in preview and "- test.csv" in preview
    assert "- images/ (3 files: .png)" in preview
    assert "train.csv (first 5 rows, 50 rows):" in preview and "id,x,y" in preview
    assert "sample_submission.csv (first 2 rows, 10 rows):" in preview


def test_time_limit_and_direction_in_rules(comp):
    assert "finish within 90 seconds" in text_of(build_messages(State("toy-comp"), comp, time_limit_s=90))
    assert "finish within 10 minutes" in text_of(build_messages(State("toy-comp"), comp, time_limit_s=600))
    assert "finish within a few minutes" in text_of(build_messages(State("toy-comp"), comp))


def test_wrong_competition_is_refused(comp):
    with pytest.raises(ValueError, match="toy-comp"):
        build_messages(State("other"), comp)


# ------------------------------------------------------------------------------------------- budgets
def test_budgets_truncate_each_part(comp):
    cfg = PromptConfig(description_tokens=10, code_tokens=25, output_tokens=10, memory_tokens=15,
                       preview_tokens=20, chars_per_token=4.0)
    code = "\n".join(f"line_{i:03d} = {i}" for i in range(100))
    output = "SETUP-START\n" + "noise\n" * 200 + "Traceback: KeyError at the END"
    memory = tuple(f"[draft] attempt number {i} -> run error" for i in range(10))
    state = State("toy-comp", code=code, output=output, exec_status="error", memory=memory)
    user = build_messages(state, comp, cfg)[1]["content"]
    assert "Lorem ipsum. Lorem" not in user and "characters cut" in user           # description: head kept
    assert "line_000" in user and "line_099" in user and "line_050" not in user     # code: middle cut
    assert "SETUP-START" in user and "END" in user and user.count("noise") < 10     # output: middle cut
    assert "attempt number 9" in user and "attempt number 0" not in user            # memory: most recent kept
    preview = P.data_preview(comp, cfg)
    assert len(preview) <= 80 + 40 and "characters cut" in preview


def test_tight_preview_budget_cuts_the_train_head_not_the_submission_format(comp):
    full = P.data_preview(comp, PromptConfig(preview_tokens=1000))
    tight = P.data_preview(comp, PromptConfig(preview_tokens=55, chars_per_token=4.0))   # 220 characters
    assert len(tight) < len(full) and len(tight) <= 220 + 40
    assert "sample_submission.csv (first 2 rows, 10 rows):\nid,y\n50,0\n51,0" in tight
    assert "- train.csv" in tight and "train.csv (first" not in tight                  # the train head went first
    assert "train.csv (first 5 rows, 50 rows):" in full and "characters cut" not in full


def test_truncation_helpers():
    assert P.truncate_head("abc", 10) == "abc"
    assert P.truncate_head("a" * 20, 5).startswith("aaaaa\n[... 15 characters cut")
    mid = P.truncate_middle("0123456789" * 3, 10)
    assert mid.startswith("01234") and mid.endswith("56789") and "[... 20 characters cut ...]" in mid
    assert P.truncate_tail_lines(["aa", "bb", "cc"], 6) == ["bb", "cc"]
    assert P.truncate_tail_lines(["aa"], 0) == []


def test_zero_budgets_drop_memory(comp):
    state = State("toy-comp", memory=("[draft] x -> y",))
    text = text_of(build_messages(state, comp, PromptConfig(memory_tokens=0)))
    assert "# Earlier attempts" not in text


# ------------------------------------------------------------------------------------------- memory lines
def test_attempt_summary_uses_visible_fields_only():
    s = State("c", code="x", plan="Use ridge. Then tune.", exec_status="ok", valid=True, score=0.8,
              test_score=HIDDEN_SCORE, origin_step="improve")
    line = P.attempt_summary(s)
    assert line == "[improve] Use ridge -> valid submission, validation score 0.8"
    assert "0.918" not in line


@pytest.mark.parametrize("state, expected", [
    (State("c", exec_status="format_error", origin_step="draft",
           output="Format error: no fenced code block: reply with a plan and one ```python block"),
     "[draft] (no plan) -> format error: no fenced code block: reply with a plan and one ```python block"),
    (State("c", exec_status="format_error", origin_step="debug", plan="Fix the path.",
           output="Format error: block 1: the SEARCH lines are not in the current solution"),
     "[debug] Fix the path -> format error: block 1: the SEARCH lines are not in the current solution"),
    (State("c", code="x", plan="P.", exec_status="error", output="a\nValueError: bad\n", origin_step="debug"),
     "[debug] P -> run error: ValueError: bad"),
    (State("c", code="x", plan="P.", exec_status="ok", validity_message="Submission is invalid: 3 ids missing"),
     "[attempt] P -> Submission is invalid: 3 ids missing"),
    (State("c", code="x", plan="P.", exec_status="ok", valid=True, score=None), "[attempt] P -> valid submission, "
     "validation score not printed"),
])
def test_attempt_summary_outcomes(state, expected):
    assert P.attempt_summary(state) == expected
