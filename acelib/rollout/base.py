"""The rollout-engine interface: chat prompts in, sampled token ids + behaviour log-probs out.

Never re-tokenise sampled text for training: the learner trains on `prompt_ids + token_ids` exactly as sampled,
and uses `logprobs` (the engine's log-probs of those tokens) as the behaviour policy for the TIS correction.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

from acelib.config import option

Messages = list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclasses.dataclass
class SamplingParams:
    temperature: float = option(1.0, "sampling temperature (1.0 = the policy's own distribution, as GRPO assumes)")
    top_p: float = option(1.0, "nucleus sampling mass; <1 makes behaviour log-probs differ from the policy's")
    max_new_tokens: int = option(512, "maximum tokens per response")
    seed: int | None = option(None, "sampling seed (None = nondeterministic)")


@dataclasses.dataclass
class Sample:
    prompt_ids: list[int]          # the prompt exactly as the engine tokenised it (chat template applied)
    token_ids: list[int]           # sampled tokens (EOS included when generation stopped on it)
    logprobs: list[float]          # log π_behaviour(token_ids[t] | prefix), one per sampled token
    text: str                      # decoded response (for parsing the action only)
    policy_version: int            # learner version whose weights generated it
    finish_reason: str = "stop"    # "stop" | "length"


class Engine(Protocol):
    """What the agent, the evaluator and the trainer need from a generation backend."""

    policy_version: int

    def generate(self, prompts: list[Messages], sampling: SamplingParams, n: int = 1) -> list[list[Sample]]:
        """n samples for each prompt; result[i][j] is sample j of prompt i."""
        ...

    def sync_weights(self, weights_dir: str, version: int) -> None:
        """Load new policy weights (a safetensors directory written by the learner) without restarting."""
        ...

    def close(self) -> None:
        ...
