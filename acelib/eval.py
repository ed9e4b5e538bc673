"""MLE-bench-style evaluation of an agent policy (paper §10): AIDE-like episodes on a suite, one report.

    from acelib.eval import EvalConfig, evaluate
    report = evaluate(policy, competitions, EvalConfig(steps=8), seeds=(0, 1, 2))
    report.summary()      # flat {name: float}: valid_rate_mean/_sem, any_medal_mean/_sem, ... (MLflow-loggable)
    report.dataframe()    # one row per competition x seed (the final submission's grader report + search stats)
    report.to_json()      # everything, every node included (code, output, scores, hidden reports)

An **episode** is one competition with one seed: a budget of `steps` agent steps (one LLM call + one sandbox run
each) and optionally a wall-clock budget. The **search policy** follows AIDE (`aide/agent.py::search_policy`):

1. while fewer than `num_drafts` drafts exist, draft (a fresh root state; its memory lists the episode's earlier
   attempts, so the agent is asked for a different design);
2. else, with probability `debug_prob`, debug a random *debuggable* node: failed (ran, but no valid submission),
   a leaf (not expanded yet) and fewer than `max_debug_depth` debug steps deep;
3. else improve the best node; if no node is valid yet, draft again.

**Best node** (what "improve" expands and the **final submission**): among valid nodes, the best printed
VALIDATION_SCORE in the competition's direction; a valid node that printed no score ranks below every scored
one; ties go to the earliest node. The hidden test score is never used for any decision (mle-bench.md §4:
test-score selection is leakage); it is only reported, as the `oracle_*` columns (best test score among the
valid nodes), so the validation-selection gap can be measured. No valid node: the episode's submission is
missing (the grader's report for a missing file).

**Protocols**: `scratch` (the paper's: the episode starts empty, draft → debug → improve) or `seeded`
(`start_states`: each episode starts from a given state, e.g. a held-out broken compact baseline from
`acelib.agent.seeds.seed_states(..., split="eval")`; it is node 0 of the episode, `step_type` "seed", costs no step
and stands for the drafting phase, so the search debugs or improves it first; it is never the final submission).

Every episode of every competition and seed advances in lockstep: one batched policy call per step for all active
episodes, then all their programs run concurrently in one `SandboxPool`, then `acelib.agent.step_batch` grades them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acelib.agent.config import AgentConfig
from acelib.config import ConfigError, from_dict, option, to_dict
from acelib.sandbox.limits import Limits

SEED_STEP = "seed"  # step_type of a seeded episode's given start node

# Per-episode quantities that summary() averages over competitions (per seed), then mean ± SEM over seeds:
# summary name -> dataframe column.
SUMMARY_METRICS = {
    "valid_rate": "valid_submission",
    "submission_rate": "submission_exists",
    "any_medal": "any_medal",
    "gold_medal": "gold_medal",
    "silver_medal": "silver_medal",
    "bronze_medal": "bronze_medal",
    "above_median": "above_median",
    "mean_human_rank": "human_rank",
    "steps_to_first_valid": "steps_to_first_valid",
    "oracle_any_medal": "oracle_any_medal",
}


@dataclasses.dataclass
class EvalConfig:
    """Budgets and search policy of an evaluation (importable without torch or the sandbox)."""

    steps: int = option(8, "agent steps (one LLM call + one sandbox run) per competition and seed: the budget K")
    num_drafts: int = option(2, "independent first solutions before debugging/improving starts (AIDE "
                                "num_drafts; ML-Master uses 5)")
    debug_prob: float = option(1.0, "probability of debugging a debuggable failed node (instead of improving "
                                    "the best one) at a search step")
    max_debug_depth: int = option(3, "a failed node is debugged only if it is fewer than this many consecutive "
                                     "debug steps deep (0 = never debug)")
    time_budget_s: float | None = option(None, "wall-clock budget per episode: no new step starts after it "
                                               "(None = the step budget only)")
    workers: int | None = option(None, "sandbox workers running programs concurrently (None = os.cpu_count())")
    limits: dict = option(default_factory=dict, help="overrides of acelib.sandbox.Limits fields for every run, "
                          "e.g. {'timeout_s': 120, 'memory_mb': 4096}")
    agent: AgentConfig = option(default_factory=AgentConfig, help="agent scaffold: prompt budgets, memory, reward "
                                "(rewards are recorded per node, never used by the search)")
    progress: bool = option(True, "show tqdm progress bars (episodes done, steps run)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"eval.steps must be >= 1, got {self.steps}")
        if self.num_drafts < 1:
            raise ConfigError(f"eval.num_drafts must be >= 1, got {self.num_drafts}")
        if not 0.0 <= self.debug_prob <= 1.0:
            raise ConfigError(f"eval.debug_prob must lie in [0, 1], got {self.debug_prob}")
        if self.max_debug_depth < 0:
            raise ConfigError(f"eval.max_debug_depth must be >= 0, got {self.max_debug_depth}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ConfigError(f"eval.time_budget_s must be > 0 or None, got {self.time_budget_s}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"eval.workers must be >= 1 or None, got {self.workers}")
        self.sandbox_limits()  # unknown or bad Limits fields fail now, before any episode starts
        self.agent.validate()
        self.agent.prompt.validate()

    def sandbox_limits(self) -> Limits:
        """`Limits` defaults with `limits` applied (raises ConfigError naming a wrong field)."""
        return from_dict(Limits, self.limits, prefix="eval.limits.")


# --- records --------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class NodeRecord:
    """One executed step of an episode (a node of the search tree). `test_score` and `report` are hidden from the
    agent; everything else is what it saw or wrote."""

    index: int                     # position in the episode (0-based); also the step that produced it
    parent: int | None             # index of the expanded node; None for a draft
    step_type: str                 # draft / debug / improve (the type of the expanded state)
    debug_depth: int               # consecutive debug steps leading to this node (0 for draft/improve)
    plan: str
    code: str                      # "" on a format error
    output: str                    # the (truncated) output the agent saw
    exec_status: str               # ok/error/timeout/memory/killed/infra_error/format_error
    outcome: str                   # reward branch: format_error/failed/invalid/valid/masked
    validity_message: str          # the validator's verdict shown to the agent (or the format error)
    valid: bool
    validation_score: float | None  # the VALIDATION_SCORE the program printed (None if not printed)
    test_score: float | None       # the grader's score of its submission (hidden)
    reward: float                  # step reward under `config.agent.reward` (for inspection only)
    masked: bool
    duration_s: float
    report: dict | None            # the grader's report of its submission (None: nothing submitted)


@dataclasses.dataclass
class EpisodeRecord:
    """One competition x seed: every node, the selected final node and the grader's report of its submission."""

    competition_id: str
    seed: int
    nodes: list[NodeRecord]
    final_node: int | None         # best node by validation score (module docstring); None: no valid node
    report: dict                   # grader report of the final submission (MLE-bench fields + reason, human_rank)
    steps_to_first_valid: int | None  # 1-based step of the first valid node; None: none in the budget
    oracle_node: int | None        # best node by the hidden test score (reported only, never selected)
    stopped: str                   # "steps" (budget used) or "time" (wall-clock budget hit)
    wall_s: float
    start_node: int | None = None  # seeded protocol: index of the given start state (0); None from scratch

    @property
    def key(self) -> str:
        return episode_key(self.competition_id, self.seed)

    @property
    def agent_nodes(self) -> list[NodeRecord]:
        """The nodes the policy produced (the given start state excluded)."""
        return [n for n in self.nodes if n.step_type != SEED_STEP]

    def row(self) -> dict[str, Any]:
        """The dataframe row: the final report's fields, the search statistics and the oracle columns."""
        r = self.report
        has_board = r.get("median_threshold") is not None
        final = self.nodes[self.final_node] if self.final_node is not None else None
        oracle = self.nodes[self.oracle_node].report if self.oracle_node is not None else None
        outcomes = [n.outcome for n in self.agent_nodes]
        return {
            "competition_id": self.competition_id, "seed": self.seed,
            "protocol": "seeded" if self.start_node is not None else "scratch",
            "valid_submission": bool(r["valid_submission"]), "submission_exists": bool(r["submission_exists"]),
            "score": r["score"], "validation_score": final.validation_score if final else None,
            "any_medal": bool(r["any_medal"]), "gold_medal": bool(r["gold_medal"]),
            "silver_medal": bool(r["silver_medal"]), "bronze_medal": bool(r["bronze_medal"]),
            "above_median": bool(r["above_median"]),
            # an invalid submission beats nobody; NaN only without a leaderboard
            "human_rank": r["human_rank"] if r["human_rank"] is not None else (0.0 if has_board else math.nan),
            "steps_to_first_valid": self.steps_to_first_valid,
            "final_node": self.final_node, "steps": len(outcomes), "stopped": self.stopped,
            "valid_nodes": outcomes.count("valid"), "invalid_nodes": outcomes.count("invalid"),
            "failed_nodes": outcomes.count("failed"), "format_errors": outcomes.count("format_error"),
            "masked_nodes": outcomes.count("masked"),
            "oracle_score": oracle["score"] if oracle else None,
            "oracle_any_medal": bool(oracle and oracle["any_medal"]),
            "gold_threshold": r["gold_threshold"], "silver_threshold": r["silver_threshold"],
            "bronze_threshold": r["bronze_threshold"], "median_threshold": r["median_threshold"],
            "is_lower_better": r["is_lower_better"], "reason": r["reason"], "wall_s": self.wall_s,
        }


