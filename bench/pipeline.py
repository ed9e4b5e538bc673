"""Wall time of N training steps, async vs sync, same settings, one run; prints JSON with the ratio.

Realistic sandbox latency: the buffer is seeded with the suite's reference solutions (real executions of real
scikit-learn scripts), and the agent's generated code runs in the real sandbox. Model: `tiny` by default (the
learner and engine are cheap, so the sandbox latency the async design hides dominates, as it does at scale);
`--model cpu` runs SmolLM2-135M.

    .venv/bin/python bench/pipeline.py [--steps 4] [--model tiny] [--competitions 4]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--model", default="tiny", help="preset name")
    ap.add_argument("--competitions", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--tasks-per-step", type=int, default=2)
    args = ap.parse_args()

    from acelib.tasks.suites import SUITES
    from acelib.trainer import resolve, train

    comps = list(SUITES["train"][: args.competitions])
    out = tempfile.mkdtemp(prefix="acelib-bench-")
    result = {"model": args.model, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
              "tasks_per_step": args.tasks_per_step, "cpu_count": os.cpu_count()}
    for mode in ("sync", "async"):
        cfg = resolve(args.model, None, {
            "mode": mode, "steps": args.steps, "competitions": comps, "group_size": args.group_size,
            "tasks_per_step": args.tasks_per_step, "output_dir": out, "run_name": f"bench-{mode}",
            "tracking_uri": f"sqlite:///{out}/mlflow.db", "seed_with_reference": True, "max_staleness": 1})
        t0 = time.perf_counter()
        res = train(cfg, progress=False)
        wall = time.perf_counter() - t0
        steps_s = [m.get("time/step_s", float("nan")) for m in res.metrics]
        result[mode] = {"wall_s": round(wall, 2), "mean_step_s": round(sum(steps_s) / len(steps_s), 2),
                        "sandbox_latency_s": round(sum(m["sandbox/latency_s"] for m in res.metrics) / len(res.metrics), 3),
                        "staleness_max": max(m["staleness/max"] for m in res.metrics)}
    result["speedup_async_over_sync"] = round(result["sync"]["mean_step_s"] / result["async"]["mean_step_s"], 3)
    result["target"] = ">= 2.5"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
