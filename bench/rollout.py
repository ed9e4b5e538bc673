"""Rollout throughput: SmolLM2-135M, 128 new tokens per sequence, vLLM vs transformers in one run.

Two shapes per backend, same number of sequences (16):
- raw batch: 16 different chat prompts × 1 sample, one `generate` call;
- in-loop: what a rollout worker does, one prompt × G = 8 samples per call (`generate([prompt], n=8)`), two calls.
  vLLM serves n = 8 as one request whose samples share the prompt's prefill (`enable_prefix_caching`);
- batched groups: the same two groups asked for at once from two threads, as a worker's two rollouts do, through
  `acelib.rollout.BatchedGenerator` (one engine call for both).
Prints one JSON object: generated tokens/s per backend and shape (sampling at temperature 1; a response that ends on
EOS before 128 tokens counts only its tokens), in-loop / raw (goal ≥ 0.8), the vLLM/hf ratio, engine start-up time
and weight-sync latency (an fp32 `model.safetensors` as the CPU learner exports it, in /dev/shm). Run:
`.venv/bin/python bench/rollout.py` (the `__main__` guard is required: vLLM spawns processes).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

PROMPTS = 16
NEW_TOKENS = 128
GROUP = 8
# stdout carries only the JSON result; vLLM logs to stdout by default (its engine processes inherit this).
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
TOPICS = ["pandas groupby", "a logistic regression baseline", "k-fold cross-validation", "reading a CSV",
          "feature scaling", "gradient boosting", "a confusion matrix", "train/test split"]


def prompts() -> list:
    return [[{"role": "user", "content": f"Write a short Python example of {TOPICS[i % len(TOPICS)]} (variant {i})."}]
            for i in range(PROMPTS)]


def export_fp32(model_dir: str) -> str:
    """The learner's export format: one fp32 model.safetensors without the tied lm_head."""
    import safetensors.torch
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    d = tempfile.mkdtemp(prefix="acelib-bench-sync-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    safetensors.torch.save_file(state, os.path.join(d, "model.safetensors"))
    return d


def batched_groups(engine) -> tuple[float, int, int]:
    """The in-loop groups requested concurrently, one thread each, through the rollout workers' BatchedGenerator."""
    import threading

    from acelib.rollout import BatchedGenerator, SamplingParams

    gen = BatchedGenerator(engine, window_s=0.5, max_requests=PROMPTS // GROUP)
    groups: list = []
    threads = [threading.Thread(target=lambda p=p: groups.append(
        gen.generate(p, SamplingParams(temperature=1.0, max_new_tokens=NEW_TOKENS), GROUP)))
        for p in prompts()[:PROMPTS // GROUP]]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sum(len(s.token_ids) for g in groups for s in g), gen.engine_calls


def run(backend: str, model_dir: str, sync_dir: str) -> dict:
    from acelib.rollout import RolloutConfig, SamplingParams, make_engine

    t0 = time.perf_counter()
    engine = make_engine(RolloutConfig(), model_dir, backend=backend, seed=0)
    startup = time.perf_counter() - t0
    try:
        engine.generate(prompts()[:2], SamplingParams(max_new_tokens=8, seed=0))  # warm-up
        t0 = time.perf_counter()
        out = engine.generate(prompts(), SamplingParams(temperature=1.0, max_new_tokens=NEW_TOKENS))
        gen_s = time.perf_counter() - t0
        tokens = sum(len(g[0].token_ids) for g in out)
        t0 = time.perf_counter()
        loop_tokens = 0
        for p in prompts()[:PROMPTS // GROUP]:
            group = engine.generate([p], SamplingParams(temperature=1.0, max_new_tokens=NEW_TOKENS), n=GROUP)[0]
            loop_tokens += sum(len(s.token_ids) for s in group)
        loop_s = time.perf_counter() - t0
        batched_s, batched_tokens, calls = batched_groups(engine)
        t0 = time.perf_counter()
        engine.sync_weights(sync_dir, 1)
        sync_s = time.perf_counter() - t0
    finally:
        engine.close()
    raw, loop = tokens / gen_s, loop_tokens / loop_s
    return {"raw_batch": {"sequences": PROMPTS, "tokens": tokens, "seconds": round(gen_s, 2),
                          "tokens_per_s": round(raw, 1)},
            "in_loop": {"sequences": PROMPTS, "calls": PROMPTS // GROUP, "n_per_call": GROUP, "tokens": loop_tokens,
                        "seconds": round(loop_s, 2), "tokens_per_s": round(loop, 1)},
            "batched_groups": {"sequences": PROMPTS, "threads": PROMPTS // GROUP, "engine_calls": calls,
                               "tokens": batched_tokens, "seconds": round(batched_s, 2),
                               "tokens_per_s": round(batched_tokens / batched_s, 1)},
            "batched_over_in_loop": round(batched_tokens / batched_s / loop, 2),
            "in_loop_over_raw": round(loop / raw, 2), "tokens_per_s": round(raw, 1),
            "startup_s": round(startup, 1), "sync_weights_s": round(sync_s, 2), "dtype": engine.dtype}


def main() -> None:
    from acelib.models import materialize
    from acelib.rollout import choose_backend

    model_dir = str(materialize("smollm2-135m"))
    sync_dir = export_fp32(model_dir)
    try:
        result = {"model": "smollm2-135m", "prompts": PROMPTS, "max_new_tokens": NEW_TOKENS, "temperature": 1.0,
                  "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "auto_backend": choose_backend("auto"),
                  "goal_in_loop_over_raw": 0.8}
        backends = (["vllm"] if choose_backend("auto") == "vllm" else []) + ["hf"]
        for b in backends:
            result[b] = run(b, model_dir, sync_dir)
            print(json.dumps({b: result[b]}), file=sys.stderr, flush=True)  # partial result, in case of a kill
        if "vllm" in result:
            result["vllm_over_hf"] = round(result["vllm"]["tokens_per_s"] / result["hf"]["tokens_per_s"], 2)
    finally:
        shutil.rmtree(sync_dir, ignore_errors=True)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
