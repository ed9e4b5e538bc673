"""GRPO advantages, losses and log-probs as pure tensor functions (no model, no optimizer, no DeepSpeed).

The learner calls them per micro-batch. Every loss is normalised by counts of the *whole* (mini)batch passed in
by the caller (`num_sequences`, `num_tokens`), so summing micro-batch losses (gradient accumulation) gives
exactly the full-batch loss and gradient for every `loss_type`. Formulas: docs/learner.md.

Shapes: N = sequences in the batch, B = sequences in a micro-batch, T = completion positions, V = vocabulary.
"""
from __future__ import annotations

import torch

from acelib.groups import ZERO_VARIANCE_TOL
from acelib.learner.config import GRPOConfig

# Sums kept per micro-batch; `summarize` turns them into means over the step.
STAT_KEYS = ("loss", "sequences", "tokens", "clipped", "approx_kl", "ref_kl", "is_weight", "is_capped", "entropy")


def group_advantages(rewards: torch.Tensor, group_ids: torch.Tensor, valid: torch.Tensor,
                     cfg: GRPOConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages A_i = (r_i − mean_g) [/ (std_g + eps)] over the valid samples of each group.

    rewards [N] float, group_ids [N] long in [0, G), valid [N] bool (False = infra error: excluded from the group
    mean/std and from the loss). Returns (advantages [N], keep [N] bool). `keep` is False for invalid samples and,
    with `cfg.filter_zero_variance`, for every sample of a zero-variance group (acelib.groups: valid rewards
    within ZERO_VARIANCE_TOL of each other, or fewer than two valid samples). Such groups get advantage exactly 0
    either way.
    """
    if not (rewards.shape == group_ids.shape == valid.shape and rewards.dim() == 1):
        raise ValueError(f"rewards, group_ids and valid must be 1-D of equal length, got "
                         f"{tuple(rewards.shape)}, {tuple(group_ids.shape)}, {tuple(valid.shape)}")
    r = rewards.double()  # [N]; double so the centred rewards of equal values are exactly 0
    v = valid.bool()
    num_groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
    vf = v.double()
    count = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_ids, vf)           # [G]
    total = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_ids, r * vf)       # [G]
    mean = total / count.clamp(min=1)                                                           # [G]
    centred = torch.where(v, r - mean[group_ids], 0.0)                                          # [N]
    # Unbiased (Bessel) std, as TRL and verl compute it.
    var = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_ids, centred ** 2) / (count - 1).clamp(min=1)
    std = var.sqrt()                                                                            # [G]
    hi = torch.full((num_groups,), -torch.inf, dtype=torch.float64).scatter_reduce(
        0, group_ids, torch.where(v, r, -torch.inf), "amax")
    lo = torch.full((num_groups,), torch.inf, dtype=torch.float64).scatter_reduce(
        0, group_ids, torch.where(v, r, torch.inf), "amin")
    zero_var = (count < 2) | (hi - lo <= ZERO_VARIANCE_TOL)                                 # [G]
    adv = centred / (std[group_ids] + cfg.advantage_eps) if cfg.std_scaling else centred
    adv = torch.where(v & ~zero_var[group_ids], adv, 0.0)
    keep = v & ~zero_var[group_ids] if cfg.filter_zero_variance else v
    return adv.to(rewards.dtype if rewards.is_floating_point() else torch.float32), keep


def token_weights(mask: torch.Tensor, cfg: GRPOConfig, *, num_sequences: int, num_tokens: int,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-token aggregation weights [B, T] such that loss = Σ weight · per-token loss, for mask [B, T] bool.

    num_sequences / num_tokens are the active sequences / tokens of the whole (mini)batch this micro-batch belongs
    to (not of the micro-batch), which is what makes gradient accumulation exact. Counts of 0 are treated as 1 so an
    all-masked batch gives a zero loss instead of NaN.
    """
    m = mask.to(dtype)                                                        # [B, T]
    if cfg.loss_type == "dapo":
        return m / max(num_tokens, 1)
    if cfg.loss_type == "grpo":
        per_seq = m.sum(-1, keepdim=True).clamp(min=1)                        # [B, 1] |o_i|
        return m / per_seq / max(num_sequences, 1)
    if cfg.loss_type == "dr_grpo":
        if cfg.max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs GRPOConfig.max_completion_length (the generation length cap)")
        return m / (cfg.max_completion_length * max(num_sequences, 1))
    raise ValueError(f"unknown loss_type {cfg.loss_type!r}")


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                cfg: GRPOConfig, *, num_sequences: int, num_tokens: int,
                behaviour_logprobs: torch.Tensor | None = None,
                ref_logprobs: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped-ratio GRPO loss of one micro-batch plus its metric sums.

    logprobs [B, T] log π_θ (carries the gradient); old_logprobs [B, T] log π_old; advantages [B]; mask [B, T] bool
    (completion tokens that count; masked positions may hold any value, even inf/NaN); behaviour_logprobs [B, T]
    the engine's log-probs (TIS weight min(π_old/π_behaviour, tis_cap) when given and tis_cap is set);
    ref_logprobs [B, T] the reference policy (k3 KL, only when cfg.beta > 0).
    Returns (loss scalar, stats) where stats are detached *sums* over the micro-batch (see `summarize`).
    """
    m = mask.bool()
    # where() before exp(): masked positions may be padding garbage, and inf·0 would be NaN.
    log_ratio = torch.where(m, logprobs - old_logprobs, 0.0)                 # [B, T] log π_θ/π_old
    ratio = log_ratio.exp()
    adv = advantages.to(logprobs.dtype)[:, None]                             # [B, 1]
    clipped_ratio = ratio.clamp(1 - cfg.epsilon_low, 1 + cfg.epsilon_high)
    pg = torch.maximum(-adv * ratio, -adv * clipped_ratio)                   # [B, T] pessimistic PPO term

    if behaviour_logprobs is not None and cfg.tis_cap is not None:
        # Correct for π_old ≠ π_behaviour (stale or numerically different engine); a constant, so detached.
        raw_w = torch.where(m, old_logprobs - behaviour_logprobs, 0.0).detach().exp()
        is_w = raw_w.clamp(max=cfg.tis_cap)                                 # [B, T]
        is_capped = (raw_w > cfg.tis_cap) & m
    else:
        is_w = torch.ones_like(pg)
        is_capped = torch.zeros_like(m)
    per_token = is_w * pg

    if cfg.beta > 0:
        if ref_logprobs is None:
            raise ValueError("cfg.beta > 0 needs ref_logprobs (log-probs of the frozen reference policy)")
        ref_log_ratio = torch.where(m, ref_logprobs - logprobs, 0.0)          # [B, T] log π_ref/π_θ
        ref_kl = ref_log_ratio.exp() - ref_log_ratio - 1                     # k3 ≥ 0, unbiased for KL(π_θ‖π_ref)
        per_token = per_token + cfg.beta * ref_kl
    else:
        ref_kl = torch.zeros_like(pg)

    w = token_weights(m, cfg, num_sequences=num_sequences, num_tokens=num_tokens, dtype=per_token.dtype)
    loss = (per_token * w).sum()

    with torch.no_grad():
        # Tokens where the clip is the active branch of the max (it zeroes their gradient).
        clipped = ((ratio < 1 - cfg.epsilon_low) & (adv < 0)) | ((ratio > 1 + cfg.epsilon_high) & (adv > 0))
        approx_kl = (ratio - 1) - log_ratio                                   # k3 of π_θ vs π_old
        stats = {
            "loss": loss.detach().double(),
            "sequences": (m.any(-1)).sum().double(),
            "tokens": m.sum().double(),
            "clipped": (clipped & m).sum().double(),
            "approx_kl": (approx_kl * m).sum().double(),
            "ref_kl": (ref_kl * m).sum().double(),
            "is_weight": (is_w * m).sum().double(),
            "is_weight_max": (is_w * m).max().double() if m.any() else torch.zeros((), dtype=torch.float64),
            "is_capped": is_capped.sum().double(),
        }
    return loss, stats


class _TokenLogProbs(torch.autograd.Function):
    """log softmax(z / τ)[target] computed over chunks of positions, forward and backward.

    Hand-written because torch's log_softmax / cross_entropy keep a full float32 [B, T, V] copy of the logits for
    backward (~5 GB per 8k-token sequence at V = 152k); here only the input logits (the model's own output, in its
    dtype) and the per-position logsumexp [B, T] are saved, and float32 exists one [B, chunk, V] slice at a time.
    d log p(y) / dz_v = (1[v = y] − softmax(z/τ)_v) / τ.
    """

    @staticmethod
    def forward(ctx, logits, targets, temperature: float, chunk: int):               # [B, T, V], [B, T]
        B, T, _ = logits.shape
        acc = torch.promote_types(logits.dtype, torch.float32)                     # fp32 (fp64 stays fp64)
        out = torch.empty(B, T, dtype=acc, device=logits.device)                    # [B, T]
        lse = torch.empty(B, T, dtype=acc, device=logits.device)                    # [B, T]
        for s in range(0, T, chunk):
            z = logits[:, s:s + chunk].to(acc) / temperature                        # [B, c, V]
            lse[:, s:s + chunk] = z.logsumexp(-1)
            out[:, s:s + chunk] = z.gather(-1, targets[:, s:s + chunk, None]).squeeze(-1) - lse[:, s:s + chunk]
        ctx.save_for_backward(logits, targets, lse)
        ctx.temperature, ctx.chunk = temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):                                                     # [B, T]
        logits, targets, lse = ctx.saved_tensors
        tau, chunk = ctx.temperature, ctx.chunk
        grad = torch.empty_like(logits)                                              # [B, T, V]
        for s in range(0, logits.shape[1], chunk):
            g = grad_out[:, s:s + chunk, None].to(lse.dtype)                         # [B, c, 1]
            p = (logits[:, s:s + chunk].to(lse.dtype) / tau - lse[:, s:s + chunk, None]).exp_()  # softmax [B, c, V]
            p.mul_(-g).scatter_add_(-1, targets[:, s:s + chunk, None], g)
            grad[:, s:s + chunk] = p.div_(tau)
        return grad, None, None, None


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
                   chunk: int | None = None) -> torch.Tensor:
    """log softmax(logits / temperature)[target]: logits [B, T, V], targets [B, T] → [B, T] (fp32; fp64 for fp64).

    The temperature is the one the engine sampled at: samples come from softmax(z/τ), so the policy gradient and the
    ratios must use that density, not softmax(z). Float32 copies are made `chunk` positions at a time (None = all).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score samples, got {temperature} (greedy has no density)")
    return _TokenLogProbs.apply(logits, targets, float(temperature), chunk or max(1, logits.shape[1]))


@torch.no_grad()
def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0, chunk: int | None = None) -> torch.Tensor:
    """Entropy of softmax(logits / temperature) over the last axis: logits [B, T, V] → [B, T] fp32 (no grad)."""
    acc = torch.promote_types(logits.dtype, torch.float32)
    out = torch.empty(logits.shape[:-1], dtype=acc, device=logits.device)              # [B, T]
    step = chunk or max(1, logits.shape[1])
    for s in range(0, logits.shape[1], step):
        logp = (logits[:, s:s + step].to(acc) / temperature).log_softmax(-1)            # [B, c, V]
        out[:, s:s + step] = -(logp.exp() * logp).sum(-1)
    return out


def summarize(stats: list[dict[str, torch.Tensor]], num_updates: int = 1) -> dict[str, float]:
    """Turn per-micro-batch sums into step metrics.

    `loss` is the mean over the `num_updates` optimizer updates (each update's loss is the sum of its micro-batch
    losses, already normalised); the other metrics are token means over the whole step.
    """
    if not stats:
        return {}
    tot = {k: sum(float(s[k]) for s in stats if k in s) for k in STAT_KEYS}
    tokens = max(tot["tokens"], 1.0)
    return {
        "loss": tot["loss"] / max(num_updates, 1),
        "clip_frac": tot["clipped"] / tokens,
        "approx_kl": tot["approx_kl"] / tokens,
        "ref_kl": tot["ref_kl"] / tokens,
        "entropy": tot["entropy"] / tokens,
        "is_weight_mean": tot["is_weight"] / tokens,
        "is_weight_max": max(float(s["is_weight_max"]) for s in stats),
        "is_capped_frac": tot["is_capped"] / tokens,
        "sequences": tot["sequences"],
        "tokens": tot["tokens"],
    }
