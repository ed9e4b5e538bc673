"""`train(config)`: the asynchronous GRPO loop (the one obvious place to read how a run goes).

    curriculum ──tasks──▶ rollout workers ──finished groups (ray.wait, completion order)──▶ driver
        ▲                    (engine + sandbox pool)                                          │
        └──── rewards, child states ◀───────────────────────────────────────────────────────┤
                                          learner ◀── B groups ──────────────────────────────┘
                                             └── weights dir ──▶ workers.sync_weights (between generations)

async: rollouts keep running while the learner steps; admission control (staleness.py) bounds how far ahead.
sync:  acquire B tasks → roll them all out → one learner step → sync → repeat (max_staleness = 0).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from acelib.config import to_dict
from acelib.trainer.config import TrainConfig, component_configs
from acelib.trainer.run_dir import RunDir


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    mlflow_run_id: str
    steps_done: int
    metrics: list[dict]
    final_model: Path | None = None

    def dataframe(self):
        import pandas as pd
        return pd.DataFrame(self.metrics)


# ------------------------------------------------------------------------------------------------ planning
def resource_plan(cfg: TrainConfig) -> dict:
    """What this configuration will start, and where (used by dry_run and printed at the start of every run)."""
    from acelib.models import get_spec, resource_plan as model_plan

    spec = get_spec(cfg.model)
    r = cfg.resources
    return {
        "model": model_plan(spec),
        "ray": {"address": r.ray_address or "local (in-process)", "num_cpus": r.num_cpus or os.cpu_count()},
        "rollout_workers": r.rollout_workers,
        "gpus_per_engine": r.gpus_per_engine,
        "learner_gpus": r.learner_gpus,
        "total_gpus": r.rollout_workers * r.gpus_per_engine + r.learner_gpus,
        "sandbox_workers_per_rollout_worker": r.sandbox_workers or os.cpu_count(),
        "mode": cfg.mode,
        "max_staleness": cfg.max_staleness,
        "per_step": {"tasks": cfg.tasks_per_step, "group_size": cfg.group_size,
                     "responses": cfg.tasks_per_step * cfg.group_size},
        "steps": cfg.steps,
        "sampling": cfg.sampling,
    }


def check_resources(cfg: TrainConfig) -> None:
    """Fail fast (before Ray, data or models start) when this machine cannot run the preset."""
    from acelib.models import check_resources as check_model

    check_model(cfg.model)
    needed = cfg.resources.rollout_workers * cfg.resources.gpus_per_engine + cfg.resources.learner_gpus
    if needed > 0:
        import torch
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < needed and not cfg.resources.ray_address:
            raise RuntimeError(f"model={cfg.model!r} needs {needed:g} GPUs (rollout_workers × gpus_per_engine + "
                               f"learner_gpus) but this machine has {have}. Run it on a GPU cluster with "
                               f"resources.ray_address set, or use -p model cpu (SmolLM2-135M on CPU).")


# ------------------------------------------------------------------------------------------------ data
def training_competitions(cfg: TrainConfig) -> dict[str, str]:
    """Prepared competitions of the suite (cached), id → root directory."""
    from acelib.tasks.suites import SUITES, prepare_competition

    ids = list(cfg.competitions) or list(SUITES[cfg.suite])
    unknown = [c for c in ids if c not in SUITES[cfg.suite]]
    if unknown:
        raise ValueError(f"competitions {unknown} are not in suite '{cfg.suite}'; "
                         f"see `python -m acelib.tasks list` for valid ids")
    return {cid: str(prepare_competition(cid).root) for cid in ids}


def seed_states(cfg: TrainConfig, competition_ids: list[str]) -> list:
    """Optional improve tasks from the reference solutions (the paper's 'seed states', behind a parameter)."""
    if not cfg.seed_with_reference or cfg.sampling == "no_buffer":
        return []
    from acelib.agent.state import State
    from acelib.tasks.suites import reference_solution

    return [State(competition_id=c, code=reference_solution(c), plan="reference solution",
                  output="", exec_status="ok", valid=True) for c in competition_ids]


# ------------------------------------------------------------------------------------------------ metrics
def group_metrics(groups: list[dict], version: int) -> dict[str, float]:
    rewards = np.array([r for g in groups for r, m in zip(g["rewards"], g["masked"]) if not m], dtype=float)
    outcomes = [o for g in groups for o in g["outcomes"]]
    n = max(1, len(outcomes))
    stale = [version - g["policy_version"] for g in groups]
    zero_var = [float(np.std([r for r, m in zip(g["rewards"], g["masked"]) if not m] or [0.0]) < 1e-8) for g in groups]
    gen_s = sum(g["gen_s"] for g in groups)
    lat = [x for g in groups for x in g["sandbox_latency_s"]]
    return {
        "reward/mean": float(rewards.mean()) if rewards.size else float("nan"),
        "reward/std": float(rewards.std()) if rewards.size else float("nan"),
        "rate/valid_submission": sum(o == "valid" for o in outcomes) / n,
        "rate/format_error": sum(o == "format_error" for o in outcomes) / n,
        "rate/infra_masked": float(np.mean([m for g in groups for m in g["masked"]])),
        "groups/zero_variance_share": float(np.mean(zero_var)) if zero_var else 0.0,
        "staleness/mean": float(np.mean(stale)) if stale else 0.0,
        "staleness/max": float(np.max(stale)) if stale else 0.0,
        "rollout/tokens_per_s": sum(g["gen_tokens"] for g in groups) / gen_s if gen_s > 0 else 0.0,
        "sandbox/latency_s": float(np.mean(lat)) if lat else 0.0,
    }


def buffer_metrics(stats: dict) -> dict[str, float]:
    out = {}
    for k, v in stats.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, (int, float)):
                    out[f"buffer/{k}/{k2}"] = float(v2)
        elif isinstance(v, (int, float)):
            out[f"buffer/{k}"] = float(v)
    return out