def episode_key(competition_id: str, seed: int) -> str:
    return f"{competition_id}/seed{seed}"


def _sem(values) -> float:
    """Standard error of the mean (ddof=1) of the finite values; NaN with fewer than two."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(vals) < 2:
        return math.nan
    mean = sum(vals) / len(vals)
    return math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) / len(vals))


def _json_safe(obj: Any) -> Any:
    """NaN/inf → None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


@dataclasses.dataclass
class EvalReport:
    config: EvalConfig
    seeds: tuple[int, ...]
    episodes: list[EpisodeRecord]
    wall_s: float = 0.0

    @property
    def competitions(self) -> list[str]:
        return list(dict.fromkeys(e.competition_id for e in self.episodes))

    def episode(self, competition_id: str, seed: int = 0) -> EpisodeRecord:
        for e in self.episodes:
            if e.competition_id == competition_id and e.seed == seed:
                return e
        raise KeyError(f"no episode {episode_key(competition_id, seed)}; have {[e.key for e in self.episodes]}")

    def dataframe(self):
        """pandas DataFrame, one row per competition x seed (`EpisodeRecord.row`)."""
        import pandas as pd
        return pd.DataFrame([e.row() for e in self.episodes])

    def nodes_dataframe(self):
        """pandas DataFrame, one row per node of every episode (without the grader report dicts)."""
        import pandas as pd
        rows = [{"competition_id": e.competition_id, "seed": e.seed, "final": n.index == e.final_node,
                 **{k: v for k, v in dataclasses.asdict(n).items() if k != "report"}}
                for e in self.episodes for n in e.nodes]
        return pd.DataFrame(rows)

    def per_seed(self):
        """pandas DataFrame, one row per seed: each `SUMMARY_METRICS` averaged over the competitions.

        steps_to_first_valid averages over the episodes that found a valid submission (NaN if none did);
        the valid rate says how many did.
        """
        df = self.dataframe()
        cols = {name: df[col].astype(float) for name, col in SUMMARY_METRICS.items()}
        import pandas as pd
        return pd.DataFrame(cols).assign(seed=df["seed"]).groupby("seed").mean()

    def summary(self) -> dict[str, float]:
        """Flat {metric_mean, metric_sem} over seeds (SEM ddof=1; NaN with one seed), plus counts."""
        per_seed = self.per_seed()
        out: dict[str, float] = {}
        for name in SUMMARY_METRICS:
            vals = [v for v in per_seed[name].tolist() if math.isfinite(v)]
            out[f"{name}_mean"] = sum(vals) / len(vals) if vals else math.nan
            out[f"{name}_sem"] = _sem(vals)
        out["competitions"] = float(len(self.competitions))
        out["seeds"] = float(len(self.seeds))
        out["episodes"] = float(len(self.episodes))
        out["steps_run"] = float(sum(len(e.agent_nodes) for e in self.episodes))
        out["wall_s"] = float(self.wall_s)
        return out

    def to_dict(self) -> dict:
        return _json_safe({"config": to_dict(self.config), "seeds": list(self.seeds),
                           "competitions": self.competitions, "summary": self.summary(), "wall_s": self.wall_s,
                           "episodes": [dataclasses.asdict(e) for e in self.episodes]})

    def to_json(self, indent: int | None = 1) -> str:
        """Strict JSON (NaN → null) of the config, the summary and every episode with all its nodes."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "EvalReport":
        d = json.loads(text)
        episodes = [EpisodeRecord(**{**e, "nodes": [NodeRecord(**n) for n in e["nodes"]]}) for e in d["episodes"]]
        return cls(from_dict(EvalConfig, d["config"]), tuple(d["seeds"]), episodes, d.get("wall_s", 0.0))


# --- search policy (pure functions of the episode's nodes) ----------------------------------------------------

def best_node(nodes: Sequence[NodeRecord], is_lower_better: bool) -> int | None:
    """Index of the best valid node by printed validation score (unscored valid nodes last, ties → earliest)."""
    d = -1.0 if is_lower_better else 1.0
    valid = [n for n in nodes if n.valid]
    if not valid:
        return None

    def key(n: NodeRecord):
        scored = n.validation_score is not None
        return (scored, d * n.validation_score if scored else 0.0, -n.index)

    return max(valid, key=key).index


def oracle_node(nodes: Sequence[NodeRecord], is_lower_better: bool) -> int | None:
    """Index of the valid node with the best hidden test score (ties → earliest); reporting only."""
    d = -1.0 if is_lower_better else 1.0
    scored = [n for n in nodes if n.valid and n.test_score is not None]
    return max(scored, key=lambda n: (d * n.test_score, -n.index)).index if scored else None


def debuggable(nodes: Sequence[NodeRecord], max_debug_depth: int) -> list[int]:
    """Failed nodes that ran code, have no child yet and are fewer than `max_debug_depth` debug steps deep."""
    expanded = {n.parent for n in nodes}
    return [n.index for n in nodes if not n.valid and n.code.strip() and n.index not in expanded
            and n.debug_depth < max_debug_depth]


def select_parent(nodes: Sequence[NodeRecord], config: EvalConfig, rng: random.Random,
                  is_lower_better: bool) -> int | None:
    """The node to expand next (None = a fresh draft): AIDE's draft → debug → improve-best policy. A given start
    state (seeded protocol) stands for the drafting phase."""
    seeded = any(n.step_type == SEED_STEP for n in nodes)
    if not seeded and sum(n.parent is None for n in nodes) < config.num_drafts:
        return None
    if config.debug_prob > 0 and rng.random() < config.debug_prob:
        candidates = debuggable(nodes, config.max_debug_depth)
        if candidates:
            return rng.choice(candidates)
    return best_node(nodes, is_lower_better)


# --- running --------------------------------------------------------------------------------------------------

def seed_node(state) -> NodeRecord:
    """Node 0 of a seeded episode: the given start state as the agent sees it (its hidden fields kept for the
    report; it costs no step and earns no reward)."""
    # the reward branches of acelib.agent.step: ran fine but invalid, crashed, unparsable, infrastructure failure
    outcome = "valid" if state.valid else {"ok": "invalid", "format_error": "format_error",
                                           "infra_error": "masked"}.get(state.exec_status, "failed")
    return NodeRecord(index=0, parent=None, step_type=SEED_STEP, debug_depth=0, plan=state.plan, code=state.code,
                      output=state.output, exec_status=state.exec_status, outcome=outcome,
                      validity_message=state.validity_message, valid=state.valid, validation_score=state.score,
                      test_score=state.test_score, reward=0.0, masked=outcome == "masked", duration_s=0.0,
                      report=None)


class _Episode:
    """Mutable search state of one competition x seed while the evaluation runs."""

    def __init__(self, competition, seed: int, start=None):
        self.comp = competition
        self.seed = seed
        self.key = episode_key(competition.id, seed)
        # str seeds are hashed with sha512: the same (seed, competition) always searches the same way
        self.rng = random.Random(f"acelib-eval:{seed}:{competition.id}")
        self.nodes: list[NodeRecord] = []
        self.states: list = []      # child State of each node (what expanding it starts from)
        self.given = 0              # 1 when the episode starts from a given state (seeded protocol)
        if start is not None:
            self.nodes.append(seed_node(start))
            self.states.append(start)
            self.given = 1
        self.stopped = ""
        self.finished_at: float | None = None

    def next_state(self, config: EvalConfig):
        """(parent index or None, the State to expand)."""
        from acelib.agent import State
        from acelib.agent.prompts import attempt_summary

        parent = select_parent(self.nodes, config, self.rng, self.comp.is_lower_better)
        if parent is not None:
            return parent, self.states[parent]
        # A new draft sees the episode's earlier attempts, so it is asked for a different design.
        size = config.agent.memory_size
        memory = tuple(attempt_summary(s) for s in self.states)[-size:] if size else ()
        return None, State(competition_id=self.comp.id, memory=memory)

    def add(self, parent: int | None, result) -> NodeRecord:
        info, child = result.info, result.child
        step_type = info["step_type"]
        depth = self.nodes[parent].debug_depth + 1 if (parent is not None and step_type == "debug") else 0
        node = NodeRecord(
            index=len(self.nodes), parent=parent, step_type=step_type, debug_depth=depth, plan=child.plan,
            code=child.code, output=child.output, exec_status=child.exec_status, outcome=info["outcome"],
            validity_message=child.validity_message, valid=child.valid, validation_score=child.score,
            test_score=child.test_score, reward=result.reward, masked=result.masked,
            duration_s=float(info["duration_s"]), report=info["report"])
        self.nodes.append(node)
        self.states.append(child)
        return node

    def finish(self, why: str, now: float) -> None:
        self.stopped, self.finished_at = why, now

    def record(self, started: float) -> EpisodeRecord:
        lower = self.comp.is_lower_better
        own = self.nodes[self.given:]  # a given start state is never the agent's submission
        final = best_node(own, lower)
        first = next((n.index - self.given + 1 for n in own if n.valid), None)
        return EpisodeRecord(
            competition_id=self.comp.id, seed=self.seed, nodes=self.nodes, final_node=final,
            report=self.nodes[final].report if final is not None else _missing_report(self.comp),
            steps_to_first_valid=first, oracle_node=oracle_node(own, lower), stopped=self.stopped,
            wall_s=(self.finished_at or time.monotonic()) - started, start_node=0 if self.given else None)


def _start_states(start_states, comps, seeds) -> dict | None:
    """competition id -> one start State per seed (None from scratch); bad input names the fix."""
    if start_states is None:
        return None
    out = {}
    for c in comps:
        given = list(start_states.get(c.id, ()))
        if not given:
            raise ValueError(f"evaluate: start_states has no state for competition {c.id!r}; give every competition "
                             "at least one (e.g. seed_states(ids, split='eval', improve=False))")
        wrong = [s.competition_id for s in given if s.competition_id != c.id or not s.code.strip()]
        if wrong:
            raise ValueError(f"evaluate: start_states[{c.id!r}] must hold states of that competition with code, "
                             f"got states of {wrong}")
        out[c.id] = [given[i % len(given)] for i in range(len(seeds))]
    return out


def _missing_report(competition) -> dict:
    """The grader's report when the episode has no valid node (no submission: MLE-bench's missing file)."""
    from acelib.tasks import grade

    with tempfile.TemporaryDirectory(prefix="acelib-eval-") as tmp:
        report = grade(competition, Path(tmp) / "submission.csv")
    report.update(submission_path=None, reason="no step of the episode produced a valid submission")
    return report


def evaluate(policy, competitions: Sequence, config: EvalConfig | None = None, seeds: Sequence[int] = (0,),
             sandbox=None, start_states: Mapping[str, Sequence] | None = None, desc: str = "") -> EvalReport:
    """Run one episode per competition x seed with `policy` and grade each final submission.

    policy: a batched `Policy` (`policy(prompts, n=1, contexts=[PromptContext, ...])`).
    competitions: prepared `Competition`s (distinct ids).
    seeds: one episode per seed; the seed drives the search's random choices (and is in the episode key that
      reaches the policy), so a sampling policy should be seeded separately by the caller.
    sandbox: a `SandboxPool` to reuse; None = a pool of `config.workers` built (and closed) here.
    start_states: the seeded protocol: competition id -> start `State`s; the episode of the i-th seed starts from
      `start_states[id][i % len]` (None = from scratch, the paper's protocol).
    desc: a label in front of the progress bars (e.g. "base/seeded").
    """
    from tqdm.auto import tqdm

    from acelib.agent import PromptContext, agent_messages, step_batch
    from acelib.sandbox import SandboxPool

    config = config or EvalConfig()
    config.validate()
    comps = list(competitions)
    seeds = tuple(int(s) for s in seeds)
    if not comps:
        raise ValueError("evaluate: no competitions given")
    ids = [c.id for c in comps]
    if len(set(ids)) != len(ids):
        raise ValueError(f"evaluate: competition ids must be distinct, got {ids}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"evaluate: seeds must be a non-empty list of distinct ints, got {seeds}")
    limits = config.sandbox_limits()
    agent_cfg = config.agent
    starts = _start_states(start_states, comps, seeds)
    episodes = [_Episode(c, s, starts[c.id][i] if starts else None) for i, s in enumerate(seeds) for c in comps]
    pool = sandbox if sandbox is not None else SandboxPool(workers=config.workers, limits=limits)
    started = time.monotonic()
    prefix = f"{desc} " if desc else ""
    ep_bar = tqdm(total=len(episodes), desc=f"{prefix}episodes", unit="ep", disable=not config.progress, position=0)
    step_bar = tqdm(total=len(episodes) * config.steps, desc=f"{prefix}steps", unit="step",
                    disable=not config.progress, position=1)
    try:
        for k in range(config.steps):
            now = time.monotonic()
            for e in episodes:
                if not e.stopped and config.time_budget_s is not None and now - started >= config.time_budget_s:
                    e.finish("time", now)
                    ep_bar.update(1)
            active = [e for e in episodes if not e.stopped]
            if not active:
                break
            picks = [e.next_state(config) for e in active]
            states = [s for _, s in picks]
            prompts = [agent_messages(s, e.comp, agent_cfg, limits.timeout_s) for s, e in zip(states, active)]
            contexts = [PromptContext(state=s, step=k, episode=e.key) for s, e in zip(states, active)]
            responses = policy(prompts, n=1, contexts=contexts)
            if len(responses) != len(prompts) or any(len(r) < 1 for r in responses):
                raise RuntimeError(f"policy returned {len(responses)} groups for {len(prompts)} prompts (n=1 each)")
            results = step_batch(states, [r[0] for r in responses], [e.comp for e in active], sandbox=pool,
                                 config=agent_cfg, limits=limits)
            for e, (parent, _), res in zip(active, picks, results):
                e.add(parent, res)
            step_bar.update(len(active))
            step_bar.set_postfix(step=f"{k + 1}/{config.steps}",
                                 valid=sum(any(n.valid for n in e.nodes[e.given:]) for e in episodes))
        now = time.monotonic()
        for e in episodes:
            if not e.stopped:
                e.finish("steps", now)
                ep_bar.update(1)
    finally:
        ep_bar.close()
        step_bar.close()
        if sandbox is None:
            pool.close()
    return EvalReport(config=config, seeds=seeds, episodes=[e.record(started) for e in episodes],
                      wall_s=time.monotonic() - started)
