"""Weight sync files: what `Learner.export_weights` writes and the engines read.

A sync directory holds exactly one `model.safetensors` with the full state dict in the learner's training dtype;
with tied embeddings `lm_head.weight` is absent (the loaders re-tie it). Importable without torch.
"""
from __future__ import annotations

from pathlib import Path

WEIGHTS_FILE = "model.safetensors"


def weights_file(weights_dir: str | Path) -> Path:
    """`weights_dir/model.safetensors`, or a FileNotFoundError naming what should have written it."""
    path = Path(weights_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: sync_weights needs a directory written by "
                                "Learner.export_weights (a single model.safetensors)")
    return path


def load_into(model, weights_dir: str | Path) -> None:
    """Copy the exported weights into a transformers model in place (dtype converted by `copy_`).

    Every parameter and buffer of the model must be covered, except a tied `lm_head.weight`; an unknown or
    missing tensor raises, so a sync from the wrong model cannot pass silently."""
    import safetensors.torch
    import torch

    state = safetensors.torch.load_file(str(weights_file(weights_dir)))
    own = model.state_dict()
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    unexpected = sorted(set(state) - set(own))
    # Non-persistent buffers (rotary inv_freq) are not in state_dict(), so `own` lists exactly what must arrive.
    missing = sorted(k for k in set(own) - set(state) if not (tied and k == "lm_head.weight"))
    if unexpected or missing:
        raise ValueError(f"weights in {weights_dir} do not fit the engine's model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]} (was it exported from the same architecture?)")
    with torch.no_grad():
        for name, tensor in state.items():
            if own[name].shape != tensor.shape:
                raise ValueError(f"{name}: shape {tuple(tensor.shape)} in {weights_dir}, engine has "
                                 f"{tuple(own[name].shape)}")
            own[name].copy_(tensor)
    if tied:
        model.tie_weights()
