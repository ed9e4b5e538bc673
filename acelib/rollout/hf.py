"""The transformers backend: `model.generate` on whatever device torch has (CPU here), weights synced in place.

Behaviour log-probs come from the per-step logits `generate` returns (`output_logits` = raw, `output_scores` =
after temperature/top-p; RolloutConfig.logprobs_mode), gathered at the sampled token: no second forward pass, no
re-tokenisation. Sequences are decoded in chunks of `hf_max_batch_size` with left padding.
"""
from __future__ import annotations

import logging
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from acelib.rollout.base import (Messages, Sample, SamplingParams, chat_prompt_ids, engine_dtype, stop_token_ids,
                                 validate_request)
from acelib.rollout.config import RolloutConfig
from acelib.rollout.weights import load_into

log = logging.getLogger(__name__)


class HFEngine:
    """`acelib.rollout.base.Engine` on transformers `generate` (see module docstring)."""

    backend = "hf"

    def __init__(self, cfg: RolloutConfig, model_dir: str, seed: int = 0, device: str | None = None):
        self.cfg = cfg
        self.model_dir = str(model_dir)
        self.seed = seed
        self.policy_version = 0
        self._calls = 0
        if cfg.hf_threads:
            torch.set_num_threads(cfg.hf_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.dtype = engine_dtype(cfg.dtype, self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=getattr(torch, self.dtype))
        self.model.to(self.device).eval().requires_grad_(False)
        self.stop_ids = stop_token_ids(self.tokenizer, self.model_dir)
        # generate() needs a pad id for left-padded batches; what it is does not matter (the mask hides it).
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]

    # ------------------------------------------------------------------ generation
    def _generation_config(self, sampling: SamplingParams) -> GenerationConfig:
        """A fresh config (the checkpoint's generation_config.json may set top_k/repetition penalties that would
        make the sampled distribution differ from the policy's)."""
        greedy = sampling.temperature == 0
        # Every field that would reshape the distribution is set explicitly: fields left None are filled from the
        # checkpoint's generation config and then transformers' global defaults (top_k=50!).
        return GenerationConfig(
            do_sample=not greedy, temperature=1.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p, top_k=None if greedy else sampling.top_k, typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0, epsilon_cutoff=0.0, eta_cutoff=0.0, max_new_tokens=sampling.max_new_tokens,
            min_new_tokens=0, num_beams=1, eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
            return_dict_in_generate=True, output_logits=self.cfg.logprobs_mode == "raw",
            output_scores=self.cfg.logprobs_mode == "processed")

    @torch.inference_mode()
    def _generate_chunk(self, prompt_ids: list[list[int]], gen_cfg: GenerationConfig, seed: int) -> list[dict]:
        P = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), P), self.pad_id, dtype=torch.long)            # [B, P] left-padded
        attn = torch.zeros_like(ids)                                                      # [B, P]
        for i, p in enumerate(prompt_ids):
            ids[i, P - len(p):] = torch.tensor(p)
            attn[i, P - len(p):] = 1
        # A private RNG stream per call: seeded sampling without disturbing the caller's global torch RNG.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=attn.to(self.device),
                                      generation_config=gen_cfg)
        gen = out.sequences[:, P:].cpu()                                                  # [B, T]
        steps = out.logits if self.cfg.logprobs_mode == "raw" else out.scores             # T × [B, V]
        logp = torch.stack([s.float().log_softmax(-1).gather(-1, gen[:, t:t + 1].to(s.device)).squeeze(-1).cpu()
                            for t, s in enumerate(steps)], dim=1)                         # [B, T]
        stop = set(self.stop_ids)
        results = []
        for row, lp in zip(gen.tolist(), logp.tolist()):
            end = next((t + 1 for t, tok in enumerate(row) if tok in stop), None)
            # No stop token: generation ran to max_new_tokens (rows that stopped early are padded, never shorter).
            results.append({"token_ids": row[:end], "logprobs": lp[:end],
                            "finish_reason": "stop" if end is not None else "length"})
        return results

    def generate(self, prompts: list[Messages], sampling: SamplingParams, n: int = 1) -> list[list[Sample]]:
        """n samples per prompt; result[i][j] is sample j of prompt i (see base.Engine)."""
        validate_request(prompts, sampling, n)
        t0 = time.perf_counter()
        prompt_ids = [chat_prompt_ids(self.tokenizer, m) for m in prompts]
        flat = [i for i in range(len(prompts)) for _ in range(n)]                         # prompt index per sequence
        gen_cfg = self._generation_config(sampling)
        # seed=None: a stream derived from the engine seed and a call counter, so a run is reproducible end to end.
        base_seed = sampling.seed if sampling.seed is not None else self.seed * 1_000_003 + self._calls
        self._calls += 1
        out: list[list[Sample]] = [[] for _ in prompts]
        B = self.cfg.hf_max_batch_size
        for c, start in enumerate(range(0, len(flat), B)):
            chunk = flat[start:start + B]
            for i, r in zip(chunk, self._generate_chunk([prompt_ids[i] for i in chunk], gen_cfg, base_seed + c)):
                out[i].append(Sample(prompt_ids=list(prompt_ids[i]), token_ids=r["token_ids"],
                                     logprobs=r["logprobs"],
                                     text=self.tokenizer.decode(r["token_ids"], skip_special_tokens=True),
                                     policy_version=self.policy_version, finish_reason=r["finish_reason"]))
        log.debug("hf generate: %d sequences in %.2f s", len(flat), time.perf_counter() - t0)
        return out

    # ------------------------------------------------------------------ weights
    def sync_weights(self, weights_dir: str, version: int) -> None:
        """Copy `weights_dir/model.safetensors` (Learner.export_weights) into the live model."""
        t0 = time.perf_counter()
        load_into(self.model, weights_dir)
        self.policy_version = int(version)
        log.info("hf engine: weights v%d loaded from %s in %.2f s", version, weights_dir, time.perf_counter() - t0)

    def close(self) -> None:
        self.model = None
