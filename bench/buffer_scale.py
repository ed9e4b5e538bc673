"""Buffer at scale: 1,000,000 items; throughput of sample + report, and memory. Prints JSON.

One "op" = one task drawn by the sampler's `sample(k)` plus its finished group recorded by `report` (G rewards),
the curriculum's per-task work. The loop also advances the policy version every batch (as a trainer step
does) and calls `Curriculum.checkpoint()` (SQLite commit of everything changed) every `--checkpoint-every` batches;
its time is reported separately and included in `ops_per_s_with_checkpoint`. Target: >= 100k ops/s (hot path).
`curriculum_api_ops_per_s` times the same work through the Curriculum's own `sample`/`report` (per-batch caps,
TaskAssignments with their State read from SQLite, as the trainer gets them).

    python bench/buffer_scale.py [--items 1000000] [--k 64] [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from acelib.agent.state import State  # noqa: E402
from acelib.config import from_dict  # noqa: E402
from acelib.curriculum import BufferConfig, Curriculum, SamplerConfig  # noqa: E402

UNCAPPED = BufferConfig(max_items=10**9, max_per_competition=10**9)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def reopen(path: str) -> None:
    rss_before = rss_mb()
    t0 = time.perf_counter()
    cur = Curriculum(path, UNCAPPED, SamplerConfig(), [], batch_size=64)
    print(json.dumps({"items": len(cur.buffer), "reopen_s": round(time.perf_counter() - t0, 2),
                      "rss_mb": round(rss_mb()),
                      "rss_mb_before": round(rss_before)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--competitions", type=int, default=100)
    ap.add_argument("--k", type=int, default=64, help="tasks per sample() call (B, states per RL step)")
    ap.add_argument("--group", type=int, default=8, help="rewards per reported group (G)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--sampler", default="{}", help="SamplerConfig overrides as JSON (default: the shipped defaults)")
    ap.add_argument("--reopen", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reopen:
        return reopen(args.reopen)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "buffer.sqlite"
        comps = [f"comp{i:03d}" for i in range(args.competitions)]
        t0 = time.perf_counter()
        sampler_cfg = from_dict(SamplerConfig, json.loads(args.sampler))
        cur = Curriculum(str(path), UNCAPPED, sampler_cfg, comps, batch_size=args.k, seed=0)
        buf, sampler = cur.buffer, cur.sampler
        roots = {c: State(c).id for c in comps}
        per = args.items // args.competitions
        for ci, c in enumerate(comps):
            kids = [State(competition_id=c, code=f"model_{ci}_{j} = fit()", valid=bool(j % 2), depth=1,
                          output="x" * 200) for j in range(per)]
            buf.add_children(roots[c], kids, policy_version=0)
        t_insert = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur.checkpoint()
        t_first_commit = time.perf_counter() - t0
        rss_loaded = rss_mb()

        p = rng.random(4096)  # success probabilities recycled across tasks: rewards are data, not the point here
        rewards = [(rng.random((64, args.group)) < pi).astype(float).tolist() for pi in p[:64]]
        ops, t_hot, t_ckpt, n_ckpt, batch, version = 0, 0.0, 0.0, 0, 0, 0
        cpu_hot = 0.0  # process CPU time of the hot path: the wall figure is inflated on a shared machine
        t_state = 0.0
        while t_hot + t_ckpt < args.seconds:
            s0, c0 = time.perf_counter(), time.process_time()
            tasks = sampler.sample(args.k, version)
            for i, t in enumerate(tasks):
                sampler.report(t.id, rewards[i % 64][batch % 64], version)
            s1 = time.perf_counter()
            t_hot += s1 - s0
            cpu_hot += time.process_time() - c0
            ops += len(tasks)
            batch += 1
            version += 1
            if batch % args.checkpoint_every == 0:
                s0 = time.perf_counter()
                cur.checkpoint()
                t_ckpt += time.perf_counter() - s0
                n_ckpt += 1
        # loading States (one SQLite read each) is separate: the trainer does it once per task for the prompt
        tasks = sampler.sample(args.k, version)
        s0 = time.perf_counter()
        for t in tasks:
            _ = t.state
        t_state = (time.perf_counter() - s0) / len(tasks)
        for t in tasks:
            sampler.release(t.id)
        # the trainer's calls: Curriculum.sample (batch caps, States read from SQLite) + Curriculum.report
        api_ops, t_api, index = 0, 0.0, 0
        while t_api < args.seconds / 4:
            s0 = time.perf_counter()
            for a in cur.sample(args.k, version, first_index=index):
                cur.report(a.task_id, rewards[api_ops % 64][batch % 64], [False] * args.group, version, [], version)
                api_ops += 1
            t_api += time.perf_counter() - s0
            index += args.k
            version += 1
        t0 = time.perf_counter()
        cur.close()
        t_close = time.perf_counter() - t0
        db_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        # steady-state footprint: a fresh process that resumes the 1M-item file (no bulk-insert garbage)
        out = subprocess.run([sys.executable, __file__, "--reopen", str(path)], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"reopening the buffer failed:\n{out.stderr}")
        reopened = json.loads(out.stdout)
    print(json.dumps({
        "bench": "buffer_scale", "sampler": json.loads(args.sampler), "items": len(buf),
        "competitions": args.competitions, "k": args.k,
        "group": args.group, "batches": batch, "ops": ops,
        "ops_per_s_hot": round(ops / t_hot), "ops_per_cpu_s_hot": round(ops / cpu_hot),
        "ops_per_s_with_checkpoint": round(ops / (t_hot + t_ckpt)), "load_avg_1m": round(os.getloadavg()[0], 1),
        "curriculum_api_ops_per_s": round(api_ops / t_api),
        "target_ops_per_s": 100_000, "meets_target": ops / t_hot >= 100_000,
        "checkpoint_s_mean": round(t_ckpt / max(n_ckpt, 1), 4), "checkpoints": n_ckpt,
        "state_load_ms_per_task": round(1000 * t_state, 3),
        "insert_1m_s": round(t_insert, 2), "first_commit_s": round(t_first_commit, 2),
        "close_s": round(t_close, 3), "reopen_s": reopened["reopen_s"],
        "reopen_identical_size": reopened["items"] == len(buf),
        "rss_mb_after_bulk_insert": round(rss_loaded), "rss_mb_resumed_process": reopened["rss_mb"],
        "rss_mb_python_and_libs": reopened["rss_mb_before"], "sqlite_mb": round(db_mb),
        "cpu": os.cpu_count(),
    }, indent=1))


if __name__ == "__main__":
    main()
