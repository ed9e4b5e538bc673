"""`train(config)`: the asynchronous GRPO loop (the one obvious place to read how a run goes).

    curriculum ──TaskAssignment──▶ rollout workers ──FinishedGroup (completion order)──▶ driver
        ▲                            (engine + sandbox pool)                              │
        └──── rewards, child states ◀──────────────────────────────────────────────────┤
                                          learner group ◀── B groups ─────────────────────┘
                                             └── weights dir ──▶ workers.sync_weights (between generations)

A run is an `Orchestrator` going through named phases: `start`, then until the last step
`admit` (start rollouts as admission control allows) → `learn` (hand B finished groups to the learner) → `wait`
(one `ray.wait` over rollouts, the learner step, weight syncs and curriculum reports, each result dispatched to
`collect` or `commit`), and `finish`. Nothing blocks on the learner: while it steps, rollouts keep being admitted
and collected (async mode). Sync mode is the same loop with max_staleness = 0: admission then allows exactly one
step's groups, and none before the engines hold the newest weights, so training is strictly on-policy.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np

from acelib.config import to_dict
from acelib.groups import valid_and_changed
from acelib.trainer import faults
from acelib.trainer.config import TrainConfig
from acelib.trainer.payloads import FinishedGroup, ProbeResult
from acelib.trainer.plan import check_cluster, check_machine, resource_plan
from acelib.trainer.run_dir import RunDir
from acelib.trainer.staleness import AdmissionControl

STEP_TYPES = ("draft", "debug", "improve")


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    mlflow_run_id: str
    steps_done: int
    metrics: list[dict]
    final_model: Path | None = None
    summary: dict = dataclasses.field(default_factory=dict)   # acelib.trainer.summary: the headline numbers

    def dataframe(self):
        import pandas as pd
        return pd.DataFrame(self.metrics)


def train(cfg: TrainConfig, progress: bool = True, rollout_worker_cls: type | None = None) -> TrainResult | dict:
    """Run (or resume) a training run described by `cfg`; returns the resource plan when cfg.dry_run.

    rollout_worker_cls: a `RolloutWorker` subclass to run instead (custom agents, benchmarks)."""
    plan = resource_plan(cfg)
    if cfg.dry_run:
        return {"ok": True, "plan": plan, "config": to_dict(cfg)}
    check_machine(cfg)
    return Orchestrator(cfg, plan, progress, rollout_worker_cls).run()


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


def seed_draw(cfg: TrainConfig) -> dict:
    """Which seed scripts the run draws (`acelib.agent.seeds.seed_jobs` / `seed_states` arguments)."""
    return dict(split="train", kinds=cfg.seeds.kinds or None, per_competition=cfg.seeds.per_competition,
                improve=cfg.seeds.improve, seed=cfg.seed)


def seed_tasks(cfg: TrainConfig, competition_ids: list[str]) -> tuple[list, dict[str, dict]]:
    """The buffer's seed tasks (acelib.agent.seeds) and what each one is.

    states: compact baselines (improve) and train-split mutations of them (debug), each really run in the sandbox
    with the run's own agent and sandbox settings (cached after the first build). The no_buffer ablation keeps them:
    its task set is the initial one, never grown by the policy.
    kinds: state id → competition, step type and mutation kind (what `seeds.json` in the run directory holds; the
    run summary stratifies its headline by the kind of each task's root seed)."""
    if not cfg.seeds.enabled:
        return [], {}
    from acelib.agent.seeds import run_seed_jobs, seed_jobs
    from acelib.agent.state import state_id

    jobs = seed_jobs(competition_ids, **seed_draw(cfg))
    states = run_seed_jobs(jobs, config=cfg.agent, limits=cfg.sandbox, workers=cfg.resources.sandbox_workers)
    kinds = {state_id(j.competition_id, j.code): {"competition_id": j.competition_id, "kind": j.kind,
                                                  "step_type": "improve" if j.valid else "debug"} for j in jobs}
    return states, kinds


PROBE_SEED_OFFSET = 104_729   # probe draws differ from the RL seeds (offset 0) and the warm start's examples


def probe_draw(cfg: TrainConfig, competition_ids: list[str]) -> dict:
    """Which scripts the probe draws: train-split mutations of the seed kinds, none of them an RL seed or a
    warm-start example (so a rise is not the policy recalling a task it was shown)."""
    from acelib.agent.seeds import seed_jobs
    from acelib.trainer.warmstart import example_draw

    taken = {j.code for j in seed_jobs(competition_ids, **seed_draw(cfg))}
    if cfg.warm_start.enabled:
        taken |= {j.code for j in seed_jobs(competition_ids, **example_draw(cfg))}
    return dict(split="train", kinds=cfg.seeds.kinds or None, per_competition=cfg.probe.per_competition,
                improve=False, seed=cfg.seed + PROBE_SEED_OFFSET, exclude=taken)


def probe_tasks(cfg: TrainConfig, competition_ids: list[str]) -> tuple[list, list[str]]:
    """The run's fixed probe tasks (`probe_draw`) and their mutation kinds, really run like the seeds (cached)."""
    if not cfg.probe.enabled:
        return [], []
    from acelib.agent.seeds import run_seed_jobs, seed_jobs

    jobs = seed_jobs(competition_ids, **probe_draw(cfg, competition_ids))
    states = run_seed_jobs(jobs, config=cfg.agent, limits=cfg.sandbox, workers=cfg.resources.sandbox_workers)
    return states, [j.kind for j in jobs]


# ------------------------------------------------------------------------------------------------ metrics
def group_metrics(groups: list[FinishedGroup], trained_from: int) -> dict[str, float]:
    """Per-step metrics of the B groups a learner step consumed (`trained_from`: the weights it updated)."""
    rewards = np.array([r for g in groups for r, m in zip(g.rewards, g.masked) if not m], dtype=float)
    outcomes = [o for g in groups for o in g.outcomes]
    n = max(1, len(outcomes))
    stale = [trained_from - g.policy_version for g in groups]
    engine_s = sum(g.gen_engine_s for g in groups)
    lat = [x for g in groups for x in g.sandbox_latency_s]
    out = {
        "reward/mean": float(rewards.mean()) if rewards.size else float("nan"),
        "reward/std": float(rewards.std()) if rewards.size else float("nan"),
        "rate/valid_submission": sum(o == "valid" for o in outcomes) / n,
        "rate/format_error": sum(o == "format_error" for o in outcomes) / n,
        "rate/infra_masked": float(np.mean([m for g in groups for m in g.masked])),
        "rate/identical_to_parent": float(np.mean([x for g in groups for x in g.identical_to_parent])),
        "groups/zero_variance_share": float(np.mean([g.zero_variance for g in groups])) if groups else 0.0,
        "staleness/mean": float(np.mean(stale)) if stale else 0.0,
        "staleness/max": float(np.max(stale)) if stale else 0.0,
        # per second of engine time (a batched call's seconds are shared by its groups, not counted per group)
        "rollout/tokens_per_s": sum(g.gen_tokens for g in groups) / engine_s if engine_s > 0 else 0.0,
        "rollout/gen_s": sum(g.gen_s for g in groups),   # summed over the groups, each waiting for the engine too
        "rollout/gen_engine_s": engine_s,                # the engine seconds the step's groups took
        "rollout/exec_s_max": max((g.exec_s for g in groups), default=0.0),  # the slowest group's executions
        "rollout/exec_s_mean": sum(g.exec_s for g in groups) / len(groups) if groups else 0.0,
        "sandbox/latency_s": float(np.mean(lat)) if lat else 0.0,
    }
    for t in STEP_TYPES:   # validity by the kind of task answered (a valid copy of an improve seed is no progress)
        outcomes_t = [o for g in groups if g.step_type == t for o in g.outcomes]
        identical_t = [same for g in groups if g.step_type == t for same in g.identical_to_parent]
        out[f"groups/{t}"] = float(sum(g.step_type == t for g in groups))
        if outcomes_t:
            out[f"rate/valid/{t}"] = sum(o == "valid" for o in outcomes_t) / len(outcomes_t)
            out[f"samples/{t}"] = float(len(outcomes_t))
            out[f"samples/valid/{t}"] = float(sum(o == "valid" for o in outcomes_t))
            out[f"samples/valid_changed/{t}"] = float(valid_and_changed(outcomes_t, identical_t))
    return out


def group_rows(groups: list[FinishedGroup]) -> list[dict]:
    """One record per group of a learner step (stored in its metrics row as "groups"): which task, how many
    responses, how many valid and not a copy. The run summary's stratified headline is computed from these."""
    return [{"task_id": g.task_id, "index": g.index, "competition_id": g.competition_id, "step_type": g.step_type,
             "samples": len(g.outcomes), "valid_changed": valid_and_changed(g.outcomes, g.identical_to_parent)}
            for g in groups]


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


def step_line(row: dict, steps: int) -> str:
    """The one terminal line per learner step."""
    by_type = ", ".join(f"{t} {row[f'rate/valid/{t}']:.2f}" for t in STEP_TYPES if f"rate/valid/{t}" in row)
    # copies of the parent script are valid on improve tasks but are not progress (the run summary excludes them)
    copies = row.get("rate/identical_to_parent", 0.0)
    return (f"step {int(row['train/step'])}/{steps} | reward {row['reward/mean']:+.2f} | valid "
            f"{row['rate/valid_submission']:.2f} ({by_type}) | copies of parent {copies:.2f} | "
            f"format errors {row['rate/format_error']:.2f} | {row['time/step_s']:.0f} s")


# ------------------------------------------------------------------------------------------------ the loop
class Orchestrator:
    """One training run as named phases (module docstring). State lives here, in the driver: admission control,
    rollouts in flight, finished groups waiting for the learner, the learner step in flight, weight syncs and
    curriculum reports not yet confirmed."""

    def __init__(self, cfg: TrainConfig, plan: dict, progress: bool, rollout_worker_cls: type | None):
        self.cfg, self.plan, self.progress = cfg, plan, progress
        self.comps = cfg.components()
        self.worker_cls = rollout_worker_cls
        self.cur = self.learner = None
        self.workers: list = []
        self.executors: list = []
        self.started_ray = False
        self.step = 0
        self.policy_version = 0
        self.inflight: dict = {}          # rollout ObjectRef → (TaskAssignment, worker index)
        self.finished: list[FinishedGroup] = []
        self.learn_refs: list = []        # one ref per learner rank for the step in flight
        self.batch: list[FinishedGroup] = []
        self.pending_sync: dict = {}      # weight-sync ObjectRef → worker index
        self.pending_reports: list = []
        self.latest_weights: str | None = None
        self.rows: list[dict] = []
        self.uncommitted: list[dict] = []  # rows of steps after the last checkpoint: logged to MLflow once committed
        self.final_model: Path | None = None
        self.times = {"step": 0.0, "learn": 0.0, "sync": 0.0}
        self.last_sync_s = float("nan")
        self.lost_groups = 0
        self.collected_since_commit = False
        self.summary: dict = {}
        self.probe_states: list = []      # the fixed probe tasks (cfg.probe) and their mutation kinds
        self.probe_kinds: list[str] = []
        self.probe_refs: dict = {}        # evaluate ObjectRef → learner steps done when it was asked for
        self.probed: set[int] = set()     # learner steps after which the policy was probed (or is being probed)
        self.probe_cache: Path | None = None   # where the probe before RL is cached (acelib/trainer/probe_cache.py)

    # -------------------------------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        import mlflow
        status = "FAILED"
        try:
            self.start()
            while self.step < self.cfg.steps:
                self.admit()
                self.learn()
                self.wait()
            self.finish()
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            print(f"interrupted: the run stops cleanly; resume it with resume='{self.run_dir.path}'")
            raise
        finally:
            self.teardown()
            mlflow.end_run(status=status)
        return TrainResult(self.run_dir.path, self.run_id, self.step, self.rows, self.final_model, self.summary)

    # -------------------------------------------------------------------------------------------- start
    def start(self) -> None:
        """Run directory (new or resumed), MLflow run, Ray, actors, and the state of the last checkpoint."""
        cfg = self.cfg
        if cfg.resume:
            self.run_dir = RunDir.find(cfg.output_dir, cfg.resume)
            info = self.run_dir.read()
        else:
            name = cfg.run_name or f"{cfg.model}-{cfg.sampling}-{time.strftime('%Y%m%d-%H%M%S')}"
            self.run_dir = RunDir.create(cfg.output_dir, name)
            info = self.run_dir.write(config=to_dict(cfg), step=0, mlflow_run_id=None, plan=self.plan)
        run = self.run_dir
        ckpt = run.latest_checkpoint()
        self.step = ckpt[0] if ckpt else 0
        print(f"run directory: {run.path}" + (f"  (resuming at step {self.step})" if cfg.resume else ""))
        self._start_tracking(info)
        self._restore_buffer(ckpt)
        competitions = self._start_ray_and_data()
        self._start_actors(competitions, ckpt)
        self.admission = AdmissionControl.resumed(cfg.tasks_per_step, cfg.effective_max_staleness, self.step)
        # Admission indices (the curriculum's batch windows: index // B) only go up. A returned task frees its
        # admission slot but not its index: reusing it would put a new group in a window whose competition caps
        # already count the groups that landed there, and the curriculum could refuse every task with nothing left
        # in flight (seen once in the node-loss test).
        self.next_index = self.admission.started_total
        from tqdm.auto import tqdm
        self.bar = tqdm(total=cfg.steps, initial=self.step, desc="GRPO steps", disable=not self.progress)
        self.times["step"] = time.perf_counter()

    def _start_tracking(self, info: dict) -> None:
        from acelib import tracking
        cfg, run = self.cfg, self.run_dir
        mlrun = tracking.start_run(cfg.tracking_uri, cfg.experiment, run_name=run.path.name,
                                   run_id=info.get("mlflow_run_id"), parent_run_id=cfg.parent_run_id or None,
                                   tags={"acelib.run_dir": str(run.path), "acelib.sampling": cfg.sampling,
                                         "acelib.mode": cfg.mode})
        self.run_id = mlrun.info.run_id
        if not info.get("mlflow_run_id"):
            tracking.log_params(to_dict(cfg))
            tracking.set_description(tracking.describe("GRPO training", self._description_fields()))
            run.write(mlflow_run_id=self.run_id)
        # Steps after the last checkpoint are redone; committed ones a crash kept out of MLflow are logged now.
        done = [m for m in run.metrics() if m["step"] <= self.step]
        run.rewrite_metrics(done)
        logged = {int(m.step) for m in tracking.metric_history(cfg.tracking_uri, self.run_id, ["train/step"]).itertuples()}
        for row in done:
            if row["step"] not in logged:
                tracking.log_metrics(row, step=row["step"])
        self.rows = list(done)
        probes = run.probes(up_to_step=self.step)   # probes after steps a resume redoes are redone too
        run.rewrite_probes(probes)
        self.probed = {int(p["step"]) for p in probes}

    def _description_fields(self) -> dict:
        cfg = self.cfg
        return {"model": cfg.model, "sampling": cfg.sampling, "mode": cfg.mode, "steps": cfg.steps,
                "groups per step": f"{cfg.tasks_per_step} x {cfg.group_size}", "response format":
                cfg.agent.response_format, "warm start": "on" if cfg.warm_start.enabled else "off",
                "run directory": str(self.run_dir.path)}

    def _restore_buffer(self, ckpt) -> None:
        """The buffer exactly as of the checkpoint's learner step (or empty when no step was committed)."""
        run = self.run_dir
        for suffix in ("", "-wal", "-shm"):
            Path(str(run.buffer_path) + suffix).unlink(missing_ok=True)
        if ckpt and (ckpt[1] / "buffer.sqlite").exists():
            shutil.copyfile(ckpt[1] / "buffer.sqlite", run.buffer_path)

    def _start_ray_and_data(self) -> dict[str, str]:
        import ray
        cfg = self.cfg
        competitions = training_competitions(cfg)
        if not ray.is_initialized():
            if cfg.resources.ray_address:
                ray.init(address=cfg.resources.ray_address, runtime_env={"env_vars": actor_env()})
            else:
                # Actor output goes to <run>/logs/*.log (redirect_output), not to the notebook: log_to_driver off.
                ray.init(num_cpus=cfg.resources.num_cpus or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, logging_level="WARNING",
                         object_store_memory=cfg.resources.object_store_mb * 1024 * 1024,
                         runtime_env={"env_vars": actor_env()})
            self.started_ray = True
        check_cluster(cfg, ray.cluster_resources())
        return competitions

    def _start_actors(self, competitions: dict[str, str], ckpt) -> None:
        import ray

        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from acelib.curriculum import Curriculum
        from acelib.models import resolve_model_dir
        from acelib.rollout.base import SamplingParams
        from acelib.trainer.actors import RolloutWorker, concurrency_groups
        from acelib.trainer.learner_group import LearnerGroup, _get

        cfg, comps, r = self.cfg, self.comps, self.cfg.resources
        # Actors that ask for no GPU and no named resource stay on the driver's node: they read the competitions
        # and write the run directory by the driver's paths (the curriculum's SQLite, learner checkpoints). An
        # executor node going away must not take them with it.
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)

        def placed(needs: object) -> NodeAffinitySchedulingStrategy | None:
            """Ray's own placement for an actor that asks for GPUs or a named resource, else the driver's node."""
            return None if needs else here
        model_dir = resolve_model_dir(cfg.model, cfg.tracking_uri)   # a registry name, a directory or an MLflow URI
        if cfg.warm_start.enabled:   # the policy RL starts from (and the KL reference, when beta > 0)
            from acelib.trainer.warmstart import warm_start_task
            # In its own process: the trainer's memory is freed when it ends, its logs go to the run directory.
            # max_calls=1: Ray otherwise keeps the finished worker process for reuse, holding what the training
            # left in it (5.8 GB of RSS on the CPU preset, a quarter of the 2-core box, for the whole run).
            log = self.run_dir.logs_dir / "warm_start.log"
            task = ray.remote(num_cpus=0, max_calls=1, scheduling_strategy=here)(warm_start_task)
            model_dir, line = _get(task.remote(cfg, model_dir, competitions, str(log)), None, "the warm start")
            print(f"{line} (log: {log})", flush=True)
            self.run_dir.write(warm_start_model=model_dir)
        self.weights_root = Path(comps.rollout.sync_dir) / f"acelib-{self.run_id}"
        # No per-request seed: every group would replay the same random stream. Engines are seeded at construction,
        # differently per worker and per resume (a resumed run must not replay the sampling noise of its start).
        sampling = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                  max_new_tokens=cfg.max_new_tokens)
        roots, root_kinds = seed_tasks(cfg, list(competitions))
        self.run_dir.write_seeds(root_kinds)
        self.cur = ray.remote(num_cpus=0, scheduling_strategy=here)(Curriculum).remote(
            str(self.run_dir.buffer_path), comps.buffer, comps.sampler, list(competitions),
            roots, batch_size=cfg.tasks_per_step, seed=cfg.seed,
            std_scaling=comps.grpo.std_scaling, reward_bounds=comps.agent.reward.bounds)
        self.probe_states, self.probe_kinds = probe_tasks(cfg, list(competitions))
        if self.probe_states and cfg.probe.cache and cfg.warm_start.enabled:
            from acelib.trainer import probe_cache
            self.probe_cache = probe_cache.cache_file(probe_cache.key(cfg, model_dir, self.probe_states, competitions))
        self.learner = LearnerGroup(r.learner_processes, model_dir, comps.learner, comps.grpo,
                                    temperature=cfg.temperature, seed=cfg.seed, weights_root=str(self.weights_root),
                                    gpus_per_rank=1 if r.learner_gpus else 0,
                                    resources={r.learner_resource: 1.0} if r.learner_resource else None,
                                    scheduling_strategy=placed(r.learner_gpus or r.learner_resource),
                                    torch_threads=r.torch_threads,
                                    start_timeout_s=r.start_timeout_s, log_dir=str(self.run_dir.logs_dir))
        self.executors = []
        if r.executors:   # the executor tier: sandbox pools on the nodes with `executor_resource`
            from acelib.sandbox.executor import start_executors
            self.executors = start_executors(r.executors, r.sandbox_workers,
                                             {r.executor_resource: 1.0} if r.executor_resource else None, comps.sandbox)
            _get([e.ready.remote() for e in self.executors], r.start_timeout_s,
                 f"{r.executors} executor(s) on nodes with the resource {r.executor_resource!r}")
        # A worker whose process dies is restarted by Ray (its rollouts in flight return to the buffer).
        worker = ray.remote(num_cpus=0, num_gpus=r.gpus_per_engine, max_restarts=-1, max_task_retries=0,
                            resources={r.rollout_resource: 1.0} if r.rollout_resource else None,
                            scheduling_strategy=placed(r.gpus_per_engine or r.rollout_resource),
                            concurrency_groups=concurrency_groups(r.rollouts_per_worker)
                            )(self.worker_cls or RolloutWorker)
        self.workers = [worker.remote(i, model_dir, cfg.backend, comps.rollout, sampling, cfg.group_size, competitions,
                                      comps.sandbox, r.sandbox_workers, comps.agent,
                                      cfg.seed + 1000 * i + 100_003 * self.step, r.torch_threads,
                                      str(self.run_dir.logs_dir / f"rollout_worker_{i}.log"), self.executors,
                                      r.rollouts_per_worker)
                        for i in range(r.rollout_workers)]
        self.load = [0] * len(self.workers)
        if ckpt:
            self.policy_version = self.learner.call("load_checkpoint", str(ckpt[1]), timeout_s=r.start_timeout_s)
        # The engines sample from the learner's own weights from the first rollout on (on a fresh run too): the
        # engines load the checkpoint file as stored (e.g. fp32), the learner holds it in its dtype (bf16), and the
        # two are different policies. A control run with no learning (lr 1e-12) moved the probe from 40% to 62%
        # valid by this switch alone, which the first weight sync used to fold into "learning".
        self.latest_weights = self.learner.call("export_weights")
        _get([self._sync(w, self.latest_weights) for w in self.workers],
             r.start_timeout_s, "the rollout workers to load the learner's weights")
        _get([w.ready.remote() for w in self.workers], r.start_timeout_s,
             f"{len(self.workers)} rollout worker(s) to start their engines")

    # -------------------------------------------------------------------------------------------- admit
    def admit(self) -> None:
        """Start rollouts while admission control allows, only once every engine holds the newest weights (a
        rollout started on older ones could exceed max_staleness)."""
        import ray
        if self.pending_sync:
            return
        self.probe()
        slots = self.cfg.resources.rollouts_per_worker * len(self.workers) - len(self.inflight)
        n = self.admission.admit(self.step, slots) if slots > 0 else 0
        if n == 0:
            return
        tasks = ray.get(self.cur.sample.remote(n, self.policy_version, self.next_index))
        self.admission.cancel(n - len(tasks))
        self.next_index += len(tasks)
        for task in tasks:
            i = int(np.argmin(self.load))
            self.load[i] += 1
            self.inflight[self.workers[i].rollout.remote(task)] = (task, i)
        if tasks:
            faults.maybe_kill("after_admit", self.step + 1)

    # -------------------------------------------------------------------------------------------- probe
    def probe(self) -> None:
        """Ask a worker for the probe when one is due (before the first step, every `probe.every` steps, after the
        last) and every engine holds the newest weights; it runs beside the rollouts, its result lands in
        `probe_done`."""
        s, p = self.step, self.cfg.probe
        due = s == 0 or s == self.cfg.steps or (p.every > 0 and s % p.every == 0)
        if not self.probe_states or not due or s in self.probed or self.pending_sync:
            return
        self.probed.add(s)
        if s == 0 and self.probe_cache is not None:
            from acelib.trainer import probe_cache
            cached = probe_cache.load(self.probe_cache)
            if cached is not None:
                self.record_probe(0, cached, cached=True)
                return
        i = int(np.argmin(self.load))
        self.probe_refs[self.workers[i].evaluate.remote(self.probe_states, p.samples)] = s

    def probe_done(self, ref) -> None:
        """A probe is back (a cache miss before RL is stored for later runs)."""
        import ray
        step = self.probe_refs.pop(ref)
        res: ProbeResult = ray.get(ref)
        if step == 0 and self.probe_cache is not None:
            from acelib.trainer import probe_cache
            try:
                probe_cache.save(self.probe_cache, res)
            except OSError as e:   # a cache that cannot be written costs later runs time, not this run its result
                print(f"warning: the probe was not cached ({e})")
        self.record_probe(step, res)

    def record_probe(self, step: int, res: ProbeResult, cached: bool = False) -> None:
        """One point of the learning curve: probe.jsonl, MLflow `probe/*` at the step, one line on the terminal."""
        from acelib import tracking
        x, n = res.counts()
        row = {"step": step, "policy_version": res.policy_version, "valid": x, "samples": n, "cached": cached,
               "valid_rate": x / n if n else None, "gen_s": res.gen_s, "exec_s": res.exec_s,
               "by_kind": {k: res.counts([i for i, kk in enumerate(self.probe_kinds) if kk == k])
                           for k in dict.fromkeys(self.probe_kinds)},
               "tasks": [[st.competition_id, k] for st, k in zip(self.probe_states, self.probe_kinds)],
               "outcomes": res.outcomes, "identical_to_parent": res.identical_to_parent, "texts": res.texts}
        self.run_dir.append_probe(row)
        if n:
            tracking.log_metrics({"probe/valid_rate": x / n, "probe/samples": float(n), "probe/gen_s": res.gen_s},
                                 step=step)
        line = (f"probe after step {step}/{self.cfg.steps}: {x}/{n} valid ("
                + ", ".join(f"{k} {a}/{b}" for k, (a, b) in row["by_kind"].items()) + ") | "
                + (f"cached: measured by an earlier run from this warm start ({self.probe_cache})" if cached else
                   f"{res.gen_s + res.exec_s:.0f} s"))
        if self.progress:
            self.bar.write(line)
        else:
            print(line, flush=True)

    # -------------------------------------------------------------------------------------------- learn
    def learn(self) -> None:
        """Hand the oldest B finished groups to the learner when it is idle (it runs while the loop goes on)."""
        B = self.cfg.tasks_per_step
        if self.learn_refs or len(self.finished) < B:
            return
        # The B earliest-admitted finished groups: exactly one admission window, whose per-competition cap the
        # curriculum enforced, whenever groups finish in admission order (always in sync mode); a straggler's window
        # is completed by the next window's groups rather than waited for.
        self.finished.sort(key=lambda g: g.index)
        self.batch, self.finished = self.finished[:B], self.finished[B:]
        masked = [m for g in self.batch for m in g.masked]
        if sum(masked) > self.cfg.max_masked_share * len(masked):
            raise RuntimeError(
                f"{sum(masked)} of {len(masked)} samples of step {self.step + 1} are infra-masked (generation, "
                f"execution or grading failed): more than max_masked_share={self.cfg.max_masked_share}. The "
                f"tracebacks are in {self.run_dir.infra_errors_path}")
        self.trained_from = self.policy_version   # staleness of a batch is measured against the weights it updates
        self.times["learn"] = time.perf_counter()
        self.learn_refs = self.learner.submit("step", [g.to_rollout_group() for g in self.batch])
        faults.maybe_kill("mid_learn", self.step + 1)

    # -------------------------------------------------------------------------------------------- wait
    def wait(self) -> None:
        """Block until one result is in (a rollout, the learner step, a weight sync, a curriculum report) and hand
        it to its phase."""
        import ray
        refs = (list(self.inflight) + self.learn_refs[:1] + list(self.pending_sync) + self.pending_reports
                + list(self.probe_refs))
        if not refs:
            raise RuntimeError("nothing to wait for and fewer finished groups than a step needs: the curriculum "
                               "returned no task (is the buffer empty? check the suite/competitions)")
        ready, _ = ray.wait(refs, num_returns=1)
        for ref in ready:
            if ref in self.inflight:
                self.collect(ref)
            elif self.learn_refs and ref == self.learn_refs[0]:
                self.commit()
            elif ref in self.probe_refs:
                self.probe_done(ref)
            elif ref in self.pending_sync:
                del self.pending_sync[ref]
                ray.get(ref)
                if not self.pending_sync:
                    self.last_sync_s = time.perf_counter() - self.times["sync"]
            else:
                self.pending_reports.remove(ref)
                ray.get(ref)   # a failed curriculum report ends the run here, with its traceback

    # -------------------------------------------------------------------------------------------- collect
    def collect(self, ref) -> None:
        """A rollout is back: report it to the curriculum, queue it for the learner. A rollout whose worker died
        returns its task to the buffer (Ray restarts the worker, which then loads the newest weights)."""
        import ray
        task, i = self.inflight.pop(ref)
        self.load[i] -= 1
        try:
            group: FinishedGroup = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            self._return_task(task, f"rollout worker {i} died ({type(e).__name__}): its task went back to the buffer")
            if self.latest_weights is not None:
                self.pending_sync[self._sync(self.workers[i], self.latest_weights)] = i
                self.times["sync"] = time.perf_counter()
            return
        if group.errors:
            self.run_dir.log_infra_errors(self.step + 1, group.task_id, group.errors)
        if group.executor_lost:
            # Its programs died with an executor (its node went away): run the task again rather than train on a
            # group with holes, which the masked-share check would also count against the run.
            self._return_task(task, f"an executor died under task {task.task_id}: it goes back to the buffer")
            return
        self.pending_reports.append(self.cur.report.remote(
            group.task_id, group.rewards, group.masked, group.policy_version_started, group.children,
            group.policy_version))
        self.finished.append(group)
        if not self.collected_since_commit:
            self.collected_since_commit = True
            faults.maybe_kill("mid_rollout", self.step + 1)

    def _sync(self, worker, weights_dir: str):
        """Send the newest weights to a worker. Retried by Ray while the worker restarts (loading weights twice is
        harmless), unlike rollouts, whose tasks the driver returns to the buffer instead."""
        return worker.sync_weights.options(max_task_retries=-1).remote(weights_dir, self.policy_version)

    def _return_task(self, task, why: str) -> None:
        self.pending_reports.append(self.cur.release.remote(task.task_id))
        self.admission.cancel(1)
        self.lost_groups += 1
        print(f"warning: {why}")

    # -------------------------------------------------------------------------------------------- commit
    def commit(self) -> None:
        """The learner step is done: sync the engines, checkpoint, write the step's metrics (the commit point)."""
        import ray

        from acelib import tracking
        cfg, run = self.cfg, self.run_dir
        results = ray.get(self.learn_refs)
        self.learn_refs = []
        lmetrics, weights = results[0]
        learner_s = time.perf_counter() - self.times["learn"]
        self.policy_version = int(lmetrics["policy_version"])
        self.step += 1
        self.collected_since_commit = False
        if weights is not None:   # a step that filtered every group changed nothing: nothing to sync
            self.latest_weights = weights
            self.times["sync"] = time.perf_counter()
            self.pending_sync.update({self._sync(w, weights): i
                                      for i, w in enumerate(self.workers)})
        checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
        checkpoint_s = 0.0
        if checkpoint:
            t0 = time.perf_counter()
            cdir = run.checkpoint_dir(self.step)
            cdir.mkdir(parents=True, exist_ok=True)
            try:
                self.learner.call("save_checkpoint", str(cdir))
                ray.get(self.cur.checkpoint.remote(str(cdir / "buffer.sqlite")))
            except Exception as e:   # e.g. a full disk: torch's own message ("unexpected pos ...") does not say so
                raise RuntimeError(run.checkpoint_failed(self.step, e)) from e
            checkpoint_s = time.perf_counter() - t0
            faults.maybe_kill("after_checkpoint", self.step)
        now = time.perf_counter()
        row = {"train/step": self.step, "train/policy_version": self.policy_version, "time/learner_s": learner_s,
               "time/weight_sync_s": self.last_sync_s, "time/checkpoint_s": checkpoint_s,
               "time/step_s": now - self.times["step"],
               "rollout/lost_groups": float(self.lost_groups),
               **group_metrics(self.batch, self.trained_from),
               **{f"learner/{k}": v for k, v in lmetrics.items() if isinstance(v, (int, float))},
               **buffer_metrics(ray.get(self.cur.stats.remote())),
               "groups": group_rows(self.batch)}   # not a metric: tracking.log_metrics skips it
        self.times["step"] = now
        run.append_metrics(self.step, row)
        self.rows.append({"step": self.step, **row})
        self.uncommitted.append(row)
        if checkpoint:
            run.mark_done(self.step)
            run.prune_checkpoints(cfg.keep_checkpoints)
            tracking.log_checkpoint(cdir, self.step, mode=cfg.checkpoint_artifacts, keep=cfg.keep_checkpoint_artifacts)
            for r in self.uncommitted:
                tracking.log_metrics(r, step=int(r["train/step"]))
            self.uncommitted = []
            faults.maybe_kill("after_done", self.step)
        self.bar.update(1)
        if self.progress:
            self.bar.write(step_line(row, cfg.steps))
        else:
            print(step_line(row, cfg.steps), flush=True)

    # -------------------------------------------------------------------------------------------- finish
    def finish(self) -> None:
        """Steps done: return unstarted work to the buffer, export the policy, snapshot the buffer, plots."""
        import ray
        for ref, (task, _) in list(self.inflight.items()):
            ray.cancel(ref, force=False)
            self.pending_reports.append(self.cur.release.remote(task.task_id))
        self.inflight.clear()
        ray.get(self.pending_reports)
        self.pending_reports = []
        self.probe()   # the final policy's probe: asked for as soon as every engine holds it
        while self.probe_refs or (self.pending_sync and self.probe_states and self.step not in self.probed):
            self.wait()
            self.probe()
        self.bar.close()
        self.final_model = self.run_dir.path / "final_model"
        self.learner.call("export_hf", str(self.final_model))
        from acelib import tracking
        self.registered = tracking.log_policy_model(
            self.final_model, self.cfg.registered_model_name or f"acelib-{Path(self.cfg.model).name}",
            description=f"GRPO policy of run {self.run_dir.path.name} ({self.cfg.model}, {self.cfg.steps} steps)")
        self.run_dir.write(registered_model=self.registered.uri)
        snap = ray.get(self.cur.export.remote(str(self.run_dir.path / "buffer_snapshot.parquet")))
        log_artifacts(self.run_dir, snap, self.rows)
        self.summary = self._summarize()

    def _summarize(self) -> dict:
        """The run's headline (probe before/after, first vs last third of the steps), written to summary.json and
        MLflow; the caller prints it (`acelib.trainer.summary.report`: the train notebook does)."""
        import json

        import mlflow

        from acelib import tracking
        from acelib.trainer.summary import run_summary
        summary = run_summary(self.run_dir.path, self.run_id, self.cfg.tracking_uri)
        (self.run_dir.path / "summary.json").write_text(json.dumps(summary, indent=1))
        tracking.log_metrics({f"summary/{k}": v for k, v in summary.items() if isinstance(v, (int, float))},
                             step=self.step)
        mlflow.log_artifact(str(self.run_dir.path / "summary.json"), artifact_path="run")
        tracking.set_description(tracking.describe("GRPO training", self._description_fields(), headline={
            k: summary[k] for k in ("valid_rate_first_third", "valid_rate_last_third", "p_value", "p_value_stratified",
                                    "probe_valid_rate_before", "probe_valid_rate_after", "probe_p_value")}))
        summary["registered_model"] = self.registered.uri
        return summary

    def teardown(self) -> None:
        import ray
        for actor in self.workers + self.executors + ([self.cur] if self.cur is not None else []):
            try:
                ray.get(actor.close.remote(), timeout=60)
            except Exception as e:  # shutting down after an error: report, keep closing the others
                print(f"warning: close failed during shutdown: {e!r}")
            ray.kill(actor)
        if self.learner is not None:
            try:
                self.learner.close()
            except Exception as e:
                print(f"warning: learner close failed during shutdown: {e!r}")
        if getattr(self, "weights_root", None) is not None:
            shutil.rmtree(self.weights_root, ignore_errors=True)
        if self.started_ray:
            ray.shutdown()


