"""Step reward r(s, a) (docs/reward.md has the derivation; paper.md §7 the recommendation it follows).

Ladder, lowest to highest, always strictly ordered (checked by `RewardConfig.validate`):

    format error  <  run failed / no submission  ≤  submission rejected by the grader  <  any valid submission

A valid submission earns `valid_reward` plus two bounded terms, both in leaderboard units so that metrics with
different scales and directions are comparable:

    span = max(|gold − median|, min_span_rel · max(|gold|, |median|), min_span_abs)
    d    = +1 if higher is better else −1
    q    = clip(d · (m' − median) / span, −1, 1)      quality: 0 at the median, 1 at gold, −1 one span below
    Δ    = clip(d · (m' − m) / span, −1, 1)           improvement over the parent (only if the parent has m)
    r    = valid_reward + quality_weight · q + improve_weight · Δ

`m'`/`m` are the child's/parent's scores from `score_source`; a missing score makes its term 0. Infra errors are
not the policy's fault: `masked=True` and the trainer drops the sample.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from acelib.config import ConfigError, option


@dataclasses.dataclass
class RewardConfig:
    score_source: Literal["test", "validation"] = option(
        "test", "score behind the quality/improvement terms: 'test' = the grader's hidden-test score (training "
        "tasks only; cannot be faked by printing a number), 'validation' = the VALIDATION_SCORE the program printed",
        choices=("test", "validation"))
    format_reward: float = option(-1.0, "reward when the response has no single parsable Python code block")
    failed_reward: float = option(0.0, "reward when the code crashed, timed out, ran out of memory or wrote no "
                                       "submission.csv")
    invalid_reward: float = option(0.2, "reward when submission.csv was written but the grader rejected it "
                                        "(wrong rows/columns/values): a step closer than a crash")
    valid_reward: float = option(1.0, "base reward of a valid submission")
    quality_weight: float = option(0.3, "weight of q = normalised score vs the leaderboard median (q=1 at gold)")
    improve_weight: float = option(0.3, "weight of Δ = normalised score change over the parent's score")
    min_span_rel: float = option(0.01, "floor on the median→gold span, relative to the thresholds' magnitude "
                                       "(saturated leaderboards have gold == median)")
    min_span_abs: float = option(1e-6, "absolute floor on the median→gold span (thresholds both ~0)")

    def validate(self) -> None:
        lowest_valid = self.valid_reward - self.quality_weight - self.improve_weight
        if self.quality_weight < 0 or self.improve_weight < 0:
            raise ConfigError("reward.quality_weight and reward.improve_weight must be >= 0")
        if not (self.format_reward < self.failed_reward <= self.invalid_reward < lowest_valid):
            raise ConfigError(
                "reward ladder broken: need format_reward < failed_reward <= invalid_reward < valid_reward - "
                f"quality_weight - improve_weight (got {self.format_reward} < {self.failed_reward} <= "
                f"{self.invalid_reward} < {lowest_valid}); lower the weights or raise valid_reward")
        if self.min_span_rel < 0 or self.min_span_abs <= 0:
            raise ConfigError("reward.min_span_rel must be >= 0 and reward.min_span_abs > 0")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def bounds(self) -> tuple[float, float]:
        """(min, max) reward any unmasked step can get."""
        return self.format_reward, self.valid_reward + self.quality_weight + self.improve_weight


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The two leaderboard scores the normalisation needs (from the grader's report)."""

    median: float
    gold: float
    is_lower_better: bool


def thresholds_from_report(report: dict[str, Any]) -> Thresholds:
    """Median/gold thresholds from an MLE-bench-style grader report (flat `*_threshold` keys or a nested
    `thresholds` mapping with `median`/`gold` keys)."""
    nested = report.get("thresholds") or {}
    median = report.get("median_threshold", nested.get("median"))
    gold = report.get("gold_threshold", nested.get("gold"))
    if median is None or gold is None or "is_lower_better" not in report:
        raise KeyError(f"grader report lacks median/gold thresholds or is_lower_better: keys {sorted(report)}")
    return Thresholds(float(median), float(gold), bool(report["is_lower_better"]))


def span(th: Thresholds, config: RewardConfig) -> float:
    """The median→gold distance, floored so a saturated leaderboard (gold == median) cannot divide by zero."""
    return max(abs(th.gold - th.median), config.min_span_rel * max(abs(th.gold), abs(th.median)),
               config.min_span_abs)


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def quality(score: float, th: Thresholds, config: RewardConfig) -> float:
    """q ∈ [−1, 1]: 0 at the leaderboard median, 1 at (or beyond) gold, direction-aware."""
    d = -1.0 if th.is_lower_better else 1.0
    return _clip(d * (score - th.median) / span(th, config))


def improvement(child: float, parent: float, th: Thresholds, config: RewardConfig) -> float:
    """Δ ∈ [−1, 1]: the child's gain over the parent in median→gold spans, direction-aware."""
    d = -1.0 if th.is_lower_better else 1.0
    return _clip(d * (child - parent) / span(th, config))


@dataclasses.dataclass(frozen=True)
class RewardBreakdown:
    reward: float
    outcome: str              # "format_error" | "failed" | "invalid" | "valid" | "masked"
    quality: float = 0.0      # q (0 when not applicable)
    improvement: float = 0.0  # Δ (0 when not applicable)
    masked: bool = False


def step_reward(*, format_error: bool, exec_status: str, submitted: bool, valid: bool,
                child_score: float | None, parent_score: float | None, report: dict[str, Any] | None,
                config: RewardConfig) -> RewardBreakdown:
    """The piecewise step reward. Scores must come from `config.score_source` (the caller picks them).

    format_error: the response failed `parse_response` (nothing ran).
    exec_status: the sandbox status; "infra_error" masks the step (reward 0, not trained on).
    submitted: the run finished ok and wrote submission.csv; valid: the grader accepted it.
    report: the grader's report (thresholds); required when `valid`.
    """
    if format_error:
        return RewardBreakdown(config.format_reward, "format_error")
    if exec_status == "infra_error":
        return RewardBreakdown(0.0, "masked", masked=True)
    if not submitted:
        return RewardBreakdown(config.failed_reward, "failed")
    if not valid:
        return RewardBreakdown(config.invalid_reward, "invalid")
    if report is None:
        raise ValueError("a valid submission needs the grader report (thresholds) to compute its reward")
    th = thresholds_from_report(report)
    q = quality(child_score, th, config) if _finite(child_score) else 0.0
    delta = improvement(child_score, parent_score, th, config) \
        if _finite(child_score) and _finite(parent_score) else 0.0
    r = config.valid_reward + config.quality_weight * q + config.improve_weight * delta
    return RewardBreakdown(r, "valid", quality=q, improvement=delta)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
