"""Wall time of N training steps, async vs sync, same settings, one run; prints JSON with the ratio.

Realistic sandbox latency: every response that reaches the sandbox is the competition's reference solution (a real
scikit-learn script from `acelib.tasks.suites.solutions`), executed and graded for real. The model (`tiny` by
default) still generates its tokens, the learner trains on them and the engines reload the weights after every
step: only the text handed to the sandbox is replaced, because no model that runs here writes working code.
A seeded quarter of the responses gets a failing last line (the script runs to the end, then exits 1), so groups have
reward variance, the learner updates every step and the buffer grows debug as well as improve tasks.
This is a throughput benchmark, not a training run: the rewards do not belong to the tokens trained on.

The script also reads /proc/stat around each run: `cpu_util` is the share of all cores busy during it. When every
component is CPU-bound, overlapping them cannot beat the sync run by more than 1 / cpu_util(sync), whatever the
scheduling; `async_ceiling` prints that bound.

    .venv/bin/python bench/pipeline.py [--steps 6] [--model tiny] [--competitions 4] [--rollout-workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from acelib.trainer.actors import RolloutWorker  # noqa: E402

BROKEN_SHARE = 0.25


class ReferenceReplayWorker(RolloutWorker):
    """Runs the reference solution in place of each generated text (see the module docstring)."""

    def responses(self, state, samples) -> list[str]:
        from acelib.agent.policy import fenced
        from acelib.tasks.suites import reference_solution

        self._calls = getattr(self, "_calls", 0) + 1
        rng = random.Random(f"{self.index}-{self._calls}")
        code = reference_solution(state.competition_id)
        return [fenced(code + ("\nraise SystemExit('benchmark: broken variant')\n"
                               if rng.random() < BROKEN_SHARE else "")) for _ in samples]


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--model", default="tiny", help="preset name")
    ap.add_argument("--competitions", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--tasks-per-step", type=int, default=2)
    ap.add_argument("--rollout-workers", type=int, default=2)
    ap.add_argument("--sandbox-workers", type=int, default=2, help="per rollout worker")
    args = ap.parse_args()

    from acelib.tasks.suites import SUITES
    from acelib.trainer import resolve, train

    comps = list(SUITES["train"][: args.competitions])
    out = tempfile.mkdtemp(prefix="acelib-bench-")
    result = {"model": args.model, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
              "tasks_per_step": args.tasks_per_step, "rollout_workers": args.rollout_workers,
              "sandbox_workers": args.sandbox_workers, "cpu_count": os.cpu_count()}
    for mode in ("sync", "async"):
        cfg = resolve(args.model, None, {
            "mode": mode, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
            "tasks_per_step": args.tasks_per_step, "output_dir": out, "run_name": f"bench-{mode}",
            "tracking_uri": f"sqlite:///{out}/mlflow.db",
            "max_staleness": 0 if mode == "sync" else 1,
            "checkpoint_every": args.steps,
            "resources": {"rollout_workers": args.rollout_workers, "sandbox_workers": args.sandbox_workers},
            # every group with reward variance trains, the others are skipped as in a real run
            "grpo": {"filter_zero_variance": True}})
        busy0, total0 = cpu_ticks()
        t0 = time.perf_counter()
        res = train(cfg, progress=False, rollout_worker_cls=ReferenceReplayWorker)
        wall = time.perf_counter() - t0
        busy1, total1 = cpu_ticks()
        steps_s = [m["time/step_s"] for m in res.metrics]
        steady = steps_s[1:] or steps_s  # step 1 includes filling the pipeline
        result[mode] = {
            "wall_s": round(wall, 2),
            "loop_s": round(sum(steps_s), 2),
            "steady_step_s": round(sum(steady) / len(steady), 2),
            "cpu_util": round((busy1 - busy0) / (total1 - total0), 3),
            "sandbox_latency_s": round(sum(m["sandbox/latency_s"] for m in res.metrics) / len(res.metrics), 2),
            "valid_rate": round(sum(m["rate/valid_submission"] for m in res.metrics) / len(res.metrics), 3),
            "learner_updates": sum(1 for m in res.metrics if not m.get("learner/skipped")),
            "staleness_max": max(m["staleness/max"] for m in res.metrics),
        }
    s, a = result["sync"], result["async"]
    result["speedup_loop"] = round(s["loop_s"] / a["loop_s"], 3)
    result["speedup_steady"] = round(s["steady_step_s"] / a["steady_step_s"], 3)
    result["async_ceiling"] = round(1 / s["cpu_util"], 2)
    result["target"] = ">= 2.5"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
