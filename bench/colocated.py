"""Colocated vs split on CPU: is one process (engine shares the learner's weights) faster than the Ray trainer?

The issue allows "colocated engine and learner in one process" for the CPU default if it is faster. This runs the
same preset both ways for N steps and prints JSON:

- `colocated`: one process, no Ray, strictly generate → execute → train. The transformers engine generates with the
  learner's own module (the same tensors: no export, no reload, no second copy), so weight sync is free; vLLM
  cannot share the learner's parameters, so this side is transformers-only.
- `split`: `acelib.trainer.train` as `make train` runs it: learner and engine (vLLM when installed) in separate Ray
  actors, weights synced through /dev/shm, in the preset's mode (`--mode` overrides it).

Both use the same buffer/sampler settings, sandbox, agent and learner config; the colocated loop runs the trainer's
own actor classes (Curriculum, RolloutWorker) in-process, in one thread. Step times exclude model loading.

    .venv/bin/python bench/colocated.py [--model cpu] [--steps 6] [--mode async]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DS_BUILD_OPS": "0",
             "TOKENIZERS_PARALLELISM": "false",
             "TORCH_EXTENSIONS_DIR": os.path.expanduser("~/.cache/acelib/torch_extensions")}.items():
    os.environ.setdefault(k, v)


def colocated(cfg, steps: int, workdir: str) -> dict:
    from acelib.curriculum import Curriculum
    from acelib.learner.engine import Learner
    from acelib.models import materialize
    from acelib.rollout.base import SamplingParams
    from acelib.trainer.actors import RolloutWorker
    from acelib.trainer.loop import seed_states, training_competitions

    # The trainer's own actor classes, called in-process: the colocated loop differs only in where they run.
    c = cfg.components()
    model_dir = str(materialize(cfg.model))
    comps = training_competitions(cfg)
    learner = Learner(model_dir, c.learner, c.grpo, temperature=cfg.temperature, seed=cfg.seed)
    cur = Curriculum(os.path.join(workdir, "colocated.sqlite"), c.buffer, c.sampler, list(comps),
                     seed_states(cfg, list(comps)), batch_size=cfg.tasks_per_step, seed=cfg.seed,
                     std_scaling=c.grpo.std_scaling, reward_bounds=c.agent.reward.bounds)
    sampling = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    worker = RolloutWorker(0, model_dir, "hf", c.rollout, sampling, cfg.group_size, comps, c.sandbox,
                           cfg.resources.sandbox_workers, c.agent, cfg.seed)
    worker.engine.model = learner.engine.module  # generate with the learner's tensors: nothing to sync, ever
    rows = []
    try:
        for step in range(steps):
            t0 = time.perf_counter()
            learner.engine.module.eval()
            tasks = cur.sample(cfg.tasks_per_step, learner.policy_version, step * cfg.tasks_per_step)
            groups = [worker.rollout(task) for task in tasks]
            learner.engine.module.train()
            for g in groups:
                cur.report(g.task_id, g.rewards, g.masked, g.policy_version_started, g.children, g.policy_version)
            m = learner.train_step([g.to_rollout_group() for g in groups])
            worker.engine.policy_version = learner.policy_version
            rows.append({"step_s": time.perf_counter() - t0, "gen_s": sum(g.gen_s for g in groups),
                         "exec_s": sum(g.exec_s for g in groups), "learner_s": m["time_s"],
                         "updated": not m.get("skipped"), "gen_tokens": sum(g.gen_tokens for g in groups)})
    finally:
        worker.close()
        cur.close()
        learner.close()
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    out = {k: round(sum(r[k] for r in rows) / n, 2) for k in ("step_s", "gen_s", "exec_s", "learner_s")}
    out["updates"] = sum(r["updated"] for r in rows)
    out["gen_tokens_per_s"] = round(sum(r["gen_tokens"] for r in rows) / max(1e-9, sum(r["gen_s"] for r in rows)), 1)
    return out


def split(cfg) -> dict:
    from acelib.trainer import train

    res = train(cfg, progress=False)
    rows = res.metrics
    return {"step_s": round(sum(m["time/step_s"] for m in rows) / len(rows), 2),
            "learner_s": round(sum(m.get("learner/time_s", 0.0) for m in rows) / len(rows), 2),
            "updates": sum(1 for m in rows if not m.get("learner/skipped")),
            "gen_tokens_per_s": round(sum(m["rollout/tokens_per_s"] for m in rows) / len(rows), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cpu", help="preset name")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--mode", default="", help="sync | async for the split run (default: the preset's)")
    args = ap.parse_args()

    from acelib.trainer import resolve

    out = tempfile.mkdtemp(prefix="acelib-colocated-")
    over = {"steps": args.steps, "output_dir": out, "tracking_uri": f"sqlite:///{out}/mlflow.db",
            "checkpoint_every": args.steps, "mode": args.mode,
            **({"max_staleness": 0} if args.mode == "sync" else {"max_staleness": 1} if args.mode == "async" else {})}
    cfg = resolve(args.model, None, {**over, "run_name": "split"})
    result = {"preset": args.model, "model": cfg.model, "split_mode": cfg.mode, "steps": args.steps, "group_size": cfg.group_size,
              "tasks_per_step": cfg.tasks_per_step, "max_new_tokens": cfg.max_new_tokens, "cpu_count": os.cpu_count()}
    result["split"] = split(cfg)
    result["colocated"] = colocated(cfg, args.steps, out)
    result["colocated_over_split_step_time"] = round(result["colocated"]["step_s"] / result["split"]["step_s"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
