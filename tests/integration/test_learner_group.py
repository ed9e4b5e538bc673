"""The learner as a Ray actor group: 2 CPU ranks (gloo) under DeepSpeed ZeRO-3 train like 1 rank, and a 2-rank
checkpoint resumes on 2 ranks exactly."""
from __future__ import annotations

import os

import pytest
import torch

pytestmark = pytest.mark.integration

ray = pytest.importorskip("ray")
pytest.importorskip("deepspeed")

import safetensors.torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from acelib import models  # noqa: E402
from acelib.learner import GRPOConfig, LearnerConfig, RolloutGroup  # noqa: E402
from acelib.learner.grpo import token_logprobs  # noqa: E402
from acelib.rollout.base import Sample  # noqa: E402
from acelib.trainer.learner_group import LearnerGroup  # noqa: E402

TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def cluster():
    env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DS_BUILD_OPS", "TORCH_EXTENSIONS_DIR",
                                      "ACELIB_CACHE_DIR") if k in os.environ}
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def tiny():
    return str(models.materialize("tiny"))


def _batch(model_dir: str) -> list[RolloutGroup]:
    """Three groups (5 shared-prompt micro-batches of ≤ 2 completions: uneven across 2 ranks, so one rank pads);
    behaviour log-probs are the model's own at the sampling temperature."""
    net = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def sample(prompt, tokens):
        with torch.no_grad():
            logits = net(torch.tensor([prompt + tokens])).logits[:, len(prompt) - 1:-1]
        lp = token_logprobs(logits, torch.tensor([tokens]), TEMPERATURE)[0].tolist()
        return Sample(prompt_ids=prompt, token_ids=tokens, logprobs=lp, text="", policy_version=0)

    spec = [([1, 17, 300, 42], [[51, 52, 53], [60, 61], [70, 71, 72, 73], [80]], [1.0, 0.0, 0.0, 1.0]),
            ([2, 9], [[90, 91], [92], [93, 94, 95]], [0.0, 1.0, 0.5]),
            ([3, 4, 5], [[100], [101, 102], [103]], [1.0, 0.0, 0.2])]
    return [RolloutGroup(p, [sample(p, c) for c in comps], rewards) for p, comps, rewards in spec]


def _group(model_dir, ranks, tmp_path, name):
    # adam_eps=1 makes the first update lr·g/(|g|+1), smooth in g (the default eps gives ≈ lr·sign(g), which flips
    # on near-zero gradients under fp32 summation-order noise).
    cfg = LearnerConfig(lr=1e-2, zero_stage=3, micro_batch_size=2, adam_eps=1.0, dtype="fp32")
    return LearnerGroup(ranks, model_dir, cfg, GRPOConfig(), temperature=TEMPERATURE, seed=0,
                        weights_root=str(tmp_path / f"weights-{name}"), torch_threads=1, start_timeout_s=600)


def _weights(group: LearnerGroup) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(os.path.join(group.call("export_weights"), "model.safetensors"))


def test_two_zero3_ranks_update_like_one_and_resume_exactly(cluster, tiny, tmp_path):
    batch = _batch(tiny)
    one = _group(tiny, 1, tmp_path, "one")
    m1 = one.call("train_step", batch)
    w1 = _weights(one)
    one.close()

    two = _group(tiny, 2, tmp_path, "two")
    m2 = two.call("train_step", batch)
    w2 = _weights(two)
    assert m2["ranks"] == 2 and m1["ranks"] == 1
    # metrics describe the whole batch on both (summed over the ranks' shares)
    assert m2["tokens"] == m1["tokens"] and m2["groups_trained"] == m1["groups_trained"] == 3
    assert m2["loss"] == pytest.approx(m1["loss"], abs=1e-5)
    assert m2["grad_norm"] == pytest.approx(m1["grad_norm"], rel=1e-4)
    assert m1["logprob_diff_max"] < 1e-4 and m2["logprob_diff_max"] < 1e-4
    base = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).state_dict()
    assert any(not torch.equal(w1[k], base[k]) for k in w1)              # the step did move the weights
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], atol=1e-6, rtol=1e-5)

    # a 2-rank checkpoint resumes on 2 ranks exactly
    ckpt = tmp_path / "ckpt"
    two.call("save_checkpoint", str(ckpt))
    assert len(list(ckpt.glob("v1/rng_rank*.pt"))) == 2
    two.call("train_step", batch)
    expected = _weights(two)
    two.close()
    again = _group(tiny, 2, tmp_path, "again")
    assert again.call("load_checkpoint", str(ckpt)) == 1
    again.call("train_step", batch)
    got = _weights(again)
    again.close()
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
