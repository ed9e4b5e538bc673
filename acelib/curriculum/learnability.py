"""Learnability Potential (LP): pure functions (docs/learnability.md has the formulas and their sources).

Every function works on Python floats (the per-report hot path) and on numpy arrays (rebuilds, analysis),
so the sampler, the buffer's eviction and the tests use exactly the same code. None of them knows the buffer.

Summary (all symbols per buffer item):
    group:     m valid rewards r_j (masked samples dropped), population variance var
               spread s = 0 for a zero-variance group (acelib.groups), else var / D²  (= p̂(1−p̂) for two values)
               D = max_j r_j − min_j r_j  (std-normalised GRPO advantages)  or  r_hi − r_lo of the reward bounds
    evidence:  n (decayed sample count), S (weighted mean spread), M (weighted mean reward), v_e (evidence version)
    update:    Δ = v_start − v_e;  Δ ≥ 0: old evidence × decay^Δ, v_e ← v_start;  Δ < 0 (late result): new group × decay^−Δ
    LP_e     = (n0·prior + n·S) / (n0 + n) · headroom(M)^κ
    LP(v)    = prior + (LP_e − prior) · decay^max(v − v_e, 0)
    weight   = w0 + (LP_e^power − w0) · decay^max(v − v_e, 0),   w0 = prior^power
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from acelib.curriculum.config import SamplerConfig
from acelib.groups import ZERO_VARIANCE_TOL, valid_rewards


class GroupStats(NamedTuple):
    m: int                # valid (unmasked) samples
    mean: float           # mean valid reward (reward units)
    spread: float         # normalised population variance in [0, 1/4]; exactly 0 iff zero_variance
    zero_variance: bool   # acelib.groups.is_zero_variance: GRPO gets no gradient from this group


def group_stats(rewards: Sequence[float], masked: Sequence[bool] | None = None, std_scaling: bool = True,
                reward_bounds: tuple[float, float] = (0.0, 1.0)) -> GroupStats:
    """Statistics of one finished group, as GRPO sees it: masked (infra-error) samples are excluded.

    spread = var / D², var the population variance (1/m) of the valid rewards. With std-normalised advantages
    (`std_scaling`) every non-zero-variance group gives advantages of unit std whatever its reward scale, so
    D = max − min of the group: scale-free, and p̂(1−p̂) for any two-valued group (the 0/1 calibration of the
    prior and power carries over). Without it the advantage is the raw centred reward, so D = the span of
    `reward_bounds` (the whole reward range). A zero-variance group (fewer than 2 valid samples, or max − min ≤
    acelib.groups.ZERO_VARIANCE_TOL) has spread exactly 0; with m < 2 it adds no evidence (evidence_weight).
    """
    vals = rewards if masked is None else valid_rewards(rewards, masked)
    m = len(vals)
    if m < 2:
        return GroupStats(m, sum(vals) / m if m else 0.0, 0.0, True)
    mean = sum(vals) / m
    hi, lo = max(vals), min(vals)
    # acelib.groups.is_zero_variance, on the max and min needed anyway (report() runs this once per group;
    # tests/unit/test_learnability.py checks both agree)
    if hi - lo <= ZERO_VARIANCE_TOL:
        return GroupStats(m, mean, 0.0, True)
    var = sum([(v - mean) * (v - mean) for v in vals]) / m
    span = hi - lo if std_scaling else reward_bounds[1] - reward_bounds[0]
    return GroupStats(m, mean, var / (span * span), False)


def evidence_weight(g: GroupStats) -> float:
    """Samples a group adds to the evidence: its valid count, or 0 if it cannot measure spread (m < 2)."""
    return float(g.m) if g.m >= 2 else 0.0


def update_evidence(n: float, spread: float, mean: float, version: float, g: GroupStats, version_started: int,
                    decay: float) -> tuple[float, float, float, float]:
    """Fold one group into (n, S, M, v_e); returns the new tuple.

    Evidence lives at one reference version v_e (the newest rollout start seen). A group that started later
    decays the old evidence by decay^(v_start − v_e); a late group (started before v_e, e.g. a slow task whose
    results came back after newer ones) is still counted, down-weighted by decay^(v_e − v_start): never dropped.
    """
    w = evidence_weight(g)
    if w == 0.0:
        return n, spread, mean, version
    if n <= 0.0:
        return w, g.spread, g.mean, float(version_started)
    d = version_started - version
    if d >= 0:
        n_old = n * decay ** d
        version = float(version_started)
    else:
        n_old = n
        w = w * decay ** (-d)
    tot = n_old + w
    return tot, (n_old * spread + w * g.spread) / tot, (n_old * mean + w * g.mean) / tot, version


def headroom(mean, r_min: float, r_max: float):
    """(r_max − mean)/(r_max − r_min) clipped to [0, 1]: how far the task's reward is from the ceiling."""
    h = (r_max - mean) / (r_max - r_min)
    if isinstance(h, np.ndarray):
        return np.clip(h, 0.0, 1.0)
    return min(max(h, 0.0), 1.0)


