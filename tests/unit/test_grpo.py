"""GRPO math on hand-computed tensors, a slow loop reference, and micro-batch invariance."""
from __future__ import annotations

import math

import pytest
import torch

from acelib.config import ConfigError, from_dict
from acelib.groups import ZERO_VARIANCE_TOL, is_zero_variance
from acelib.learner.config import GRPOConfig, LearnerConfig
from acelib.learner.grpo import entropy_from_logits, group_advantages, policy_loss, summarize, token_logprobs

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")


def _adv(rewards, groups, valid, **cfg):
    return group_advantages(torch.tensor(rewards, dtype=torch.float32), torch.tensor(groups),
                            torch.tensor(valid), GRPOConfig(**cfg))


# ---------------------------------------------------------------- advantages
def test_group_advantages_hand_computed():
    # group 0: mixed; group 1: all equal (zero variance); group 2: one infra-error sample (reward 5 must not count)
    rewards = [1, 0, 0, 1, 1, 1, 1, 2, 0, 5]
    groups = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    valid = [True] * 9 + [False]
    adv, keep = _adv(rewards, groups, valid, advantage_eps=1e-4)
    s0 = math.sqrt(1 / 3)      # unbiased std of [1, 0, 0, 1]
    s2 = math.sqrt(2)          # unbiased std of [2, 0]
    a0, a2 = 0.5 / (s0 + 1e-4), 1 / (s2 + 1e-4)
    expected = [a0, -a0, -a0, a0, 0, 0, 0, a2, -a2, 0]
    torch.testing.assert_close(adv, torch.tensor(expected, dtype=torch.float32))
    assert keep.tolist() == [True] * 4 + [False] * 3 + [True, True, False]


def test_group_advantages_without_std_scaling_and_without_filter():
    rewards, groups, valid = [1, 0, 0, 1, 1, 1, 2, 0, 5], [0, 0, 0, 0, 1, 1, 2, 2, 2], [True] * 8 + [False]
    adv, keep = _adv(rewards, groups, valid, scale_rewards="none", filter_zero_variance=False)
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 1, -1, 0]))
    # unfiltered: the zero-variance group stays in the batch (advantage 0), the infra error never does
    assert keep.tolist() == [True] * 8 + [False]
    # dr_grpo resolves scale_rewards="auto" to no std scaling
    adv_dr, _ = _adv(rewards, groups, valid, loss_type="dr_grpo")
    torch.testing.assert_close(adv_dr, adv)


def test_group_with_single_valid_sample_is_zero_variance():
    adv, keep = _adv([1.0, 0.0, 3.0, 4.0], [0, 0, 1, 1], [True, False, True, True])
    assert adv[0] == 0 and not keep[0] and not keep[1] and keep[2] and keep[3]


def _loop_advantages(rewards, groups, valid, cfg: GRPOConfig):
    """Slow reference: one Python pass per group."""
    adv, keep = [0.0] * len(rewards), [False] * len(rewards)
    for g in sorted(set(groups)):
        idx = [i for i in range(len(rewards)) if groups[i] == g and valid[i]]
        vals = [rewards[i] for i in idx]
        zero_var = len(vals) < 2 or max(vals) - min(vals) <= ZERO_VARIANCE_TOL
        for i in idx:
            keep[i] = not (zero_var and cfg.filter_zero_variance)
            if zero_var:
                continue
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
            adv[i] = (rewards[i] - mean) / (std + cfg.advantage_eps) if cfg.std_scaling else rewards[i] - mean
    return adv, keep


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", ["group", "none"])
def test_advantages_vectorised_equals_loop(seed, scale):
    g = torch.Generator().manual_seed(seed)
    n = 40
    groups = torch.randint(0, 9, (n,), generator=g).tolist()
    # binary rewards make zero-variance groups common; a few continuous ones exercise the std
    rewards = [float(x) for x in torch.randint(0, 2, (n,), generator=g)]
    rewards[::7] = [float(x) for x in torch.rand(len(rewards[::7]), generator=g)]
    valid = (torch.rand(n, generator=g) > 0.15).tolist()
    for filt in (True, False):
        cfg = GRPOConfig(scale_rewards=scale, filter_zero_variance=filt)
        adv, keep = group_advantages(torch.tensor(rewards), torch.tensor(groups), torch.tensor(valid), cfg)
        ref_adv, ref_keep = _loop_advantages(rewards, groups, valid, cfg)
        torch.testing.assert_close(adv, torch.tensor(ref_adv), rtol=1e-6, atol=1e-6)
        assert keep.tolist() == ref_keep


