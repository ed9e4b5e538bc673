"""TrainConfig: every knob of a training run, typed and nested, plus preset loading (params/*.yaml) and overrides.

Resolution order (later wins): dataclass defaults → preset YAML (`params/<model>.yaml`, or `params_file`)
→ notebook/papermill overrides. Every component section is its component's own config dataclass (LearnerConfig,
GRPOConfig, BufferConfig, ...), so `from_dict` validates the whole tree once, errors name the field path
(`learner.lr`), and `describe()` documents every field. Values one setting determines for another (the rollout
temperature for the learner, max_new_tokens for Dr. GRPO's constant, gpus_per_engine for vLLM's tensor parallel
size, sampling for the buffer's mode) are filled in by `validate`, which refuses contradictions instead of
silently rewriting them. Nothing here imports torch or Ray.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from acelib.agent.config import AgentConfig, SeedConfig
from acelib.config import ConfigError, check_names, from_dict, option
from acelib.curriculum.config import BufferConfig, SamplerConfig
from acelib.learner.config import GRPOConfig, LearnerConfig
from acelib.rollout.config import RolloutConfig
from acelib.sandbox.limits import Limits
from acelib.trainer.warmstart import WarmStartConfig

PARAMS_DIR = Path(__file__).resolve().parents[2] / "params"


@dataclasses.dataclass
class ResourcesConfig:
    ray_address: str = option("", "Ray cluster address for ray.init(address=...); '' starts Ray in-process on this machine")
    num_cpus: int | None = option(None, "CPUs Ray may use locally (None = all cores)")
    rollout_workers: int = option(1, "number of rollout-worker actors (each drives one engine)")
    rollouts_per_worker: int = option(
        2, "groups a rollout worker holds at once: their generations share one engine call (batched) and one "
        "group's programs run while the next generates; more fills a GPU engine's batch (bounded by max_staleness)")
    gpus_per_engine: int = option(
        0, "GPUs per rollout engine (0 on CPU); vLLM's tensor_parallel_size is set to this (rollout.tensor_parallel_size "
        "may be left at 1 or set equal)")
    learner_gpus: int = option(0, "GPUs of the learner: one DeepSpeed rank per GPU (0 on CPU)")
    learner_ranks: int = option(
        1, "CPU only (learner_gpus = 0): learner processes forming one gloo process group (DeepSpeed ZeRO across them)")
    sandbox_workers: int | None = option(None, "concurrent sandbox executions per rollout worker, or per executor when "
                                               "executors > 0 (None = cores)")
    executors: int = option(0, "executor actors that run the agents' programs (acelib.sandbox.executor), each a "
                               "sandbox pool on a node with `executor_resource`; 0 = every rollout worker runs its own "
                               "pool on its node (one machine)")
    executor_resource: str = option("executor", "custom Ray resource an executor asks for (1 each): only nodes started "
                                                "with --resources '{\"executor\": N}' get executors; '' = any node")
    rollout_resource: str = option("", "custom Ray resource each rollout worker asks for (1 each; '' = none)")
    learner_resource: str = option("", "custom Ray resource each learner rank asks for (1 each; '' = none)")
    torch_threads: int | None = option(None, "torch intra-op threads of the learner and hf-rollout actors (None = all "
                                             "cores; Ray otherwise leaves an actor with num_cpus=0 a single thread)")
    object_store_mb: int = option(512, "Ray object store size in MiB for a local Ray (small: we ship weights via files)")
    start_timeout_s: float = option(
        900.0, "longest wait for an actor to start (engine load, learner rendezvous, DeepSpeed op build) before the "
        "run fails naming what it waited for")

    @property
    def learner_processes(self) -> int:
        return self.learner_gpus if self.learner_gpus > 0 else self.learner_ranks

    def validate(self) -> None:
        if self.rollout_workers < 1 or self.rollouts_per_worker < 1:
            raise ConfigError("resources.rollout_workers and resources.rollouts_per_worker must be ≥ 1")
        if self.gpus_per_engine < 0 or self.learner_gpus < 0 or self.learner_ranks < 1:
            raise ConfigError("resources.gpus_per_engine and learner_gpus must be ≥ 0, learner_ranks ≥ 1")
        if self.executors < 0:
            raise ConfigError("resources.executors must be ≥ 0")
        if self.learner_gpus > 0 and self.learner_ranks != 1:
            raise ConfigError("resources.learner_ranks is for CPU learners; on GPUs set learner_gpus (one rank per GPU)")


@dataclasses.dataclass
class ProbeConfig:
    """A fixed set of debug tasks the policy answers before RL, every `every` steps and after the last step: a
    learning curve on unchanging tasks. The rates of the training rollouts cannot be one: the curriculum keeps moving
    them to where the policy half-succeeds (docs/trainer.md, "Probe")."""

    per_competition: int = option(0, "probe tasks per training competition (0 = no probe): train-split mutations of "
                                     "the seed kinds, drawn apart from the RL seeds and the warm-start examples")
    samples: int = option(4, "responses per probe task, sampled at the training temperature")
    every: int = option(0, "also probe after every N learner steps (0 = only before the first and after the last)")
    cache: bool = option(True, "reuse the probe before RL measured by an earlier run from the same warm start, tasks, "
                               "seed and settings ($ACELIB_CACHE_DIR/probes; acelib/trainer/probe_cache.py); the probe "
                               "after the last step is always measured. Only runs with a warm start (a fixed model)")

    def validate(self) -> None:
        if self.per_competition < 0 or self.samples < 1 or self.every < 0:
            raise ConfigError("probe.per_competition and probe.every must be >= 0, probe.samples >= 1")

    @property
    def enabled(self) -> bool:
        return self.per_competition > 0


@dataclasses.dataclass
class TrainConfig:
    model: str = option("smollm2-135m", "model name in acelib.models (also the default preset: params/<model>.yaml), a "
                                        "Hugging Face directory, or an MLflow URI (models:/<name>/<version>, runs:/...)")
    suite: str = option("train", "offline suite whose competitions are the training tasks", choices=("train", "lite-mini"))
    competitions: list[str] = option(default_factory=list, help="subset of the suite's competition ids ([] = all)")
    steps: int = option(12, "learner steps (optimizer updates) to run; the paper used 400")
    seed: int = option(0, "seed for the sampler, engines and learner")
    sampling: str = option("lp", "task sampling: lp (Learnability Potential), uniform, no_buffer (roots only) — the "
                                 "paper's ablations; also sets buffer.mode", choices=("lp", "uniform", "no_buffer"))
    mode: str = option("async", "async: rollouts and learner steps overlap (staleness ≤ max_staleness); sync: generate "
                                "→ train → generate, strictly on-policy (needs max_staleness = 0)",
                       choices=("async", "sync"))
    tasks_per_step: int = option(2, "GRPO groups (buffer tasks) consumed by one learner step")
    group_size: int = option(4, "G: responses sampled per task; GRPO advantages are relative within a group")
    max_staleness: int = option(1, "admission control: generation may run at most this many learner steps ahead "
                                   "(0 = on-policy; must be 0 in sync mode)")
    backend: str = option("auto", "rollout engine: vllm, hf (transformers generate) or auto (vllm if it works here); "
                                  "'openai' (an endpoint) is for evaluation only", choices=("auto", "vllm", "hf", "openai"))
    temperature: float = option(1.0, "sampling temperature of the rollouts; the learner scores softmax(logits / "
                                     "temperature), the density the samples came from")
    top_p: float = option(1.0, "nucleus sampling mass: must stay 1 for training (the learner cannot reproduce a "
                               "truncated density); eval takes its own")
    top_k: int = option(0, "top-k sampling: must stay 0 (off) for training, like top_p")
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
    checkpoint_artifacts: str = option(
        "reference", "what MLflow records of each checkpoint: 'reference' (an index of where the checkpoints are on "
        "disk: they are large), 'copy' (upload them as artifacts too), 'none' (docs/trainer.md)",
        choices=("none", "reference", "copy"))
    keep_checkpoint_artifacts: int = option(1, "with checkpoint_artifacts='copy': newest copies kept in MLflow")
    registered_model_name: str = option("", "name of the final policy in the MLflow model registry ('' = "
                                            "acelib-<model>)")
    max_masked_share: float = option(
        0.5, "a learner step whose samples are infra-masked (generation, execution or grading faults) beyond this "
        "share fails the run loudly: a broken sandbox or grader must not train silently on nothing")
    resources: ResourcesConfig = option(default_factory=ResourcesConfig, help="Ray placement and resources")
    learner: LearnerConfig = option(default_factory=LearnerConfig, help="DeepSpeed learner (lr, zero_stage, dtype, "
                                                                        "micro_batch_size, shared_prompt, ...)")
    grpo: GRPOConfig = option(default_factory=GRPOConfig, help="GRPO advantage and loss (loss_type, epsilon_high, beta, "
                                                               "...)")
    buffer: BufferConfig = option(default_factory=BufferConfig, help="Evolving Data Buffer (caps, eviction, ...)")
    sampler: SamplerConfig = option(default_factory=SamplerConfig, help="Learnability sampler (prior_lp, decay, power, "
                                                                        "uniform_share, ...)")
    sandbox: Limits = option(default_factory=Limits, help="sandbox limits (timeout_s, memory_mb, ...)")
    warm_start: WarmStartConfig = option(default_factory=WarmStartConfig,
                                         help="supervised warm start on expert repairs before RL (cached)")
    seeds: SeedConfig = option(default_factory=SeedConfig, help="seed tasks of the buffer: each competition's compact "
                                                                "baseline (improve) and mutations of it (debug), "
                                                                "train split; built once and cached")
    probe: ProbeConfig = option(default_factory=ProbeConfig, help="fixed probe tasks answered before, during and "
                                                                  "after RL: the run's learning curve")
    agent: AgentConfig = option(default_factory=AgentConfig, help="agent scaffold: prompt budgets, memory, reward "
                                                                   "(e.g. {'reward': {'score_source': 'test'}})")
    rollout: RolloutConfig = option(default_factory=RolloutConfig, help="rollout-engine options")

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
            raise ConfigError(f"mode='sync' is strictly on-policy: set max_staleness=0 (got {self.max_staleness}), "
                              "or use mode='async'")
        if self.backend == "openai":
            raise ConfigError("backend='openai' is for evaluation only: training needs the sampled token ids and "
                              "behaviour log-probs of a local engine (vllm or hf)")
        if not 0.0 < self.max_masked_share <= 1.0:
            raise ConfigError("max_masked_share must lie in (0, 1]")
        if self.temperature <= 0 or self.top_p < 1.0 or self.top_k != 0:
            raise ConfigError(f"training samples must keep a density the learner can score: temperature > 0, "
                              f"top_p = 1, top_k = 0 (got {self.temperature}, {self.top_p}, {self.top_k}); truncated "
                              "sampling (top_p/top_k) would bias the policy gradient. Use them for evaluation only.")
        if self.rollout.logprobs_mode == "raw" and self.temperature != 1.0:
            raise ConfigError("rollout.logprobs_mode='raw' gives temperature-1 log-probs, but rollouts are sampled at "
                              f"temperature {self.temperature}: the TIS weight would compare different densities. "
                              "Use rollout.logprobs_mode='processed' (the default).")
        self.resources.validate()
        if not self.buffer.draft_roots and not self.seeds.enabled:
            raise ConfigError("buffer.draft_roots=false leaves no task: enable seeds (seeds.per_competition > 0 or "
                              "seeds.improve)")
        if self.buffer.mode not in (BufferConfig().mode, self.sampling):
            raise ConfigError(f"buffer.mode={self.buffer.mode!r} contradicts sampling={self.sampling!r}; "
                              "set only `sampling`")
        tp = max(self.resources.gpus_per_engine, 1)
        if self.rollout.tensor_parallel_size not in (1, tp):
            raise ConfigError(f"rollout.tensor_parallel_size={self.rollout.tensor_parallel_size} disagrees with "
                              f"resources.gpus_per_engine={self.resources.gpus_per_engine}: an engine shards its model "
                              "over the GPUs it reserves. Set only resources.gpus_per_engine.")

    def __post_init__(self) -> None:
        self.validate()

    def components(self) -> "Components":
        """The component configs as the actors get them, with every derived setting filled in (the one place)."""
        return Components(
            learner=self.learner,
            grpo=(self.grpo if self.grpo.max_completion_length is not None else
                  dataclasses.replace(self.grpo, max_completion_length=self.max_new_tokens)),
            buffer=dataclasses.replace(self.buffer, mode=self.sampling),
            sampler=self.sampler, sandbox=self.sandbox, agent=self.agent,
            rollout=dataclasses.replace(self.rollout, tensor_parallel_size=max(self.resources.gpus_per_engine, 1)))

    @property
    def effective_max_staleness(self) -> int:
        return 0 if self.mode == "sync" else self.max_staleness


@dataclasses.dataclass(frozen=True)
class Components:
    """`TrainConfig.components()`: what each actor is built with."""
    learner: LearnerConfig
    grpo: GRPOConfig
    buffer: BufferConfig
    sampler: SamplerConfig
    sandbox: Limits
    agent: AgentConfig
    rollout: RolloutConfig


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


def parse_mapping(value, name: str = "overrides") -> dict:
    """A notebook parameter that takes a mapping: a dict as is, or a string holding JSON/YAML (what a papermill
    user types: -p overrides '{"resources.ray_address": "..."}'). None or '' is an empty mapping."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        import yaml
        try:
            value = yaml.safe_load(value)   # JSON is YAML
        except yaml.YAMLError as e:
            raise ConfigError(f"{name}: {value!r} is neither JSON nor YAML ({e}); write e.g. "
                              f"-p {name} '{{\"steps\": 5}}'") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping such as {{'steps': 5}}, got {value!r}")
    return value


