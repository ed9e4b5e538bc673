"""What a run starts and where: the resource plan (dry runs print it, every run logs it) and the checks that
fail fast, before any model or data loads, when this machine or cluster cannot run the preset."""
from __future__ import annotations

import os

from acelib.trainer.config import TrainConfig, check_preset_against_model, gpus_needed

# Two rollouts per worker: while one's code runs in the sandbox, the other generates (the engine is shared).
ROLLOUTS_PER_WORKER = 2


def actor_plan(cfg: TrainConfig) -> list[dict]:
    """One entry per actor: its name, the Ray resources it asks for, and what it runs."""
    r, comps = cfg.resources, cfg.components()
    actors = [{"actor": "curriculum", "num_cpus": 0, "num_gpus": 0,
               "runs": f"Evolving Data Buffer + {cfg.sampling} sampler (SQLite in the run directory)"}]
    for i in range(r.rollout_workers):
        actors.append({"actor": f"rollout_worker_{i}", "num_cpus": 0, "num_gpus": r.gpus_per_engine,
                       "runs": f"{cfg.backend} engine (tensor_parallel_size {comps.rollout.tensor_parallel_size}), "
                               f"{ROLLOUTS_PER_WORKER} rollouts at a time, sandbox pool of "
                               f"{r.sandbox_workers or os.cpu_count()} executions"})
    n = r.learner_processes
    for i in range(n):
        actors.append({"actor": f"learner_rank_{i}", "num_cpus": 0, "num_gpus": 1 if r.learner_gpus else 0,
                       "runs": f"DeepSpeed ZeRO-{cfg.learner.zero_stage} rank {i} of {n} "
                               f"({'nccl' if r.learner_gpus else 'gloo'})"
                               + (", optimizer offloaded to CPU" if cfg.learner.offload_optimizer else "")})
    return actors


def resource_plan(cfg: TrainConfig) -> dict:
    """What this configuration will start, and where (printed by dry_run and at the start of every run)."""
    from acelib.models import SPECS, resource_plan as model_plan

    r = cfg.resources
    return {
        "model": model_plan(SPECS[cfg.model]) if cfg.model in SPECS else {"model": cfg.model, "source": "path or URI"},
        "ray": {"address": r.ray_address or "local (in-process)", "num_cpus": r.num_cpus or os.cpu_count()},
        "actors": actor_plan(cfg),
        "total_gpus": gpus_needed(cfg),
        "preset_vs_model_registry": check_preset_against_model(cfg) or "consistent",
        "mode": cfg.mode,
        "max_staleness": cfg.effective_max_staleness,
        "per_step": {"tasks": cfg.tasks_per_step, "group_size": cfg.group_size,
                     "responses": cfg.tasks_per_step * cfg.group_size},
        "steps": cfg.steps,
        "sampling": cfg.sampling,
    }


def check_machine(cfg: TrainConfig) -> None:
    """Fail fast (before Ray, data or models start) when this machine cannot run the preset locally."""
    from acelib.models import SPECS, check_resources as check_model

    if cfg.model in SPECS:
        check_model(cfg.model)
    needed = gpus_needed(cfg)
    if needed > 0 and not cfg.resources.ray_address:
        import torch
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < needed:
            raise RuntimeError(f"model={cfg.model!r} needs {needed} GPUs (rollout_workers × gpus_per_engine + "
                               f"learner_gpus) but this machine has {have}. Run it on a GPU cluster with "
                               f"resources.ray_address set, or use -p model smollm2-135m (the CPU model).")


def check_cluster(cfg: TrainConfig, available: dict[str, float]) -> None:
    """Fail fast, naming what is missing, when the Ray cluster cannot place every actor of the plan (instead of
    Ray's scheduler waiting forever for resources that will never appear)."""
    needed: dict[str, float] = {}
    for a in actor_plan(cfg):
        needed["GPU"] = needed.get("GPU", 0.0) + a["num_gpus"]
    missing = {k: (v, available.get(k, 0.0)) for k, v in needed.items() if v > available.get(k, 0.0)}
    if missing:
        what = ", ".join(f"{k}: needs {v:g}, the cluster has {have:g}" for k, (v, have) in missing.items())
        raise RuntimeError(f"the Ray cluster cannot place this run's actors ({what}). Add nodes with those "
                           f"resources (ray start --address ... --num-gpus N), or lower resources.* in the preset; "
                           f"`-p dry_run True` prints the plan per actor.")