# ---------------------------------------------------------------- losses, hand-computed
def _counts(mask):
    return {"num_sequences": int(mask.any(-1).sum()), "num_tokens": int(mask.sum())}


@pytest.mark.parametrize("loss_type,expected", [
    # per-token losses are −A at ratio 1: seq0 (A=1) → [−1, −1], seq1 (A=−3) → [3]
    ("grpo", ((-1 - 1) / 2 + 3 / 1) / 2),      # token-mean per sequence, then mean over the 2 sequences = 1
    ("dapo", (-1 - 1 + 3) / 3),                 # token-mean over the 3 tokens = 1/3
    ("dr_grpo", ((-1 - 1) / 4 + 3 / 4) / 2),    # token-sum / max_completion_length (4), mean over sequences = 1/8
])
def test_aggregation_hand_computed(loss_type, expected):
    cfg = GRPOConfig(loss_type=loss_type, max_completion_length=4)
    lp = torch.zeros(2, 3)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, stats = policy_loss(lp, lp.clone(), torch.tensor([1.0, -3.0]), mask, cfg, **_counts(mask))
    assert loss.item() == pytest.approx(expected)
    assert stats["tokens"] == 3 and stats["clipped"] == 0 and stats["approx_kl"] == 0


def test_clipping_and_gradient_hand_computed():
    cfg = GRPOConfig(loss_type="dapo", epsilon_low=0.2, epsilon_high=0.28)
    old = torch.zeros(2, 2)
    lp = torch.log(torch.tensor([[1.5, 0.5], [0.5, 1.5]])).requires_grad_()
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 2, dtype=torch.bool)
    loss, stats = policy_loss(lp, old, adv, mask, cfg, **_counts(mask))
    # per token max(−A·r, −A·clip(r, 0.8, 1.28)):
    #   A=+1, r=1.5 → max(−1.5, −1.28) = −1.28 (clipped);  A=+1, r=0.5 → max(−0.5, −0.8) = −0.5
    #   A=−1, r=0.5 → max(0.5, 0.8) = 0.8 (clipped);       A=−1, r=1.5 → max(1.5, 1.28) = 1.5
    assert loss.item() == pytest.approx((-1.28 - 0.5 + 0.8 + 1.5) / 4)
    loss.backward()
    # d(−A·r)/d log π = −A·r on unclipped tokens, 0 on clipped ones; /4 from the token mean
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, -0.5 / 4], [0.0, 1.5 / 4]]))
    m = summarize([stats])
    assert m["clip_frac"] == pytest.approx(0.5)
    # approx KL (k3 of r): (r − 1) − log r
    k3 = lambda r: (r - 1) - math.log(r)  # noqa: E731
    assert m["approx_kl"] == pytest.approx((2 * k3(1.5) + 2 * k3(0.5)) / 4, rel=1e-6)


def test_symmetric_clip_with_equal_epsilons():
    cfg = GRPOConfig(loss_type="dapo", epsilon_low=0.2, epsilon_high=0.2)
    lp = torch.log(torch.tensor([[1.5]]))
    loss, _ = policy_loss(lp, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1, dtype=torch.bool), cfg,
                          num_sequences=1, num_tokens=1)
    assert loss.item() == pytest.approx(-1.2)


def test_truncated_importance_weights_hand_computed():
    cfg = GRPOConfig(loss_type="dapo", tis_cap=2.0)
    lp = torch.zeros(1, 3)
    # π_old/π_behaviour per token = 3 (capped to 2), 0.5, 1
    behaviour = -torch.log(torch.tensor([[3.0, 0.5, 1.0]]))
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, stats = policy_loss(lp, lp.clone(), torch.tensor([1.0]), mask, cfg, num_sequences=1, num_tokens=3,
                              behaviour_logprobs=behaviour)
    assert loss.item() == pytest.approx(-(2.0 + 0.5 + 1.0) / 3)
    m = summarize([stats])
    assert m["is_weight_mean"] == pytest.approx(3.5 / 3)
    assert m["is_weight_max"] == pytest.approx(2.0)
    assert m["is_capped_frac"] == pytest.approx(1 / 3)
    # disabled cap → the weight is ignored
    loss_off, _ = policy_loss(lp, lp.clone(), torch.tensor([1.0]), mask, GRPOConfig(loss_type="dapo", tis_cap=None),
                              num_sequences=1, num_tokens=3, behaviour_logprobs=behaviour)
    assert loss_off.item() == pytest.approx(-1.0)


