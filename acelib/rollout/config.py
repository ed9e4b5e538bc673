"""Rollout-engine options (`acelib.rollout.make_engine`), importable without torch or vLLM.

The trainer validates them with `acelib.config.from_dict(RolloutConfig, d, prefix="rollout.")`; every field has a
help string (`acelib.config.describe(RolloutConfig)` renders the table in docs/rollout.md).
"""
from __future__ import annotations

import dataclasses

from acelib.config import ConfigError, option


@dataclasses.dataclass
class RolloutConfig:
    # ---- both backends
    dtype: str = option(
        "auto", "weights/compute dtype of the engine: 'auto' = the checkpoint's own dtype (config.json: tiny "
        "float32, smollm2-135m bfloat16, Qwen3 bfloat16)", choices=("auto", "float32", "bfloat16", "float16"))
    logprobs_mode: str = option(
        "processed",
        "which behaviour log-probs a Sample carries: 'processed' = the log-density of the distribution actually "
        "sampled from (softmax(logits / temperature), after top-p/top-k), what the learner scores and the TIS "
        "weight needs; 'raw' = log-softmax of the unmodified logits (temperature 1), a diagnostic only. The "
        "trainer refuses 'raw' when temperature ≠ 1. See docs/rollout.md §log-probs",
        choices=("raw", "processed"))
    batch_window_s: float = option(
        0.05, "rollout workers: how long the first of several concurrent group requests waits for the worker's other "
        "rollouts to join its engine call (acelib/rollout/batching.py); requests queued while the engine is busy "
        "join the next call anyway")
    sync_dir: str = option(
        "/dev/shm", "where weights for engine sync are written (Learner.export_weights → engine.sync_weights); "
        "tmpfs keeps the round trip in memory")
    # ---- transformers backend ("hf")
    hf_max_batch_size: int = option(
        16, "hf backend: most sequences (prompts × n) decoded together in one generate() call; bounds memory "
        "(per-step logits of every sequence are kept until the call ends: batch × max_new_tokens × vocab × 4 B)")
    hf_threads: int | None = option(
        None, "hf backend: torch intra-op threads (None = leave torch's setting, i.e. all cores)")
    # ---- vLLM backend
    tensor_parallel_size: int = option(1, "vLLM: GPUs the engine's model is sharded over (1 on CPU)")
    gpu_memory_utilization: float = option(
        0.85, "vLLM on GPU: fraction of each GPU's memory for weights + KV cache (learner runs on other GPUs)")
    max_model_len: int | None = option(
        None, "vLLM: longest prompt + response in tokens (None = the model's max_position_embeddings)")
    max_num_seqs: int | None = option(None, "vLLM: most sequences scheduled together (None = vLLM's default)")
    enforce_eager: bool | None = option(
        None, "vLLM: disable torch.compile/CUDA graphs. None = True on CPU (the compiled CPU mode produced wrong "
        "text in feasibility tests) and False on GPU")
    cpu_kvcache_space_gib: float | None = option(
        None, "vLLM on CPU: KV-cache size in GiB (sets VLLM_CPU_KVCACHE_SPACE; None = that env var, else 2)")
    enable_prefix_caching: bool = option(
        True, "vLLM: reuse the KV cache of shared prompt prefixes (a GRPO group samples n responses to one prompt); "
        "reset after every weight sync")

    def validate(self) -> None:
        if self.batch_window_s < 0:
            raise ConfigError("rollout.batch_window_s must be ≥ 0")
        if self.hf_max_batch_size < 1:
            raise ConfigError("rollout.hf_max_batch_size must be ≥ 1")
        if self.tensor_parallel_size < 1:
            raise ConfigError("rollout.tensor_parallel_size must be ≥ 1")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ConfigError("rollout.gpu_memory_utilization must lie in (0, 1]")
        if self.cpu_kvcache_space_gib is not None and self.cpu_kvcache_space_gib <= 0:
            raise ConfigError("rollout.cpu_kvcache_space_gib must be > 0 (or null for the env default)")

    def __post_init__(self) -> None:
        self.validate()
