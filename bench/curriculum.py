"""Synthetic curriculum: does learnability sampling reach a target skill in fewer steps? Prints JSON.

Simulated learner (no LLM), driven through the real EvolvingBuffer + LearnabilitySampler (in-memory SQLite);
docs/learnability.md describes it and its assumptions:
- competitions c = 0..K−1 with root difficulty d_c spread from trivial to impossible for the initial skill θ = 0;
- a task (buffer item) has a difficulty d; its success probability is p = σ(θ_c − d);
- each step samples B tasks, each rolls out a group of G Bernoulli(p) rewards (reported to the sampler);
- learning happens only where the group has mixed outcomes (as in GRPO, whose advantages vanish otherwise):
  θ_c' += η·τ^|c−c'|·p̂(1−p̂) for every sampled task of competition c (τ: transfer to related competitions);
- every executed step yields a child state (`add_children`): a group with a success yields an improve task one
  step harder (d + δ_improve: beating a working solution needs more skill), a group with a failure yields a
  debug task (d − δ_debug: finishing a partly working script is easier than starting). Child code is
  deterministic per (parent, kind), so revisits dedup. `--debug-delta 0` gives a buffer of harder tasks only.
Metric: learner steps until the mean success over the ROOT tasks reaches `--target`, per mode
(`lp`, `uniform`, `no_buffer`), over seeds: mean ± SEM and the ratio lp/uniform (target ≤ 0.6). All modes share
the seeds, the simulator and the shipped SamplerConfig defaults.

    python bench/curriculum.py [--seeds 10] [--target 0.8]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from acelib.agent.state import State  # noqa: E402
from acelib.config import from_dict  # noqa: E402
from acelib.curriculum import BufferConfig, EvolvingBuffer, LearnabilitySampler, SamplerConfig  # noqa: E402


def run(mode: str, seed: int, args) -> tuple[int, dict]:
    rng = np.random.default_rng(seed)
    K = args.competitions
    d_root = np.linspace(args.d_min, args.d_max, K)
    theta = np.zeros(K)
    comps = [f"c{i:02d}" for i in range(K)]
    buf = EvolvingBuffer(":memory:", BufferConfig(mode=mode, max_per_competition=args.cap))
    sampler = LearnabilitySampler(buf, from_dict(SamplerConfig, json.loads(args.sampler)), seed=seed)
    buf.add_roots(comps)
    difficulty = {i: d_root[buf.comp[r]] for i, r in buf.id_to_row.items()}
    transfer = args.tau ** np.abs(np.subtract.outer(np.arange(K), np.arange(K)))  # [K, K]

    def root_success() -> float:
        return float(np.mean(1 / (1 + np.exp(-(theta - d_root)))))

    for step in range(1, args.max_steps + 1):
        tasks = sampler.sample(args.batch, policy_version=step)
        grad = np.zeros(K)
        for t in tasks:
            c = buf.comp_index[t.competition_id]
            p = 1 / (1 + math.exp(-(theta[c] - difficulty[t.id])))
            rewards = (rng.random(args.group) < p).astype(float)
            sampler.report(t.id, rewards.tolist(), policy_version_started=step)
            q = rewards.mean()
            grad[c] += q * (1 - q)
            kids, shift = [], {}
            for valid, d in ((True, args.delta), (False, -args.debug_delta)):
                if (rewards == float(valid)).any():  # some rollout succeeded (improve) / failed (debug)
                    kid = State(competition_id=t.competition_id, code=f"solve(parent='{t.id}', valid={valid})",
                                valid=valid, exec_status="ok" if valid else "error", policy_version=step)
                    kids.append(kid)
                    shift[kid.id] = d
            for cid in buf.add_children(t.id, kids, policy_version=step):
                difficulty[cid] = difficulty[t.id] + shift[cid]
        theta += args.lr * transfer @ grad
        if root_success() >= args.target:
            return step, buf.stats()
    return args.max_steps, buf.stats()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first_seed .. first_seed+seeds−1")
    ap.add_argument("--competitions", type=int, default=16)
    ap.add_argument("--d-min", type=float, default=-4.0, help="easiest root difficulty (σ(4) ≈ 0.98: trivial)")
    ap.add_argument("--d-max", type=float, default=10.0, help="hardest root difficulty (σ(−10) ≈ 5e−5: impossible)")
    ap.add_argument("--delta", type=float, default=0.5, help="difficulty added by an improve child")
    ap.add_argument("--debug-delta", type=float, default=0.5, help="difficulty removed by a debug child")
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--tau", type=float, default=0.5, help="skill transfer factor per competition distance")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--cap", type=int, default=64, help="max_per_competition")
    ap.add_argument("--target", type=float, default=0.8)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--sampler", default="{}", help="SamplerConfig overrides as JSON (default: the shipped defaults)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out: dict = {"bench": "curriculum", "seeds": args.seeds, "target_success": args.target,
                 "params": {k: v for k, v in vars(args).items() if k not in ("seeds", "target")}}
    steps = {}
    for mode in ("lp", "uniform", "no_buffer"):
        res = [run(mode, s, args) for s in range(args.first_seed, args.first_seed + args.seeds)]
        st = np.array([r[0] for r in res], dtype=float)
        steps[mode] = st
        out[mode] = {"steps_mean": round(float(st.mean()), 1),
                     "steps_sem": round(float(st.std(ddof=1) / math.sqrt(len(st))), 1),
                     "not_reached": int((st >= args.max_steps).sum()),
                     "final_buffer_size_mean": round(float(np.mean([r[1]["size"] for r in res])), 1)}
    ratio = steps["lp"].mean() / steps["uniform"].mean()
    # SEM of a ratio of independent means (delta method)
    rel = math.hypot(out["lp"]["steps_sem"] / steps["lp"].mean(), out["uniform"]["steps_sem"] / steps["uniform"].mean())
    out["ratio_lp_over_uniform"] = round(float(ratio), 3)
    out["ratio_sem"] = round(float(ratio * rel), 3)
    out["ratio_lp_over_no_buffer"] = round(float(steps["lp"].mean() / steps["no_buffer"].mean()), 3)
    out["target_ratio"] = 0.6
    out["meets_target"] = bool(ratio <= 0.6)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
