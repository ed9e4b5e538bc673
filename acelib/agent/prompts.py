"""Every prompt the agent sees, in one place.

Style follows AIDE / ML-Master (persona, task, memory, previous attempt, step-specific instructions, response
format, implementation rules), written in our own words and kept short for small models on CPU. The prompt is
built only from what the agent may see: the public data (`prepared/public/`, never `private/`), its own code and
output, the validator's verdict and its own printed validation score. `State.test_score` never reaches it.
"""
from __future__ import annotations

import functools
from pathlib import Path

from acelib.agent.config import AgentConfig, PromptConfig
from acelib.agent.state import State

# --- templates ------------------------------------------------------------------------------------------------

SYSTEM = (
    "You are an experienced machine learning engineer taking part in an offline Kaggle-style competition. "
    "You solve it by writing complete, self-contained Python scripts that are run for you; you then see their "
    "output and improve them step by step."
)

TASK = "# Competition: {name}\n\n{description}"

DATA = "# Data (read-only, in ./input/)\n\n{preview}"

MEMORY = "# Earlier attempts on this competition\n\n{memory}"

PREVIOUS = """# Current solution

{plan_line}```python
{code}
```

## Its output

```
{output}
```

Submission check: {validity}
Printed validation score: {score}"""

INSTRUCTIONS = {
    "draft": (
        "# Your task: write a first solution\n\n"
        "Write a simple but complete solution. Prefer a quick, robust baseline (sensible features and a "
        "standard model such as gradient boosting or a linear model). No ensembles, no hyper-parameter search, "
        "no exploratory analysis or plots. If earlier attempts are listed above, choose a different design."
    ),
    "debug": (
        "# Your task: fix the current solution\n\n"
        "The current solution failed: it crashed, ran out of time or memory, or did not produce a valid "
        "submission. Use the output and the submission check above to find the cause, fix it with the smallest "
        "change that works, and keep everything else."
    ),
    "improve": (
        "# Your task: improve the current solution\n\n"
        "The current solution produces a valid submission. Propose one specific change that should improve "
        "the validation score (a feature, a different model, a better hyper-parameter, ...) and implement it. "
        "Change only that one thing, so its effect can be measured; keep the submission valid."
    ),
}

RESPONSE_FORMAT = (
    "# Response format\n\n"
    "Reply with a short plan (3-5 sentences) followed by exactly one markdown code block that starts with "
    "```python and holds the complete script. Write no other code blocks and nothing after the block."
)

# agent.response_format = "edit": debug and improve steps change the current solution with SEARCH/REPLACE blocks
RESPONSE_FORMAT_EDIT = """# Response format

Reply with a short plan (1-3 sentences), then one or more SEARCH/REPLACE blocks that edit the current solution. \
For example, to add a missing import:

<<<<<<< SEARCH
import pandas as pd
=======
import os
import pandas as pd
>>>>>>> REPLACE

The SEARCH part copies lines of the current solution exactly, enough of them to match one place only; the \
REPLACE part holds the new lines. Blocks are applied in order. Do not repeat the whole script."""

RULES = """# Rules for the script

- The working directory is a fresh workspace. The competition data is in `./input/` (read-only); nothing else \
of the competition is available.
- Write predictions for every test example to `./submission/submission.csv`, in the format of \
`./input/sample_submission.csv` (same columns, one row per test id). Create the `./submission/` folder if needed.
- Use `./working/` for any scratch files.
- Hold out part of the training data, compute the competition metric ({metric}, {direction} is better) on it \
and print it on its own line as `VALIDATION_SCORE: <float>` (the last such line counts).
- One self-contained script; no internet; it must finish within {time_limit}.{packages}"""

PACKAGES = " Available: numpy, pandas, scikit-learn, scipy."

NO_OUTPUT = "(no output)"

VALID_MESSAGE = "Submission is valid."
NO_SUBMISSION_MESSAGE = "No submission: the script did not write ./submission/submission.csv."
FAILED_RUN_MESSAGE = "No submission: the run did not finish successfully ({status}), so its files were discarded."


def invalid_message(reason: str) -> str:
    """The validator's verdict on a rejected submission (reason = the grader's message, no score)."""
    return f"Submission is invalid: {reason}" if reason else "Submission is invalid."


