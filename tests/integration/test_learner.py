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
from acelib.learner import GRPOConfig, LearnerConfig, RolloutGroup, TrainSeq  # noqa: E402
from acelib.learner import grpo as G  # noqa: E402
from acelib.learner.engine import Learner, disable_dropout  # noqa: E402
from acelib.learner.packing import micro_batches  # noqa: E402
from acelib.rollout.base import Sample  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    shm_before = set(glob.glob("/dev/shm/deepspeed_allreduce_buffer_*"))
    yield str(models.materialize("tiny"))
    # DeepSpeed's CPU comm op leaves shared-memory buffers behind; remove only the ones this module created.
    for path in set(glob.glob("/dev/shm/deepspeed_allreduce_buffer_*")) - shm_before:
        os.remove(path)


def _learner(model, **kw) -> Learner:
    grpo, temperature, seed = kw.pop("grpo", {}), kw.pop("temperature", 1.0), kw.pop("seed", 0)
    return Learner(model, LearnerConfig(lr=kw.pop("lr", 1e-3), **kw), GRPOConfig(**grpo), temperature=temperature,
                   seed=seed)


def _batch(learner: Learner) -> list[RolloutGroup]:
    """Two mixed-reward groups, one zero-variance group (filtered) and one infra-error sample (masked)."""
    def group(prompt, completions, rewards, masked=None):
        samples = [Sample(prompt_ids=prompt, token_ids=c, logprobs=learner.logprobs(prompt, c) if c else [],
                          text="", policy_version=learner.policy_version) for c in completions]
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
    assert learner.policy_version == 3 and all(m["tokens_per_s"] > 0 and m["grad_norm"] > 0 for m in metrics)
    # the batch's behaviour log-probs are the learner's own: the diagnostic sees no mismatch before step 1
    assert metrics[0]["logprob_diff_max"] < 1e-4 and metrics[1]["logprob_diff_mean"] > 1e-3
    # the policy moved toward the rewarded response and away from the unrewarded one
    gain = lambda s: sum(learner.logprobs(batch[0].prompt_ids, s.token_ids)) - sum(s.logprobs)  # noqa: E731
    assert gain(best) > 0 > gain(worst)
    # all groups zero-variance → nothing to learn: no update, no new version
    flat = [RolloutGroup(g.prompt_ids, g.samples, [1.0] * len(g.samples), g.masked) for g in batch]
    skipped = learner.train_step(flat)
    assert skipped["skipped"] == 1 and learner.policy_version == 3
    assert all(torch.equal(v, _params(learner)[k]) for k, v in after.items())


@pytest.mark.parametrize("shared", [False, True])
def test_batched_logprobs_match_single_sequences(tiny, shared):
    """Left padding + explicit positions, or one shared prompt: a sequence scores the same alone and batched."""
    learner = _learner(tiny, micro_batch_size=8, shared_prompt=shared, temperature=0.7)
    prompts = [[1, 17, 300, 42], [1, 17, 300, 42], [2], [3, 4, 5, 6, 7, 8]]
    completions = [[51, 52, 53], [51, 60], [90, 91, 92, 93, 94], [100]]
    seqs = [TrainSeq(index=i, group=g, prompt=p, tokens=c, behaviour=[], reward=0.0, valid=True, policy_version=0)
            for i, (g, p, c) in enumerate(zip([0, 0, 1, 2], prompts, completions))]
    learner._score(seqs, "old")
    for s in seqs:
        single = torch.tensor(learner.logprobs(s.prompt, s.tokens))
        torch.testing.assert_close(s.old.cpu(), single, atol=1e-5, rtol=1e-5)
    assert all(x < 0 for s in seqs for x in s.old.tolist())


def _train_seqs(batch: list[RolloutGroup], temperature: float) -> list[TrainSeq]:
    """The learner's view of `batch`: advantages from the groups, behaviour log-probs as π_old and π_ref stand-ins."""
    from acelib.learner.batch import flatten
    seqs = [s for s in flatten(batch) if s.valid and s.tokens]
    adv, _ = G.group_advantages(torch.tensor([s.reward for s in flatten(batch)], dtype=torch.float64),
                                torch.tensor([s.group for s in flatten(batch)]),
                                torch.tensor([s.valid for s in flatten(batch)]), GRPOConfig())
    by_index = dict(enumerate(adv.tolist()))
    for s in seqs:
        s.advantage = by_index[s.index]
        s.old = torch.tensor(s.behaviour) + 0.01 * (s.index % 3)     # off-policy enough for TIS and clipping to act
        s.ref = torch.tensor(s.behaviour) - 0.02
    return seqs


@pytest.mark.parametrize("grpo", [{"loss_type": "grpo"}, {"loss_type": "dr_grpo", "max_completion_length": 8},
                                  {"loss_type": "dapo", "beta": 0.05, "tis_cap": 1.5},
                                  {"loss_type": "dapo", "old_logprobs": "behaviour", "tis_cap": None}])
