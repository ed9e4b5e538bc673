"""Configs of the agent scaffold (prompt budgets, memory, reward). No torch, no sandbox imports."""
from __future__ import annotations

import dataclasses

from acelib.agent.reward import RewardConfig
from acelib.config import ConfigError, option


@dataclasses.dataclass
class PromptConfig:
    """Token budgets of the prompt's variable parts. Small models on CPU need compact prompts, so every part that
    can grow (description, data preview, code, output, memory) is truncated to its own budget."""

    description_tokens: int = option(600, "budget for the competition description (head kept)")
    preview_tokens: int = option(400, "budget for the data preview (file list + head of train/sample csv)")
    code_tokens: int = option(2000, "budget for the previous solution's code (middle cut if longer)")
    output_tokens: int = option(400, "budget for the previous run's output (middle cut: the traceback is at "
                                     "the end, the setup at the start)")
    memory_tokens: int = option(200, "budget for the memory of earlier attempts (most recent kept)")
    chars_per_token: float = option(4.0, "characters per token used to turn budgets into characters (a "
                                         "tokenizer-free estimate, ~4 for English/code with BPE tokenizers)")
    preview_rows: int = option(5, "data rows of train.csv shown in the preview")
    system_prompt: bool = option(True, "send the persona as a system message (False: prepend it to the user "
                                       "message, for chat templates without a system role)")

    def validate(self) -> None:
        for f in ("description_tokens", "preview_tokens", "code_tokens", "output_tokens", "memory_tokens"):
            if getattr(self, f) < 0:
                raise ConfigError(f"prompt.{f} must be >= 0")
        if self.chars_per_token <= 0:
            raise ConfigError("prompt.chars_per_token must be > 0")

    def chars(self, tokens: int) -> int:
        return int(tokens * self.chars_per_token)


@dataclasses.dataclass
class AgentConfig:
    """Everything `acelib.agent.step` needs besides the sandbox limits (those belong to the sandbox)."""

    prompt: PromptConfig = option(default_factory=PromptConfig, help="prompt budgets")
    reward: RewardConfig = option(default_factory=RewardConfig, help="step reward (docs/reward.md)")
    memory_size: int = option(5, "earlier attempts summarised in a state's memory (0 = no memory)")
    time_limit_hint_s: float | None = option(
        None, "run time limit stated in the prompt; None = take it from the sandbox limits when known")

    def validate(self) -> None:
        if self.memory_size < 0:
            raise ConfigError("agent.memory_size must be >= 0")
