"""The rollout-engine interface: chat prompts in, sampled token ids + behaviour log-probs out.

Never re-tokenise sampled text for training: the learner trains on `prompt_ids + token_ids` exactly as sampled,
and uses `logprobs` (the engine's log-probs of those tokens) as the behaviour policy for the TIS correction.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from acelib.config import option

Messages = list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}, ...]


@dataclasses.dataclass
class SamplingParams:
    temperature: float = option(1.0, "sampling temperature: samples come from softmax(logits / temperature), the "
                                      "density the engines' log-probs and the learner both use (0 = greedy)")
    top_p: float = option(1.0, "nucleus sampling mass; < 1 truncates the density (evaluation only: not trainable)")
    top_k: int = option(0, "sample among the k most likely tokens only (0 = off; > 0: evaluation only)")
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


def chat_prompt_ids(tokenizer, messages: Messages) -> list[int]:
    """The prompt token ids of one chat: the tokenizer's chat template with the assistant turn opened.

    Both backends tokenise here (vLLM receives token ids, never text), so `Sample.prompt_ids` is identical across
    backends and equals what the learner re-scores."""
    if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
        raise ValueError(f"a prompt must be a non-empty list of {{'role', 'content'}} dicts, got {messages!r}")
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def validate_request(prompts: list[Messages], sampling: SamplingParams, n: int) -> None:
    """Reject requests that would silently produce nothing (both backends call this)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    if sampling.max_new_tokens < 1:
        raise ValueError(f"SamplingParams.max_new_tokens must be ≥ 1, got {sampling.max_new_tokens}")
    if not 0.0 < sampling.top_p <= 1.0:
        raise ValueError(f"SamplingParams.top_p must lie in (0, 1], got {sampling.top_p}")
    if sampling.temperature < 0:
        raise ValueError(f"SamplingParams.temperature must be ≥ 0 (0 = greedy), got {sampling.temperature}")
    if sampling.top_k < 0:
        raise ValueError(f"SamplingParams.top_k must be ≥ 0 (0 = off), got {sampling.top_k}")


def check_trainable(sampling: SamplingParams) -> None:
    """Refuse sampling settings whose density the learner cannot reproduce (it scores softmax(logits / T) over the
    whole vocabulary): greedy decoding, nucleus (top_p < 1) and top-k truncation."""
    if sampling.temperature <= 0:
        raise ValueError("training needs temperature > 0: greedy samples have no density to train on")
    if sampling.top_p < 1.0 or sampling.top_k > 0:
        raise ValueError(f"training needs top_p = 1 and top_k = 0 (got top_p={sampling.top_p}, "
                         f"top_k={sampling.top_k}): the learner cannot reproduce a truncated sampling density, "
                         "so the policy gradient would be biased. Use them for evaluation only.")


def engine_dtype(requested: str, model_dir: str) -> str:
    """The concrete dtype name an engine runs in: `requested`, or for "auto" the checkpoint's own dtype.

    Resolved here rather than by the backends because vLLM's "auto" silently downcasts float32 checkpoints to
    bfloat16 (the tiny test model would then disagree with the fp32 learner by ~0.5 nats)."""
    if requested != "auto":
        return requested
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(model_dir)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return str(dtype).removeprefix("torch.")


def stop_token_ids(tokenizer, model_dir: str | Path) -> list[int]:
    """Token ids that end a response: the tokenizer's EOS plus generation_config.json's eos_token_id(s).

    Both backends stop on exactly this set (vLLM adds the same two sources on its own; passing them explicitly
    keeps the backends in step even if one of the sources changes)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    local = Path(model_dir).is_dir()
    if (Path(model_dir) / "generation_config.json").is_file() or not local:  # a hub id: its generation config
        from transformers import GenerationConfig
        eos = GenerationConfig.from_pretrained(str(model_dir)).eos_token_id
        ids |= {eos} if isinstance(eos, int) else set(eos or ())
    if not ids:
        raise ValueError(f"{model_dir}: neither the tokenizer nor generation_config.json names an EOS token")
    return sorted(ids)
