"""The GRPO learner: a Hugging Face causal LM inside a DeepSpeed engine, on one rank or several.

One code path for CPU (gloo; a bare process becomes rank 0 of 1 with no launcher) and GPUs (the device and
collective backend come from DeepSpeed's accelerator). Several ranks (`acelib.trainer.learner_group`) each hold the
whole batch, train their deterministic share of its micro-batches and let DeepSpeed ZeRO reduce the gradients.
`train_step(groups)` turns a batch of `RolloutGroup`s into advantages (`acelib.learner.grpo`), takes π_old from the
training forward (or re-scores it once when a step makes several updates), and runs `ppo_epochs × num_minibatches`
optimizer updates with gradient accumulation over micro-batches (`acelib.learner.packing`). Every log-prob is of
softmax(logits / temperature), the distribution the engines sampled from. Formulas: docs/learner.md.
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

from acelib.config import ConfigError
from acelib.learner import grpo
from acelib.learner.batch import RolloutGroup, TrainSeq, flatten
from acelib.learner.config import GRPOConfig, LearnerConfig
from acelib.learner.packing import MicroBatch, micro_batches
from acelib.models import resolve_model_dir
from acelib.rollout.weights import WEIGHTS_FILE

__all__ = ["Learner", "clear_stale_build_locks", "deepspeed_config", "disable_dropout", "lr_factor"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_stale_build_locks(root: str | Path | None = None) -> list[Path]:
    """Remove torch-extension build locks whose builder is gone; returns the removed paths.

    torch's JIT build holds `<build dir>/lock` open while it compiles (DeepSpeed builds its CPU comm op at the first
    `init_distributed`). A process killed mid-build leaves the file, and every later load then waits on it forever,
    printing nothing. A lock that no live process holds open is such a leftover."""
    import psutil
    from torch.utils.cpp_extension import _get_build_directory

    root = Path(root or os.environ.get("TORCH_EXTENSIONS_DIR") or Path(_get_build_directory("x", False)).parent)
    locks = [p.resolve() for p in root.glob("*/lock")] + [p.resolve() for p in root.glob("*/*/lock")]
    if not locks:
        return []
    held = set()
    for proc in psutil.process_iter():
        try:
            held.update(f.path for f in proc.open_files())
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    stale = [p for p in locks if str(p) not in held]
    for p in stale:
        p.unlink(missing_ok=True)
        print(f"removed a stale build lock left by a killed build: {p}")
    return stale


def _ensure_distributed() -> None:
    """Join (or create) the process group. A bare `python` process becomes rank 0 of 1 without any launcher; a rank
    of a learner group finds RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT already set by its actor."""
    if deepspeed.comm.is_initialized():
        return
    for key, value in {"MASTER_ADDR": "127.0.0.1", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    picked_port = "MASTER_PORT" not in os.environ
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    # The CPU accelerator may name oneCCL, which is not installed; gloo is always there.
    backend = "gloo" if get_accelerator().device_name() == "cpu" else None
    clear_stale_build_locks()   # init_distributed loads (first time: builds) DeepSpeed's CPU comm op
    deepspeed.init_distributed(dist_backend=backend)
    if picked_port:
        # Rendezvous done. A port we picked must not leak into child processes (Ray actors, notebook kernels):
        # a child learner would inherit it and fail to bind it (EADDRINUSE).
        del os.environ["MASTER_PORT"]


def _add_diff(acc: torch.Tensor, d: torch.Tensor) -> None:
    """Fold |log π_learner − log μ| of some tokens (d [n]) into acc = (sum, count, max)."""
    if d.numel():
        acc[0] += d.sum()
        acc[1] += d.numel()
        acc[2] = torch.maximum(acc[2], d.max())


def disable_dropout(model: torch.nn.Module) -> int:
    """Zero every dropout in `model`, whatever the config calls it; returns how many places were zeroed.

    Two forms exist: `nn.Dropout` modules (GPT-2's `*_pdrop`, MLP dropouts) and float attributes read by the
    attention code (Llama's `attention_dropout`). With either active, π_θ ≠ π_old even at ratio 1."""
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
            n += 1
        for name, value in vars(module).items():
            if "dropout" in name.lower() and isinstance(value, float) and value != 0.0:
                setattr(module, name, 0.0)
                n += 1
    return n


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


class Learner:
    """GRPO policy learner on DeepSpeed. `policy_version` counts train steps that changed the weights.

    model: an HF directory or a registry name (`acelib.models`); temperature: the rollouts' sampling temperature
    (the learner scores softmax(logits / temperature), the density the samples came from); seed: RNGs and the
    minibatch shuffle (every rank of a group uses the same seed, so all agree on the order)."""

    def __init__(self, model: str, cfg: LearnerConfig | None = None, grpo_cfg: GRPOConfig | None = None, *,
                 temperature: float = 1.0, seed: int = 0):
        cfg, grpo_cfg = cfg or LearnerConfig(), grpo_cfg or GRPOConfig()
        if temperature <= 0:
            raise ConfigError(f"temperature={temperature}: the learner needs the rollouts' sampling temperature > 0 "
                              "(greedy samples have no density to train on)")
        if grpo_cfg.loss_type == "dr_grpo" and grpo_cfg.max_completion_length is None:
            raise ConfigError("grpo.max_completion_length must be set for loss_type='dr_grpo' (the trainer sets it "
                              "to max_new_tokens)")
        self.cfg, self.grpo, self.temperature, self.seed = cfg, grpo_cfg, float(temperature), seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        _ensure_distributed()
        accel = get_accelerator()
        self.model_source = resolve_model_dir(model)
        bf16 = cfg.dtype == "bf16" or (cfg.dtype == "auto" and accel.device_name() != "cpu"
                                       and accel.is_bf16_supported())
        self.bf16 = bf16
        self.hf_config = AutoConfig.from_pretrained(self.model_source)
        train_config = AutoConfig.from_pretrained(self.model_source)
        train_config.use_cache = False
        # fp32 weights in; with bf16 enabled DeepSpeed casts the module and keeps fp32 master weights itself.
        net = AutoModelForCausalLM.from_pretrained(self.model_source, config=train_config, dtype=torch.float32)
        disable_dropout(net)
        if cfg.gradient_checkpointing:
            net.gradient_checkpointing_enable()
        net.train()
        self.tied = bool(getattr(self.hf_config, "tie_word_embeddings", False))

        optimizer = None
        if cfg.optimizer == "torch_adamw":
            optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas),
                                          eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
        # A callable: DeepSpeed builds the scheduler on the optimizer it actually steps, and checkpoints it.
        scheduler = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))  # noqa: E731
        self.engine, *_ = deepspeed.initialize(model=net, optimizer=optimizer, lr_scheduler=scheduler,
                                               model_parameters=None if optimizer else net.parameters(),
                                               config=deepspeed_config(cfg, bf16))
        self.device = self.engine.device
        self.world_size = deepspeed.comm.get_world_size()
        self.rank = deepspeed.comm.get_rank()

        self.ref = None
        if grpo_cfg.beta > 0:
            # Frozen copy of the initial policy; a full replica per rank (not sharded even under ZeRO-3).
            self.ref = AutoModelForCausalLM.from_pretrained(self.model_source, config=train_config,
                                                            dtype=torch.bfloat16 if bf16 else torch.float32)
            disable_dropout(self.ref)
            self.ref.to(self.device).eval().requires_grad_(False)

        source_dir = Path(self.model_source)
        self.tokenizer = (AutoTokenizer.from_pretrained(source_dir)
                          if source_dir.is_dir() and any((source_dir / f).exists() for f in
                                                         ("tokenizer.json", "tokenizer_config.json")) else None)
        self.policy_version = 0
        self._shuffle = torch.Generator().manual_seed(seed)

    # ------------------------------------------------------------------ micro-batches and scoring
    def _micro_batches(self, seqs: list[TrainSeq]) -> list[MicroBatch]:
        return micro_batches(seqs, self.cfg.micro_batch_size, self.cfg.shared_prompt, self.device)

    def _my_share(self, mbs: list[MicroBatch]) -> list[tuple[MicroBatch, float]]:
        """This rank's micro-batches (round-robin: the split is the same on every rank) with weight 1, padded
        with weight-0 repeats so every rank runs the same number of forwards and backwards (ZeRO's collectives
        run inside them and must match across ranks)."""
        mine = mbs[self.rank::self.world_size]
        rounds = math.ceil(len(mbs) / self.world_size)
        return [(mb, 1.0) for mb in mine] + [(mbs[0], 0.0)] * (rounds - len(mine))

    def _logprobs(self, mb: MicroBatch, model=None, entropy: bool = False):
        return mb.logprobs(model or self.engine, self.temperature, self.cfg.logprob_chunk, entropy=entropy)

    @torch.no_grad()
    def _score(self, seqs: list[TrainSeq], key: str, model=None) -> None:
        """Set seq.<key> = per-token log-probs of `model` (default: the current policy) for every sequence; each
        rank scores its share, then the ranks exchange results."""
        found: dict[int, torch.Tensor] = {}
        for mb, weight in self._my_share(self._micro_batches(seqs)):
            logp, _ = self._logprobs(mb, model)
            if weight:
                found.update((s.index, row.float().cpu()) for s, row in zip(mb.seqs, mb.split(logp)))
        if self.world_size > 1:
            parts: list = [None] * self.world_size
            torch.distributed.all_gather_object(parts, found)
            found = {k: v for part in parts for k, v in part.items()}
        for s in seqs:
            setattr(s, key, found[s.index])

    def logprobs(self, prompt_ids: list[int], token_ids: list[int]) -> list[float]:
        """Per-token log π_θ(token_ids[t] | prompt_ids + token_ids[:t]) at the learner's temperature."""
        seq = TrainSeq(index=0, group=0, prompt=list(prompt_ids), tokens=list(token_ids), behaviour=[], reward=0.0,
                       valid=True, policy_version=self.policy_version)
        self._score([seq], "old")
        return seq.old.tolist()

    # ------------------------------------------------------------------ training
    def _sequences(self, groups: list[RolloutGroup]) -> tuple[list[TrainSeq], dict[str, float]]:
        """Flatten groups, compute advantages, drop masked, filtered and empty samples.

        An empty completion (not masked) still counts in its group's mean/std, since its reward is a real outcome of
        the policy; it only has no token to train on.
        """
        flat = flatten(groups)
        adv, keep = grpo.group_advantages(torch.tensor([f.reward for f in flat], dtype=torch.float64),
                                          torch.tensor([f.group for f in flat], dtype=torch.long),
                                          torch.tensor([f.valid for f in flat], dtype=torch.bool), self.grpo)
        for f, a in zip(flat, adv.tolist()):
            f.advantage = a
        kept = [f for f, k in zip(flat, keep.tolist()) if k and f.tokens]
        valid = [f for f in flat if f.valid]
        stale = [self.policy_version - f.policy_version for f in kept]
        info = {
            "groups": float(len(groups)),
            "groups_trained": float(len({f.group for f in kept})),
            "samples_masked": float(len(flat) - len(valid)),
            "reward_mean": float(np.mean([f.reward for f in valid])) if valid else 0.0,
            "staleness_mean": float(np.mean(stale)) if stale else 0.0,
            "staleness_max": float(max(stale, default=0)),
        }
        return kept, info

    def train_step(self, groups: list[RolloutGroup]) -> dict[str, float]:
        """One GRPO step on a batch of groups: ppo_epochs × num_minibatches optimizer updates.

        Every rank of a learner group is called with the same groups. Returns metrics over the whole batch (loss,
        clip_frac, approx_kl, entropy, IS-weight stats, logprob_diff_mean/max, grad_norm, lr, tokens_per_s, ...).
        When every group is filtered out nothing is updated, `policy_version` stays and metrics carry skipped=1.
        """
        cfg, gcfg, t0 = self.cfg, self.grpo, time.perf_counter()
        seqs, info = self._sequences(groups)
        if not seqs:
            return {**info, "skipped": 1.0, "policy_version": float(self.policy_version),
                    "time_s": time.perf_counter() - t0}

        recompute = gcfg.old_logprobs == "recompute"
        # With a single optimizer update per step, π_old *is* the current policy: the training forward pass gives
        # its log-probs (detached) for free, so the separate no-grad scoring pass (~30% of a step) is skipped.
        # Exact because nothing changes the weights before the update and every dropout is off.
        old_from_forward = recompute and cfg.ppo_epochs == 1 and cfg.num_minibatches == 1
        diff = torch.zeros(3, dtype=torch.float64)   # Σ|log π − log μ|, tokens, max, over tokens scored pre-update
        if recompute and not old_from_forward:
            self._score(seqs, "old")
            if self.rank == 0:  # every rank holds every π_old now: count them once
                for s in seqs:
                    _add_diff(diff, (s.old.double() - torch.tensor(s.behaviour, dtype=torch.float64)).abs())
        elif not recompute:
            for s in seqs:
                s.old = torch.tensor(s.behaviour, dtype=torch.float32)
        if self.ref is not None:
            self._score(seqs, "ref", model=self.ref)
        t_old = time.perf_counter() - t0

        sums: dict[str, torch.Tensor] = {}
        grad_norms, trained_tokens, updates = [], 0, 0
        t_train = time.perf_counter()
        for _ in range(cfg.ppo_epochs):
            order = (torch.randperm(len(seqs), generator=self._shuffle).tolist()
                     if cfg.ppo_epochs > 1 or cfg.num_minibatches > 1 else list(range(len(seqs))))
            size = math.ceil(len(seqs) / cfg.num_minibatches)
            for start in range(0, len(seqs), size):
                minibatch = [seqs[i] for i in order[start:start + size]]
                # Normalisers of the whole minibatch (every rank holds it): micro-batch losses sum to its loss.
                num_sequences, num_tokens = len(minibatch), sum(len(s.tokens) for s in minibatch)
                for mb, weight in self._my_share(self._micro_batches(minibatch)):
                    logp, ent = self._logprobs(mb, entropy=True)
                    old = logp.detach() if old_from_forward else mb.grid([s.old for s in mb.seqs])
                    behaviour = mb.grid([s.behaviour for s in mb.seqs])
                    loss, st = grpo.policy_loss(
                        logp, old, mb.advantages(), mb.mask, gcfg, num_sequences=num_sequences,
                        num_tokens=num_tokens, behaviour_logprobs=behaviour if recompute else None,
                        ref_logprobs=mb.grid([s.ref for s in mb.seqs]) if self.ref is not None else None)
                    # DeepSpeed averages gradients over ranks; the loss is already a global mean, so undo that.
                    # A padding micro-batch (weight 0) only keeps the ranks' collectives in step.
                    self.engine.backward(loss * (self.world_size * weight), scale_wrt_gas=False)
                    if not weight:
                        continue
                    st["entropy"] = (ent * mb.mask).sum().double()
                    if updates == 0 and (old_from_forward or not recompute):   # still the pre-update weights
                        _add_diff(diff, (logp.detach().double() - behaviour.double())[mb.mask].abs().cpu())
                    for k, v in st.items():
                        sums[k] = torch.maximum(sums[k], v) if k == "is_weight_max" and k in sums else \
                            sums.get(k, 0.0) + v
                    trained_tokens += mb.tokens
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
        self.policy_version += 1
        sums, diff, trained_tokens = self._reduce(sums, diff, trained_tokens)
        metrics = grpo.summarize([sums], num_updates=updates)
        metrics.update(info)
        metrics.update({
            "policy_version": float(self.policy_version),
            "updates": float(updates),
            "grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
            "lr": float(self.engine.get_lr()[0]),
            "logprob_diff_mean": float(diff[0] / max(float(diff[1]), 1.0)),
            "logprob_diff_max": float(diff[2]),
            "old_logprob_s": t_old,
            "train_s": train_s,
            "time_s": time.perf_counter() - t0,
            # tokens through forward + backward + step per second of the update loop; with shared_prompt a
            # group's prompt counts once (the tokens actually computed)
            "tokens_per_s": trained_tokens / train_s,
            "ranks": float(self.world_size),
        })
        return metrics

    def _reduce(self, sums: dict, diff: torch.Tensor, tokens: int) -> tuple[dict, torch.Tensor, int]:
        """Metric sums of every rank's share added up (maxima maxed), so metrics describe the whole batch."""
        if self.world_size == 1:
            return sums, diff, tokens
        keys = sorted(k for k in sums if k != "is_weight_max")
        vec = torch.stack([sums[k].double().cpu() for k in keys] + [diff[0], diff[1], torch.tensor(float(tokens),
                                                                                                   dtype=torch.float64)])
        top = torch.stack([sums["is_weight_max"].double().cpu() if "is_weight_max" in sums else
                           torch.zeros((), dtype=torch.float64), diff[2]])
        vec, top = vec.to(self.device), top.to(self.device)
        torch.distributed.all_reduce(vec)
        torch.distributed.all_reduce(top, op=torch.distributed.ReduceOp.MAX)
        vec, top = vec.cpu(), top.cpu()
        out = {k: vec[i] for i, k in enumerate(keys)}
        out["is_weight_max"] = top[0]
        return out, torch.stack([vec[-3], vec[-2], top[1]]), int(vec[-1])

    # ------------------------------------------------------------------ checkpoints and exports
    def save_checkpoint(self, directory: str | Path) -> Path:
        """DeepSpeed checkpoint (module, optimizer, scheduler, ZeRO partitions of every rank) + policy version + every
        rank's RNG states. Every rank of a group must call it (DeepSpeed saves collectively)."""
        directory = Path(directory)
        tag = f"v{self.policy_version}"
        self.engine.save_checkpoint(str(directory), tag=tag, client_state={"policy_version": self.policy_version})
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
               "accelerator": get_accelerator().get_rng_state() if get_accelerator().device_name() != "cpu" else None,
               "shuffle": self._shuffle.get_state()}
        torch.save(rng, directory / tag / f"rng_rank{self.rank}.pt")
        return directory

    def load_checkpoint(self, directory: str | Path, tag: str | None = None) -> None:
        """Restore a `save_checkpoint` directory (latest tag unless given) into this freshly built learner.

        Under ZeRO-3 load into a new Learner, not one that has trained (DeepSpeed needs unpartitioned modules). A
        checkpoint resumes on the number of ranks that wrote it.
        """
        path, client = self.engine.load_checkpoint(str(directory), tag=tag)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint in {directory} (tag {tag!r}); "
                                    "pass the directory given to save_checkpoint")
        self.policy_version = int(client["policy_version"])
        tag = tag or (Path(directory) / "latest").read_text().strip()
        rng_file = Path(directory) / tag / f"rng_rank{self.rank}.pt"
        if not rng_file.exists():
            raise FileNotFoundError(f"{rng_file} is missing: this checkpoint was written by fewer ranks; resume it "
                                    "with the learner_ranks / learner_gpus it was trained with")
        rng = torch.load(rng_file, weights_only=False)
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
        """Write `model.safetensors` only (for engine weight sync, e.g. into /dev/shm); atomic rename. Every rank
        calls it (ZeRO-3 gathers collectively); rank 0 writes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sd = {k: v.contiguous() for k, v in self._weights().items()}
        if self.rank == 0:
            tmp = directory / f".{WEIGHTS_FILE}.tmp"
            safetensors.torch.save_file(sd, str(tmp), metadata={"format": "pt", "policy_version": str(self.policy_version)})
            os.replace(tmp, directory / WEIGHTS_FILE)
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