# ------------------------------------------------------------------------------------------------ the loop
def train(cfg: TrainConfig, progress: bool = True, rollout_worker_cls: type | None = None) -> TrainResult | dict:
    """Run (or resume) a training run described by `cfg`; returns the resource plan when cfg.dry_run.

    rollout_worker_cls: a `RolloutWorker` subclass to run instead (custom agents, benchmarks)."""
    comps = component_configs(cfg)  # validates every component field before anything starts
    plan = resource_plan(cfg)
    if cfg.dry_run:
        return {"ok": True, "plan": plan, "config": to_dict(cfg)}
    check_resources(cfg)

    import ray
    from tqdm.auto import tqdm

    from acelib import tracking
    from acelib.models import materialize
    from acelib.rollout.base import SamplingParams
    from acelib.trainer.actors import CurriculumActor, LearnerActor, RolloutWorker

    # -- run directory: new, or the one being resumed ------------------------------------------------------
    if cfg.resume:
        run = RunDir.find(cfg.output_dir, cfg.resume)
        info = run.read()
    else:
        name = cfg.run_name or f"{cfg.model}-{cfg.sampling}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = RunDir.create(cfg.output_dir, name)
        info = run.write(config=to_dict(cfg), step=0, mlflow_run_id=None, plan=plan)
    ckpt = run.latest_checkpoint()
    start_step = ckpt[0] if ckpt else 0
    print(f"run directory: {run.path}  (resuming at step {start_step})" if cfg.resume else f"run directory: {run.path}")

    competitions = training_competitions(cfg)
    model_dir = str(materialize(cfg.model))

    # -- MLflow: the same run continues on resume ----------------------------------------------------------
    mlrun = tracking.start_run(cfg.tracking_uri, cfg.experiment, run_name=run.path.name,
                               run_id=info.get("mlflow_run_id"), parent_run_id=cfg.parent_run_id or None,
                               tags={"acelib.run_dir": str(run.path), "acelib.sampling": cfg.sampling,
                                     "acelib.mode": cfg.mode})
    run_id = mlrun.info.run_id
    if not info.get("mlflow_run_id"):
        tracking.log_params(to_dict(cfg))
        run.write(mlflow_run_id=run_id)
    # Metrics of completed steps that a crash kept out of MLflow (logging happens after the checkpoint).
    done_rows = [m for m in run.metrics() if m["step"] <= start_step]
    _truncate_metrics(run, done_rows)
    logged = {int(m.step) for m in _history(cfg.tracking_uri, run_id, "train/step")}
    for row in done_rows:
        if row["step"] not in logged:
            tracking.log_metrics(row, step=row["step"])

    num_cpus = cfg.resources.num_cpus or os.cpu_count()
    started_ray = False
    if not ray.is_initialized():
        if cfg.resources.ray_address:
            ray.init(address=cfg.resources.ray_address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True,
                     object_store_memory=cfg.resources.object_store_mb * 1024 * 1024,
                     runtime_env={"env_vars": _actor_env()})
        started_ray = True

    # No per-request seed: every group would replay the same random stream. Engines are seeded at construction.
    sampling = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    weights_root = Path(comps["rollout"].sync_dir) / f"acelib-{run_id}"
    # Fractional CPU requests let learner, workers and the curriculum share a 2-core machine.
    Curriculum = ray.remote(num_cpus=0)(CurriculumActor)
    Worker = ray.remote(num_cpus=0, num_gpus=cfg.resources.gpus_per_engine,
                        max_concurrency=2)(rollout_worker_cls or RolloutWorker)
    LearnerR = ray.remote(num_cpus=0, num_gpus=cfg.resources.learner_gpus)(LearnerActor)

    cur = learner = None
    workers: list = []
    metrics_rows: list[dict] = list(done_rows)
    final_model = None
    step = start_step
    interrupted = False
    prev_sigint = signal.getsignal(signal.SIGINT)
    try:
        if ckpt and (ckpt[1] / "buffer.sqlite").exists():
            # restore the buffer exactly as it was when this checkpoint's learner step finished
            shutil.copyfile(ckpt[1] / "buffer.sqlite", run.buffer_path)
            for suffix in ("-wal", "-shm"):
                Path(str(run.buffer_path) + suffix).unlink(missing_ok=True)
        admission_state = info.get("admission") if ckpt else None
        cur = Curriculum.remote(str(run.buffer_path), comps["buffer"], comps["sampler"], list(competitions),
                                seed_states(cfg, list(competitions)), cfg.tasks_per_step, cfg.max_staleness,
                                cfg.seed, admission_state)
        threads = cfg.resources.torch_threads
        learner = LearnerR.remote(model_dir, comps["learner"], comps["grpo"], cfg.seed, str(weights_root), threads)
        workers = [Worker.remote(i, model_dir, cfg.backend, comps["rollout"], sampling, cfg.group_size, competitions,
                                 comps["sandbox"], cfg.resources.sandbox_workers, comps["agent"], cfg.seed, threads)
                   for i in range(cfg.resources.rollout_workers)]
        if ckpt:
            version = ray.get(learner.load_checkpoint.remote(str(ckpt[1])))
            wdir = ray.get(learner.export_weights.remote())
            ray.get([w.sync_weights.remote(wdir, version) for w in workers])
        else:
            version = 0
        ray.get([w.ready.remote() for w in workers])

        inflight: dict = {}      # ObjectRef → (task_id, worker index)
        pending_sync: list = []  # weight syncs sent to the workers, not yet confirmed
        last_sync_s = float("nan")
        finished: list[dict] = []
        load = [0] * len(workers)
        bar = tqdm(total=cfg.steps, initial=step, desc="GRPO steps", disable=not progress)
        t_step = time.perf_counter()
        while step < cfg.steps:
            if pending_sync:
                done, pending_sync = ray.wait(pending_sync, num_returns=len(pending_sync), timeout=0)
                if done:
                    last_sync_s = float(np.max(ray.get(done)))
            # 1) admit new rollouts (async: as capacity allows; sync: one step's worth, after the learner). Only once
            # every engine holds the newest weights: a rollout started on older ones could exceed max_staleness.
            slots = (cfg.tasks_per_step if cfg.mode == "sync" else 2 * len(workers)) - len(inflight)
            if slots > 0 and not pending_sync and (cfg.mode == "async"
                                                   or (not inflight and len(finished) < cfg.tasks_per_step)):
                for task in ray.get(cur.acquire.remote(step, version, slots)):
                    i = int(np.argmin(load))
                    load[i] += 1
                    inflight[workers[i].rollout.remote(task)] = (task["task_id"], i)
            if not inflight and not pending_sync and len(finished) < cfg.tasks_per_step:
                raise RuntimeError("no task could be admitted: the buffer is empty (check the suite/competitions)")
            # 2) collect finished groups in completion order
            if len(finished) < cfg.tasks_per_step:
                ready, _ = ray.wait(list(inflight) + pending_sync, num_returns=1)
                for ref in ready:
                    if ref not in inflight:
                        continue  # a weight sync finished: collected at the top of the loop
                    task_id, i = inflight.pop(ref)
                    load[i] -= 1
                    group = ray.get(ref)
                    cur.report.remote(task_id, group["rewards"], group["masked"], group["version_started"],
                                      group["children"], group["policy_version"])
                    finished.append(group)
                continue
            # 3) one learner step on B groups (oldest first), while rollouts continue in async mode
            batch, finished = finished[:cfg.tasks_per_step], finished[cfg.tasks_per_step:]
            t_learn = time.perf_counter()
            trained_from = version  # staleness of a batch is measured against the weights it updates
            lmetrics = ray.get(learner.train_step.remote([_learner_group(g) for g in batch]))
            learner_s = time.perf_counter() - t_learn
            version = ray.get(learner.get_version.remote())
            if version != trained_from:  # all groups filtered out → no update, nothing to sync
                # The learner goes on while the engines load (they may be mid-generation); step 1 admits no new
                # rollout until they confirm. export_weights keeps two versions, so wait for the older sync first.
                if pending_sync:
                    last_sync_s = float(np.max(ray.get(pending_sync)))
                wdir = ray.get(learner.export_weights.remote())
                pending_sync = [w.sync_weights.remote(wdir, version) for w in workers]
            step += 1
            # 4) checkpoint (learner + buffer copy + admission) — the commit point of the step
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                cdir = run.checkpoint_dir(step)
                cdir.mkdir(parents=True, exist_ok=True)
                ray.get(learner.save_checkpoint.remote(str(cdir)))
                admission = ray.get(cur.checkpoint.remote(str(cdir / "buffer.sqlite")))
                run.write(admission=admission)
            row = {"train/step": step, "train/version": version, "time/learner_s": learner_s,
                   "time/weight_sync_s": last_sync_s, "time/step_s": time.perf_counter() - t_step,
                   **group_metrics(batch, trained_from), **_prefixed(lmetrics, "learner"),
                   **buffer_metrics(ray.get(cur.stats.remote()))}
            t_step = time.perf_counter()
            run.append_metrics(step, row)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                (run.checkpoint_dir(step) / "done").write_text(str(step))
                run.write(step=step)
                run.prune_checkpoints(cfg.keep_checkpoints)
            tracking.log_metrics(row, step=step)
            metrics_rows.append({"step": step, **row})
            bar.update(1)
            bar.set_postfix(reward=f"{row['reward/mean']:.2f}", valid=f"{row['rate/valid_submission']:.2f}")
        bar.close()
        # -- end of run: export policy, buffer snapshot, plots ------------------------------------------------
        for ref, (task_id, _) in list(inflight.items()):
            ray.cancel(ref, force=False)
            cur.release.remote(task_id)
        final_model = run.path / "final_model"
        ray.get(learner.export_hf.remote(str(final_model)))
        snap = ray.get(cur.export.remote(str(run.path / "buffer_snapshot.parquet")))
        _log_artifacts(run, snap, metrics_rows)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted: the run stops cleanly; resume it with resume='{run.path}'")
        raise
    finally:
        signal.signal(signal.SIGINT, prev_sigint)
        _shutdown(cur, workers, learner)
        import mlflow
        mlflow.end_run(status="KILLED" if interrupted else ("FINISHED" if step >= cfg.steps else "FAILED"))
        shutil.rmtree(weights_root, ignore_errors=True)
        if started_ray:
            ray.shutdown()
    return TrainResult(run.path, run_id, step, metrics_rows, final_model)


