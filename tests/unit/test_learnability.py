"""Learnability Potential on hand-computed groups (acelib/curriculum/learnability.py, docs/learnability.md)."""
import numpy as np
import pytest

from acelib.curriculum import SamplerConfig
from acelib.curriculum import learnability as L
from acelib.groups import ZERO_VARIANCE_TOL, is_zero_variance

LADDER = (-1.0, 1.6)  # RewardConfig.bounds: format error −1 … best valid 1.6 (docs/reward.md)

PRIOR, N0 = 0.15, 2.0


def test_all_equal_rewards_have_no_learnability():
    for rewards in ([1.0] * 8, [0.0] * 8, [0.7] * 4, [1.0, 1.0 + ZERO_VARIANCE_TOL / 2]):
        for std_scaling in (True, False):
            g = L.group_stats(rewards, std_scaling=std_scaling, reward_bounds=LADDER)
            assert g.spread == 0.0 and g.zero_variance  # acelib.groups' definition: max − min ≤ tol
    tol = ZERO_VARIANCE_TOL
    for rewards in ([1.0, 1.0 + tol], [1.0, 1.0 + 1.5 * tol], [0.3] * 3 + [0.3 + 2 * tol], [5.0], []):
        assert L.group_stats(rewards).zero_variance == is_zero_variance(rewards)
    assert L.group_stats([1.0, 1.0 + 1.5 * tol]).spread == pytest.approx(0.25)  # as GRPO's filter keeps it
    # evidence of zero spread pulls LP from the prior toward 0: one group of 8 → (2·0.15 + 8·0)/(2+8)
    n, s, m, v = L.update_evidence(0.0, 0.0, 0.0, 0.0, L.group_stats([1.0] * 8), 0, decay=1.0)
    assert L.lp_at_evidence(n, s, m, PRIOR, N0) == pytest.approx(0.03)
    for _ in range(9):  # 10 such groups: 0.3 / 82
        n, s, m, v = L.update_evidence(n, s, m, v, L.group_stats([1.0] * 8), 0, decay=1.0)
    assert L.lp_at_evidence(n, s, m, PRIOR, N0) == pytest.approx(0.3 / 82)


def test_mixed_group_exact_value():
    g = L.group_stats([1, 0, 1, 1, 0, 0, 0, 0])  # p̂ = 3/8
    assert g == (8, 0.375, pytest.approx(0.375 * 0.625), False)  # population variance = p̂(1−p̂) = 0.234375
    n, s, m, v = L.update_evidence(0.0, 0.0, 0.0, 0.0, g, 0, decay=0.95)
    assert (n, s, m, v) == (8.0, pytest.approx(0.234375), 0.375, 0.0)
    # (2·0.15 + 8·0.234375)/(2 + 8) = (0.3 + 1.875)/10
    assert L.lp_at_evidence(n, s, m, PRIOR, N0) == pytest.approx(0.2175)
    assert L.learnability_of_success(0.5) == 0.25


def test_continuous_rewards_masking_and_units():
    # mean 0.5, deviations −0.3, −0.1, 0.4 → var = (0.09 + 0.01 + 0.16)/3; group range 0.7
    assert L.group_stats([0.2, 0.4, 0.9]).spread == pytest.approx(0.26 / 3 / 0.49)
    assert L.group_stats([0.2, 0.4, 0.9], std_scaling=False).spread == pytest.approx(0.26 / 3)   # bounds (0, 1)
    assert L.group_stats([0.2, 0.4, 0.9], std_scaling=False,
                         reward_bounds=(0.0, 2.0)).spread == pytest.approx(0.26 / 12)
    # the masked (infra-error) sample is dropped: [1, 0] → spread 0.25
    assert L.group_stats([1.0, 0.0, 0.5], masked=[False, False, True]) == (2, 0.5, 0.25, False)
    # fewer than 2 valid samples: no spread evidence, nothing changes
    g = L.group_stats([1.0, 0.0], masked=[False, True])
    assert g.m == 1 and g.zero_variance and L.evidence_weight(g) == 0.0
    assert L.update_evidence(3.0, 0.1, 0.2, 4.0, g, 9, 0.5) == (3.0, 0.1, 0.2, 4.0)
    with pytest.raises(ValueError, match="one flag per sample"):
        L.group_stats([1.0, 0.0], masked=[False])