# ------------------------------------------------------------------------------------------------ helpers
def actor_env() -> dict[str, str]:
    """The offline/cache settings every actor process needs (Ray starts them with their own environment)."""
    keep = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "DS_BUILD_OPS", "TORCH_EXTENSIONS_DIR",
            "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_NUM_OF_RESERVED_CPU", "ACELIB_CACHE_DIR", "MPLBACKEND", faults.ENV)
    return {k: os.environ[k] for k in keep if k in os.environ}


def log_artifacts(run: RunDir, snapshot: str, rows: list[dict]) -> None:
    import mlflow

    from acelib.trainer.plots import training_plots
    for path in training_plots(rows, run.path / "plots", buffer_snapshot=snapshot, probes=run.probes()):
        mlflow.log_artifact(str(path), artifact_path="plots")
    if run.probe_path.exists():
        mlflow.log_artifact(str(run.probe_path), artifact_path="run")
    mlflow.log_artifact(snapshot, artifact_path="buffer")
    mlflow.log_artifact(str(run.run_json), artifact_path="run")
    mlflow.log_artifact(str(run.metrics_path), artifact_path="run")
    mlflow.set_tag("acelib.checkpoints", str(run.path / "checkpoints"))
    mlflow.set_tag("acelib.final_model", str(run.path / "final_model"))
