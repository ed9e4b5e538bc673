from acelib.trainer.loop import group_metrics


def _group(rewards, outcomes, policy_version, masked=None):
    return {"rewards": rewards, "masked": masked or [False] * len(rewards), "outcomes": outcomes,
            "policy_version": policy_version, "gen_s": 2.0, "gen_tokens": 40, "sandbox_latency_s": [0.5] * len(rewards)}


def test_group_metrics_rates_variance_and_staleness_against_the_weights_trained():
    groups = [_group([1.0, 0.0], ["valid", "failed"], policy_version=3),
              _group([-1.0, -1.0], ["format_error", "format_error"], policy_version=2),
              _group([0.2, 0.0], ["invalid", "masked"], policy_version=3, masked=[False, True])]
    m = group_metrics(groups, version=3)   # the learner updates version-3 weights with this batch
    assert m["rate/valid_submission"] == 1 / 6 and m["rate/format_error"] == 2 / 6
    assert m["rate/infra_masked"] == 1 / 6
    assert m["groups/zero_variance_share"] == 2 / 3   # the all-format-error group and the single unmasked sample
    assert m["staleness/max"] == 1 and m["staleness/mean"] == 1 / 3
    assert m["reward/mean"] == (1.0 + 0.0 - 1.0 - 1.0 + 0.2) / 5
    assert m["rollout/tokens_per_s"] == 120 / 6.0
