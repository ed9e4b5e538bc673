"""Parsing the agent's response (plan + exactly one Python block) and its printed VALIDATION_SCORE."""
import math

import pytest

from acelib.agent import fenced, parse_response, parse_validation_score


def test_plan_and_one_block():
    p = parse_response("I will fit a ridge model.\n\n```python\nimport numpy\nprint(1)\n```\n")
    assert p.ok and p.plan == "I will fit a ridge model." and p.code == "import numpy\nprint(1)\n"


@pytest.mark.parametrize("tag", ["", "python", "py", "python3", "Python", "PY"])
def test_python_tags(tag):
    p = parse_response(f"plan\n```{tag}\nx = 1\n```")
    assert p.ok and p.code == "x = 1\n"


@pytest.mark.parametrize("text, needle", [
    ("just words, no code at all", "no fenced code block"),
    ("plan\n```python\na = 1\n```\nand\n```python\nb = 2\n```", "2 code blocks"),
    ("plan\n```python\nimport pandas\n# the response was cut here", "never closed"),
    ("plan\n```bash\npip install x\n```", "'bash'"),
    ("plan\n```python\n   \n```", "empty"),
    ("<think>let me write\n```python\nx = 1\n```\n", "<think>"),
])
def test_format_errors(text, needle):
    p = parse_response(text)
    assert not p.ok and p.code is None and needle in p.error


def test_format_error_keeps_the_plan_for_the_record():
    assert parse_response("only a plan").plan == "only a plan"
    assert parse_response("plan A\n```python\nx\n```\n```python\ny\n```").plan == "plan A"


def test_think_blocks_are_dropped_code_inside_does_not_count():
    text = "<think>maybe\n```python\nwrong = 1\n```\n</think>Final plan.\n```python\nright = 1\n```"
    p = parse_response(text)
    assert p.ok and p.code == "right = 1\n" and p.plan == "Final plan."
    # only thinking, no answer after it
    assert not parse_response("<think>```python\nx = 1\n```</think>\nno code").ok
    # a second thinking block left open: the answer never started
    assert not parse_response("<think>a</think>plan\n<think>```python\nx = 1\n```").ok


def test_orphan_think_closer_from_a_prefilled_prompt():
    # Qwen3-style templates put "<think>" into the prompt, so the response starts inside the reasoning
    text = "I could try\n```python\ndraft = 1\n```\nbetter not.\n</think>\n\nPlan B.\n```python\nfinal = 1\n```"
    p = parse_response(text)
    assert p.ok and p.code == "final = 1\n" and p.plan == "Plan B."


def test_longer_fence_holds_inner_backticks_and_text_after_is_ignored():
    text = "plan\n````python\ns = '''\n```\n'''\n````\nThat is all, thanks!"
    p = parse_response(text)
    assert p.ok and p.code == "s = '''\n```\n'''\n"


def test_indented_and_crlf_fences():
    assert parse_response("plan\r\n   ```python\r\nx = 1\r\n   ```\r\n").code == "x = 1\r\n"
    assert not parse_response("plan\n    ```python\nx = 1\n    ```").ok  # 4 spaces: an indented code line


def test_syntax_errors_are_not_format_errors():
    p = parse_response("plan\n```python\ndef broken(:\n```")
    assert p.ok and "broken" in p.code


def test_inline_backticks_are_not_fences():
    p = parse_response("Use `pandas` and ``numpy``.\n```python\nx = 1\n```")
    assert p.ok and p.plan == "Use `pandas` and ``numpy``."


def test_fenced_roundtrip():
    code = "import os\nprint('hi')\n"
    p = parse_response(fenced(code, plan="My plan."))
    assert p.ok and p.plan == "My plan." and p.code == code


# ------------------------------------------------------------------------------------------- VALIDATION_SCORE
def test_last_score_line_wins():
    out = "VALIDATION_SCORE: 0.5\nepoch 2\nVALIDATION_SCORE: 0.75\ndone\n"
    assert parse_validation_score(out) == 0.75