def test_k3_kl_hand_computed():
    cfg = GRPOConfig(loss_type="dapo", beta=0.1)
    lp = torch.zeros(1, 2, requires_grad=True)
    ref = torch.log(torch.tensor([[2.0, 1.0]]))   # log π_ref/π_θ = log 2, 0
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, stats = policy_loss(lp, lp.detach().clone(), torch.tensor([0.0]), mask, cfg, num_sequences=1,
                              num_tokens=2, ref_logprobs=ref)
    k3 = 2 - math.log(2) - 1                       # e^x − x − 1 at x = log 2
    assert loss.item() == pytest.approx(0.1 * k3 / 2)
    assert summarize([stats])["ref_kl"] == pytest.approx(k3 / 2)
    loss.backward()
    # d/dlogp [e^(ref−logp) − (ref−logp) − 1] = −e^(ref−logp) + 1 → −1 and 0, ×0.1/2
    torch.testing.assert_close(lp.grad, torch.tensor([[-0.05, 0.0]]))
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, lp.detach(), torch.tensor([0.0]), mask, cfg, num_sequences=1, num_tokens=2)


# ---------------------------------------------------------------- loop reference, invariance, masking
def _loop_loss(lp, old, adv, mask, cfg, behaviour, ref, num_sequences, num_tokens):
    """Slow per-token reference of policy_loss (Python floats)."""
    total = 0.0
    for i in range(len(lp)):
        n_i = sum(bool(x) for x in mask[i])
        for t in range(len(lp[i])):
            if not mask[i][t]:
                continue
            r = math.exp(lp[i][t] - old[i][t])
            a = adv[i]
            pg = max(-a * r, -a * min(max(r, 1 - cfg.epsilon_low), 1 + cfg.epsilon_high))
            w = min(math.exp(old[i][t] - behaviour[i][t]), cfg.tis_cap)
            x = ref[i][t] - lp[i][t]
            tok = w * pg + cfg.beta * (math.exp(x) - x - 1)
            if cfg.loss_type == "grpo":
                total += tok / n_i / num_sequences
            elif cfg.loss_type == "dr_grpo":
                total += tok / cfg.max_completion_length / num_sequences
            else:
                total += tok / num_tokens
    return total


