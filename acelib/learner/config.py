"""The learner's configs: `GRPOConfig` (advantage and loss, `acelib.learner.grpo`) and `LearnerConfig` (the
DeepSpeed engine, batching, precision), importable without torch: the Ray driver and notebooks build and validate
them with no training stack loaded. The formulas behind every field are written out in docs/learner.md.
"""
from __future__ import annotations

import dataclasses

from acelib.config import ConfigError, option

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")


@dataclasses.dataclass
class GRPOConfig:
    loss_type: str = option(
        "dapo",
        "how per-token losses are aggregated. 'grpo': token-mean within each sequence, then mean over sequences "
        "(short answers weigh more per token: length-biased). 'dr_grpo': token-sum / max_completion_length, mean "
        "over sequences, and rewards are not std-scaled (Dr.GRPO, unbiased). 'dapo': token-mean over all tokens of "
        "the batch (DAPO; every token weighs the same); use with epsilon_high > epsilon_low (clip-higher).",
        choices=LOSS_TYPES)
    scale_rewards: str = option(
        "auto",
        "divide group-centred rewards by the group std: 'group' (GRPO), 'none' (Dr.GRPO), 'auto' = 'none' for "
        "loss_type 'dr_grpo' and 'group' otherwise",
        choices=("auto", "group", "none"))
    advantage_eps: float = option(1e-4, "added to the group std before dividing (keeps near-constant groups finite)")
    epsilon_low: float = option(0.2, "PPO clip: the ratio π_θ/π_old is clipped below at 1 − epsilon_low")
    epsilon_high: float = option(
        0.28, "PPO clip: the ratio is clipped above at 1 + epsilon_high (DAPO clip-higher; set = epsilon_low for "
        "the symmetric PPO clip)")
    max_completion_length: int | None = option(
        None, "the constant token count dr_grpo divides each sequence's token-sum by: the generation length cap. "
        "None = the run's max_new_tokens (the trainer fills it in; a Learner built by hand must set it for dr_grpo)")
    beta: float = option(0.0, "weight of the k3 KL penalty to the frozen reference policy (0 = no reference model)")
    old_logprobs: str = option(
        "recompute",
        "where π_old comes from. 'recompute': the learner re-scores the batch under no_grad at the start of the "
        "step (decoupled PPO: the clip is against the learner's own weights, TIS corrects the engine mismatch). "
        "'behaviour': bypass mode, π_old := the engine's log-probs (saves one forward pass; the clip then also "
        "bounds the staleness/mismatch and the TIS weight is identically 1)",
        choices=("recompute", "behaviour"))
    tis_cap: float | None = option(
        2.0, "truncated importance sampling: each token's loss is weighted by min(π_old/π_behaviour, tis_cap) "
        "(π_old from the learner, π_behaviour from the rollout engine); None disables the weight")
    filter_zero_variance: bool = option(
        True, "drop zero-variance groups (acelib.groups: valid rewards all equal within ZERO_VARIANCE_TOL, or fewer "
        "than two): their advantages are 0, they only dilute the normaliser and cost compute (DAPO "
        "dynamic-sampling filter without refill)")

    def validate(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type: {self.loss_type!r} is not one of {list(LOSS_TYPES)}")
        if not (0 <= self.epsilon_low < 1 and self.epsilon_high >= 0):
            raise ConfigError("epsilon_low must lie in [0, 1) and epsilon_high be ≥ 0")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise ConfigError("max_completion_length must be ≥ 1 (dr_grpo divides by it)")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ConfigError("tis_cap must be > 0, or None to disable truncated importance sampling")
        if self.beta < 0:
            raise ConfigError("beta must be ≥ 0")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def std_scaling(self) -> bool:
        """Whether advantages are divided by the group std (resolves scale_rewards='auto')."""
        if self.scale_rewards == "auto":
            return self.loss_type != "dr_grpo"
        return self.scale_rewards == "group"


@dataclasses.dataclass
class LearnerConfig:
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
    micro_batch_size: int = option(
        4, "sequences per forward/backward (with shared_prompt: completions of ONE group per forward); "
        "gradients accumulate over micro-batches")
    shared_prompt: bool = option(
        True, "the G completions of a group share one forward pass of their prompt (a prompt KV cache kept in the "
        "autograd graph; gradients through the prompt summed over the completions). False = the naive path: every "
        "completion re-runs its prompt. Same loss and gradients (tested); docs/learner.md has the speed-up")
    logprob_chunk: int = option(
        1024, "sequence positions per chunk of the float32 log-softmax / entropy over the vocabulary: bounds the "
        "float32 copies of [B, T, V] logits to [B, chunk, V]")
    ppo_epochs: int = option(1, "passes over the batch per train_step (each pass re-uses the same π_old)")
    num_minibatches: int = option(
        1, "optimizer updates per epoch: the batch is split into this many minibatches (1 = one update per epoch)")
    gradient_checkpointing: bool = option(
        False, "recompute activations in backward (long agent contexts on GPU); needs shared_prompt=False "
        "(transformers turns the prompt's KV cache off under checkpointing)")

    def validate(self) -> None:
        if self.micro_batch_size < 1 or self.ppo_epochs < 1 or self.num_minibatches < 1:
            raise ConfigError("micro_batch_size, ppo_epochs and num_minibatches must be ≥ 1")
        if self.logprob_chunk < 1:
            raise ConfigError("logprob_chunk must be ≥ 1")
        if self.offload_params and self.zero_stage != 3:
            raise ConfigError("offload_params needs zero_stage=3 (parameters are only partitioned by ZeRO-3)")
        if self.offload_optimizer and self.zero_stage == 0:
            raise ConfigError("offload_optimizer needs zero_stage ≥ 1")
        if self.offload_optimizer and self.optimizer != "deepspeed_adam":
            # DeepSpeed refuses a client optimizer under ZeRO-Offload (zero_force_ds_cpu_optimizer): fail here, early.
            raise ConfigError("offload_optimizer needs optimizer='deepspeed_adam' (DeepSpeedCPUAdam steps the "
                              "offloaded states; DeepSpeed rejects a client torch AdamW there)")
        if self.gradient_checkpointing and self.shared_prompt:
            raise ConfigError("gradient_checkpointing needs shared_prompt=False: transformers disables the KV cache "
                              "under checkpointing, and the shared-prompt path trains through that cache")
        if self.lr <= 0 or self.warmup_steps < 0 or self.total_steps < 1:
            raise ConfigError("lr must be > 0, warmup_steps ≥ 0 and total_steps ≥ 1")

    def __post_init__(self) -> None:
        self.validate()
