"""GRPO learner throughput: the shared-prompt path vs the naive path, and the memory of the log-prob kernel (JSON).

Learner section: `Learner.train_step` on a GRPO-shaped batch (default: SmolLM2-135M, G = 8 completions of 300 tokens
sharing one 900-token prompt, bf16, DeepSpeed ZeRO-0, one update per step, π_old from the training forward), run
once per layout in a fresh subprocess (so peak RSS is per layout). Reported per layout: seconds per update, peak RSS,
and tokens/s counted as the NAIVE path's tokens (G·(P + T) per group: what the work is worth) over that layout's
time, so the ratio is the speed-up. Behaviour log-probs are the model's own (computed once, cached between layouts).

Log-prob section: peak RSS of `token_logprobs` forward + backward on bf16 logits [1, T, V] (V = 151,936, Qwen3's
vocabulary) chunked (the learner's default 1,024 positions) vs unchunked (one float32 [T, V] copy at a time).

    python bench/learner.py [--model smollm2-135m] [--groups 1] [--group-size 8] [--prompt-len 900]
                            [--completion-len 300] [--steps 2] [--logprob-lens 2048 8192]
                            [--layouts naive shared] [--micro-batch 8]

The CPU preset's shapes (a ~1.45k-token debug prompt, ~375-token scripts, micro-batches of 4):
`--prompt-len 1450 --completion-len 375 --layouts shared --micro-batch 4 --logprob-lens` (docs/trainer.md, "Time").
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("DS_BUILD_OPS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/acelib/torch_extensions"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_batch(model: str, groups: int, group_size: int, prompt_len: int, completion_len: int, temperature: float,
               seed: int = 0) -> list:
    """Random-token groups, rewards alternating 1/0 (every group trains); behaviour log-probs are the model's own."""
    import torch
    from transformers import AutoModelForCausalLM

    from acelib.learner import RolloutGroup
    from acelib.learner.grpo import token_logprobs
    from acelib.models import resolve_model_dir
    from acelib.rollout.base import Sample

    net = AutoModelForCausalLM.from_pretrained(resolve_model_dir(model), dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed)
    vocab, out = net.config.vocab_size, []
    for _ in range(groups):
        prompt = torch.randint(10, vocab, (prompt_len,), generator=g).tolist()
        samples = []
        for _ in range(group_size):
            tokens = torch.randint(10, vocab, (completion_len,), generator=g).tolist()
            with torch.no_grad():
                logits = net(torch.tensor([prompt + tokens])).logits[:, prompt_len - 1:-1]
            samples.append(Sample(prompt_ids=prompt, token_ids=tokens, text="", policy_version=0,
                                  logprobs=token_logprobs(logits, torch.tensor([tokens]), temperature)[0].tolist()))
        out.append(RolloutGroup(prompt, samples, [float(i % 2) for i in range(group_size)]))
    return out


def run_layout(args) -> dict:
    """One layout in this process: warm-up step, then `steps` timed steps."""
    import pickle

    from acelib.learner import GRPOConfig, LearnerConfig
    from acelib.learner.engine import Learner

    with open(args.batch_file, "rb") as f:
        batch = pickle.load(f)
    cfg = LearnerConfig(lr=1e-6, dtype=args.dtype, micro_batch_size=args.micro_batch,
                        shared_prompt=args.layout == "shared")
    learner = Learner(args.model, cfg, GRPOConfig(), temperature=args.temperature, seed=0)
    first = learner.train_step(batch)
    runs = [learner.train_step(batch) for _ in range(args.steps)]
    train_s = sum(m["train_s"] for m in runs) / len(runs)
    naive_tokens = sum(len(g.prompt_ids) + len(s.token_ids) for g in batch for s in g.samples)
    return {"layout": args.layout, "micro_batch_size": args.micro_batch, "s_per_update": round(train_s, 2),
            "tokens_computed_per_update": int(runs[0]["tokens_per_s"] * runs[0]["train_s"] + 0.5),
            "naive_equivalent_tokens_per_s": round(naive_tokens / train_s, 1),
            "peak_rss_mib": round(_peak_rss_mib()), "first_step_loss": first["loss"],
            "first_step_grad_norm": first["grad_norm"], "logprob_diff_max": first["logprob_diff_max"]}


