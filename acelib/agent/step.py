"""One agent step: parse the response → run its code in the sandbox → grade the submission → reward → child state.

What the agent sees of a step (in its child state): its plan and code, the sandbox output (truncated), the
validator's verdict ("Submission is valid." or the grader's reason, never a score) and the validation score its
own program printed. The grader's test score goes to `State.test_score` and `StepResult.info` only, for the
reward and the evaluator.

A submission counts only if the run finished with status "ok": like aira-dojo we discard files of a run that
crashed or timed out, so "valid" always means "a script that works end to end".
"""
from __future__ import annotations

import dataclasses
import tempfile
import traceback
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from acelib.agent import prompts
from acelib.agent.config import AgentConfig
from acelib.agent.parse import ParsedAction, parse_action, parse_validation_score
from acelib.agent.policy import Response
from acelib.agent.reward import step_reward
from acelib.agent.state import State
from acelib.sandbox import executor_lost


@dataclasses.dataclass
class StepResult:
    child: State               # the state after the action (a new node; a draft-type state on format error)
    reward: float              # bounded step reward (docs/reward.md); 0.0 when masked
    masked: bool = False       # True for sandbox infra errors: not the policy's fault, leave out of training
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # outcome, report (hidden!), timings, ...


def _as_text(response: str | Response) -> tuple[str, int | None]:
    if isinstance(response, Response):
        return response.text, (response.sample.policy_version if response.sample is not None else None)
    return response, None


def grade_submission(competition, submission: bytes) -> dict:
    """Grade submission bytes with the real grader (written to a temporary csv, removed afterwards)."""
    from acelib.tasks import grade  # lazy: the grader pulls in pandas/sklearn metrics

    with tempfile.TemporaryDirectory(prefix="acelib-grade-") as tmp:
        path = Path(tmp) / "submission.csv"
        path.write_bytes(submission)
        return grade(competition, path)


def _child_memory(state: State, config: AgentConfig) -> tuple[str, ...]:
    """The parent's memory plus a summary of the parent's own attempt (if it ran), most recent last."""
    if config.memory_size == 0:
        return ()
    memory = state.memory
    if state.code.strip() or state.exec_status:
        memory = memory + (prompts.attempt_summary(state),)
    return memory[-config.memory_size:]


def finish_step(state: State, parsed: ParsedAction, result, competition, config: AgentConfig,
                policy_version: int | None = None) -> StepResult:
    """Everything after the sandbox run (`result` is an ExecResult, or None for a format error)."""
    base = dict(competition_id=state.competition_id, plan=parsed.plan, memory=_child_memory(state, config),
                parent_id=state.id, origin_step=state.step_type, depth=state.depth + 1,
                policy_version=state.policy_version if policy_version is None else policy_version)
    info: dict[str, Any] = {"step_type": state.step_type, "format_error": parsed.error}
    if not parsed.ok:
        child = State(code="", output=f"Format error: {parsed.error}", exec_status="format_error",
                      validity_message=prompts.NO_SUBMISSION_MESSAGE, **base)
        rb = step_reward(format_error=True, exec_status="", submitted=False, valid=False, child_score=None,
                         parent_score=None, report=None, config=config.reward)
        info.update(outcome=rb.outcome, exec_status="format_error", duration_s=0.0, validation_score=None,
                    test_score=None, report=None, quality=0.0, improvement=0.0)
        return StepResult(child, rb.reward, rb.masked, info)

    submitted = result.status == "ok" and result.submission is not None
    report = grade_submission(competition, result.submission) if submitted else None
    valid = bool(report and report["valid_submission"])
    if submitted:
        message = prompts.VALID_MESSAGE if valid else prompts.invalid_message(str(report.get("reason") or ""))
    elif result.status == "ok":
        message = prompts.NO_SUBMISSION_MESSAGE
    else:
        message = prompts.FAILED_RUN_MESSAGE.format(status=result.status)
    val_score = parse_validation_score(result.stdout)
    test_score = report["score"] if valid else None
    child = State(code=parsed.code, output=result.output_for_agent(config.prompt.chars(config.prompt.output_tokens)),
                  exec_status=result.status, valid=valid, validity_message=message, score=val_score,
                  test_score=test_score, **base)
    if config.reward.score_source == "test":
        child_score, parent_score = test_score, (state.test_score if state.valid else None)
    else:
        child_score, parent_score = val_score, (state.score if state.valid else None)
    rb = step_reward(format_error=False, exec_status=result.status, submitted=submitted, valid=valid,
                     child_score=child_score, parent_score=parent_score, report=report, config=config.reward)
    info.update(outcome=rb.outcome, exec_status=result.status, duration_s=result.duration_s,
                validation_score=val_score, test_score=test_score, report=report, quality=rb.quality,
                improvement=rb.improvement)
    return StepResult(child, rb.reward, rb.masked, info)


