"""The DeepSpeed GRPO learner on the tiny random Llama (CPU, single process, gloo)."""
from __future__ import annotations

import glob
import os
import types

import pytest
import torch

pytestmark = pytest.mark.integration

os.environ.setdefault("DS_BUILD_OPS", "0")
deepspeed = pytest.importorskip("deepspeed")

import safetensors.torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from acelib import models  # noqa: E402
from acelib.grpo_config import GRPOConfig  # noqa: E402
from acelib.learner import Learner, LearnerConfig, RolloutGroup  # noqa: E402
from acelib.rollout.base import Sample  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    shm_before = set(glob.glob("/dev/shm/deepspeed_allreduce_buffer_*"))
    yield str(models.materialize("tiny"))
    # DeepSpeed's CPU comm op leaves shared-memory buffers behind; remove only the ones this module created.
    for path in set(glob.glob("/dev/shm/deepspeed_allreduce_buffer_*")) - shm_before:
        os.remove(path)


def _learner(model, **kw) -> Learner:
    grpo = kw.pop("grpo", {})
    return Learner(LearnerConfig(model=model, lr=kw.pop("lr", 1e-3), grpo=GRPOConfig(**grpo), **kw))


def _batch(learner: Learner) -> list[RolloutGroup]:
    """Two mixed-reward groups, one zero-variance group (filtered) and one infra-error sample (masked)."""
    def group(prompt, completions, rewards, masked=None):
        samples = [Sample(prompt_ids=prompt, token_ids=c, logprobs=learner.logprobs(prompt, c) if c else [],
                          text="", policy_version=learner.version) for c in completions]
        return RolloutGroup(prompt_ids=prompt, samples=samples, rewards=rewards, masked=masked or [])
    return [
        group([1, 17, 300, 42], [[51, 52, 53], [60, 61], [70, 71, 72, 73, 74], [80]], [1.0, 0.0, 0.0, 1.0]),
        group([2, 9], [[90, 91], [92], [93, 94, 95], []], [0.0, 1.0, 0.5, 0.0], masked=[False, False, False, True]),
        group([3, 4, 5], [[100], [101, 102]], [1.0, 1.0]),
    ]


def _params(learner: Learner) -> dict[str, torch.Tensor]:
    return learner.state_dict()


def test_steps_change_every_parameter_and_lower_the_loss(tiny):
    # bypass mode: π_old stays the version-0 behaviour policy, so the surrogate loss is comparable across steps
    # and a wide clip keeps gradients flowing for the 3 steps (the default clip zeroes them once ratios leave it)
    learner = _learner(tiny, lr=3e-4, micro_batch_size=3, grpo={"old_logprobs": "behaviour", "epsilon_high": 10.0,
                                                                "epsilon_low": 0.9})
    batch = _batch(learner)
    before = _params(learner)
    best, worst = batch[0].samples[0], batch[0].samples[1]          # rewards 1 and 0 in the same group
    metrics = [learner.train_step(batch) for _ in range(3)]
    after = _params(learner)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    losses = [m["loss"] for m in metrics]
    assert losses[-1] < losses[0] - 1.0, losses
    assert metrics[0]["approx_kl"] == pytest.approx(0.0, abs=1e-5)   # ratio 1 on the first update
    assert metrics[0]["groups_trained"] == 2 and metrics[0]["samples_masked"] == 1
    assert learner.version == 3 and all(m["tokens_per_s"] > 0 and m["grad_norm"] > 0 for m in metrics)
    # the policy moved toward the rewarded response and away from the unrewarded one
    gain = lambda s: sum(learner.logprobs(batch[0].prompt_ids, s.token_ids)) - sum(s.logprobs)  # noqa: E731
    assert gain(best) > 0 > gain(worst)
    # all groups zero-variance → nothing to learn: no update, no new version
    flat = [RolloutGroup(g.prompt_ids, g.samples, [1.0] * len(g.samples), g.masked) for g in batch]
    skipped = learner.train_step(flat)
    assert skipped["skipped"] == 1 and learner.version == 3
    assert all(torch.equal(v, _params(learner)[k]) for k, v in after.items())


def test_batched_logprobs_match_single_sequences(tiny):
    """Left padding + explicit positions: a sequence scores the same alone and inside a padded micro-batch."""
    learner = _learner(tiny, micro_batch_size=8)
    seqs = [{"prompt": [1, 17, 300, 42], "tokens": [51, 52, 53]}, {"prompt": [2], "tokens": [90, 91, 92, 93, 94]},
            {"prompt": [3, 4, 5, 6, 7, 8], "tokens": [100]}]
    learner._score(seqs, "logp")
    for s in seqs:
        single = torch.tensor(learner.logprobs(s["prompt"], s["tokens"]))
        torch.testing.assert_close(s["logp"].cpu(), single, atol=1e-5, rtol=1e-5)
    assert all(x < 0 for s in seqs for x in s["logp"].tolist())


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batching_and_zero_stages_give_the_same_update(tiny, loss_type):
    """One step with micro-batches of 4 (ZeRO-0) ≡ micro-batches of 1 (ZeRO-2) ≡ micro-batches of 3 (ZeRO-3)."""
    grpo = {"loss_type": loss_type, "max_completion_length": 8}
    results = []
    for stage, mbs in [(0, 4), (2, 1)] + ([(3, 3)] if loss_type == "dapo" else []):
        # adam_eps=1 makes the first update lr·g/(|g|+1), smooth in g; with the default eps it is ≈ lr·sign(g), and
        # near-zero gradients flip sign under fp32 summation-order noise, moving by ±lr for no real reason.
        learner = _learner(tiny, zero_stage=stage, micro_batch_size=mbs, adam_eps=1.0, grpo=grpo)
        batch = _batch(learner)
        metrics = learner.train_step(batch)
        results.append((stage, metrics, _params(learner)))
    (_, m0, p0), *others = results
    for stage, m, p in others:
        assert m["loss"] == pytest.approx(m0["loss"], rel=1e-4, abs=1e-6), stage
        assert m["grad_norm"] == pytest.approx(m0["grad_norm"], rel=1e-3), stage
        for k in p0:
            torch.testing.assert_close(p[k], p0[k], atol=1e-7, rtol=1e-5)