def run_logprob_memory(args) -> dict:
    """Peak RSS of the per-token log-probs (forward + backward) and the entropy on bf16 logits [1, T, V] here.

    `chunked`: the learner's (`grpo.token_logprobs` / `entropy_from_logits`, `--chunk` positions at a time);
    `torch`: what the learner did before (float32 copy of the logits, log-softmax via logsumexp under autograd, and
    a full float32 log_softmax + exp for the entropy)."""
    import torch

    from acelib.learner.grpo import entropy_from_logits, token_logprobs
    T, V = args.length, 151_936
    logits = torch.randn(1, T, V, dtype=torch.bfloat16).requires_grad_()
    targets = torch.randint(0, V, (1, T))
    base = _peak_rss_mib()
    t0 = time.perf_counter()
    if args.impl == "chunked":
        logp = token_logprobs(logits, targets, 0.7, args.chunk)
        ent = entropy_from_logits(logits.detach(), 0.7, args.chunk)
    else:
        z = logits.float() / 0.7
        logp = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - z.logsumexp(-1)
        with torch.no_grad():
            lp = z.detach().log_softmax(-1)
            ent = -(lp.exp() * lp).sum(-1)
    (logp.sum() + 0 * ent.sum()).backward()
    return {"T": T, "V": V, "impl": args.impl, "chunk": args.chunk if args.impl == "chunked" else None,
            "logits_bf16_mib": round(T * V * 2 / 2**20), "peak_rss_mib": round(_peak_rss_mib()),
            "peak_over_logits_mib": round(_peak_rss_mib() - base), "seconds": round(time.perf_counter() - t0, 2)}


def _child(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=900)
    ap.add_argument("--completion-len", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--logprob-lens", type=int, nargs="*", default=[2048, 4096, 8192])
    ap.add_argument("--skip-layouts", action="store_true", help="only the log-prob memory section")
    ap.add_argument("--layouts", nargs="+", choices=("naive", "shared"), default=["naive", "shared"],
                    help="which layouts to time (the naive one at the CPU preset's shapes takes ~16 GB)")
    ap.add_argument("--child", choices=("layout", "logprob"), help=argparse.SUPPRESS)
    ap.add_argument("--layout", choices=("naive", "shared"), help=argparse.SUPPRESS)
    ap.add_argument("--micro-batch", type=int, default=8, help="sequences (naive) / completions (shared) per forward")
    ap.add_argument("--batch-file", help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--impl", choices=("chunked", "torch"), default="chunked", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        # DeepSpeed prints to stdout: keep the last stdout line for the JSON by sending the rest to stderr.
        real_stdout = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        result = run_layout(args) if args.child == "layout" else run_logprob_memory(args)
        print(json.dumps(result), file=real_stdout, flush=True)
        return

    import pickle

    import torch
    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(make_batch(args.model, args.groups, args.group_size, args.prompt_len, args.completion_len,
                               args.temperature), f)
    common = ["--model", args.model, "--batch-file", f.name, "--dtype", args.dtype, "--steps", str(args.steps),
              "--temperature", str(args.temperature), "--micro-batch", str(args.micro_batch)]
    try:
        layouts = {} if args.skip_layouts else {
            layout: _child(["--child", "layout", "--layout", layout, *common]) for layout in args.layouts}
    finally:
        os.unlink(f.name)
    # the pre-chunking implementation only up to 4k positions: at 8k it needs ~20 GiB
    memory = [_child(["--child", "logprob", "--length", str(n), "--impl", impl])
              for n in args.logprob_lens for impl in (("chunked", "torch") if n <= 4096 else ("chunked",))]
    print(json.dumps({
        "bench": "learner", "model": args.model, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "cpu": platform.processor() or platform.machine(), "dtype": args.dtype,
        "batch": f"{args.groups} group(s) x G={args.group_size}: {args.prompt_len}-token prompt + "
                 f"{args.completion_len}-token completions",
        "layouts": layouts,
        "shared_over_naive": round(layouts["shared"]["naive_equivalent_tokens_per_s"]
                                   / layouts["naive"]["naive_equivalent_tokens_per_s"], 2)
        if {"naive", "shared"} <= set(layouts) else None,
        "goal_shared_over_naive": 2.5,
        "logprob_memory": memory,
        "wall_s": round(time.perf_counter() - t0, 1),
    }, indent=2), flush=True)


if __name__ == "__main__":
    main()
