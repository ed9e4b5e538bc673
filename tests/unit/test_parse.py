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