def test_checkpoint_round_trip_continues_identically(tiny, tmp_path):
    kw = dict(zero_stage=2, micro_batch_size=2, ppo_epochs=2, num_minibatches=2, lr_schedule="cosine",
              warmup_steps=1, total_steps=10, seed=7)
    learner = _learner(tiny, **kw)
    batch = _batch(learner)
    learner.train_step(batch)
    learner.save_checkpoint(tmp_path / "ckpt")
    torch.manual_seed(1234)          # RNG state after the save must come back from the checkpoint, not from here
    expected = [learner.train_step(batch) for _ in range(2)]
    expected_params = _params(learner)

    fresh = _learner(tiny, **{**kw, "seed": 99})    # a different seed: everything must come from the checkpoint
    fresh.load_checkpoint(tmp_path / "ckpt")
    assert fresh.version == 1
    got = [fresh.train_step(batch) for _ in range(2)]
    for e, g in zip(expected, got):
        for key in ("loss", "grad_norm", "lr", "clip_frac", "approx_kl", "entropy"):
            assert g[key] == e[key], key
    for k, v in expected_params.items():
        assert torch.equal(v, _params(fresh)[k]), k
    assert fresh.version == learner.version == 3


def test_exports_reload_as_the_same_policy(tiny, tmp_path):
    learner = _learner(tiny, zero_stage=3, micro_batch_size=4)
    batch = _batch(learner)
    learner.train_step(batch)
    prompt, tokens = batch[0].prompt_ids, batch[0].samples[2].token_ids
    want = torch.tensor(learner.logprobs(prompt, tokens))

    hf_dir = learner.export_hf(tmp_path / "hf")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in hf_dir.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1:-1]
    got = logits.log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    weights = safetensors.torch.load_file(learner.export_weights(tmp_path / "shm") / "model.safetensors")
    assert "lm_head.weight" not in weights                          # tied to the embedding
    sd = model.state_dict()
    assert set(weights) == set(sd) - {"lm_head.weight"}
    for k, v in weights.items():
        assert torch.equal(v, sd[k]), k
    # the weight-sync file alone loads into the original (untrained) HF model, which re-ties lm_head to it
    base = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    missing, unexpected = base.load_state_dict(weights, strict=False)
    assert set(missing) <= {"lm_head.weight"} and not unexpected
    assert base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        torch.testing.assert_close(base(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1:-1], logits)


def test_empty_and_masked_samples():
    """An empty (unmasked) completion keeps its reward in the group statistics but is not trained on; a masked
    sample is excluded from both. No model needed: `_sequences` only uses the config and the version."""
    def sample(tokens):
        return Sample(prompt_ids=[1], token_ids=tokens, logprobs=[-1.0] * len(tokens), text="", policy_version=0)
    group = RolloutGroup([1], [sample([5, 6]), sample([]), sample([7]), sample([8])], [1.0, 0.0, 0.5, 9.0],
                         masked=[False, False, False, True])
    fake = types.SimpleNamespace(version=2, cfg=LearnerConfig(grpo=GRPOConfig(scale_rewards="none")))
    seqs, info = Learner._sequences(fake, [group])
    assert [s["tokens"] for s in seqs] == [[5, 6], [7]]
    assert [s["advantage"] for s in seqs] == pytest.approx([0.5, 0.0])     # group mean (1 + 0 + 0.5) / 3
    assert info["samples_masked"] == 1 and info["reward_mean"] == pytest.approx(0.5)
    assert info["staleness_max"] == 2 and info["groups_trained"] == 1


def test_single_update_takes_pi_old_from_the_training_forward(tiny):
    """ppo_epochs = num_minibatches = 1: π_old comes from the training forward (no scoring pass), and the update
    equals bypass mode fed with π_old re-scored exactly (the batch's behaviour log-probs are the learner's own)."""
    shortcut = _learner(tiny, micro_batch_size=2, adam_eps=1.0)
    bypass = _learner(tiny, micro_batch_size=2, adam_eps=1.0, grpo={"old_logprobs": "behaviour"})
    scored = []
    original = shortcut._score
    shortcut._score = lambda seqs, key, model=None: (scored.append(key), original(seqs, key, model))[1]
    batch = _batch(shortcut)
    scored.clear()
    m1 = shortcut.train_step(batch)
    m2 = bypass.train_step(batch)
    assert scored == []
    assert m1["loss"] == pytest.approx(m2["loss"], rel=1e-4, abs=1e-6)
    assert m1["approx_kl"] == pytest.approx(0.0, abs=1e-6) and m1["clip_frac"] == 0.0
    assert m1["is_weight_mean"] == pytest.approx(1.0, abs=1e-4)
    p1, p2 = _params(shortcut), _params(bypass)
    for k in p1:
        torch.testing.assert_close(p1[k], p2[k], atol=1e-7, rtol=1e-5)
