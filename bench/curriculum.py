"""Synthetic curricula: does learnability sampling reach a target skill in fewer steps? Prints JSON.

Simulated learners (no LLM), driven through the real `Curriculum` (EvolvingBuffer + LearnabilitySampler, in-memory
SQLite); docs/learnability.md describes them and their assumptions. Shared by both:
- competitions c = 0..K−1 with root difficulty d_c spread from trivial to impossible for the initial skill θ = 0;
- each step samples B tasks (one learner batch: admission indices step·B …), rolls out a group of G samples per
  task and reports it; the skill θ_c of every competition moves by η·τ^|c−c'|·(learning signal of the group);
- every executed step yields child states (`report(children=…)`): a group with a success yields an improve task
  one step harder (d + δ_improve), a group with a failure a debug task (d − δ_debug). Child code is deterministic
  per (parent, kind), so revisits dedup. `--debug-delta 0` gives a buffer of harder tasks only.

`binary` (0/1 rewards, unchanged since the first version of this bench): p = σ(θ_c − d), G Bernoulli(p) rewards,
learning signal p̂(1−p̂) (the group's reward variance). Metric: mean success probability of the ROOT tasks.

`ladder` (the project's step reward, docs/reward.md): a sample's latent outcome is y = θ_c − d + ε (ε logistic);
y < −3 format error (−1), y < −1 run failed (0), y < 0 submission invalid (0.2), else valid with quality
q = clip(y/2 − 1, −1, 1) and reward 1 + 0.3·q + 0.3·Δ (Δ = clip(q − q_parent, −1, 1) on improve tasks). The
learner is a policy gradient with GRPO's std-normalised advantages A (zero for a zero-variance group): signal
(1/G)·Σ A_i·tanh(ε_i/2), the score of a logistic location model, so quality differences among valid samples teach
as much as validity flips, as they do in GRPO. A failed or invalid sample yields a debug child, a valid one an
improve child carrying its q. Metric: mean expected reward of the ROOT tasks (drafts: Δ = 0).

Nothing in either simulator knows about LP. Output: steps until the metric reaches its target, per mode (`lp`,
`uniform`, `no_buffer`), mean ± SEM over the seeds, and lp/uniform (goal ≤ 0.5), for the seeds the defaults were
tuned on (0–3 of 0–9) and for held-out seeds (10–19) separately.

    python bench/curriculum.py [--seeds 10] [--heldout-first-seed 10] [--curricula binary ladder]
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
from acelib.curriculum import BufferConfig, Curriculum, SamplerConfig  # noqa: E402
from acelib.groups import is_zero_variance  # noqa: E402

MODES = ("lp", "uniform", "no_buffer")
GOAL = 0.5


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class Binary:
    """0/1 rewards; a task's property is its difficulty."""

    bounds = (0.0, 1.0)

    def __init__(self, args, rng):
        self.args, self.rng = args, rng
        self.d_root = np.linspace(args.d_min, args.d_max, args.competitions)
        self.theta = np.zeros(args.competitions)
        self.target, self.lr = args.target, args.lr

    def root(self, c: int):
        return self.d_root[c]

    def rollout(self, c: int, d: float):
        """(rewards [G], learning signal, {valid: child property} for the children this group yields)."""
        p = 1 / (1 + math.exp(-(self.theta[c] - d)))
        rewards = (self.rng.random(self.args.group) < p).astype(float)
        q = rewards.mean()
        kids = {valid: d + (self.args.delta if valid else -self.args.debug_delta)
                for valid in (True, False) if (rewards == float(valid)).any()}
        return rewards.tolist(), q * (1 - q), kids

    def score(self) -> float:
        return float(np.mean(sigmoid(self.theta - self.d_root)))


class Ladder:
    """Ladder rewards; a task's property is (difficulty, parent quality or None)."""

    bounds = (-1.0, 1.6)  # RewardConfig.bounds
    _eps = np.log((np.arange(512) + 0.5) / (512 - np.arange(512) - 0.5))  # logistic quantiles, for expectations

    def __init__(self, args, rng):
        self.args, self.rng = args, rng
        self.d_root = np.linspace(args.d_min, args.d_max, args.competitions)
        self.theta = np.zeros(args.competitions)
        self.target, self.lr = args.target_reward, args.ladder_lr

    def root(self, c: int):
        return (self.d_root[c], None)

    @staticmethod
    def reward(y: np.ndarray, q_parent) -> tuple[np.ndarray, np.ndarray]:
        """(rewards, qualities; NaN where not valid) of latent outcomes y [...]."""
        q = np.clip(y / 2 - 1, -1.0, 1.0)
        delta = 0.0 if q_parent is None else np.clip(q - q_parent, -1.0, 1.0)
        r = np.select([y < -3, y < -1, y < 0], [-1.0, 0.0, 0.2], 1.0 + 0.3 * q + 0.3 * delta)
        return r, np.where(y >= 0, q, np.nan)

    def rollout(self, c: int, prop):
        d, q_parent = prop
        eps = self.rng.logistic(size=self.args.group)
        y = self.theta[c] - d + eps
        r, q = self.reward(y, q_parent)
        signal = 0.0
        if not is_zero_variance(r.tolist()):  # GRPO: std-normalised advantages, zero for equal rewards
            adv = (r - r.mean()) / (r.std(ddof=1) + 1e-4)
            signal = float(np.mean(adv * np.tanh(eps / 2)))
        kids = {}
        if (y >= 0).any():
            kids[True] = (d + self.args.delta, float(np.nanmax(q)))
        if ((y >= -3) & (y < 0)).any():  # ran, but no valid submission: a debug task (format errors run nothing)
            kids[False] = (d - self.args.debug_delta, None)
        return r.tolist(), signal, kids

    def score(self) -> float:
        y = (self.theta - self.d_root)[:, None] + self._eps[None, :]  # [K, 512]
        return float(self.reward(y, None)[0].mean())