def _random_batch(seed, b=6, t=5):
    g = torch.Generator().manual_seed(seed)
    lp = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    old = lp + torch.randn(b, t, generator=g, dtype=torch.float64) * 0.3      # ratios both inside and outside the clip
    behaviour = old + torch.randn(b, t, generator=g, dtype=torch.float64) * 0.5
    ref = lp + torch.randn(b, t, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(b, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, t + 1, (b,), generator=g)
    lengths[0] = t                                                             # at least one full row
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return lp, old, adv, mask, behaviour, ref


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", range(3))
def test_loss_vectorised_equals_loop(loss_type, seed):
    cfg = GRPOConfig(loss_type=loss_type, beta=0.05, tis_cap=1.5, max_completion_length=7)
    lp, old, adv, mask, behaviour, ref = _random_batch(seed)
    counts = _counts(mask)
    loss, _ = policy_loss(lp, old, adv, mask, cfg, behaviour_logprobs=behaviour, ref_logprobs=ref, **counts)
    expected = _loop_loss(lp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), cfg, behaviour.tolist(),
                          ref.tolist(), **counts)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_micro_batch_invariance(loss_type):
    """Summing micro-batch losses normalised by the global counts gives the full-batch gradient."""
    cfg = GRPOConfig(loss_type=loss_type, beta=0.05, tis_cap=1.5, max_completion_length=7)
    lp, old, adv, mask, behaviour, ref = _random_batch(11)
    counts = _counts(mask)

    full = lp.clone().requires_grad_()
    loss_full, _ = policy_loss(full, old, adv, mask, cfg, behaviour_logprobs=behaviour, ref_logprobs=ref, **counts)
    loss_full.backward()

    acc = lp.clone().requires_grad_()
    loss_sum = 0.0
    for sl in (slice(0, 2), slice(2, 3), slice(3, 6)):           # uneven micro-batches
        loss_mb, _ = policy_loss(acc[sl], old[sl], adv[sl], mask[sl], cfg, behaviour_logprobs=behaviour[sl],
                                 ref_logprobs=ref[sl], **counts)
        loss_mb.backward()
        loss_sum += loss_mb.item()
    assert loss_sum == pytest.approx(loss_full.item(), rel=1e-12)
    torch.testing.assert_close(acc.grad, full.grad, rtol=1e-12, atol=1e-14)
    assert full.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_masked_rows_give_zero_loss_and_no_nan(loss_type):
    cfg = GRPOConfig(loss_type=loss_type, beta=0.1, max_completion_length=2)
    # row 1 is fully masked and full of padding garbage (inf / NaN) that must never leak into loss or gradient
    lp = torch.tensor([[-1.0, -2.0], [float("inf"), float("nan")]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.0], [-float("inf"), 0.0]])
    behaviour = torch.tensor([[-1.0, -2.0], [float("nan"), 0.0]])
    ref = torch.tensor([[-1.0, -2.0], [float("nan"), float("inf")]])
    mask = torch.tensor([[True, True], [False, False]])
    loss, stats = policy_loss(lp, old, torch.tensor([0.0, 5.0]), mask, cfg, behaviour_logprobs=behaviour,
                              ref_logprobs=ref, **_counts(mask))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(lp.grad).all() and (lp.grad == 0).all()
    assert all(math.isfinite(v) for v in summarize([stats]).values())
    # a micro-batch with nothing active at all (counts 0) is a zero loss, not 0/0
    none = torch.zeros(2, 2, dtype=torch.bool)
    loss0, stats0 = policy_loss(lp, old, torch.tensor([1.0, 1.0]), none, cfg, behaviour_logprobs=behaviour,
                                ref_logprobs=ref, num_sequences=0, num_tokens=0)
    assert loss0.item() == 0.0 and all(math.isfinite(v) for v in summarize([stats0]).values())


def test_filtering_changes_the_normaliser():
    """Unfiltered zero-variance groups stay in the batch (advantage 0) and dilute the per-sequence mean."""
    rewards, groups = torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    valid = torch.ones(4, dtype=torch.bool)
    mask = torch.ones(4, 2, dtype=torch.bool)
    grads = {}
    for filt in (True, False):
        cfg = GRPOConfig(loss_type="grpo", filter_zero_variance=filt)
        adv, keep = group_advantages(rewards, groups, valid, cfg)
        x = torch.zeros(int(keep.sum()), 2, requires_grad=True)
        policy_loss(x, x.detach(), adv[keep], mask[keep], cfg, **_counts(mask[keep]))[0].backward()
        grads[filt] = x.grad[:2]                     # the mixed group's rows
    assert grads[True].shape == grads[False].shape == (2, 2)
    # 2 sequences in the normaliser instead of 4: the mixed group's gradient doubles
    torch.testing.assert_close(grads[True], 2 * grads[False])
    assert grads[True].abs().sum() > 0


def test_token_logprobs_and_entropy():
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 5.0]]])     # [1, 2, 2]
    targets = torch.tensor([[1, 0]])
    torch.testing.assert_close(token_logprobs(logits, targets), torch.log(torch.tensor([[0.75, 0.5]])))
    ent = entropy_from_logits(logits)
    torch.testing.assert_close(ent, torch.tensor([[-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2)]]))


