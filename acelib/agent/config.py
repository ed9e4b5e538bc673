"""Configs of the agent scaffold (prompt budgets, memory, reward). No torch, no sandbox imports."""
from __future__ import annotations

import dataclasses

from acelib.agent.parse import RESPONSE_FORMATS
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
    response_format: str = option(
        "script", "how debug and improve responses give the new code: 'script' = one ```python block with the "
        "full script; 'edit' = SEARCH/REPLACE blocks applied to the current solution (Aider-style; a block that "
        "does not apply is a format error). Drafts always write a full script", choices=RESPONSE_FORMATS)

    def prompt_time_limit_s(self, sandbox_timeout_s: float) -> float:
        """The run time limit the prompt states: `time_limit_hint_s`, else the sandbox's own timeout."""
        return self.time_limit_hint_s if self.time_limit_hint_s is not None else sandbox_timeout_s

    def validate(self) -> None:
        if self.memory_size < 0:
            raise ConfigError("agent.memory_size must be >= 0")
        if self.response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"agent.response_format must be one of {list(RESPONSE_FORMATS)}, "
                              f"got {self.response_format!r}")


@dataclasses.dataclass
class SeedConfig:
    """Seed states of the buffer (`acelib.agent.seeds.seed_states`): compact baselines and their mutations."""

    improve: bool = option(True, "add each competition's compact baseline as a valid improve seed")
    per_competition: int = option(4, "debug seeds per competition: mutations of its compact baseline (train "
                                     "split), spread over the kinds; 0 = none")
    kinds: tuple[str, ...] = option((), "mutation kinds to draw from (empty = all of "
                                        "acelib.tasks.suites.mutations.KINDS); hold kinds out to test unseen bugs")

    def validate(self) -> None:
        if self.per_competition < 0:
            raise ConfigError("seeds.per_competition must be >= 0")
        if self.kinds:
            from acelib.tasks.suites.mutations import KINDS  # lazy: only a config that names kinds pays the import

            unknown = [k for k in self.kinds if k not in KINDS]
            if unknown:
                raise ConfigError(f"seeds.kinds: unknown {unknown}; choose from {list(KINDS)}")

    @property
    def enabled(self) -> bool:
        return self.improve or self.per_competition > 0
