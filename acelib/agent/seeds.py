"""Seed states of the curriculum: debug tasks from broken compact baselines, improve tasks from working ones.

A small model cannot yet draft a solution from scratch, but it can learn to repair a short script (issue 13,
docs/suites.md). So the buffer starts from

- **improve seeds**: each competition's compact baseline (`acelib.tasks.suites.compact_baseline`), run: a valid
  state with its printed score (and hidden test score);
- **debug seeds**: realistic mutations of it (`acelib.tasks.suites.mutations`: a wrong file name or column, a
  missing import, a typo, a misplaced line, ...), run: the state shows the real traceback or the grader's
  verdict, exactly what a debug step after a failed attempt shows.

Every seed is really executed, through `step_batch` in a `SandboxPool` (a draft step whose response is the script),
so its `output`, `exec_status`, `validity_message` and `score` are those the agent would see. Runs are cached
under `<cache_dir()>/seeds/` keyed by the competition's build stamp, the script, the output budget and the
sandbox limits, so only the first call pays (about 2-5 s per script on 2 cores, see docs/suites.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from acelib.agent.config import AgentConfig
from acelib.agent.policy import fenced
from acelib.agent.state import State
from acelib.files import atomic_write

SEEDS_VERSION = 1  # bump to invalidate every cached seed run
DEFAULT_LIMITS = {"timeout_s": 120.0}
CHUNK = 16  # scripts run (and cached) per batch


@dataclasses.dataclass(frozen=True)
class SeedJob:
    """One seed script to run: a compact baseline or a mutation of it (`seed_jobs`)."""
    competition_id: str
    code: str
    valid: bool     # what running it must give: True for a compact baseline, False for a mutation
    what: str
    kind: str = "baseline"   # the mutation kind (`mutations.KINDS`), or "baseline" for a compact baseline


def _cache_path(root: Path, job: SeedJob, stamp: str, config: AgentConfig, limits) -> Path:
    key = json.dumps({"v": SEEDS_VERSION, "id": job.competition_id, "code": job.code, "build": stamp,
                      "output_chars": config.prompt.chars(config.prompt.output_tokens),
                      "limits": dataclasses.asdict(limits)}, sort_keys=True)
    return root / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _load(path: Path) -> State | None:
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    return State(**{**d, "memory": tuple(d["memory"])})


def seed_jobs(competition_ids: Iterable[str], split: str = "train", kinds: Iterable[str] | None = None,
              per_competition: int = 4, improve: bool = True, seed: int = 0,
              exclude: Iterable[str] = ()) -> list[SeedJob]:
    """The scripts to run, in order: per competition its compact baseline (if `improve`), then its mutations.
    Mutations whose code is in `exclude` are skipped and the draw goes on (with nothing excluded, the same draws)."""
    from acelib.tasks.suites import compact_baseline, mutations

    kinds = None if kinds is None else tuple(kinds)
    exclude = frozenset(exclude)
    jobs = []
    for cid in dict.fromkeys(competition_ids):
        if improve:
            jobs.append(SeedJob(cid, compact_baseline(cid), True, "compact baseline"))
        # `sample` is a seeded round-robin: drawing them all and keeping the first ones left gives the same first
        # draws as asking for `per_competition`
        drawn = [m for m in mutations.sample(cid, 10**6, split=split, kinds=kinds, seed=seed) if m.code not in exclude]
        for m in drawn[:per_competition]:
            jobs.append(SeedJob(cid, m.code, False, f"{m.kind} mutation ({m.description})", m.kind))
    return jobs


def seed_states(competition_ids: Iterable[str], split: str = "train", kinds: Iterable[str] | None = None,
                per_competition: int = 4, improve: bool = True, seed: int = 0, config: AgentConfig | None = None,
                limits=None, sandbox=None, workers: int | None = None, cache: bool = True,
                exclude: Iterable[str] = ()) -> list[State]:
    """Root states for the buffer (or for seeded evaluation episodes), run in the sandbox and cached.

    competition_ids: suite competitions (`acelib.tasks.suites`), prepared on demand.
    split: "train" or "eval" mutations (disjoint sets, see `acelib.tasks.suites.mutations`).
    kinds: mutation kinds to draw from (None = all of `mutations.KINDS`).
    per_competition: debug seeds per competition (drawn round-robin over the kinds, deterministic by `seed`).
    improve: also return each competition's compact baseline as a valid improve seed (first, per competition).
    config: the agent config (its output budget shapes `State.output`); limits: sandbox `Limits` (None =
    `DEFAULT_LIMITS`); sandbox: a `SandboxPool` to reuse (None = a new one with `workers` workers);
    cache: False = run every script again (the results are still stored).
    exclude: mutation scripts not to draw (e.g. the RL seeds, when drawing a probe set apart from them).

    Raises RuntimeError if a compact baseline does not give a valid submission, if a mutation does, or on a
    sandbox infra error (nothing of that is cached).
    """
    return run_seed_jobs(seed_jobs(competition_ids, split, kinds, per_competition, improve, seed, exclude),
                         config=config, limits=limits, sandbox=sandbox, workers=workers, cache=cache)


def run_seed_jobs(jobs: list[SeedJob], config: AgentConfig | None = None, limits=None, sandbox=None,
                  workers: int | None = None, cache: bool = True) -> list[State]:
    """The states of `seed_jobs`' scripts, run in the sandbox or read from the cache (`seed_states` has the
    arguments and the errors)."""
    from acelib.agent.step import step_batch
    from acelib.sandbox import Limits, SandboxPool
    from acelib.tasks.suites import BUILD_JSON, cache_dir, prepare_competition
    from acelib.tasks.suites.solutions import compact_plan

    config = config or AgentConfig()
    limits = limits or Limits(**DEFAULT_LIMITS)
    comps = {cid: prepare_competition(cid) for cid in dict.fromkeys(j.competition_id for j in jobs)}
    root = cache_dir() / "seeds"
    paths = [_cache_path(root, j, (comps[j.competition_id].root / BUILD_JSON).read_text(), config, limits)
             for j in jobs]
    states = [_load(p) if cache else None for p in paths]
    todo = [k for k, s in enumerate(states) if s is None]
    if not todo:
        return states
    root.mkdir(parents=True, exist_ok=True)
    own = SandboxPool(workers=workers, limits=limits) if sandbox is None else contextlib.nullcontext(sandbox)
    with own as pool:
        # in chunks, so that an interrupted build keeps what it ran
        for chunk in (todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)):
            # a draft step whose response is the script: the child state is exactly what the agent would see
            results = step_batch([State(jobs[k].competition_id) for k in chunk],
                                 [fenced(jobs[k].code, compact_plan(jobs[k].competition_id)) for k in chunk],
                                 [comps[jobs[k].competition_id] for k in chunk], sandbox=pool, config=config,
                                 limits=limits)
            for k, r in zip(chunk, results):
                job = jobs[k]
                if r.masked or r.child.valid != job.valid:
                    raise RuntimeError(
                        f"seed {job.what} of {job.competition_id}: expected "
                        f"{'a valid' if job.valid else 'no valid'} submission, got {r.info['outcome']} "
                        f"({r.child.validity_message})\n{r.child.output}")
                # a root of its own: no parent, no history
                states[k] = dataclasses.replace(r.child, parent_id=None, origin_step="", depth=0, memory=())
                atomic_write(paths[k], json.dumps(dataclasses.asdict(states[k]), sort_keys=True))
    return states