def test_ladder_groups_rank_by_normalised_spread():
    # docs/learnability.md, "Units": groups of 8 on the reward ladder (−1 format error, 0 failed, 0.2 invalid,
    # 1 ± 0.3·q ± 0.3·Δ valid). With std-normalised advantages every two-valued 4/4 group has spread 1/4, whatever
    # its rungs: LP = (2·0.07 + 8·0.25)/10 = 0.214, weight (0.214/0.07)^6 ≈ 816× an unvisited item's
    quality = [1.1, 0.9] * 4            # all valid, quality differs: var 0.01, range 0.2
    invalid = [0.2, 1.0] * 4            # invalid vs valid: var 0.16, range 0.8
    fmt = [-1.0, 1.0] * 4               # format error vs valid: var 1, range 2
    cfg = SamplerConfig()

    def lp(rewards, **kw):
        g = L.group_stats(rewards, reward_bounds=LADDER, **kw)
        return L.lp_at_evidence(*L.update_evidence(0.0, 0.0, 0.0, 0.0, g, 0, 1.0)[:3], cfg.prior_lp, cfg.prior_strength)

    for rewards in (quality, invalid, fmt):
        assert L.group_stats(rewards, reward_bounds=LADDER).spread == pytest.approx(0.25)
        assert lp(rewards) == pytest.approx(0.214)
        assert (lp(rewards) / cfg.prior_lp) ** cfg.power == pytest.approx(816.4, abs=0.1)
    # a three-rung group: [0.2, 1.0, 1.0, 1.6]: mean 0.95, var (0.5625 + 0.0025 + 0.0025 + 0.4225)/4 = 0.2475,
    # range 1.4 → 0.2475/1.96; without std scaling the ladder span 2.6 is the unit → 0.2475/6.76
    assert L.group_stats([0.2, 1.0, 1.0, 1.6], reward_bounds=LADDER).spread == pytest.approx(0.2475 / 1.96)
    assert L.group_stats([0.2, 1.0, 1.0, 1.6], std_scaling=False, reward_bounds=LADDER).spread == \
        pytest.approx(0.2475 / 6.76)
    # raw centred advantages (std_scaling=False): the magnitude counts, so a quality-only group is worth less
    # than a validity flip, and both are measured against the whole ladder: 0.01/6.76, 0.16/6.76, 1/6.76
    raw = [L.group_stats(r, std_scaling=False, reward_bounds=LADDER).spread for r in (quality, invalid, fmt)]
    np.testing.assert_allclose(raw, np.array([0.01, 0.16, 1.0]) / 6.76)


def test_group_stats_against_a_numpy_reference():
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = rng.choice([-1.0, 0.0, 0.2, 1.0], size=8) + (rng.random(8) < 0.5) * rng.normal(0, 0.2, 8)
        r[rng.random(8) < 0.3] += ZERO_VARIANCE_TOL * rng.choice([0.5, 1.0, 1.5])  # near the tolerance
        masked = rng.random(8) < 0.2
        v = r[~masked]
        for std_scaling in (True, False):
            g = L.group_stats(r.tolist(), masked.tolist(), std_scaling=std_scaling, reward_bounds=LADDER)
            assert g.m == len(v) and g.zero_variance == is_zero_variance(r.tolist(), masked.tolist())
            if len(v) < 2 or np.ptp(v) <= ZERO_VARIANCE_TOL:
                assert g.spread == 0.0 and g.zero_variance
                continue
            unit = np.ptp(v) if std_scaling else LADDER[1] - LADDER[0]
            assert (g.mean, g.spread) == (pytest.approx(v.mean()), pytest.approx(np.var(v) / unit ** 2))
            if std_scaling:  # a variance on [lo, hi] is at most (hi − lo)²/4
                assert 0.0 < g.spread <= 0.25 + 1e-12