# ------------------------------------------------------------------------------------------------ helpers
def _actor_env() -> dict[str, str]:
    keep = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "DS_BUILD_OPS", "TORCH_EXTENSIONS_DIR",
            "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_NUM_OF_RESERVED_CPU", "ACELIB_CACHE_DIR", "MPLBACKEND")
    return {k: os.environ[k] for k in keep if k in os.environ}


def _learner_group(g: dict) -> dict:
    return {k: g[k] for k in ("prompt_ids", "samples", "rewards", "masked", "task_id", "policy_version")}


def _prefixed(d: dict, prefix: str) -> dict:
    return {f"{prefix}/{k}": v for k, v in d.items() if isinstance(v, (int, float))}


def _history(tracking_uri: str, run_id: str, key: str):
    from mlflow.tracking import MlflowClient
    from acelib.tracking import sanitize_key
    return MlflowClient(tracking_uri=tracking_uri).get_metric_history(run_id, sanitize_key(key))


def _truncate_metrics(run: RunDir, rows: list[dict]) -> None:
    """Drop metric lines of steps after the last checkpoint: those steps are redone, never counted twice."""
    import json
    tmp = run.metrics_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
    os.replace(tmp, run.metrics_path)


def _shutdown(cur, workers, learner) -> None:
    import ray
    for actor, method in [(w, "close") for w in workers] + [(cur, "close"), (learner, "close")]:
        if actor is None:
            continue
        try:
            ray.get(getattr(actor, method).remote(), timeout=60)
        except Exception as e:  # shutting down after an error: report, keep closing the others
            print(f"warning: {method} failed during shutdown: {e!r}")
        ray.kill(actor)


def _log_artifacts(run: RunDir, snapshot: str, rows: list[dict]) -> None:
    import mlflow
    from acelib.trainer.plots import training_plots

    for path in training_plots(rows, run.path / "plots", buffer_snapshot=snapshot):
        mlflow.log_artifact(str(path), artifact_path="plots")
    mlflow.log_artifact(snapshot, artifact_path="buffer")
    mlflow.log_artifact(str(run.run_json), artifact_path="run")
    mlflow.log_artifact(str(run.metrics_path), artifact_path="run")
    mlflow.set_tag("acelib.checkpoints", str(run.path / "checkpoints"))
    mlflow.set_tag("acelib.final_model", str(run.path / "final_model"))
