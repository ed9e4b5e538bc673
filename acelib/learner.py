"""The GRPO learner: a Hugging Face causal LM inside a DeepSpeed engine.

One code path for CPU (single process, gloo, no launcher: the env vars are set here when missing) and GPUs (the
device and collective backend come from DeepSpeed's accelerator). `train_step(groups)` turns a batch of
`RolloutGroup`s into advantages (`acelib.grpo`), re-scores π_old once (free when there is a single update), and runs `ppo_epochs × num_minibatches`
optimizer updates with gradient accumulation over micro-batches. Formulas and checkpoint contents: docs/learner.md.

Sequences are LEFT-padded so every completion ends at the last position: the logits of the last T+1 positions
(`logits_to_keep`) then cover every completion, and per-token tensors are right-aligned on a [B, T] grid.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import deepspeed
import numpy as np
import safetensors.torch
import torch
from deepspeed.accelerator import get_accelerator
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from acelib import grpo
from acelib.learner_config import LearnerConfig, RolloutGroup

__all__ = ["Learner", "LearnerConfig", "RolloutGroup"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_distributed() -> None:
    """Join (or create) the process group; a bare `python` process becomes rank 0 of 1 without any launcher."""
    if deepspeed.comm.is_initialized():
        return
    for key, value in {"MASTER_ADDR": "127.0.0.1", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    picked_port = "MASTER_PORT" not in os.environ
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    # The CPU accelerator may name oneCCL, which is not installed; gloo is always there.
    backend = "gloo" if get_accelerator().device_name() == "cpu" else None
    deepspeed.init_distributed(dist_backend=backend)
    if picked_port:
        # Rendezvous done. A port we picked must not leak into child processes (Ray actors, notebook kernels):
        # a child learner would inherit it and fail to bind it (EADDRINUSE).
        del os.environ["MASTER_PORT"]


def resolve_model(name: str) -> Path | str:
    """An existing directory as is; otherwise a registry name built by `acelib.models.materialize`."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    from acelib import models  # the registry builds models on first use; only needed for names
    return models.materialize(name)


def lr_factor(step: int, cfg: LearnerConfig) -> float:
    """Multiplier of cfg.lr after `step` optimizer updates: linear warm-up, then constant or cosine."""
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def deepspeed_config(cfg: LearnerConfig, bf16: bool) -> dict:
    """The DeepSpeed config dict for this learner (no DeepSpeed data loader: batch sizes are bookkeeping only)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": get_accelerator().device_name() != "cpu"}
    if cfg.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": get_accelerator().device_name() != "cpu"}
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": 1,
        # The number of micro-batches per update varies with the batch, so the caller owns the boundary:
        # backward() only accumulates, every step() reduces and updates.
        "managed_gradient_accumulation": False,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.optimizer == "deepspeed_adam":
        ds["optimizer"] = {"type": "AdamW", "params": {
            "lr": cfg.lr, "betas": list(cfg.adam_betas), "eps": cfg.adam_eps, "weight_decay": cfg.weight_decay}}
    return ds


class _MicroBatch:
    """Left-padded token ids of a few sequences plus the [B, T] completion grid (completions right-aligned)."""

    def __init__(self, seqs: list[dict], device: torch.device):
        self.seqs = seqs
        lengths = [len(s["prompt"]) + len(s["tokens"]) for s in seqs]
        L = max(lengths)
        self.T = max(1, max(len(s["tokens"]) for s in seqs))
        ids = torch.zeros(len(seqs), L, dtype=torch.long)                         # [B, L], pad id irrelevant
        attn = torch.zeros(len(seqs), L, dtype=torch.long)                        # [B, L]
        mask = torch.zeros(len(seqs), self.T, dtype=torch.bool)                   # [B, T]
        for i, (s, n) in enumerate(zip(seqs, lengths)):
            ids[i, L - n:] = torch.tensor(s["prompt"] + s["tokens"])
            attn[i, L - n:] = 1
            if s["tokens"]:
                mask[i, self.T - len(s["tokens"]):] = True
        self.input_ids, self.attention_mask = ids.to(device), attn.to(device)
        # Explicit positions: left padding must not shift RoPE positions of the real tokens.
        self.position_ids = (attn.cumsum(-1) - 1).clamp(min=0).to(device)        # [B, L]
        self.mask = mask.to(device)
        self.targets = self.input_ids[:, L - self.T:]                             # [B, T]

    def grid(self, key: str, dtype=torch.float32) -> torch.Tensor:
        """Per-token values seqs[i][key] (one per completion token) placed on the [B, T] grid, 0 elsewhere."""
        out = torch.zeros(len(self.seqs), self.T, dtype=dtype, device=self.mask.device)
        for i, s in enumerate(self.seqs):
            n = len(s["tokens"])
            if n:
                out[i, self.T - n:] = torch.as_tensor(s[key], dtype=dtype, device=out.device)
        return out

    def split(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of `grid`: row i of values [B, T] cut to sequence i's completion length."""
        return [values[i, self.T - len(s["tokens"]):] for i, s in enumerate(self.seqs)]