WORLDS = {"binary": Binary, "ladder": Ladder}


def run(world_name: str, mode: str, seed: int, args) -> tuple[int, dict]:
    world = WORLDS[world_name](args, np.random.default_rng(seed))
    K, B = args.competitions, args.batch
    comps = [f"c{i:02d}" for i in range(K)]
    std_scaling = args.lp_units == "group"
    bounds = world.bounds if args.lp_units != "raw" else (0.0, 1.0)  # raw: the variance of the plain rewards
    cur = Curriculum(":memory:", BufferConfig(mode=mode, max_per_competition=args.cap),
                     from_dict(SamplerConfig, json.loads(args.sampler)), comps, batch_size=B, seed=seed,
                     std_scaling=std_scaling, reward_bounds=bounds)
    prop = {State(c).id: world.root(i) for i, c in enumerate(comps)}
    transfer = args.tau ** np.abs(np.subtract.outer(np.arange(K), np.arange(K)))  # [K, K]
    for step in range(1, args.max_steps + 1):
        grad = np.zeros(K)
        for a in cur.sample(B, policy_version=step, first_index=(step - 1) * B):
            cid = a.state.competition_id
            c = int(cid[1:])
            rewards, signal, kids = world.rollout(c, prop[a.task_id])
            grad[c] += signal
            children = {valid: State(cid, code=f"solve(parent='{a.task_id}', valid={valid})", valid=valid,
                                     exec_status="ok" if valid else "error", policy_version=step) for valid in kids}
            kid_prop = {s.id: kids[valid] for valid, s in children.items()}
            for sid in cur.report(a.task_id, rewards, [False] * len(rewards), step, list(children.values()), step):
                prop[sid] = kid_prop[sid]
        world.theta += world.lr * transfer @ grad
        if world.score() >= world.target:
            return step, cur.stats()
    return args.max_steps, cur.stats()


def summary(world_name: str, seeds: range, args) -> dict:
    out: dict = {"seeds": f"{seeds.start}-{seeds.stop - 1}"}
    steps = {}
    for mode in MODES:
        res = [run(world_name, mode, s, args) for s in seeds]
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
    out["meets_goal"] = bool(ratio <= GOAL)
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--curricula", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first_seed .. first_seed+seeds−1")
    ap.add_argument("--heldout-first-seed", type=int, default=10,
                    help="also run `seeds` held-out seeds from here (never used for tuning); < 0 skips them")
    ap.add_argument("--competitions", type=int, default=16)
    ap.add_argument("--d-min", type=float, default=-4.0, help="easiest root difficulty (binary: σ(4) ≈ 0.98)")
    ap.add_argument("--d-max", type=float, default=10.0, help="hardest root difficulty (binary: σ(−10) ≈ 5e−5)")
    ap.add_argument("--delta", type=float, default=0.5, help="difficulty added by an improve child")
    ap.add_argument("--debug-delta", type=float, default=0.5, help="difficulty removed by a debug child")
    ap.add_argument("--lr", type=float, default=0.5, help="binary: η")
    ap.add_argument("--ladder-lr", type=float, default=0.1, help="ladder: η (its policy-gradient signal is larger)")
    ap.add_argument("--tau", type=float, default=0.5, help="skill transfer factor per competition distance")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--cap", type=int, default=64, help="max_per_competition")
    ap.add_argument("--target", type=float, default=0.8, help="binary: mean root success to reach")
    ap.add_argument("--target-reward", type=float, default=0.9, help="ladder: mean root expected reward to reach")
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--sampler", default="{}", help="SamplerConfig overrides as JSON (default: the shipped defaults)")
    ap.add_argument("--lp-units", default="group", choices=("group", "bounds", "raw"),
                    help="LP spread unit: group range (std_scaling=True, the default), reward bounds "
                         "(std_scaling=False), raw (variance of the plain rewards: the earlier LP)")
    return ap


def main() -> None:
    args = parser().parse_args()
    t0 = time.perf_counter()
    out: dict = {"bench": "curriculum", "goal_ratio": GOAL,
                 "params": {k: v for k, v in vars(args).items() if k not in ("curricula",)}}
    for name in args.curricula:
        out[name] = {"tuning": summary(name, range(args.first_seed, args.first_seed + args.seeds), args)}
        if args.heldout_first_seed >= 0:
            out[name]["held_out"] = summary(name, range(args.heldout_first_seed,
                                                        args.heldout_first_seed + args.seeds), args)
    out["meets_goal"] = all(out[n]["tuning"]["meets_goal"] for n in args.curricula)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