def test_shared_prompt_path_equals_naive_loss_and_gradients(tiny, grpo):
    """The prompt's forward once per group (KV cache in the graph) ≡ every completion re-running its prompt:
    same loss and same gradient on every parameter (to round-off), for every GRPO variant."""
    cfg, temperature = GRPOConfig(**grpo), 0.7
    learner = _learner(tiny, temperature=temperature)     # only to make a batch with the model's own log-probs
    seqs = _train_seqs(_batch(learner), temperature)
    # float64, though Llama's RMSNorm still computes in float32: the two paths sum the prompt's gradient in different
    # orders, so they agree to ~1e-7 relative here (~1e-5 in an fp32 model), the precision of those norms.
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float64)
    disable_dropout(model)
    n_seq, n_tok = len(seqs), sum(len(s.tokens) for s in seqs)
    results = {}
    for shared in (False, True):
        model.zero_grad()
        total = 0.0
        for mb in micro_batches(seqs, 3, shared, torch.device("cpu")):
            logp, _ = mb.logprobs(model, temperature, chunk=2)
            f64 = torch.float64
            loss, _ = G.policy_loss(logp, mb.grid([s.old for s in mb.seqs], f64), mb.advantages().double(), mb.mask,
                                    cfg, num_sequences=n_seq, num_tokens=n_tok,
                                    behaviour_logprobs=mb.grid([s.behaviour for s in mb.seqs], f64),
                                    ref_logprobs=mb.grid([s.ref for s in mb.seqs], f64))
            loss.backward()
            total += float(loss)
        results[shared] = (total, {k: p.grad.clone() for k, p in model.named_parameters()})
    (loss_n, grads_n), (loss_s, grads_s) = results[False], results[True]
    assert loss_s == pytest.approx(loss_n, rel=1e-7, abs=1e-9)
    assert any(g.abs().max() > 0 for g in grads_n.values())
    for k in grads_n:
        err = float((grads_s[k] - grads_n[k]).norm() / grads_n[k].norm().clamp(min=1e-300))
        assert err < 1e-6, (k, err)


def test_dropout_is_off_whatever_the_config_calls_it():
    """GPT-2 names its dropouts *_pdrop (nn.Dropout modules), Llama reads a float attention_dropout attribute:
    both are zeroed, so a train-mode forward is deterministic."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, resid_pdrop=0.5,
                                      embd_pdrop=0.5, attn_pdrop=0.5))
    llama = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=64,
                                         attention_dropout=0.5))
    ids = torch.randint(0, 64, (2, 9))
    for model in (gpt2, llama):
        assert disable_dropout(model) > 0
        model.train()
        torch.testing.assert_close(model(ids).logits, model(ids).logits, atol=0, rtol=0)
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in llama.model.layers)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batching_and_zero_stages_give_the_same_update(tiny, loss_type):
    """One step with micro-batches of 4 (ZeRO-0) ≡ micro-batches of 1 (ZeRO-2) ≡ micro-batches of 3 (ZeRO-3)."""
    grpo = {"loss_type": loss_type, "max_completion_length": 8}
    results = []
    for stage, mbs in [(0, 4), (2, 1)] + ([(3, 3)] if loss_type == "dapo" else []):
        # adam_eps=1 makes the first update lr·g/(|g|+1), smooth in g; with the default eps it is ≈ lr·sign(g), and
        # near-zero gradients flip sign under fp32 summation-order noise, moving by ±lr for no real reason.
        learner = _learner(tiny, zero_stage=stage, micro_batch_size=mbs, adam_eps=1.0, grpo=grpo,
                           shared_prompt=stage != 2, temperature=0.7)
        batch = _batch(learner)
        metrics = learner.train_step(batch)
        results.append((stage, metrics, _params(learner)))
    (_, m0, p0), *others = results
    for stage, m, p in others:
        assert m["loss"] == pytest.approx(m0["loss"], rel=1e-4, abs=1e-5), stage
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
    assert fresh.policy_version == 1
    got = [fresh.train_step(batch) for _ in range(2)]
    for e, g in zip(expected, got):
        for key in ("loss", "grad_norm", "lr", "clip_frac", "approx_kl", "entropy"):
            assert g[key] == e[key], key
    for k, v in expected_params.items():
        assert torch.equal(v, _params(fresh)[k]), k
    assert fresh.policy_version == learner.policy_version == 3


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
    fake = types.SimpleNamespace(policy_version=2, grpo=GRPOConfig(scale_rewards="none"))
    seqs, info = Learner._sequences(fake, [group])
    assert [s.tokens for s in seqs] == [[5, 6], [7]]
    assert [s.advantage for s in seqs] == pytest.approx([0.5, 0.0])     # group mean (1 + 0 + 0.5) / 3
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


def test_a_stale_extension_build_lock_is_cleared_and_a_held_one_kept(tmp_path):
    """A build killed mid-way leaves `<op>/lock` and later loads would wait on it forever; a lock a live builder
    holds open (torch's FileBaton keeps its fd) must stay."""
    import subprocess
    import sys
    import time

    from acelib.learner.engine import clear_stale_build_locks
    (tmp_path / "dead_op").mkdir()
    (tmp_path / "dead_op" / "lock").write_text("")
    (tmp_path / "live_op").mkdir()
    held = tmp_path / "live_op" / "lock"
    holder = subprocess.Popen([sys.executable, "-c", f"import os, time; os.open({str(held)!r}, os.O_CREAT | os.O_EXCL);"
                                                     " print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert clear_stale_build_locks(tmp_path) == [(tmp_path / "dead_op" / "lock").resolve()]
        assert held.exists() and not (tmp_path / "dead_op" / "lock").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert clear_stale_build_locks(tmp_path) == [held.resolve()]     # its builder is gone now
