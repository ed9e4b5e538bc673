"""Micro-batches: how sequences become model inputs, and model outputs become per-token log-probs on a grid.

Two layouts with one interface (`mask`, `grid`, `split`, `logprobs`):

- `PaddedBatch` (the naive path): each sequence is prompt + completion, LEFT-padded so every completion ends at
  the last position; `logits_to_keep = T + 1` then covers every completion, and per-token tensors are
  right-aligned on a [B, T] grid. Every completion pays for its prompt's forward and backward.
- `SharedPromptBatch` (shared_prompt=True): up to `micro_batch_size` completions of ONE group. The prompt runs
  once (batch 1, `use_cache=True`); its KV cache, still in the autograd graph, is repeated for the n completions,
  which run as a right-padded [n, T] batch on top of it. The backward of the repeat sums the completions'
  gradients into the prompt's activations, so loss and gradients equal the naive path's (tested), for
  ~(P + n·T) instead of n·(P + T) tokens. Per-token tensors are left-aligned on the [n, T] grid.

Why a KV cache and not one packed sequence with a shared-prefix attention mask: the cache path uses each model's
own attention and RoPE code unchanged (no custom 4-D masks, which transformers' mask builders handle differently
per attention backend), and it is the standard `past_key_values` interface every causal LM implements.
"""
from __future__ import annotations

import torch

from acelib.learner import grpo
from acelib.learner.batch import TrainSeq