def test_token_logprobs_and_entropy_at_a_temperature():
    """softmax(z / τ): logits (0, ln 3) at τ = 0.5 are (0, ln 9) at τ = 1 → p = (0.1, 0.9)."""
    logits = torch.tensor([[[0.0, math.log(3.0)], [2.0, 2.0]]])
    targets = torch.tensor([[1, 0]])
    torch.testing.assert_close(token_logprobs(logits, targets, temperature=0.5),
                               torch.log(torch.tensor([[0.9, 0.5]])))
    ent = entropy_from_logits(logits, temperature=0.5)
    torch.testing.assert_close(ent, torch.tensor([[-(0.1 * math.log(0.1) + 0.9 * math.log(0.9)), math.log(2)]]))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(logits, targets, temperature=0.0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_chunked_logprobs_and_gradients_equal_the_full_log_softmax(chunk):
    """The chunked autograd function equals torch's log_softmax, values and gradients, for any chunk size."""
    g = torch.Generator().manual_seed(chunk)
    z = torch.randn(2, 5, 11, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (2, 5), generator=g)
    w = torch.randn(2, 5, generator=g, dtype=torch.float64)
    ref = (z / 0.7).log_softmax(-1).gather(-1, y[..., None])[..., 0]
    out = token_logprobs(z, y, temperature=0.7, chunk=chunk)
    torch.testing.assert_close(out, ref)
    want, = torch.autograd.grad((ref * w).sum(), z)
    got, = torch.autograd.grad((out * w).sum(), z)
    torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, y, 0.7, chunk), (z,))
    torch.testing.assert_close(entropy_from_logits(z, 0.7, chunk), entropy_from_logits(z, 0.7))
    assert token_logprobs(z.to(torch.bfloat16), y).dtype == torch.float32   # bf16 logits, fp32 arithmetic


def test_scoring_at_the_sampling_temperature_is_the_unbiased_policy_gradient():
    """Review F1's two-token example, exactly: x1 ∈ {a, b} with logits (1, 0), reward 1 iff x1 = a; x2 ∈ {c, d}
    with logits (1, 0) after either prefix, irrelevant to the reward. Samples come from q_T ∝ π^(1/T), T = 0.7.
    E_q[(r − E r)·∇ log q_T(x)] (learner at T) equals ∇ E_q[r]; scoring at T = 1 instead puts a gradient on the
    irrelevant second-step logits and shrinks the real one."""
    T = 0.7
    z1 = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64, requires_grad=True)   # after a, after b
    seqs = [(a, b) for a in (0, 1) for b in (0, 1)]
    reward = torch.tensor([1.0 if a == 0 else 0.0 for a, _ in seqs], dtype=torch.float64)

    def seq_logprob(temperature):  # [4] log-density of each two-token sequence, via the learner's function
        logits = torch.stack([torch.stack([z1, z2[a]]) for a, _ in seqs])                # [4, 2, 2]
        return token_logprobs(logits, torch.tensor(seqs), temperature=temperature).sum(-1)

    q = seq_logprob(T).detach().exp()                                                   # the sampling density
    true_grad = torch.autograd.grad((q.new_tensor(0) + (seq_logprob(T).exp() * reward).sum()), (z1, z2))
    adv = reward - (q * reward).sum()
    for temperature, exact in ((T, True), (1.0, False)):
        est = torch.autograd.grad((q * adv * seq_logprob(temperature)).sum(), (z1, z2))
        if exact:
            torch.testing.assert_close(est[0], true_grad[0])
            torch.testing.assert_close(est[1], true_grad[1])                              # 0: x2 is irrelevant
            assert est[1].abs().max() < 1e-12
        else:
            assert est[1].abs().max() > 0.01 and est[0][0] < 0.75 * true_grad[0][0]


def test_zero_variance_is_one_definition():
    """The learner's vectorised filter agrees with acelib.groups on groups at, above and below the tolerance."""
    groups = [[1.0, 1.0 + ZERO_VARIANCE_TOL / 2], [0.0, 2 * ZERO_VARIANCE_TOL], [3.0], [0.2, 0.2, 0.2], [1.0, 0.0]]
    rewards = [r for g in groups for r in g]
    ids = [i for i, g in enumerate(groups) for _ in g]
    _, keep = _adv(rewards, ids, [True] * len(rewards))
    for i, g in enumerate(groups):
        assert all(not k for k, gi in zip(keep.tolist(), ids) if gi == i) == is_zero_variance(g), g


