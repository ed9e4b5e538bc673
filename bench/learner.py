"""GRPO learner throughput: DeepSpeed engine vs a plain torch AdamW loop, same model, batch and loss (JSON out).

Tokens/s counts prompt + completion tokens through forward + backward + optimizer step (the old-log-prob pass is
excluded: bypass mode for both, π_old := the behaviour log-probs, which are the model's own so ratios start at 1).
Both sides see the same batch and the same advantages and compute the same loss (check: the first-step losses and
gradient norms agree). Usage: python bench/learner.py [--model smollm2-135m] [--steps 3] [--stages 0 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

# DeepSpeed logs and prints to stdout; keep stdout for the JSON alone by pointing fd 1 at stderr for the run.
_json_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

os.environ.setdefault("DS_BUILD_OPS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/acelib/torch_extensions"))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from acelib import grpo  # noqa: E402
from acelib.grpo_config import GRPOConfig  # noqa: E402
from acelib.learner import Learner, LearnerConfig, RolloutGroup, _MicroBatch, resolve_model  # noqa: E402
from acelib.rollout.base import Sample  # noqa: E402


def make_batch(net, num_seqs: int, prompt_len: int, completion_len: int, seed: int = 0) -> list[RolloutGroup]:
    """Groups of 2 random sequences with rewards 1/0 (every group trains); behaviour log-probs are `net`'s own."""
    g = torch.Generator().manual_seed(seed)
    vocab = net.config.vocab_size
    groups = []
    for _ in range(num_seqs // 2):
        prompt = torch.randint(10, vocab, (prompt_len,), generator=g).tolist()
        samples = []
        for _ in range(2):
            tokens = torch.randint(10, vocab, (completion_len,), generator=g).tolist()
            mb = _MicroBatch([{"prompt": prompt, "tokens": tokens}], torch.device("cpu"))
            with torch.no_grad():
                logits = net(input_ids=mb.input_ids, logits_to_keep=mb.T + 1).logits[:, :-1]
            samples.append(Sample(prompt_ids=prompt, token_ids=tokens, text="", policy_version=0,
                                  logprobs=grpo.token_logprobs(logits, mb.targets)[0].tolist()))
        groups.append(RolloutGroup(prompt_ids=prompt, samples=samples, rewards=[1.0, 0.0]))
    return groups


def bench_deepspeed(model: str, batch, steps: int, stage: int, mbs: int) -> dict:
    learner = Learner(LearnerConfig(model=model, lr=1e-6, zero_stage=stage, micro_batch_size=mbs,
                                    grpo=GRPOConfig(old_logprobs="behaviour")))
    first = learner.train_step(batch)                                      # warm-up
    runs = [learner.train_step(batch) for _ in range(steps)]
    tokens = sum(m["tokens_per_s"] * m["train_s"] for m in runs)
    train_s = sum(m["train_s"] for m in runs)
    learner.close()
    return {"zero_stage": stage, "tokens_per_s": tokens / train_s, "s_per_step": train_s / steps,
            "first_step_loss": first["loss"], "first_step_grad_norm": first["grad_norm"]}


def bench_plain(net, batch, steps: int, mbs: int) -> dict:
    """The same update without DeepSpeed: HF model, torch AdamW, clip_grad_norm_, identical loss code."""
    cfg = GRPOConfig(old_logprobs="behaviour")
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-6)
    rewards = torch.tensor([r for g in batch for r in g.rewards], dtype=torch.float64)
    group_ids = torch.tensor([i for i, g in enumerate(batch) for _ in g.samples])
    adv, _ = grpo.group_advantages(rewards, group_ids, torch.ones(len(rewards), dtype=torch.bool), cfg)
    seqs = [{"prompt": g.prompt_ids, "tokens": s.token_ids, "old": s.logprobs}
            for g in batch for s in g.samples]
    for s, a in zip(seqs, adv.tolist()):
        s["advantage"] = a
    num_tokens = sum(len(s["tokens"]) for s in seqs)

    def step() -> tuple[int, float]:
        tokens, total = 0, 0.0
        for i in range(0, len(seqs), mbs):
            mb = _MicroBatch(seqs[i:i + mbs], torch.device("cpu"))
            logits = net(input_ids=mb.input_ids, attention_mask=mb.attention_mask, position_ids=mb.position_ids,
                         logits_to_keep=mb.T + 1).logits[:, :-1]
            logp = grpo.token_logprobs(logits, mb.targets)
            loss, _ = grpo.policy_loss(logp, mb.grid("old"), torch.tensor([s["advantage"] for s in mb.seqs]),
                                       mb.mask, cfg, num_sequences=len(seqs), num_tokens=num_tokens)
            loss.backward()
            tokens += int(mb.attention_mask.sum())
            total += loss.item()
        norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return tokens, total, norm

    _, first_loss, first_norm = step()                                       # warm-up
    t0, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += step()[0]
    dt = time.perf_counter() - t0
    return {"tokens_per_s": tokens / dt, "s_per_step": dt / steps, "first_step_loss": first_loss,
            "first_step_grad_norm": first_norm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seqs", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--completion-len", type=int, default=64)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--stages", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    net = AutoModelForCausalLM.from_pretrained(resolve_model(args.model), dtype=torch.float32).eval()
    net.config.use_cache = False
    batch = make_batch(net, args.seqs, args.prompt_len, args.completion_len)
    plain = bench_plain(net, batch, args.steps, args.micro_batch)
    del net
    ds = [bench_deepspeed(args.model, batch, args.steps, s, args.micro_batch) for s in args.stages]
    print(json.dumps({
        "bench": "learner", "model": args.model, "device": "cpu" if not torch.cuda.is_available() else "cuda",
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "batch": f"{args.seqs} x ({args.prompt_len} prompt + {args.completion_len} completion) tokens",
        "micro_batch": args.micro_batch, "timed_steps": args.steps, "dtype": "fp32",
        "plain_torch_adamw": plain,
        "deepspeed": ds,
        "deepspeed_over_plain_time_ratio": {f"zero{d['zero_stage']}": d["s_per_step"] / plain["s_per_step"]
                                            for d in ds},
        "wall_s": time.perf_counter() - t0,
    }, indent=2), file=_json_out, flush=True)


if __name__ == "__main__":
    main()