class _Grid:
    """Per-token values of sequences placed on a [B, T] grid; row i holds sequence i's completion at offset[i]."""

    def __init__(self, seqs: list[TrainSeq], T: int, offsets: list[int], device: torch.device):
        self.seqs, self.T, self.offsets, self.device = seqs, T, offsets, device
        mask = torch.zeros(len(seqs), T, dtype=torch.bool)                       # [B, T]
        for i, (s, o) in enumerate(zip(seqs, offsets)):
            mask[i, o:o + len(s.tokens)] = True
        self.mask = mask.to(device)

    def grid(self, values: list, dtype=torch.float32) -> torch.Tensor:
        """values[i] (one number per completion token of sequence i) on the [B, T] grid, 0 elsewhere."""
        out = torch.zeros(len(self.seqs), self.T, dtype=dtype, device=self.device)
        for i, (s, o, v) in enumerate(zip(self.seqs, self.offsets, values)):
            if s.tokens:
                out[i, o:o + len(s.tokens)] = torch.as_tensor(v, dtype=dtype, device=self.device)
        return out

    def split(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of `grid`: row i of values [B, T] cut to sequence i's completion."""
        return [values[i, o:o + len(s.tokens)] for i, (s, o) in enumerate(zip(self.seqs, self.offsets))]

    def advantages(self) -> torch.Tensor:
        return torch.tensor([s.advantage for s in self.seqs], device=self.device)   # [B]


class PaddedBatch(_Grid):
    """Prompt + completion per row, left-padded (the naive path)."""

    def __init__(self, seqs: list[TrainSeq], device: torch.device):
        lengths = [len(s.prompt) + len(s.tokens) for s in seqs]
        L, T = max(lengths), max(1, max(len(s.tokens) for s in seqs))
        super().__init__(seqs, T, [T - len(s.tokens) for s in seqs], device)
        ids = torch.zeros(len(seqs), L, dtype=torch.long)                         # [B, L], pad id irrelevant
        attn = torch.zeros(len(seqs), L, dtype=torch.long)                        # [B, L]
        for i, (s, n) in enumerate(zip(seqs, lengths)):
            ids[i, L - n:] = torch.tensor(s.prompt + s.tokens)
            attn[i, L - n:] = 1
        self.input_ids, self.attention_mask = ids.to(device), attn.to(device)
        # Explicit positions: left padding must not shift RoPE positions of the real tokens.
        self.position_ids = (attn.cumsum(-1) - 1).clamp(min=0).to(device)        # [B, L]
        self.targets = self.input_ids[:, L - T:]                                  # [B, T]
        self.tokens = int(attn.sum())

    def logprobs(self, model, temperature: float, chunk: int, entropy: bool = False):
        """(log π(completion tokens) [B, T] at `temperature`, token entropies [B, T] or None)."""
        out = model(input_ids=self.input_ids, attention_mask=self.attention_mask, position_ids=self.position_ids,
                    logits_to_keep=self.T + 1, use_cache=False)
        logits = out.logits[:, :-1]                                               # [B, T, V] predicts targets
        logp = grpo.token_logprobs(logits, self.targets, temperature, chunk)      # [B, T]
        ent = grpo.entropy_from_logits(logits.detach(), temperature, chunk) if entropy else None
        return logp, ent


class SharedPromptBatch(_Grid):
    """One prompt, n completions of it: the prompt runs once and its KV cache serves every completion."""

    def __init__(self, seqs: list[TrainSeq], device: torch.device):
        prompt = seqs[0].prompt
        if any(s.prompt != prompt for s in seqs):
            raise ValueError("a SharedPromptBatch holds completions of one prompt only")
        T = max(1, max(len(s.tokens) for s in seqs))
        super().__init__(seqs, T, [0] * len(seqs), device)
        P = len(prompt)
        self.prompt_ids = torch.tensor([prompt], device=device)                   # [1, P]
        self.prompt_pos = torch.arange(P, device=device)[None]                    # [1, P]
        ids = torch.zeros(len(seqs), T, dtype=torch.long)                         # [n, T] right-padded
        for i, s in enumerate(seqs):
            ids[i, :len(s.tokens)] = torch.tensor(s.tokens)
        self.targets = ids.to(device)                                             # [n, T]
        self.completion_pos = (P + torch.arange(T, device=device))[None].expand(len(seqs), T)   # [n, T]
        self.tokens = P + sum(len(s.tokens) for s in seqs)

    def logprobs(self, model, temperature: float, chunk: int, entropy: bool = False):
        """(log π(completion tokens) [n, T] at `temperature`, token entropies [n, T] or None).

        Right padding needs no attention mask: a causal model never lets a real token see the pads after it."""
        n = len(self.seqs)
        out = model(input_ids=self.prompt_ids, position_ids=self.prompt_pos, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)           # differentiable: backward sums the n completions' gradients
        first = out.logits[:, -1:].expand(n, 1, -1)                               # [n, 1, V] predicts token 0
        rest = model(input_ids=self.targets, position_ids=self.completion_pos, past_key_values=cache,
                     use_cache=True, logits_to_keep=0).logits[:, :-1]             # [n, T-1, V] predicts 1..T-1
        logp = torch.cat([grpo.token_logprobs(first, self.targets[:, :1], temperature, chunk),
                          grpo.token_logprobs(rest, self.targets[:, 1:], temperature, chunk)], dim=1)   # [n, T]
        ent = None
        if entropy:
            ent = torch.cat([grpo.entropy_from_logits(first.detach(), temperature, chunk),
                             grpo.entropy_from_logits(rest.detach(), temperature, chunk)], dim=1)
        return logp, ent


MicroBatch = PaddedBatch | SharedPromptBatch


def micro_batches(seqs: list[TrainSeq], size: int, shared_prompt: bool, device: torch.device) -> list[MicroBatch]:
    """Cut `seqs` (in order) into micro-batches: chunks of `size` sequences, or with shared_prompt chunks of
    `size` completions of one group each (groups in order of first appearance)."""
    if not shared_prompt:
        return [PaddedBatch(seqs[i:i + size], device) for i in range(0, len(seqs), size)]
    by_group: dict[int, list[TrainSeq]] = {}
    for s in seqs:
        by_group.setdefault(s.group, []).append(s)
    return [SharedPromptBatch(g[i:i + size], device) for g in by_group.values() for i in range(0, len(g), size)]
