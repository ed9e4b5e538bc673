"""Wall time of N training steps, async vs sync, same settings, one run each; prints JSON with the ratio and its bound.

Realistic sandbox work: every response that reaches the sandbox is the competition's reference solution (a real
scikit-learn script from `acelib.tasks.suites.solutions`). The model (`tiny` by default) still generates its tokens,
the learner trains on them and the engines reload the weights after every step: only the text handed to the
sandbox is replaced, because no model that runs here writes working code. A seeded quarter of the responses gets a
failing last line (the script runs to the end, then exits 1), so groups have reward variance and the learner
updates every step. This is a throughput benchmark, not a training run: the rewards do not belong to the tokens.

`--executors local` (default): the scripts run in the rollout workers' own sandbox pools, on these cores. When
every component is CPU-bound, overlapping them cannot beat sync by more than 1 / cpu_util(sync): `async_ceiling`.

`--executors remote`: A MODEL OF REMOTE EXECUTORS, for a machine whose cores the executions must not compete for
(what an executor tier on other nodes gives). Each competition's reference solution (and its broken variant) is run
once for real on this machine, its wall time measured; in the run, an execution returns that real result after
sleeping `--exec-scale` × the measured time, using no local CPU while it waits. Grading stays real and local. The
output labels it `"executors": "modelled remote"`. With `--ray-address` the same bench runs on a real cluster, where
`--executors cluster` uses the trainer's real executor actors on the nodes with the `executor` resource.

Two bounds, from the sync run's measured per-step generation G (engine seconds per engine: a batched call that
served several groups counts once), execution E (the longest group's: a step waits for its slowest group) and learning L:
- `theoretical_bound` = (G + E + L) / max(G, E, L): overlapping the three phases of one step and nothing else.
- `pipelined_bound` = (G + E + L) / max(G, L, B·λ / F): async also runs the groups of up to F = min(rollout slots,
  (1 + max_staleness)·B) groups at once, across steps; a group takes λ = its generation + its executions (mean
  over groups), so B groups per step need at least B·λ/F seconds when execution capacity is not the limit (the
  modelled remote executors have none; real executors do). This is the ceiling that applies to `speedup_steady`;
  `theoretical_bound` is what overlap alone, without that pipeline depth, could give.
Per-step weight sync and start-up are excluded from both.

    .venv/bin/python bench/pipeline.py [--steps 6] [--executors remote --exec-scale 10] [--ray-address ADDR]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import tempfile
import threading
import time
from concurrent.futures import Future

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from acelib.trainer.actors import RolloutWorker  # noqa: E402

BROKEN_SHARE = 0.25
BROKEN_TAIL = "\nraise SystemExit('benchmark: broken variant')\n"


def replay_texts(worker, state, samples) -> list[str]:
    """The reference solution in place of each generated text; a seeded quarter broken on its last line."""
    from acelib.agent.policy import fenced
    from acelib.tasks.suites import reference_solution

    worker._calls = getattr(worker, "_calls", 0) + 1
    rng = random.Random(f"{worker.index}-{worker._calls}")
    code = reference_solution(state.competition_id)
    return [fenced(code + (BROKEN_TAIL if rng.random() < BROKEN_SHARE else "")) for _ in samples]


class ReferenceReplayWorker(RolloutWorker):
    """Runs the reference solution in place of each generated text (see the module docstring)."""

    def responses(self, state, samples) -> list[str]:
        return replay_texts(self, state, samples)


class ModelledRemotePool:
    """A MODEL of a remote executor tier: `submit` returns the program's real result, recorded once on this machine,
    after sleeping `scale` × its measured wall time, without using local CPU (threads only sleep)."""

    def __init__(self, recorded: dict[str, tuple[object, float]], scale: float):
        self.recorded, self.scale = recorded, scale

    def submit(self, code, competition, limits=None) -> Future:
        result, seconds = self.recorded[code]
        fut: Future = Future()
        timer = threading.Timer(seconds * self.scale, fut.set_result, args=(result,))
        timer.daemon = True
        timer.start()
        return fut

    def close(self) -> None:
        pass


class ModelledRemoteWorker(ReferenceReplayWorker):
    """The replay worker whose executions go to `ModelledRemotePool` (the scale comes from the driver's env)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool.close()
        # recorded once by the driver, so the sync and the async run replay the same execution times
        with open(os.environ["ACELIB_BENCH_RECORDED"], "rb") as f:
            recorded = pickle.load(f)
        self.pool = ModelledRemotePool(recorded, float(os.environ["ACELIB_BENCH_EXEC_SCALE"]))


def record_executions(competitions, limits) -> dict[str, tuple[object, float]]:
    """Run each competition's reference solution and its broken variant once for real (one at a time, so on an
    otherwise idle core): code → (ExecResult, wall seconds)."""
    from acelib.sandbox import run
    from acelib.tasks.suites import reference_solution

    out = {}
    for comp in competitions:
        code = reference_solution(comp.id)
        for variant in (code, code + BROKEN_TAIL):
            t0 = time.perf_counter()
            res = run(variant, comp, limits)
            out[variant] = (res, time.perf_counter() - t0)
    return out


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--model", default="tiny", help="preset name")
    ap.add_argument("--competitions", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--tasks-per-step", type=int, default=2)
    ap.add_argument("--rollout-workers", type=int, default=2)
    ap.add_argument("--sandbox-workers", type=int, default=2, help="per rollout worker")
    ap.add_argument("--max-staleness", type=int, default=2, help="async run's admission bound")
    ap.add_argument("--executors", choices=("local", "remote", "cluster"), default="local")
    ap.add_argument("--exec-scale", type=float, default=10.0, help="remote model: × measured execution time")
    ap.add_argument("--cluster-executors", type=int, default=2, help="--executors cluster: executor actors")
    ap.add_argument("--ray-address", default="", help="run on this Ray cluster instead of a local one")
    args = ap.parse_args()

    from acelib.tasks.suites import SUITES
    from acelib.trainer import resolve, train

    comps = list(SUITES["train"][: args.competitions])
    out = tempfile.mkdtemp(prefix="acelib-bench-")
    worker = {"local": ReferenceReplayWorker, "remote": ModelledRemoteWorker, "cluster": ReferenceReplayWorker}[
        args.executors]
    os.environ["ACELIB_BENCH_EXEC_SCALE"] = str(args.exec_scale)
    if args.executors == "remote":
        from acelib.tasks.suites import prepare_competition
        limits = resolve(args.model, None, {"competitions": comps}).sandbox
        recorded = record_executions([prepare_competition(c) for c in comps], limits)
        os.environ["ACELIB_BENCH_RECORDED"] = os.path.join(out, "recorded_executions.pkl")
        with open(os.environ["ACELIB_BENCH_RECORDED"], "wb") as f:
            pickle.dump(recorded, f)
    result = {"model": args.model, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
              "tasks_per_step": args.tasks_per_step, "rollout_workers": args.rollout_workers,
              "sandbox_workers": args.sandbox_workers, "max_staleness_async": args.max_staleness,
              "cpu_count": os.cpu_count(), "load_avg_1m_before": os.getloadavg()[0],
              "executors": {"local": "local sandbox pools (real)",
                            "remote": f"modelled remote: real results, {args.exec_scale:g} x measured wall time "
                                      "(recorded once, replayed in both runs), no local CPU",
                            "cluster": f"{args.cluster_executors} executor actors on the cluster (real)"}[
                  args.executors]}
    for mode in ("sync", "async"):
        cfg = resolve(args.model, None, {
            "mode": mode, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
            "tasks_per_step": args.tasks_per_step, "output_dir": out, "run_name": f"bench-{mode}",
            "tracking_uri": f"sqlite:///{out}/mlflow.db", "seeds": {"per_competition": 0, "improve": True},
            "max_staleness": 0 if mode == "sync" else args.max_staleness, "checkpoint_every": args.steps,
            "resources": {"rollout_workers": args.rollout_workers, "sandbox_workers": args.sandbox_workers,
                          "ray_address": args.ray_address,
                          **({"executors": args.cluster_executors} if args.executors == "cluster" else {})},
            # every group with reward variance trains, the others are skipped as in a real run
            "grpo": {"filter_zero_variance": True}})
        busy0, total0 = cpu_ticks()
        t0 = time.perf_counter()
        res = train(cfg, progress=False, rollout_worker_cls=worker)
        wall = time.perf_counter() - t0
        busy1, total1 = cpu_ticks()
        m = res.metrics
        steps_s = [r["time/step_s"] for r in m]
        steady = steps_s[1:] or steps_s  # step 1 includes filling the pipeline
        result[mode] = {
            "wall_s": round(wall, 2),
            "loop_s": round(sum(steps_s), 2),
            "steady_step_s": round(sum(steady) / len(steady), 2),
            "cpu_util": round((busy1 - busy0) / (total1 - total0), 3),
            # engine seconds (a batched call counted once), spread over the workers' engines
            "gen_s_per_step": round(sum(r["rollout/gen_engine_s"] for r in m) / len(m) / args.rollout_workers, 2),
            "exec_s_per_step": round(sum(r["rollout/exec_s_max"] for r in m) / len(m), 2),
            "exec_s_per_group": round(sum(r["rollout/exec_s_mean"] for r in m) / len(m), 2),
            "gen_s_per_group": round(sum(r["rollout/gen_engine_s"] for r in m) / len(m) / args.tasks_per_step, 2),
            "learner_s_per_step": round(sum(r["time/learner_s"] for r in m) / len(m), 2),
            "sandbox_latency_s": round(sum(r["sandbox/latency_s"] for r in m) / len(m), 2),
            "valid_rate": round(sum(r["rate/valid_submission"] for r in m) / len(m), 3),
            "learner_updates": sum(1 for r in m if not r.get("learner/skipped")),
            "staleness_max": max(r["staleness/max"] for r in m),
        }
    s, a = result["sync"], result["async"]
    g, e, lr = s["gen_s_per_step"], s["exec_s_per_step"], s["learner_s_per_step"]
    result["speedup_loop"] = round(s["loop_s"] / a["loop_s"], 3)
    result["speedup_steady"] = round(s["steady_step_s"] / a["steady_step_s"], 3)
    result["theoretical_bound"] = round((g + e + lr) / max(g, e, lr), 2)
    from acelib.trainer.config import ResourcesConfig
    b = args.tasks_per_step
    in_flight = min(ResourcesConfig().rollouts_per_worker * args.rollout_workers, (1 + args.max_staleness) * b)
    lam = s["gen_s_per_group"] + s["exec_s_per_group"]
    result["groups_in_flight_async"] = in_flight
    result["pipelined_bound"] = round((g + e + lr) / max(g, lr, b * lam / in_flight), 2)
    if args.executors == "local":
        result["async_ceiling"] = round(1 / s["cpu_util"], 2)
    result["goal"] = ">= 2.5 (verl 2.35-2.67x, AReaL 2.77x)"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