@pytest.mark.parametrize("line, value", [
    ("VALIDATION_SCORE: 1", 1.0), ("VALIDATION_SCORE:-0.25", -0.25), ("  VALIDATION_SCORE: .5  ", 0.5),
    ("VALIDATION_SCORE: 1e-3", 1e-3), ("VALIDATION_SCORE: +2.5E2", 250.0), ("VALIDATION_SCORE: 3.", 3.0),
])
def test_score_formats(line, value):
    assert parse_validation_score(f"log\n{line}\n") == pytest.approx(value)


@pytest.mark.parametrize("out", [
    "", "no score here", "VALIDATION_SCORE: nan", "VALIDATION_SCORE: inf", "VALIDATION_SCORE: -inf",
    "VALIDATION_SCORE: 0.9 (fold 1)", "my VALIDATION_SCORE: 0.9", "VALIDATION_SCORE: tensor(0.9)",
    "validation_score: 0.9", "VALIDATION_SCORE: 0.9.1", "VALIDATION_SCORE:",
])
def test_no_score(out):
    assert parse_validation_score(out) is None


def test_nan_last_line_means_not_printed_even_after_a_finite_one():
    # the last line counts; a non-finite last value is "not printed", not a fallback to an earlier value
    assert parse_validation_score("VALIDATION_SCORE: 0.7\nVALIDATION_SCORE: nan") is None
    assert parse_validation_score("VALIDATION_SCORE: 0.7\nVALIDATION_SCORE: NaN\n") is None
    assert parse_validation_score("VALIDATION_SCORE: 0.7\nVALIDATION_SCORE: -Infinity") is None
    assert parse_validation_score("VALIDATION_SCORE: nan\nVALIDATION_SCORE: 0.7") == 0.7


def test_a_non_matching_later_line_does_not_hide_an_earlier_valid_one():
    out = "VALIDATION_SCORE: 0.7\nVALIDATION_SCORE: n/a\n"
    assert parse_validation_score(out) == 0.7


def test_huge_value_is_finite_but_overflow_is_not():
    assert parse_validation_score("VALIDATION_SCORE: 1e300") == 1e300
    assert parse_validation_score("VALIDATION_SCORE: 1e400") is None
    assert not math.isnan(parse_validation_score("VALIDATION_SCORE: 0") or 0.0)


# --- response_format = "edit": SEARCH/REPLACE blocks applied to the current solution -----------------------------

from acelib.agent.parse import EditBlock, EditError, apply_edits, parse_action, parse_edit  # noqa: E402

