"""TrainConfig: every knob of a training run, plus preset loading (params/*.yaml) and overrides.

Resolution order (later wins): dataclass defaults → preset YAML (`params/<model>.yaml`, or `params_file`)
→ notebook/papermill overrides. Anything unknown or ill-typed fails here, before Ray, models or data start,
with the offending field named (`acelib.config.ConfigError`).
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from acelib.config import ConfigError, from_dict, option, to_dict

PARAMS_DIR = Path(__file__).resolve().parents[2] / "params"


@dataclasses.dataclass
class ResourcesConfig:
    ray_address: str = option("", "Ray cluster address for ray.init(address=...); '' starts Ray in-process on this machine")
    num_cpus: int | None = option(None, "CPUs Ray may use locally (None = all cores)")
    rollout_workers: int = option(1, "number of rollout-worker actors (each drives one engine)")
    gpus_per_engine: float = option(0.0, "GPUs per rollout engine (0 on CPU); vLLM tensor parallel spans these")
    learner_gpus: float = option(0.0, "GPUs for the DeepSpeed learner actor (0 on CPU)")
    sandbox_workers: int | None = option(None, "concurrent sandbox executions per rollout worker (None = cores)")
    torch_threads: int | None = option(None, "torch intra-op threads of the learner and hf-rollout actors (None = all "
                                             "cores; Ray otherwise leaves an actor with num_cpus=0 a single thread)")
    object_store_mb: int = option(512, "Ray object store size in MiB for a local Ray (small: we ship weights via files)")


@dataclasses.dataclass
class TrainConfig:
    model: str = option("smollm2-135m", "model name in acelib.models (also the default preset: params/<model>.yaml)")
    suite: str = option("train", "offline suite whose competitions are the training tasks", choices=("train", "lite-mini"))
    competitions: list[str] = option(default_factory=list, help="subset of the suite's competition ids ([] = all)")
    steps: int = option(12, "learner steps (optimizer updates) to run; the paper used 400")
    seed: int = option(0, "seed for the sampler, engines and learner")
    sampling: str = option("lp", "task sampling: lp (Learnability Potential), uniform, no_buffer (roots only) — the paper's ablations",
                           choices=("lp", "uniform", "no_buffer"))
    mode: str = option("async", "async: rollout workers and learner overlap (bounded staleness); sync: generate → train → generate",
                       choices=("async", "sync"))
    tasks_per_step: int = option(2, "GRPO groups (buffer tasks) consumed by one learner step")
    group_size: int = option(4, "G: responses sampled per task; GRPO advantages are relative within a group")
    max_staleness: int = option(1, "admission control: generation may run at most this many learner steps ahead (0 = on-policy)")
    seed_with_reference: bool = option(True, "also seed the buffer with each competition's reference solution as an improve task")
    backend: str = option("auto", "rollout engine: vllm, hf (transformers generate) or auto (vllm if it works here)",
                          choices=("auto", "vllm", "hf"))
    temperature: float = option(1.0, "sampling temperature for rollouts")
    max_new_tokens: int = option(384, "maximum tokens per response (plan + script)")
    output_dir: str = option("outputs/runs", "where run directories (checkpoints, buffer, plots) are created")
    run_name: str = option("", "run name (default: <model>-<sampling>-<timestamp>)")
    tracking_uri: str = option("sqlite:///outputs/mlflow.db", "MLflow tracking URI (a remote server URL works too)")
    experiment: str = option("acelib", "MLflow experiment name")
    parent_run_id: str = option("", "MLflow parent run id (ablations nest their runs under one parent)")
    resume: str = option("", "continue a killed run: its run directory or its MLflow run id")
    dry_run: bool = option(False, "validate the whole configuration and print the resource plan; start nothing")
    checkpoint_every: int = option(1, "save a full checkpoint (learner, buffer, sampler) every N steps")
    keep_checkpoints: int = option(2, "how many recent checkpoints to keep on disk")
    resources: ResourcesConfig = option(default_factory=ResourcesConfig, help="Ray placement and resources")
    # Component configs: validated by the component's own dataclass (see `component_configs`).
    learner: dict = option(default_factory=dict, help="acelib.learner_config.LearnerConfig fields (lr, zero_stage, ...)")
    grpo: dict = option(default_factory=dict, help="acelib.grpo_config.GRPOConfig fields (loss_type, epsilon_high, beta, ...)")
    buffer: dict = option(default_factory=dict, help="acelib.curriculum.BufferConfig fields (caps, eviction, ...)")
    sampler: dict = option(default_factory=dict, help="acelib.curriculum.SamplerConfig fields (prior_lp, decay, power, uniform_share, ...)")
    sandbox: dict = option(default_factory=dict, help="acelib.sandbox.Limits fields (timeout_s, memory_mb, ...)")
    agent: dict = option(default_factory=dict, help="acelib.agent.config.AgentConfig fields: prompt budgets, memory, "
                                                      "reward (e.g. {'reward': {'score_source': 'test'}})")
    rollout: dict = option(default_factory=dict, help="acelib.rollout.RolloutConfig fields (engine options)")

    def validate(self) -> None:
        if self.steps < 0:
            raise ConfigError("steps must be >= 0")
        if self.group_size < 2:
            raise ConfigError("group_size must be >= 2: GRPO advantages compare responses within a group")
        if self.tasks_per_step < 1:
            raise ConfigError("tasks_per_step must be >= 1")
        if self.max_staleness < 0:
            raise ConfigError("max_staleness must be >= 0")
        if self.mode == "sync" and self.max_staleness != 0:
            # sync mode is by definition on-policy; keep one meaning per setting
            object.__setattr__(self, "max_staleness", 0)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict:
    """A preset by name (params/<name>.yaml) or by path; unknown names fail listing the valid ones."""
    import yaml

    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = PARAMS_DIR / f"{name_or_path}.yaml"
    if not p.exists():
        close = difflib.get_close_matches(str(name_or_path), preset_names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown preset '{name_or_path}'.{hint} Valid presets: {preset_names()} "
                          f"(files in {PARAMS_DIR}), or pass params_file=<path to a YAML>.")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a preset must be a YAML mapping of TrainConfig fields")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dotted(overrides: dict) -> dict:
    """{'learner.lr': 1e-5} → {'learner': {'lr': 1e-5}} so notebooks can override nested fields flatly."""
    out: dict = {}
    for k, v in overrides.items():
        parts = k.split(".")
        d = out
        for part in parts[:-1]:
            d = d.setdefault(part, {})
        d[parts[-1]] = v
    return out


def resolve(model: str | None = None, params_file: str | None = None, overrides: dict | None = None) -> TrainConfig:
    """Build a validated TrainConfig from a preset and overrides (unset values: None or "" are ignored).

    `model` picks the preset `params/<model>.yaml` when one exists; otherwise it overrides the model of the
    default preset (cpu). `params_file` replaces the preset entirely.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None and v != ""}
    if params_file:
        data = load_preset(params_file)
    elif model and (PARAMS_DIR / f"{model}.yaml").exists():
        data = load_preset(model)
    else:
        data = load_preset("cpu")
        if model:
            data["model"] = model
    cfg = from_dict(TrainConfig, _merge(data, _dotted(overrides)))
    component_configs(cfg)  # validate component fields now, before any work starts
    return cfg