def test_config_validation():
    with pytest.raises(ConfigError, match="loss_type"):
        from_dict(GRPOConfig, {"loss_typ": "dapo"})
    with pytest.raises(ConfigError):
        from_dict(GRPOConfig, {"loss_type": "ppo"})
    with pytest.raises(ConfigError, match="tis_cap"):
        GRPOConfig(tis_cap=0.0)
    assert not GRPOConfig(loss_type="dr_grpo").std_scaling and GRPOConfig().std_scaling
    assert GRPOConfig(loss_type="dr_grpo", scale_rewards="group").std_scaling


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_aggregations_agree_when_every_sequence_has_max_length(loss_type):
    """With every completion exactly max_completion_length long the three normalisers coincide (cross-mode parity)."""
    lp, old, adv, _, behaviour, ref = _random_batch(5, b=4, t=3)
    mask = torch.ones(4, 3, dtype=torch.bool)
    losses = {lt: policy_loss(lp, old, adv, mask, GRPOConfig(loss_type=lt, max_completion_length=3),
                              behaviour_logprobs=behaviour, **_counts(mask))[0].item() for lt in LOSS_TYPES}
    assert losses[loss_type] == pytest.approx(losses["dapo"], rel=1e-12)


def test_summarize_metrics_over_micro_batches_and_updates():
    """Token-weighted means across micro-batches; loss = mean over optimizer updates; IS max = max over all."""
    cfg = GRPOConfig(loss_type="dapo", tis_cap=10.0)
    mask_a, mask_b = torch.tensor([[True, True]]), torch.tensor([[True, False]])
    lp = torch.zeros(1, 2)
    # update 1: micro-batch a (IS weights 2, 1); update 2: micro-batch b (IS weight 4 on its one active token)
    _, sa = policy_loss(lp, lp, torch.tensor([1.0]), mask_a, cfg, num_sequences=1, num_tokens=2,
                        behaviour_logprobs=-torch.log(torch.tensor([[2.0, 1.0]])))
    _, sb = policy_loss(lp, lp, torch.tensor([1.0]), mask_b, cfg, num_sequences=1, num_tokens=1,
                        behaviour_logprobs=-torch.log(torch.tensor([[4.0, 100.0]])))   # masked 100 must not count
    sa["entropy"], sb["entropy"] = torch.tensor(3.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    m = summarize([sa, sb], num_updates=2)
    # losses −(2 + 1)/2 and −4/1, averaged over 2 updates
    assert m["loss"] == pytest.approx((-1.5 - 4.0) / 2)
    assert m["tokens"] == 3 and m["sequences"] == 2
    assert m["entropy"] == pytest.approx(3.5 / 3)
    assert m["is_weight_mean"] == pytest.approx(7 / 3) and m["is_weight_max"] == pytest.approx(4.0)
    assert m["is_capped_frac"] == 0 and m["clip_frac"] == 0 and m["approx_kl"] == 0
    assert summarize([]) == {}


def test_learner_config_validation():
    """From a preset dict: errors name the field; combinations DeepSpeed or transformers would refuse fail early."""
    cfg = from_dict(LearnerConfig, {"lr": 1e-5, "dtype": "bf16", "zero_stage": 3, "adam_betas": [0.9, 0.95]},
                    prefix="learner.")
    assert cfg.adam_betas == (0.9, 0.95) and cfg.dtype == "bf16" and cfg.shared_prompt
    with pytest.raises(ConfigError, match="learner.bf16"):          # the precision field is `dtype`
        from_dict(LearnerConfig, {"bf16": True}, prefix="learner.")
    with pytest.raises(ConfigError, match="learner.grpo"):          # GRPO settings are their own section
        from_dict(LearnerConfig, {"grpo": {"loss_type": "dapo"}}, prefix="learner.")
    with pytest.raises(ConfigError, match="deepspeed_adam"):
        LearnerConfig(zero_stage=2, offload_optimizer=True)
    with pytest.raises(ConfigError, match="zero_stage=3"):
        LearnerConfig(zero_stage=2, offload_params=True)
    with pytest.raises(ConfigError, match="shared_prompt=False"):
        LearnerConfig(gradient_checkpointing=True)
    with pytest.raises(ValueError, match="max_completion_length"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1), torch.ones(1, 1, dtype=torch.bool),
                    GRPOConfig(loss_type="dr_grpo"), num_sequences=1, num_tokens=1)