SCRIPT = """import pandas as pd
train = pd.read_csv("input/training.csv")
model = None
print("VALIDATION_SCORE:", 0.5)
model = None
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_edit_exact_match_inside_a_fence_keeps_the_plan():
    text = "The file is train.csv.\n\n```python\n" + block('train = pd.read_csv("input/training.csv")',
                                                         'train = pd.read_csv("input/train.csv")') + "```\n"
    p = parse_edit(text, SCRIPT)
    assert p.ok and p.plan == "The file is train.csv."
    assert p.code == SCRIPT.replace("training.csv", "train.csv")


def test_edit_without_a_fence_and_with_aider_marker_lengths():
    text = "Add os.\n<<<<< SEARCH\nimport pandas as pd\n=========\nimport os\nimport pandas as pd\n>>>>>>>>> REPLACE"
    p = parse_edit(text, SCRIPT)
    assert p.ok and p.code == "import os\n" + SCRIPT


def test_edit_tolerates_trailing_whitespace_and_blank_edge_lines_not_indentation():
    p = parse_edit(block("\nimport pandas as pd   \n", "import pandas as pd  # kept"), SCRIPT)
    assert p.ok and p.code.startswith("import pandas as pd  # kept\ntrain")
    p = parse_edit(block("    import pandas as pd", "x = 1"), SCRIPT)   # leading whitespace is Python syntax
    assert not p.ok and "not in the current solution" in p.error


def test_edit_ambiguous_match_asks_for_more_lines():
    p = parse_edit(block("model = None", "model = 1"), SCRIPT)
    assert not p.ok and "occur 2 times" in p.error and "block 1" in p.error
    p = parse_edit(block('print("VALIDATION_SCORE:", 0.5)\nmodel = None', "pass"), SCRIPT)  # unique with context
    assert p.ok and p.code.endswith("model = None\npass\n")


def test_edit_not_found_names_the_line_and_the_closest_one():
    p = parse_edit(block('train = pd.read_csv("input/train.csv")', "x = 1"), SCRIPT)
    assert not p.ok and p.code is None
    assert 'the closest line is `train = pd.read_csv("input/training.csv")`' in p.error


def test_several_blocks_apply_in_order_and_one_bad_block_fails_the_response():
    text = "Two fixes.\n" + block("import pandas as pd", "import os\nimport pandas as pd") + \
        block("import os", "import os  # for makedirs")
    p = parse_edit(text, SCRIPT)
    assert p.ok and p.code.startswith("import os  # for makedirs\nimport pandas as pd\n")
    p = parse_edit(text + block("no such line", "x"), SCRIPT)
    assert not p.ok and p.error.startswith("block 3:")


def test_a_block_plus_a_full_script_is_a_format_error():
    text = block("model = None\nprint", "x") + "\nOr the whole script:\n```python\nprint(1)\n```\n"
    p = parse_edit(text, SCRIPT)
    assert not p.ok and "separate code block" in p.error


@pytest.mark.parametrize("text, needle", [
    ("I would change the model.", "no SEARCH/REPLACE block"),
    ("Full script:\n```python\nprint(1)\n```", "no SEARCH/REPLACE block"),
    ("<<<<<<< SEARCH\nimport pandas as pd\n=======\nimport os\n", "not closed"),            # cut off
    ("<<<<<<< SEARCH\nimport pandas as pd\n>>>>>>> REPLACE\n", "without its SEARCH and ======="),
    ("=======\nx\n>>>>>>> REPLACE\n", "outside a block"),
    ("<<<<<<< SEARCH\na\n=======\nb\n=======\nc\n>>>>>>> REPLACE\n", "a second ======="),
    ("<<<<<<< SEARCH\na\n<<<<<<< SEARCH\n", "a new <<<<<<< SEARCH"),
    (block("", "import os"), "SEARCH part is empty"),
    ("<think>" + block("import pandas as pd", "import os"), "<think>"),
])
def test_edit_format_errors(text, needle):
    p = parse_edit(text, SCRIPT)
    assert not p.ok and p.code is None and needle in p.error


def test_edit_after_thinking_and_apply_edits_directly():
    p = parse_edit("<think>hmm</think>Fix.\n" + block("model = None\nprint", "x"), SCRIPT)
    assert not p.ok  # `print` alone is not a whole line of the script
    assert apply_edits("a\nb\n", [EditBlock("b", "c\nd")]) == "a\nc\nd\n"
    with pytest.raises(EditError, match="block 1"):
        apply_edits("a\n", [EditBlock("b", "c")])


def test_parse_action_picks_the_format_by_state():
    script = "Plan.\n```python\nprint(1)\n```"
    assert parse_action(script, "", "edit").code == "print(1)\n"            # a draft is a full script
    assert not parse_action(script, SCRIPT, "edit").ok                     # a debug/improve step edits
    assert parse_action(script, SCRIPT, "script").code == "print(1)\n"
    assert parse_action(block("model = None\nprint(\"VALIDATION_SCORE:\", 0.5)", "pass"), SCRIPT, "edit").ok
    with pytest.raises(ValueError, match="response_format"):
        parse_action(script, SCRIPT, "diff")
