"""What a run starts and where: the resource plan (dry runs print it, every run logs it) and the checks that
fail fast, before any model or data loads, when this machine or cluster cannot run the preset."""
from __future__ import annotations

import os

from acelib.trainer.config import TrainConfig, check_preset_against_model, gpus_needed


def _named(name: str) -> dict[str, float]:
    return {name: 1.0} if name else {}


def actor_plan(cfg: TrainConfig) -> list[dict]:
    """One entry per actor: its name, the Ray resources it asks for (where Ray may place it), and what it runs."""
    r, comps = cfg.resources, cfg.components()
    pool = r.sandbox_workers or os.cpu_count()
    actors = [{"actor": "curriculum", "num_cpus": 0, "num_gpus": 0, "resources": {},
               "runs": f"Evolving Data Buffer + {cfg.sampling} sampler (SQLite in the run directory)"}]
    for i in range(r.rollout_workers):
        actors.append({"actor": f"rollout_worker_{i}", "num_cpus": 0, "num_gpus": r.gpus_per_engine,
                       "resources": _named(r.rollout_resource),
                       "runs": f"{cfg.backend} engine (tensor_parallel_size {comps.rollout.tensor_parallel_size}), "
                               f"{r.rollouts_per_worker} rollouts at a time (batched generation), "
                               + (f"programs on the executors" if r.executors else f"sandbox pool of {pool}")})
    for i in range(r.executors):
        actors.append({"actor": f"executor_{i}", "num_cpus": 0, "num_gpus": 0,
                       "resources": _named(r.executor_resource), "runs": f"sandbox pool of {pool} executions"})
    n = r.learner_processes
    for i in range(n):
        actors.append({"actor": f"learner_rank_{i}", "num_cpus": 0, "num_gpus": 1 if r.learner_gpus else 0,
                       "resources": _named(r.learner_resource),
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


def needed_resources(cfg: TrainConfig) -> dict[str, float]:
    """Ray resources the whole plan asks for: GPUs and every custom resource."""
    needed: dict[str, float] = {}
    for a in actor_plan(cfg):
        if a["num_gpus"]:
            needed["GPU"] = needed.get("GPU", 0.0) + a["num_gpus"]
        for k, v in a["resources"].items():
            needed[k] = needed.get(k, 0.0) + v
    return needed


def check_cluster(cfg: TrainConfig, available: dict[str, float]) -> None:
    """Fail fast, naming what is missing, when the Ray cluster cannot place every actor of the plan (instead of
    Ray's scheduler waiting forever for resources that will never appear)."""
    missing = {k: (v, available.get(k, 0.0)) for k, v in needed_resources(cfg).items() if v > available.get(k, 0.0)}
    if missing:
        what = ", ".join(f"{k}: needs {v:g}, the cluster has {have:g}" for k, (v, have) in missing.items())
        raise RuntimeError(f"the Ray cluster cannot place this run's actors ({what}). Add nodes with those "
                           f"resources (ray start --address ... --num-gpus N / --resources '{{\"executor\": N}}'), or "
                           f"lower resources.* in the preset; `-p dry_run True` prints the plan per actor.")