def lp_at_evidence(n, spread, mean, prior: float, prior_strength: float, headroom_power: float = 0.0,
                   reward_bounds: tuple[float, float] = (0.0, 1.0)):
    """LP_e = (n0·prior + n·S)/(n0 + n) · headroom(M)^κ; an item with n = 0 gets exactly `prior` (headroom 1)."""
    denom = prior_strength + n
    if isinstance(denom, np.ndarray):
        lp = np.where(denom > 0, (prior_strength * prior + n * spread) / np.where(denom > 0, denom, 1.0), prior)
    else:
        lp = (prior_strength * prior + n * spread) / denom if denom > 0 else prior
    if headroom_power:
        h = headroom(mean, *reward_bounds) ** headroom_power
        lp = np.where(n > 0, lp * h, lp) if isinstance(lp, np.ndarray) else (lp * h if n > 0 else lp)
    return lp


def decay_factor(version_now, version_evidence, decay: float):
    """decay^max(v − v_e, 0): how much of the evidence still holds at the current policy version."""
    d = version_now - version_evidence
    if isinstance(d, np.ndarray):
        return decay ** np.maximum(d, 0.0)
    return decay ** max(d, 0.0)


def lp_now(lp_e, version_now, version_evidence, prior: float, decay: float):
    """LP(v) = prior + (LP_e − prior)·decay^max(v − v_e, 0): old evidence fades back to the prior."""
    return prior + (lp_e - prior) * decay_factor(version_now, version_evidence, decay)


def lp_of_evidence(ev_n: np.ndarray, ev_spread: np.ndarray, ev_mean: np.ndarray, ev_version: np.ndarray,
                   cfg: SamplerConfig, version: float,
                   reward_bounds: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Current LP of items from their evidence arrays (all [n]) at policy version `version`: LP(v) of LP_e."""
    lp_e = lp_at_evidence(ev_n, ev_spread, ev_mean, cfg.prior_lp, cfg.prior_strength, cfg.headroom_power,
                          reward_bounds)
    return lp_now(lp_e, version, ev_version, cfg.prior_lp, cfg.decay)


def sampling_weight(lp_e, version_now, version_evidence, prior: float, decay: float, power: float):
    """w = w0 + (LP_e^power − w0)·decay^max(v − v_e, 0), w0 = prior^power.

    The decay acts in weight space (not on LP before the power) so the weight is linear in decay^v: the sampler
    keeps sums of (LP_e^power − w0)·decay^−v_e per block and never re-weights every item when the version moves.
    """
    w0 = prior ** power
    return w0 + (lp_e ** power - w0) * decay_factor(version_now, version_evidence, decay)


def mixture_probabilities(weight: np.ndarray, avail: np.ndarray, staleness: np.ndarray, uniform_share: float,
                          staleness_share: float) -> np.ndarray:
    """P(i) = (1−ε−ρ)·a_i w_i/Σ a w + ε·a_i/Σ a + ρ·a_i t_i/Σ a t  (a = in-flight availability, t = staleness).

    A component with zero total mass (e.g. every staleness 0) is dropped and the others renormalised.
    """
    masses = [avail * weight, avail.astype(float), avail * staleness]
    shares = [1.0 - uniform_share - staleness_share, uniform_share, staleness_share]
    coef = mixture_coefficients(shares, [float(m.sum()) for m in masses])
    if not any(coef):
        raise ValueError("no item has positive sampling mass (all in flight with in_flight_penalty=0, or empty)")
    return sum(c * m for c, m in zip(coef, masses))


def mixture_coefficients(shares: Sequence[float], totals: Sequence[float]) -> list[float]:
    """Per-component multipliers c_k = share_k/(Σ live shares · total_k) (0 for a dead component), so that an
    item's probability is Σ_k c_k·mass_k(i). The block sampler applies them to block sums and item masses."""
    live = [s > 0 and t > 0 for s, t in zip(shares, totals)]
    tot_share = sum(s for s, ok in zip(shares, live) if ok)
    if tot_share <= 0:
        return [0.0] * len(shares)
    return [s / (tot_share * t) if ok else 0.0 for s, t, ok in zip(shares, totals, live)]


def learnability_of_success(p):
    """p(1−p): the learnability of a task with success probability p (SFL); maximal (0.25) at p = 1/2."""
    return p * (1 - p)


__all__ = ["GroupStats", "group_stats", "evidence_weight", "update_evidence", "headroom", "lp_at_evidence",
           "decay_factor", "lp_now", "lp_of_evidence", "sampling_weight", "mixture_probabilities",
           "mixture_coefficients", "learnability_of_success"]