# --- truncation -----------------------------------------------------------------------------------------------

def truncate_head(text: str, max_chars: int) -> str:
    """Keep the start (descriptions: the task statement comes first)."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rstrip() + f"\n[... {len(text) - max_chars} characters cut ...]"


def truncate_middle(text: str, max_chars: int) -> str:
    """Keep the start and the end (outputs: setup lines first, the traceback last; AIDE keeps both halves)."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + f"\n[... {len(text) - 2 * half} characters cut ...]\n" + text[len(text) - half:]


def truncate_tail_lines(lines: list[str], max_chars: int) -> list[str]:
    """The most recent lines that fit in max_chars (memory: recent attempts matter most)."""
    kept: list[str] = []
    total = 0
    for line in reversed(lines):
        total += len(line) + 1
        if total > max_chars:
            break
        kept.append(line)
    return kept[::-1]


# --- data preview ---------------------------------------------------------------------------------------------

_MAX_LISTED = 20       # files listed before folders are summarised as counts
_LINE_CHARS = 300      # a preview row longer than this is cut (wide tables)


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def _head_lines(path: Path, rows: int) -> tuple[list[str], int | None]:
    """First `rows`+1 lines (header + rows), and the number of data rows when the file is small enough to count."""
    with path.open(errors="replace") as f:
        head = [line.rstrip("\n")[:_LINE_CHARS] for _, line in zip(range(rows + 1), f)]
    n = None
    if path.stat().st_size <= 50 * 2**20:  # counting a multi-GB csv would stall prompt building
        with path.open("rb") as f:
            n = max(sum(1 for _ in f) - 1, 0)
    return head, n


@functools.lru_cache(maxsize=256)
def _preview(public_dir: str, rows: int, max_chars: int) -> str:
    root = Path(public_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"public data folder {root} does not exist; prepare the competition first "
                                "(acelib.tasks.suites.prepare_competition)")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    lines = ["Files:"]
    top_files = [p for p in files if p.parent == root]
    for p in top_files[:_MAX_LISTED]:
        lines.append(f"- {p.name} ({_human_size(p.stat().st_size)})")
    folders: dict[str, list[Path]] = {}
    for p in files:
        if p.parent != root:
            folders.setdefault(p.relative_to(root).parts[0], []).append(p)
    for name, members in sorted(folders.items()):
        exts = sorted({m.suffix or "(no ext)" for m in members})
        lines.append(f"- {name}/ ({len(members)} files: {', '.join(exts[:5])})")
    if len(top_files) > _MAX_LISTED:
        lines.append(f"- ... and {len(top_files) - _MAX_LISTED} more files")
    # The training table shows the features and target; the sample submission shows the exact output format.
    train = root / "train.csv"
    if not train.is_file():
        train = next((p for p in top_files if p.suffix == ".csv" and "train" in p.name), None)
    heads = []
    for path, n_rows in ((train, rows), (root / "sample_submission.csv", 2)):
        if path is None or not path.is_file():
            heads.append("")
            continue
        head, count = _head_lines(path, n_rows)
        size = f", {count} rows" if count is not None else ""
        heads.append("\n".join([f"\n{path.name} (first {len(head) - 1} rows{size}):", *head]))
    # The output format matters most, so the train head is what a tight budget cuts; the file list and the sample
    # submission only when even they do not fit.
    listing, train_head, sample_head = "\n".join(lines), heads[0], heads[1]
    room = max_chars - len(listing) - len(sample_head) - 1
    if train_head and room < len(train_head):
        train_head = truncate_head(train_head, max(room - 40, 0)) if room > 80 else ""
    return truncate_head("\n".join(part for part in (listing, train_head, sample_head) if part), max_chars)


def data_preview(competition, config: PromptConfig | None = None) -> str:
    """File list of `prepared/public/` plus the head of train.csv and sample_submission.csv (public data only)."""
    config = config or PromptConfig()
    return _preview(str(competition.public_dir), config.preview_rows, config.chars(config.preview_tokens))


# --- prompt ---------------------------------------------------------------------------------------------------

