"""Configs of the Evolving Data Buffer and the Learnability-Potential sampler (no torch; docs/buffer.md,
docs/learnability.md give the meaning of every field)."""
from __future__ import annotations

import dataclasses
from typing import Literal

from acelib.config import ConfigError, option

Mode = Literal["lp", "uniform", "no_buffer"]
STEP_TYPES = ("draft", "debug", "improve")


@dataclasses.dataclass
class BufferConfig:
    mode: Mode = option(
        "lp", "curriculum ablation, the single switch for buffer AND sampler (the sampler reads it from its buffer): "
        "'lp' = evolving buffer + learnability sampling; 'uniform' = evolving buffer, uniform sampling; "
        "'no_buffer' = roots only (add_children inserts nothing), learnability sampling",
        choices=("lp", "uniform", "no_buffer"))
    draft_roots: bool = option(
        True, "one draft task (no code yet) per competition as a root; False = only the seed states and what grows "
        "from them (a policy that cannot draft from scratch wastes a learner step on every draft visit)")
    max_items: int = option(200_000, "cap on active items in total; inserting past it evicts (roots and in-flight "
                                     "items never)")
    max_per_competition: int = option(20_000, "cap on active items per competition; inserting past it evicts "
                                              "within that competition first")
    eviction: Literal["lowest_lp", "oldest"] = option(
        "lowest_lp", "what to evict at a cap: 'lowest_lp' = lowest current learnability (saturated items, whose "
        "groups keep having zero spread, go first; ties → least recently sampled), 'oldest' = earliest inserted",
        choices=("lowest_lp", "oldest"))
    insert_step_types: tuple[str, ...] = option(
        ("debug", "improve"), "step types of child states that become tasks (a child with no code would be a "
        "draft, i.e. the root again)")
    max_depth: int = option(32, "children deeper than this (steps from the root draft) are not inserted: bounds "
                                "endless debug chains")
    skip_exec_status: tuple[str, ...] = option(
        ("infra_error",), "child states with this sandbox status are not inserted (the failure is not the agent's)")
    synchronous: Literal["FULL", "NORMAL"] = option(
        "FULL", "SQLite synchronous pragma in WAL mode: FULL survives power loss too (one fsync per checkpoint), "
        "NORMAL survives a killed process only", choices=("FULL", "NORMAL"))

    def validate(self) -> None:
        if self.max_items < 1 or self.max_per_competition < 1:
            raise ConfigError("max_items and max_per_competition must be >= 1")
        bad = [s for s in self.insert_step_types if s not in STEP_TYPES]
        if bad:
            raise ConfigError(f"insert_step_types: {bad} not in {list(STEP_TYPES)}")
        if self.max_depth < 1:
            raise ConfigError("max_depth must be >= 1 (children of a root have depth 1)")


@dataclasses.dataclass
class SamplerConfig:
    prior_lp: float = option(0.07, "learnability of an item with no evidence (never sampled, or evidence fully "
                                   "decayed), in normalised-spread units: p(1-p) <= 0.25 for a two-valued group "
                                   "(0.07 ≈ a task solved 1 time in 13). Optimistic enough that new traces get "
                                   "tried, low enough that a buffer spawning children every step does not spend its "
                                   "batches on them (tuned with bench/curriculum.py, docs/learnability.md)")
    prior_strength: float = option(2.0, "pseudo-samples of the prior: LP = (n0·prior + n·spread)/(n0 + n), so one "
                                        "group of G=8 moves LP 80% of the way to its spread")
    decay: float = option(0.99, "per policy version: old evidence keeps weight decay^Δversion (Δ measured from "
                                "the version at which each rollout STARTED); 1 = never forget. The half-life "
                                "(69 versions at 0.99) must exceed the typical revisit interval of an item, or LP "
                                "falls back to the prior between visits and sampling becomes uniform")
    power: float = option(6.0, "sampling weight = LP^power: >1 sharpens toward the frontier (like a softmax "
                               "temperature), 1 = proportional to learnability")
    uniform_share: float = option(0.05, "probability mass spread uniformly over available items (exploration)")
    staleness_share: float = option(0.10, "probability mass ∝ samples drawn since the item was last sampled "
                                          "(PLR staleness): long-unvisited items keep coming back")
    headroom_power: float = option(0.0, "κ: LP is multiplied by headroom^κ, headroom = (r_max − mean reward)/"
                                        "(r_max − r_min) clipped to [0,1], (r_min, r_max) = the reward bounds the "
                                        "trainer passes (RewardConfig.bounds); 0 disables")
    in_flight_penalty: float = option(0.05, "an item's sampling mass is multiplied by penalty^(rollouts in flight), "
                                            "so it is not over-sampled before its results return (0 = exclude)")
    max_competition_share: float = option(0.25, "per-learner-batch cap per competition: ceil(share·B), raised to "
                                                "ceil(B / competitions with mass) when there are few competitions")

    def validate(self) -> None:
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"decay must be in (0, 1], got {self.decay}")
        if self.prior_lp < 0 or self.prior_strength < 0:
            raise ConfigError("prior_lp and prior_strength must be >= 0")
        if self.power <= 0:
            raise ConfigError("power must be > 0")
        if self.uniform_share < 0 or self.staleness_share < 0 or self.uniform_share + self.staleness_share > 1:
            raise ConfigError("uniform_share and staleness_share must be >= 0 and sum to <= 1")
        if not 0.0 <= self.in_flight_penalty <= 1.0:
            raise ConfigError("in_flight_penalty must be in [0, 1]")
        if not 0.0 < self.max_competition_share <= 1.0:
            raise ConfigError("max_competition_share must be in (0, 1]")
