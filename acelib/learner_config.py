"""The DeepSpeed learner's config and its input type, importable without torch (the Ray driver and notebooks
build and validate them with no training stack loaded)."""
from __future__ import annotations

import dataclasses
from typing import Any

from acelib.config import ConfigError, option
from acelib.grpo_config import GRPOConfig


@dataclasses.dataclass
class LearnerConfig:
    model: str = option("tiny", "HF causal-LM directory, or a name known to acelib.models.materialize")
    grpo: GRPOConfig = option(default_factory=GRPOConfig, help="advantage and loss settings (acelib.grpo)")
    lr: float = option(1e-6, "peak learning rate")
    lr_schedule: str = option("constant", "learning-rate shape after warm-up", choices=("constant", "cosine"))
    warmup_steps: int = option(0, "optimizer updates of linear warm-up from 0 to lr")
    total_steps: int = option(1000, "optimizer updates over which 'cosine' decays to min_lr_ratio·lr")
    min_lr_ratio: float = option(0.0, "floor of the cosine schedule, as a fraction of lr")
    weight_decay: float = option(0.0, "AdamW weight decay")
    adam_betas: tuple[float, float] = option((0.9, 0.999), "AdamW betas")
    adam_eps: float = option(1e-8, "AdamW epsilon")
    optimizer: str = option(
        "torch_adamw",
        "'torch_adamw': a client torch.optim.AdamW handed to DeepSpeed (works on every stage and device, no build); "
        "'deepspeed_adam': DeepSpeed's own AdamW (FusedAdam on GPU, DeepSpeedCPUAdam with offload; JIT-compiles "
        "an op on first use, 30–60 s on CPU)",
        choices=("torch_adamw", "deepspeed_adam"))
    grad_clip: float = option(1.0, "global gradient-norm clip (DeepSpeed gradient_clipping; 0 disables)")
    zero_stage: int = option(0, "DeepSpeed ZeRO stage", choices=(0, 1, 2, 3))
    offload_optimizer: bool = option(False, "ZeRO ≥1: keep optimizer states in CPU memory")
    offload_params: bool = option(False, "ZeRO-3: keep parameters in CPU memory")
    dtype: str = option(
        "auto", "training precision: 'auto' = bf16 on an accelerator that supports it, fp32 on CPU",
        choices=("auto", "fp32", "bf16"))
    micro_batch_size: int = option(4, "sequences per forward/backward; gradients accumulate over micro-batches")
    ppo_epochs: int = option(1, "passes over the batch per train_step (each pass re-uses the same π_old)")
    num_minibatches: int = option(
        1, "optimizer updates per epoch: the batch is split into this many minibatches (1 = one update per epoch)")
    gradient_checkpointing: bool = option(False, "recompute activations in backward (long agent contexts on GPU)")
    seed: int = option(0, "seed for torch/numpy/python RNGs and the minibatch shuffle")

    def validate(self) -> None:
        if self.micro_batch_size < 1 or self.ppo_epochs < 1 or self.num_minibatches < 1:
            raise ConfigError("micro_batch_size, ppo_epochs and num_minibatches must be ≥ 1")
        if self.offload_params and self.zero_stage != 3:
            raise ConfigError("offload_params needs zero_stage=3 (parameters are only partitioned by ZeRO-3)")
        if self.offload_optimizer and self.zero_stage == 0:
            raise ConfigError("offload_optimizer needs zero_stage ≥ 1")
        if self.offload_optimizer and self.optimizer != "deepspeed_adam":
            # DeepSpeed refuses a client optimizer under ZeRO-Offload (zero_force_ds_cpu_optimizer): fail here, early.
            raise ConfigError("offload_optimizer needs optimizer='deepspeed_adam' (DeepSpeedCPUAdam steps the "
                              "offloaded states; DeepSpeed rejects a client torch AdamW there)")
        if self.lr <= 0 or self.warmup_steps < 0 or self.total_steps < 1:
            raise ConfigError("lr must be > 0, warmup_steps ≥ 0 and total_steps ≥ 1")

    def __post_init__(self) -> None:
        self.validate()


@dataclasses.dataclass
class RolloutGroup:
    """G responses to one prompt (one agent state), with their rewards.

    `samples` are `acelib.rollout.base.Sample`-like: `token_ids`, `logprobs` (the engine's, one per token) and
    `policy_version`. A masked sample (sandbox/infra error, not the policy's fault) is dropped from the loss and
    from its group's mean/std; its token_ids/logprobs may be empty.
    """
    prompt_ids: list[int]
    samples: list[Any]
    rewards: list[float]
    masked: list[bool] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.masked:
            self.masked = [False] * len(self.samples)
        if not (len(self.samples) == len(self.rewards) == len(self.masked)):
            raise ValueError(f"RolloutGroup needs one reward and one masked flag per sample, got "
                             f"{len(self.samples)} samples, {len(self.rewards)} rewards, {len(self.masked)} masked")
        if not self.prompt_ids:
            raise ValueError("RolloutGroup.prompt_ids is empty: the learner needs the prompt exactly as sampled")
        for s, m in zip(self.samples, self.masked):
            if not m and len(s.token_ids) != len(s.logprobs):
                raise ValueError(f"a sample has {len(s.token_ids)} tokens but {len(s.logprobs)} behaviour log-probs;"
                                 " the engine must return one log-prob per sampled token")