def _time_limit(seconds: float | None) -> str:
    if seconds is None:
        return "a few minutes"
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def rules(competition, time_limit_s: float | None = None, packages: str = PACKAGES) -> str:
    return RULES.format(metric=competition.metric,
                        direction="lower" if competition.is_lower_better else "higher",
                        time_limit=_time_limit(time_limit_s), packages=packages)


def format_section(step_type: str, response_format: str = "script") -> str:
    """The response-format section: a full script, or SEARCH/REPLACE edits (`response_format="edit"`, except for
    drafts: they have nothing to edit)."""
    return RESPONSE_FORMAT_EDIT if response_format == "edit" and step_type != "draft" else RESPONSE_FORMAT


def build_messages(state: State, competition, config: PromptConfig | None = None,
                   time_limit_s: float | None = None, response_format: str = "script") -> list[dict]:
    """The chat messages for expanding `state` (its step type picks the instructions).

    Uses only agent-visible fields of `state`; `time_limit_s` is stated in the rules so the agent can size its
    model to the sandbox timeout; `response_format` is `AgentConfig.response_format`.
    """
    config = config or PromptConfig()
    if state.competition_id != competition.id:
        raise ValueError(f"state is for {state.competition_id!r} but the competition is {competition.id!r}")
    parts = [
        TASK.format(name=competition.name or competition.id,
                    description=truncate_head(competition.description.strip(),
                                              config.chars(config.description_tokens))),
        DATA.format(preview=data_preview(competition, config)),
    ]
    memory = truncate_tail_lines([f"- {m}" for m in state.memory], config.chars(config.memory_tokens))
    if memory:
        parts.append(MEMORY.format(memory="\n".join(memory)))
    step_type = state.step_type
    if step_type != "draft":
        plan = state.plan.strip()
        parts.append(PREVIOUS.format(
            plan_line=f"Plan: {truncate_head(plan, 600)}\n\n" if plan else "",
            code=truncate_middle(state.code.rstrip(), config.chars(config.code_tokens)),
            output=truncate_middle(state.output.strip(), config.chars(config.output_tokens)) or NO_OUTPUT,
            validity=state.validity_message or "(not checked)",
            score="none" if state.score is None else f"{state.score:.6g}",
        ))
    parts += [INSTRUCTIONS[step_type], format_section(step_type, response_format),
              rules(competition, time_limit_s)]
    user = "\n\n".join(parts)
    if config.system_prompt:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    return [{"role": "user", "content": SYSTEM + "\n\n" + user}]


def agent_messages(state: State, competition, agent: AgentConfig, sandbox_timeout_s: float) -> list[dict]:
    """`build_messages` as the agent configured by `agent` is prompted: its prompt budgets, its response format and
    the time limit it is told (`AgentConfig.prompt_time_limit_s`). Rollouts, the probe, the probe cache's key, the
    warm start's examples and `acelib.eval` all build prompts here, so what is trained on, measured and cached
    cannot drift apart (eval once prompted for full scripts while parsing SEARCH/REPLACE edits)."""
    return build_messages(state, competition, agent.prompt, time_limit_s=agent.prompt_time_limit_s(sandbox_timeout_s),
                          response_format=agent.response_format)


# --- memory ---------------------------------------------------------------------------------------------------

def attempt_summary(state: State, max_chars: int = 200) -> str:
    """One memory line for an executed attempt: its plan's first sentence and its agent-visible outcome.

    Built from agent-visible fields only (plan, status, validity, printed validation score), never test_score.
    """
    plan = " ".join(state.plan.split())
    first = plan.split(". ")[0].rstrip(".") if plan else "(no plan)"
    if state.exec_status == "format_error":
        # the parser's reason (no code block, an edit that does not apply, ...) tells the next attempt what to fix
        outcome = "format error: " + state.output.removeprefix("Format error: ")[:120]
    elif state.valid:
        outcome = "valid submission, validation score " + ("not printed" if state.score is None
                                                            else f"{state.score:.6g}")
    elif state.exec_status not in ("ok", ""):
        last = next((ln.strip() for ln in reversed(state.output.splitlines()) if ln.strip()), "")
        outcome = f"run {state.exec_status}" + (f": {last[:100]}" if last else "")
    else:
        outcome = state.validity_message or "no valid submission"
    return truncate_head(f"[{state.origin_step or 'attempt'}] {first} -> {outcome}", max_chars)
