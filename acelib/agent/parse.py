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

With `agent.response_format = "edit"`, debug and improve responses are Aider-style SEARCH/REPLACE blocks applied to
the current solution (`parse_edit`, `apply_edits`; drafts always need a full script, `parse_action` picks):

    <<<<<<< SEARCH
    exact lines of the current script
    =======
    replacement lines
    >>>>>>> REPLACE

- Markers are Aider's: 5-9 `<`, `=` or `>` at the start of a line; blocks may sit inside a ``` fence or not.
- Blocks apply in order, each to the result of the previous one. A SEARCH part matches a run of whole lines of
  the script, compared without trailing whitespace (leading whitespace must match: it is Python's syntax);
  blank lines at its edges are ignored. It must match exactly one place.
- Format errors (the message says which block and why): no block; an empty SEARCH part; SEARCH text not found
  (with the closest line of the script as a hint); SEARCH text found more than once; a block left open or a
  stray marker; blocks plus a separate code block holding a script (which one is meant?).
"""
from __future__ import annotations

import dataclasses
import difflib
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


def _strip_think(text: str) -> str | None:
    """The answer part of a response: reasoning removed; None when the response ended inside <think>."""
    text = _THINK.sub("", text)
    if "<think>" in text:
        return None
    if "</think>" in text:  # the opener was part of the prompt
        text = text[text.rindex("</think>") + len("</think>"):]
    return text


_UNFINISHED_THINK = "the response ended inside <think>…</think> (no answer)"


def parse_response(text: str) -> ParsedAction:
    """Split a response into (plan, code); a response that breaks the format gets `error` and no code."""
    text = _strip_think(text)
    if text is None:
        return ParsedAction(plan="", code=None, error=_UNFINISHED_THINK)
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


RESPONSE_FORMATS = ("script", "edit")

_SEARCH = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={5,9}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_EDIT_HELP = "write <<<<<<< SEARCH, the lines to change, =======, the new lines, >>>>>>> REPLACE"


@dataclasses.dataclass(frozen=True)
class EditBlock:
    search: str     # lines of the current script to replace
    replace: str    # their replacement


class EditError(ValueError):
    """A SEARCH/REPLACE block that cannot be read or applied; the message is shown to the agent."""


def _edit_blocks(text: str) -> list[EditBlock]:
    """The SEARCH/REPLACE blocks of a response, in order."""
    blocks: list[EditBlock] = []
    part: list[str] | None = None   # the lines of the part being read
    search: list[str] | None = None
    for line in text.splitlines():
        n = len(blocks) + 1
        if _SEARCH.match(line):
            if part is not None:
                raise EditError(f"block {n}: a new <<<<<<< SEARCH before the >>>>>>> REPLACE that ends the block")
            part = []
        elif _DIVIDER.match(line):
            if part is None:
                raise EditError(f"a ======= line outside a block (before block {n}): {_EDIT_HELP}")
            if search is not None:
                raise EditError(f"block {n}: a second ======= line; {_EDIT_HELP}")
            search, part = part, []
        elif _REPLACE.match(line):
            if part is None or search is None:
                raise EditError(f"a >>>>>>> REPLACE line without its SEARCH and ======= lines (block {n}): "
                                f"{_EDIT_HELP}")
            blocks.append(EditBlock("\n".join(search), "\n".join(part)))
            part = search = None
        elif part is not None:
            part.append(line)
    if part is not None:
        raise EditError(f"block {len(blocks) + 1} is not closed with >>>>>>> REPLACE (was the response cut?)")
    return blocks


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def apply_edits(code: str, blocks: list[EditBlock]) -> str:
    """`code` with each block's SEARCH lines replaced by its REPLACE lines, in order; raises EditError (the message
    says which block and why) when a SEARCH part is empty, not found or found more than once."""
    lines = code.splitlines()
    for n, block in enumerate(blocks, 1):
        search = [s.rstrip() for s in _trim_blank(block.search.splitlines())]
        if not search:
            raise EditError(f"block {n}: the SEARCH part is empty; copy the lines to change from the current "
                            "solution")
        bare = [s.rstrip() for s in lines]
        hits = [p for p in range(len(lines) - len(search) + 1) if bare[p:p + len(search)] == search]
        if len(hits) > 1:
            raise EditError(f"block {n}: the SEARCH lines occur {len(hits)} times in the current solution; add "
                            "neighbouring lines so that they match one place")
        if not hits:
            missing = next((s for s in search if s not in bare), search[0])
            close = difflib.get_close_matches(missing, bare, n=1, cutoff=0.6)
            hint = f"; the closest line is `{close[0].strip()}`" if close else ""
            raise EditError(f"block {n}: the SEARCH lines are not in the current solution (`{missing.strip()}` "
                            f"is not there{hint}); copy them exactly")
        p = hits[0]
        lines = lines[:p] + block.replace.splitlines() + lines[p + len(search):]
    return "\n".join(lines) + "\n"


def parse_edit(text: str, code: str) -> ParsedAction:
    """Apply a response's SEARCH/REPLACE blocks to `code` (the current solution): (plan, edited code), or a format
    error that says why the edit does not apply."""
    text = _strip_think(text)
    if text is None:
        return ParsedAction(plan="", code=None, error=_UNFINISHED_THINK)
    lines = text.splitlines()
    first = next((k for k, line in enumerate(lines) if _SEARCH.match(line)), len(lines))
    # the plan is the text before the first block, without a fence opened right before it
    plan = re.sub(r"(^|\n) {0,3}`{3,}[^`\n]*\s*$", "", "\n".join(lines[:first])).strip()
    try:
        blocks = _edit_blocks(text)
        if not blocks:
            raise EditError(f"no SEARCH/REPLACE block: {_EDIT_HELP} (only a first solution is a full script)")
        fences, _ = _fenced_blocks(text)
        if any(not any(_SEARCH.match(line) for line in body.splitlines()) for _, _, body in fences):
            raise EditError("SEARCH/REPLACE blocks and a separate code block: reply with the blocks only")
        return ParsedAction(plan, apply_edits(code, blocks))
    except EditError as e:  # the edit does not apply: a format error whose message the agent sees
        return ParsedAction(plan, None, str(e))


def parse_action(text: str, code: str, response_format: str = "script") -> ParsedAction:
    """Parse a response to a state whose current solution is `code` ("" for a draft): a full script, or with
    `response_format="edit"` SEARCH/REPLACE blocks applied to `code` (a draft always needs a full script)."""
    if response_format not in RESPONSE_FORMATS:
        raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, got {response_format!r}")
    if response_format == "edit" and code.strip():
        return parse_edit(text, code)
    return parse_response(text)


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