def step(state: State, response: str | Response, competition, sandbox=None,
         config: AgentConfig | None = None, limits=None) -> StepResult:
    """One step from `state` with the agent's `response` on `competition`.

    sandbox: a `SandboxPool` to run on, or None to run in-process via `acelib.sandbox.run`.
    limits: sandbox `Limits` for this run (None = the sandbox's / pool's defaults).
    """
    return step_batch([state], [response], competition, sandbox, config, limits)[0]


def step_batch(states: Sequence[State], responses: Sequence[str | Response], competitions,
               sandbox=None, config: AgentConfig | None = None, limits=None) -> list[StepResult]:
    """Many steps at once: all code runs go to the sandbox pool concurrently, then each is graded.

    competitions: one Competition for all states, or a sequence aligned with `states`.
    sandbox: a `SandboxPool` (runs concurrently) or None (runs one after another with `acelib.sandbox.run`).
    """
    config = config or AgentConfig()
    if len(states) != len(responses):
        raise ValueError(f"{len(states)} states but {len(responses)} responses")
    comps = list(competitions) if isinstance(competitions, Sequence) else [competitions] * len(states)
    if len(comps) != len(states):
        raise ValueError(f"{len(states)} states but {len(comps)} competitions")
    texts = [_as_text(r) for r in responses]
    parsed = [parse_action(t, s.code, config.response_format) for s, (t, _) in zip(states, texts)]
    runs: list[Future | None] = []
    for p, comp in zip(parsed, comps):
        runs.append(sandbox.submit(p.code, comp, limits) if (p.ok and sandbox is not None) else None)
    results = []
    for s, p, comp, fut, (_, version) in zip(states, parsed, comps, runs, texts):
        # A fault in one step (the sandbox harness, the grader, the reward raising) is that step's problem: it is
        # masked as an infrastructure error with its traceback, and the other steps of the batch keep theirs.
        try:
            if not p.ok:
                res = None
            elif fut is not None:
                res = fut.result()
            else:
                from acelib.sandbox import run  # lazy: only the single-process path needs it
                res = run(p.code, comp, limits)
            results.append(finish_step(s, p, res, comp, config, version))
        except Exception as e:
            results.append(_faulted(s, p, traceback.format_exc(), version, executor_lost=executor_lost(e)))
    return results


def _faulted(state: State, parsed: ParsedAction, error: str, policy_version: int | None,
            executor_lost: bool = False) -> StepResult:
    """The masked result of a step whose execution or grading raised (not the policy's fault); `executor_lost`:
    the program died with its executor (info["executor_lost"], so the caller can run the task again)."""
    child = State(competition_id=state.competition_id, code=parsed.code, plan=parsed.plan, exec_status="infra_error",
                  output="(the harness failed on this step; it is not counted)", parent_id=state.id,
                  origin_step=state.step_type, depth=state.depth + 1,
                  policy_version=state.policy_version if policy_version is None else policy_version)
    return StepResult(child, 0.0, True, {"outcome": "infra_error", "exec_status": "infra_error",
                                         "step_type": state.step_type, "error": error, "duration_s": 0.0,
                                         "executor_lost": executor_lost})