def test_prior_for_never_sampled_items():
    assert L.lp_at_evidence(0.0, 0.0, 0.0, PRIOR, N0) == PRIOR
    assert L.lp_at_evidence(0.0, 0.0, 0.0, PRIOR, N0, headroom_power=2.0) == PRIOR  # no mean yet: headroom 1
    arr = L.lp_at_evidence(np.array([0.0, 8.0]), np.array([0.0, 0.234375]), np.array([0.0, 0.375]), PRIOR, N0)
    np.testing.assert_allclose(arr, [PRIOR, 0.2175])
    # lp_of_evidence: the same LP_e, decayed to the current version
    cfg = SamplerConfig(prior_lp=0.1, decay=0.5)
    got = L.lp_of_evidence(np.array([0.0, 8.0]), np.array([0.0, 0.234375]), np.array([0.0, 0.375]),
                           np.array([0.0, 3.0]), cfg, version=5)
    np.testing.assert_allclose(got, [0.1, 0.1 + (0.2075 - 0.1) * 0.25])
    assert L.lp_at_evidence(0.0, 0.0, 0.0, PRIOR, 0.0) == PRIOR  # n0 = 0 and no evidence: still the prior


def test_decay_toward_prior():
    lp_e = 0.2175
    # 10 versions later at decay 0.9: 0.15 + 0.0675·0.9^10
    assert L.lp_now(lp_e, 10, 0, PRIOR, 0.9) == pytest.approx(0.15 + 0.0675 * 0.9 ** 10)
    assert L.lp_now(lp_e, 0, 0, PRIOR, 0.9) == lp_e
    assert L.lp_now(lp_e, 10_000, 0, PRIOR, 0.9) == pytest.approx(PRIOR)
    assert L.lp_now(0.0, 10_000, 0, PRIOR, 0.9) == pytest.approx(PRIOR)  # a "solved" item comes back too
    # the sampling weight decays in weight space: w0 + (LP_e^2 − w0)·decay^Δ, w0 = prior^2
    w0 = PRIOR ** 2
    assert L.sampling_weight(lp_e, 3, 1, PRIOR, 0.5, 2.0) == pytest.approx(w0 + (lp_e ** 2 - w0) * 0.25)


def test_evidence_update_ages_old_evidence_and_counts_late_groups():
    g1 = L.group_stats([1, 0, 1, 1, 0, 0, 0, 0])
    ev = L.update_evidence(0.0, 0.0, 0.0, 0.0, g1, 0, decay=0.5)
    # a group started 2 versions later: old evidence weighs 8·0.5² = 2 against 8 new samples
    n, s, m, v = L.update_evidence(*ev, L.group_stats([1.0] * 8), 2, decay=0.5)
    assert (n, s, m, v) == (pytest.approx(10.0), pytest.approx(2 * 0.234375 / 10), pytest.approx(0.875), 2.0)
    # a LATE group (started at v=3, evidence already at v=5) still counts, weighted 4·0.5² = 1; v_e stays 5
    n, s, m, v = L.update_evidence(8.0, 0.0, 1.0, 5.0, L.group_stats([1, 0, 1, 0]), 3, decay=0.5)
    assert (n, s, m, v) == (9.0, pytest.approx(0.25 / 9), pytest.approx((8 + 0.5) / 9), 5.0)


def test_headroom():
    assert L.headroom(0.375, 0.0, 1.0) == 0.625
    assert L.headroom(1.5, 0.0, 1.0) == 0.0 and L.headroom(-1.0, 0.0, 1.0) == 1.0
    # κ = 1: 0.2175 · 0.625
    assert L.lp_at_evidence(8.0, 0.234375, 0.375, PRIOR, N0, headroom_power=1.0) == pytest.approx(0.1359375)


def test_mixture_probabilities_hand_computed():
    w = np.array([1.0, 3.0, 0.0, 0.0])
    a = np.array([1.0, 1.0, 1.0, 0.0])        # item 3 unavailable
    t = np.array([0.0, 0.0, 2.0, 5.0])
    p = L.mixture_probabilities(w, a, t, uniform_share=0.2, staleness_share=0.2)
    np.testing.assert_allclose(p, [0.6 / 4 + 0.2 / 3, 0.6 * 3 / 4 + 0.2 / 3, 0.2 / 3 + 0.2, 0.0])
    assert p.sum() == pytest.approx(1.0)
    # a dead component (no staleness anywhere) is dropped and the others renormalised
    p = L.mixture_probabilities(w, a, np.zeros(4), uniform_share=0.2, staleness_share=0.2)
    np.testing.assert_allclose(p, [0.75 / 4 + 0.25 / 3, 0.75 * 3 / 4 + 0.25 / 3, 0.25 / 3, 0.0])
    with pytest.raises(ValueError, match="no item has positive sampling mass"):
        L.mixture_probabilities(w, np.zeros(4), t, 0.2, 0.2)
