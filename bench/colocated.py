"""Colocated vs split on CPU: is one process (engine shares the learner's weights) faster than the Ray trainer?

The issue allows "colocated engine and learner in one process" for the CPU default if it is faster. This runs the
same preset both ways for N steps and prints JSON:

- `colocated`: one process, no Ray, strictly generate → execute → train. The transformers engine generates with the
  learner's own module (the same tensors: no export, no reload, no second copy), so weight sync is free; vLLM
  cannot share the learner's parameters, so this side is transformers-only.
- `split`: `acelib.trainer.train` as `make train` runs it: learner and engine (vLLM when installed) in separate Ray
  actors, weights synced through /dev/shm, in the preset's mode (`--mode` overrides it).

Both use the same buffer/sampler settings, sandbox, agent and learner config; the colocated loop calls the same
acelib functions the Ray actors call, in one thread. Step times exclude model loading.

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
    import dataclasses

    from acelib.agent import build_messages, step_batch
    from acelib.curriculum import EvolvingBuffer, LearnabilitySampler
    from acelib.learner import Learner, RolloutGroup
    from acelib.models import materialize
    from acelib.rollout.base import SamplingParams
    from acelib.rollout.hf import HFEngine
    from acelib.sandbox import SandboxPool
    from acelib.tasks import load
    from acelib.trainer.config import component_configs
    from acelib.trainer.loop import seed_states, training_competitions

    c = component_configs(cfg)
    model_dir = str(materialize(cfg.model))
    comps = {cid: load(root) for cid, root in training_competitions(cfg).items()}
    learner = Learner(dataclasses.replace(c["learner"], model=model_dir, grpo=c["grpo"], seed=cfg.seed))
    engine = HFEngine(c["rollout"], model_dir, seed=cfg.seed)
    engine.model = learner.engine.module  # generate with the learner's tensors: nothing to sync, ever
    buffer = EvolvingBuffer(os.path.join(workdir, "colocated.sqlite"), c["buffer"])
    buffer.add_roots(list(comps), seed_states=seed_states(cfg, list(comps)))
    sampler = LearnabilitySampler(buffer, c["sampler"], seed=cfg.seed)
    pool = SandboxPool(workers=cfg.resources.sandbox_workers, limits=c["sandbox"])
    sampling = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    rows = []
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            groups, gen_s, exec_s = [], 0.0, 0.0
            for task in sampler.sample(cfg.tasks_per_step, policy_version=learner.version):
                state, comp = task.state, comps[task.state.competition_id]
                messages = build_messages(state, comp, c["agent"].prompt, time_limit_s=c["sandbox"].timeout_s)
                t = time.perf_counter()
                learner.engine.module.eval()
                samples = engine.generate([messages], sampling, n=cfg.group_size)[0]
                learner.engine.module.train()
                gen_s += time.perf_counter() - t
                t = time.perf_counter()
                results = step_batch([state] * len(samples), [s.text for s in samples], comp, pool, c["agent"])
                exec_s += time.perf_counter() - t
                rewards, masked = [r.reward for r in results], [r.masked for r in results]
                sampler.report(task.id, rewards, policy_version_started=learner.version, masked=masked)
                buffer.add_children(task.id, [r.child for r in results if not r.masked], learner.version)
                groups.append(RolloutGroup(prompt_ids=samples[0].prompt_ids, samples=samples, rewards=rewards,
                                           masked=masked))
            m = learner.train_step(groups)
            engine.policy_version = learner.version
            rows.append({"step_s": time.perf_counter() - t0, "gen_s": gen_s, "exec_s": exec_s,
                         "learner_s": m["time_s"], "updated": not m.get("skipped"),
                         "gen_tokens": sum(len(s.token_ids) for g in groups for s in g.samples)})
    finally:
        pool.close()
        sampler.checkpoint()
        buffer.close()
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
            "checkpoint_every": args.steps, "mode": args.mode}
    cfg = resolve(args.model, None, {**over, "run_name": "split"})
    result = {"preset": args.model, "model": cfg.model, "split_mode": cfg.mode, "steps": args.steps, "group_size": cfg.group_size,
              "tasks_per_step": cfg.tasks_per_step, "max_new_tokens": cfg.max_new_tokens, "cpu_count": os.cpu_count()}
    result["split"] = split(cfg)
    result["colocated"] = colocated(cfg, args.steps, out)
    result["colocated_over_split_step_time"] = round(result["colocated"]["step_s"] / result["split"]["step_s"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