class Learner:
    """GRPO policy learner on DeepSpeed. `version` counts train steps that changed the weights."""

    def __init__(self, cfg: LearnerConfig):
        self.cfg = cfg
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        _ensure_distributed()
        accel = get_accelerator()
        self.model_source = resolve_model(cfg.model)
        bf16 = cfg.dtype == "bf16" or (cfg.dtype == "auto" and accel.device_name() != "cpu"
                                       and accel.is_bf16_supported())
        self.bf16 = bf16
        self.hf_config = AutoConfig.from_pretrained(self.model_source)
        train_config = AutoConfig.from_pretrained(self.model_source)
        # Dropout off: with it π_θ ≠ π_old even before the first update, so ratios and clipping would be noise.
        for key, value in train_config.to_dict().items():
            if "dropout" in key and isinstance(value, float):
                setattr(train_config, key, 0.0)
        train_config.use_cache = False
        # fp32 weights in; with bf16 enabled DeepSpeed casts the module and keeps fp32 master weights itself.
        model = AutoModelForCausalLM.from_pretrained(self.model_source, config=train_config, dtype=torch.float32)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        self.tied = bool(getattr(self.hf_config, "tie_word_embeddings", False))

        optimizer = None
        if cfg.optimizer == "torch_adamw":
            optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas),
                                          eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
        # A callable: DeepSpeed builds the scheduler on the optimizer it actually steps, and checkpoints it.
        scheduler = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))  # noqa: E731
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                               model_parameters=None if optimizer else model.parameters(),
                                               config=deepspeed_config(cfg, bf16))
        self.device = self.engine.device
        self.world_size = deepspeed.comm.get_world_size()
        self.rank = deepspeed.comm.get_rank()

        self.ref = None
        if cfg.grpo.beta > 0:
            # Frozen copy of the initial policy; a full replica per rank (not sharded even under ZeRO-3).
            self.ref = AutoModelForCausalLM.from_pretrained(self.model_source, config=train_config,
                                                            dtype=torch.bfloat16 if bf16 else torch.float32)
            self.ref.to(self.device).eval().requires_grad_(False)

        source_dir = Path(self.model_source)
        self.tokenizer = (AutoTokenizer.from_pretrained(source_dir)
                          if source_dir.is_dir() and any((source_dir / f).exists() for f in
                                                         ("tokenizer.json", "tokenizer_config.json")) else None)
        self.version = 0
        self._shuffle = torch.Generator().manual_seed(cfg.seed)

    # ------------------------------------------------------------------ forward passes
    def _forward(self, mb: _MicroBatch, model=None, entropy: bool = False):
        """(log π of the completion tokens [B, T], token entropies [B, T] or None) of `model` (default: policy)."""
        out = (model or self.engine)(input_ids=mb.input_ids, attention_mask=mb.attention_mask,
                                     position_ids=mb.position_ids, logits_to_keep=mb.T + 1, use_cache=False)
        logits = out.logits[:, :-1]                                               # [B, T, V] predicts targets
        logp = grpo.token_logprobs(logits, mb.targets)                            # [B, T]
        ent = None
        if entropy:
            with torch.no_grad():
                ent = grpo.entropy_from_logits(logits.detach())                   # [B, T]
        return logp, ent

    def _micro_batches(self, seqs: list[dict]) -> list[_MicroBatch]:
        n = self.cfg.micro_batch_size
        return [_MicroBatch(seqs[i:i + n], self.device) for i in range(0, len(seqs), n)]

    @torch.no_grad()
    def _score(self, seqs: list[dict], key: str, model=None) -> None:
        """Store per-token log-probs of `model` (default: the current policy) as seqs[i][key]."""
        for mb in self._micro_batches(seqs):
            logp, _ = self._forward(mb, model)
            for s, row in zip(mb.seqs, mb.split(logp.float())):
                s[key] = row

    def logprobs(self, prompt_ids: list[int], token_ids: list[int]) -> list[float]:
        """Per-token log π_θ(token_ids[t] | prompt_ids + token_ids[:t]) under the current weights."""
        seq = {"prompt": list(prompt_ids), "tokens": list(token_ids)}
        self._score([seq], "logp")
        return seq["logp"].tolist()

    # ------------------------------------------------------------------ training
    def _sequences(self, groups: list[RolloutGroup]) -> tuple[list[dict], dict[str, float]]:
        """Flatten groups, compute advantages, drop masked, filtered and empty samples.

        An empty completion (not masked) still counts in its group's mean/std, since its reward is a real outcome of
        the policy; it only has no token to train on.
        """
        flat = [{"prompt": list(g.prompt_ids), "tokens": list(s.token_ids), "behaviour": list(s.logprobs),
                 "reward": float(r), "group": gi, "valid": not m,
                 "version": int(s.policy_version)}
                for gi, g in enumerate(groups) for s, r, m in zip(g.samples, g.rewards, g.masked)]
        adv, keep = grpo.group_advantages(torch.tensor([f["reward"] for f in flat], dtype=torch.float64),
                                          torch.tensor([f["group"] for f in flat]),
                                          torch.tensor([f["valid"] for f in flat]), self.cfg.grpo)
        for f, a in zip(flat, adv.tolist()):
            f["advantage"] = a
        kept = [f for f, k in zip(flat, keep.tolist()) if k and f["tokens"]]
        valid = [f for f in flat if f["valid"]]
        info = {
            "groups": float(len(groups)),
            "groups_trained": float(len({f["group"] for f in kept})),
            "samples_masked": float(sum(not f["valid"] for f in flat)),
            "reward_mean": float(np.mean([f["reward"] for f in valid])) if valid else 0.0,
            "staleness_mean": float(np.mean([self.version - f["version"] for f in kept])) if kept else 0.0,
            "staleness_max": float(max((self.version - f["version"] for f in kept), default=0)),
        }
        return kept, info

    def _global_counts(self, seqs: list[dict]) -> tuple[int, int]:
        """Active sequences and tokens of a minibatch summed over data-parallel ranks (the loss normaliser)."""
        counts = torch.tensor([len(seqs), sum(len(s["tokens"]) for s in seqs)], dtype=torch.long,
                              device=self.device)
        if self.world_size > 1:
            deepspeed.comm.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def train_step(self, groups: list[RolloutGroup]) -> dict[str, float]:
        """One GRPO step on a batch of groups: ppo_epochs × num_minibatches optimizer updates.

        Returns metrics (loss, clip_frac, approx_kl, entropy, IS-weight stats, grad_norm, lr, tokens_per_s, ...).
        When every group is filtered out nothing is updated, `version` stays and metrics carry skipped=1.
        """
        cfg, t0 = self.cfg, time.perf_counter()
        seqs, info = self._sequences(groups)
        if not seqs:
            return {**info, "skipped": 1.0, "version": float(self.version), "time_s": time.perf_counter() - t0}

        recompute = cfg.grpo.old_logprobs == "recompute"
        # With a single optimizer update per step, π_old *is* the current policy: the training forward pass gives
        # its log-probs (detached) for free, so the separate no-grad scoring pass (~30% of a step) is skipped.
        # Exact because nothing changes the weights before the update and the models here have no dropout.
        old_from_forward = recompute and cfg.ppo_epochs == 1 and cfg.num_minibatches == 1
        if recompute and not old_from_forward:
            self._score(seqs, "old")
        elif not recompute:
            for s in seqs:
                s["old"] = s["behaviour"]
        if self.ref is not None:
            self._score(seqs, "ref", model=self.ref)
        t_old = time.perf_counter() - t0

        stats, grad_norms, trained_tokens, updates = [], [], 0, 0
        t_train = time.perf_counter()
        for _ in range(cfg.ppo_epochs):
            order = (torch.randperm(len(seqs), generator=self._shuffle).tolist()
                     if cfg.ppo_epochs > 1 or cfg.num_minibatches > 1 else list(range(len(seqs))))
            size = math.ceil(len(seqs) / cfg.num_minibatches)
            for start in range(0, len(seqs), size):
                minibatch = [seqs[i] for i in order[start:start + size]]
                num_sequences, num_tokens = self._global_counts(minibatch)
                for mb in self._micro_batches(minibatch):
                    logp, ent = self._forward(mb, entropy=True)
                    old = logp.detach().float() if old_from_forward else mb.grid("old")
                    loss, st = grpo.policy_loss(
                        logp, old, torch.tensor([s["advantage"] for s in mb.seqs], device=self.device),
                        mb.mask, cfg.grpo, num_sequences=num_sequences, num_tokens=num_tokens,
                        behaviour_logprobs=mb.grid("behaviour") if recompute else None,
                        ref_logprobs=mb.grid("ref") if self.ref is not None else None)
                    st["entropy"] = (ent * mb.mask).sum().double()
                    stats.append(st)
                    # DeepSpeed averages gradients over ranks; the loss is already a global mean, so undo that.
                    self.engine.backward(loss * self.world_size, scale_wrt_gas=False)
                    trained_tokens += int(mb.attention_mask.sum())
                norm = None
                if cfg.zero_stage == 0 and not self.bf16:
                    # fp32 stage 0 clips with torch and DeepSpeed drops the norm; measure it before the step.
                    norm = torch.nn.utils.get_total_norm(
                        [p.grad for p in self.engine.module.parameters() if p.grad is not None])
                self.engine.step()
                updates += 1
                norm = self.engine.get_global_grad_norm() if norm is None else norm
                if norm is not None:
                    grad_norms.append(float(norm))
        train_s = time.perf_counter() - t_train
        self.version += 1
        metrics = grpo.summarize(stats, num_updates=updates)
        metrics.update(info)
        metrics.update({
            "version": float(self.version),
            "updates": float(updates),
            "grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
            "lr": float(self.engine.get_lr()[0]),
            "old_logprob_s": t_old,
            "train_s": train_s,
            "time_s": time.perf_counter() - t0,
            # prompt + completion tokens through forward + backward + step, per second of the update loop
            "tokens_per_s": trained_tokens / train_s,
        })
        return metrics

    # ------------------------------------------------------------------ checkpoints and exports
    def save_checkpoint(self, directory: str | Path) -> Path:
        """DeepSpeed checkpoint (module, optimizer, scheduler, ZeRO partitions) + version + every RNG state."""
        directory = Path(directory)
        client = {
            "acelib_version": self.version,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "accelerator": (get_accelerator().get_rng_state()
                                    if get_accelerator().device_name() != "cpu" else None),
                    "shuffle": self._shuffle.get_state()},
        }
        self.engine.save_checkpoint(str(directory), tag=f"v{self.version}", client_state=client)
        return directory

    def load_checkpoint(self, directory: str | Path, tag: str | None = None) -> None:
        """Restore a `save_checkpoint` directory (latest tag unless given) into this freshly built learner.

        Under ZeRO-3 load into a new Learner, not one that has trained (DeepSpeed needs unpartitioned modules).
        """
        path, client = self.engine.load_checkpoint(str(directory), tag=tag)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint in {directory} (tag {tag!r}); "
                                    "pass the directory given to save_checkpoint")
        self.version = int(client["acelib_version"])
        rng = client["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["accelerator"] is not None:
            get_accelerator().set_rng_state(rng["accelerator"])
        self._shuffle.set_state(rng["shuffle"])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Full (gathered under ZeRO-3) policy weights on CPU, in the training dtype."""
        module = self.engine.module
        gather = (deepspeed.zero.GatheredParameters(list(module.parameters()))
                  if self.cfg.zero_stage == 3 else contextlib.nullcontext())
        with gather:
            return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

    def _weights(self) -> dict[str, torch.Tensor]:
        sd = self.state_dict()
        if self.tied:
            # Tied to the embedding: safetensors refuses shared tensors, and loaders re-tie it.
            sd.pop("lm_head.weight", None)
        return sd

    def export_weights(self, directory: str | Path) -> Path:
        """Write `model.safetensors` only (for engine weight sync, e.g. into /dev/shm); atomic rename."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sd = {k: v.contiguous() for k, v in self._weights().items()}
        if self.rank == 0:
            tmp = directory / ".model.safetensors.tmp"
            safetensors.torch.save_file(sd, str(tmp), metadata={"format": "pt", "acelib_version": str(self.version)})
            os.replace(tmp, directory / "model.safetensors")
        return directory

    def export_hf(self, directory: str | Path) -> Path:
        """A loadable Hugging Face directory (original config, safetensors weights, tokenizer)."""
        directory = Path(directory)
        sd = self._weights()
        if self.rank == 0:
            self.engine.module.save_pretrained(directory, state_dict=sd)
            self.hf_config.save_pretrained(directory)       # the original config (dropout as shipped)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(directory)
        return directory

    def close(self) -> None:
        """Release the engine's memory (the process group stays for other learners in this process)."""
        self.engine.destroy()
        del self.engine
        self.ref = None
