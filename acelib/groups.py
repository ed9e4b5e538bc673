"""The one definition of a zero-variance GRPO group, shared by the learner, the curriculum and the trainer.

A group of rollouts gives GRPO no gradient when its valid (unmasked) rewards are all equal: every centred
advantage is 0. "Equal" means max − min ≤ `ZERO_VARIANCE_TOL`, so rewards that differ only by float noise count as
equal everywhere (learner filter, Learnability Potential, logged metrics). A group with fewer than two valid
samples has no spread either. Plain Python (no numpy, no torch): every box may import it.
"""
from __future__ import annotations

from typing import Sequence

ZERO_VARIANCE_TOL = 1e-6


def valid_rewards(rewards: Sequence[float], masked: Sequence[bool] | None = None) -> list[float]:
    """The rewards GRPO sees: masked (infra-error) samples removed."""
    if masked is None:
        return [float(r) for r in rewards]
    if len(masked) != len(rewards):
        raise ValueError(f"masked has {len(masked)} entries but rewards has {len(rewards)}; pass one flag per sample")
    return [float(r) for r, m in zip(rewards, masked) if not m]


def is_zero_variance(rewards: Sequence[float], masked: Sequence[bool] | None = None,
                     tol: float = ZERO_VARIANCE_TOL) -> bool:
    """True when the valid rewards cannot give an advantage: fewer than two, or max − min ≤ tol."""
    vals = valid_rewards(rewards, masked)
    return len(vals) < 2 or max(vals) - min(vals) <= tol


def valid_and_changed(outcomes: Sequence[str], identical_to_parent: Sequence[bool]) -> int:
    """Responses that count as progress: a valid submission from a script that is not a copy of the task's own
    (a valid copy of an improve seed is no step). The one count behind the rollouts' and the probe's valid rates."""
    return sum(o == "valid" and not same for o, same in zip(outcomes, identical_to_parent, strict=True))
