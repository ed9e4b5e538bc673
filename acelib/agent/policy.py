"""Policies: batched `prompts → responses` callables used by the evaluator and the rollout workers.

`Policy.__call__(prompts, n=1, contexts=None) -> list[list[Response]]`: `result[i][j]` is sample j for prompt i.
`contexts` (optional, one per prompt) tells replaying policies which state/step a prompt belongs to; generative
policies ignore it, because everything a model may see is in the prompt itself.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from acelib.agent.state import State

if TYPE_CHECKING:  # the engine interface lives with the rollout code; importing it here is only for types
    from acelib.rollout.base import Engine, Messages, Sample, SamplingParams


@dataclasses.dataclass(frozen=True)
class Response:
    """One sampled action. `sample` carries token ids / behaviour log-probs / policy version for training."""

    text: str
    sample: "Sample | None" = None

    @property
    def policy_version(self) -> int:
        return self.sample.policy_version if self.sample is not None else 0


@dataclasses.dataclass(frozen=True)
class PromptContext:
    """Where a prompt comes from: the state being expanded and, in an evaluation episode, the step index."""

    state: State
    step: int = 0          # 0-based index of this step within its episode (0 for a single training step)
    episode: str = ""      # episode key, e.g. "<competition>/seed<k>"


class Policy(Protocol):
    def __call__(self, prompts: "list[Messages]", n: int = 1,
                 contexts: Sequence[PromptContext] | None = None) -> list[list[Response]]:
        ...


def fenced(code: str, plan: str = "Scripted solution.") -> str:
    """A well-formed response around `code` (plan + one ```python block)."""
    return f"{plan}\n\n```python\n{code.rstrip()}\n```\n"


class ScriptedPolicy:
    """Replays fixed responses: a real policy for tests, demos and seeding the buffer with known solutions.

    script:
    - a mapping competition_id → list of responses: the response for episode step k is `script[cid][k]`
      (the last one repeats once the list runs out), so a list reads as "what the agent writes at step 1, 2, …";
    - or a function `State -> str` (called with the state being expanded).
    A plain code string (no ``` fence) is wrapped with `fenced`; pass `wrap=False` to replay texts verbatim
    (e.g. to test format errors). All n samples of a prompt are the same text.
    """

    def __init__(self, script: Mapping[str, Sequence[str]] | Callable[[State], str], wrap: bool = True):
        if isinstance(script, Mapping):
            empty = [cid for cid, items in script.items() if isinstance(items, str) or not items]
            if empty:
                raise ValueError(f"ScriptedPolicy: script[{empty[0]!r}] must be a non-empty list of responses")
        elif not callable(script):
            raise TypeError("ScriptedPolicy needs a mapping competition_id -> [responses] or a function State -> str")
        self.script = script
        self.wrap = wrap

    def _text(self, ctx: PromptContext) -> str:
        if callable(self.script) and not isinstance(self.script, Mapping):
            text = self.script(ctx.state)
        else:
            cid = ctx.state.competition_id
            if cid not in self.script:
                raise KeyError(f"ScriptedPolicy has no responses for competition {cid!r}; "
                               f"scripted: {sorted(self.script)}")
            items = self.script[cid]
            text = items[min(ctx.step, len(items) - 1)]
        if self.wrap and "```" not in text:
            text = fenced(text)
        return text

    def __call__(self, prompts: "list[Messages]", n: int = 1,
                 contexts: Sequence[PromptContext] | None = None) -> list[list[Response]]:
        if contexts is None or len(contexts) != len(prompts):
            raise ValueError("ScriptedPolicy needs one PromptContext per prompt (contexts=...) to know which "
                             "state it is answering")
        return [[Response(self._text(ctx))] * n for ctx in contexts]


class EnginePolicy:
    """Adapter from a rollout `Engine` (transformers / vLLM) to the Policy interface."""

    def __init__(self, engine: "Engine", sampling: "SamplingParams"):
        self.engine = engine
        self.sampling = sampling

    @property
    def policy_version(self) -> int:
        return self.engine.policy_version

    def __call__(self, prompts: "list[Messages]", n: int = 1,
                 contexts: Sequence[PromptContext] | None = None) -> list[list[Response]]:
        samples = self.engine.generate(prompts, self.sampling, n=n)
        if len(samples) != len(prompts) or any(len(s) != n for s in samples):
            raise RuntimeError(f"engine returned {[len(s) for s in samples]} samples for {len(prompts)} prompts "
                               f"x n={n}")
        return [[Response(s.text, s) for s in group] for group in samples]
