"""Deterministic parsing of the agent's action and of its printed validation score.

An action is one LLM response: a short natural-language plan followed by exactly one fenced Python code block
(the AIDE / ML-Master response format). Unlike AIDE we never fall back to "the whole text is code", never join
several blocks and never ask a second LLM: for RL the parse must be a pure function of the text, so the format
reward cannot be gamed and two identical responses always get the same reward.

Rules (`parse_response`):
- `<think>…</think>` reasoning (Qwen3 / DeepSeek style) is removed first; code drafted while thinking is not the
  answer. A `</think>` without its opener (chat templates that put `<think>` into the prompt) ends the reasoning:
  everything up to it is dropped. An unclosed `<think>` means the answer never started → format error.
- A fence is a line of 3+ backticks (up to 3 spaces indent) with an optional info string; the block ends at the
  next line of at least as many backticks with nothing else on it (CommonMark).
- Exactly one block is allowed. Its tag must be empty, `python`, `py` or `python3` (any case). Zero blocks,
  two or more blocks, an unterminated block (e.g. the response was cut at `max_new_tokens`), a non-Python tag
  or an empty block are format errors, each with its own message.
- The plan is the text before the block, stripped. Text after the block is ignored.
- Syntax errors are *not* format errors: the code runs and the agent sees Python's traceback, which is the
  signal a debug step needs.
"""
from __future__ import annotations

import dataclasses
import math
import re

PYTHON_TAGS = frozenset({"", "python", "py", "python3"})

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_OPEN = re.compile(r"^ {0,3}(`{3,})\s*([^`\s]*)[^`]*$")
# nan/inf are score lines too (Python and numpy print them so): a run whose last score is nan has no score,
# it must not fall back to an earlier finite line.
_SCORE = re.compile(
    r"^[ \t]*VALIDATION_SCORE:[ \t]*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf(?:inity)?))"
    r"[ \t]*$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class ParsedAction:
    """The parsed response: `code is None` exactly when `error` is set (a format error)."""

    plan: str
    code: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fenced_blocks(text: str) -> tuple[list[tuple[int, str, str]], bool]:
    """[(start_char, tag, body)] of the fenced blocks, and whether a block was left open at the end."""
    blocks: list[tuple[int, str, str]] = []
    lines = text.splitlines(keepends=True)
    pos = 0
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i].rstrip("\r\n"))
        if not m:
            pos += len(lines[i])
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        close = re.compile(r"^ {0,3}`{%d,}\s*$" % len(fence))
        start = pos
        body: list[str] = []
        pos += len(lines[i])
        i += 1
        while i < len(lines) and not close.match(lines[i].rstrip("\r\n")):
            body.append(lines[i])
            pos += len(lines[i])
            i += 1
        if i == len(lines):
            return blocks, True
        pos += len(lines[i])
        i += 1
        blocks.append((start, tag, "".join(body)))
    return blocks, False


def parse_response(text: str) -> ParsedAction:
    """Split a response into (plan, code); a response that breaks the format gets `error` and no code."""
    text = _THINK.sub("", text)
    if "<think>" in text:
        return ParsedAction(plan="", code=None, error="the response ended inside <think>…</think> (no answer)")
    if "</think>" in text:  # the opener was part of the prompt
        text = text[text.rindex("</think>") + len("</think>"):]
    blocks, unterminated = _fenced_blocks(text)
    plan = text[: blocks[0][0]].strip() if blocks else ""
    if unterminated:
        return ParsedAction(plan, None, "a code block was opened with ``` but never closed")
    if not blocks:
        return ParsedAction(text.strip(), None, "no fenced code block: reply with a plan and one ```python block")
    if len(blocks) > 1:
        return ParsedAction(plan, None, f"{len(blocks)} code blocks: reply with exactly one ```python block")
    _, tag, body = blocks[0]
    if tag not in PYTHON_TAGS:
        return ParsedAction(plan, None, f"the code block is tagged {tag!r}; it must be Python (```python)")
    if not body.strip():
        return ParsedAction(plan, None, "the code block is empty")
    return ParsedAction(plan, body)


def parse_validation_score(stdout: str) -> float | None:
    """The float on the last `VALIDATION_SCORE: <float>` line (the agent program contract), or None.

    The line must hold nothing else, so a log line that merely mentions the key does not count; a non-finite
    value (nan, inf) is treated as not printed.
    """
    matches = _SCORE.findall(stdout)
    if not matches:
        return None
    value = float(matches[-1])
    return value if math.isfinite(value) else None