def component_configs(cfg: TrainConfig) -> dict[str, Any]:
    """Typed component configs built from the dict sections; errors name e.g. 'learner.lr'."""
    from acelib.agent.config import AgentConfig
    from acelib.curriculum.config import BufferConfig, SamplerConfig
    from acelib.grpo_config import GRPOConfig
    from acelib.learner_config import LearnerConfig
    from acelib.rollout.config import RolloutConfig
    from acelib.sandbox.limits import Limits

    if "grpo" in cfg.learner:
        raise ConfigError("learner.grpo is set by the top-level `grpo` section of a training config; move it there")
    # The ablation switch lives on the buffer (no_buffer: nothing inserted); the sampler reads it from there.
    buffer = dict(cfg.buffer)
    if buffer.setdefault("mode", cfg.sampling) != cfg.sampling:
        raise ConfigError(f"buffer.mode={buffer['mode']!r} contradicts sampling={cfg.sampling!r}; set only `sampling`")
    return {
        "learner": from_dict(LearnerConfig, cfg.learner, prefix="learner."),
        "grpo": from_dict(GRPOConfig, cfg.grpo, prefix="grpo."),
        "buffer": from_dict(BufferConfig, buffer, prefix="buffer."),
        "sampler": from_dict(SamplerConfig, cfg.sampler, prefix="sampler."),
        "sandbox": from_dict(Limits, cfg.sandbox, prefix="sandbox."),
        "agent": from_dict(AgentConfig, cfg.agent, prefix="agent."),
        "rollout": from_dict(RolloutConfig, cfg.rollout, prefix="rollout."),
    }


def summary(cfg: TrainConfig) -> dict:
    return to_dict(cfg)