def parse_list(value, name: str) -> list:
    """A notebook parameter that takes a list: a list as is, or a string holding a JSON/YAML list (or one item)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        import yaml
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"{name}: {value!r} is neither JSON nor YAML ({e})") from None
        value = parsed if isinstance(parsed, list) else [parsed]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list such as ['a', 'b'], got {value!r}")
    return list(value)


def resolve(model: str | None = None, params_file: str | None = None, overrides: dict | str | None = None
            ) -> TrainConfig:
    """Build a validated TrainConfig from a preset and overrides (unset values: None or "" are ignored).

    `model` picks the preset `params/<model>.yaml` when one exists; otherwise it overrides the model of the
    default preset (cpu). `params_file` replaces the preset entirely. `overrides` may be a JSON/YAML string.
    """
    given = parse_mapping(overrides)
    overrides = {k: v for k, v in given.items() if v is not None and v != ""}
    if params_file:
        data = load_preset(params_file)
    elif model and (PARAMS_DIR / f"{model}.yaml").exists():
        data = load_preset(model)
    else:
        data = load_preset("cpu")
        if model:
            data["model"] = model
    # An unset value is skipped, but its name must still be a field: `-p overrides {"learner.lr":3e-5}` typed
    # without shell quotes arrives as {learner.lr:3e-5}, i.e. the key 'learner.lr:3e-5' with no value.
    check_names(TrainConfig, [k for k in given if k not in overrides],
                advice=" (given without a value). If a shell dropped the quotes of JSON, quote it: "
                       "-p overrides '{\"learner.lr\": 3.0e-5}'")
    return from_dict(TrainConfig, _merge(data, _dotted(overrides)))


def check_preset_against_model(cfg: TrainConfig) -> list[str]:
    """Disagreements between a preset's GPU layout and the model registry's (acelib.models) for that model."""
    from acelib.models import SPECS

    if cfg.model not in SPECS:   # a directory or an MLflow URI: no registry entry to compare with
        return []
    spec, r = SPECS[cfg.model].resources, cfg.resources
    if spec.gpus == 0:
        return [] if r.gpus_per_engine == 0 and r.learner_gpus == 0 else [
            f"{cfg.model} is a CPU model in acelib.models but the preset asks for GPUs"]
    problems = []
    total = r.rollout_workers * r.gpus_per_engine + r.learner_gpus
    for what, preset, registry in (("GPUs in total", total, spec.gpus),
                                   ("rollout engines (rollout_workers)", r.rollout_workers, spec.engines),
                                   ("vLLM tensor_parallel_size (gpus_per_engine)", r.gpus_per_engine,
                                    spec.tensor_parallel_size),
                                   ("learner GPUs", r.learner_gpus, spec.learner_gpus),
                                   ("ZeRO stage", cfg.learner.zero_stage, spec.zero_stage)):
        if preset != registry:
            problems.append(f"{what}: preset {preset}, acelib.models {registry}")
    return problems


def gpus_needed(cfg: TrainConfig) -> int:
    r = cfg.resources
    return r.rollout_workers * r.gpus_per_engine + r.learner_gpus
