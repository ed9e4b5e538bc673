"""Learnability-Potential sampler over an EvolvingBuffer, async-aware (docs/learnability.md).

Single-draw probability of item i (a = availability, t = staleness, w = LP weight; learnability.py):

    P(i) = (1−ε−ρ)·a_i w_i/Σ a w  +  ε·a_i/Σ a  +  ρ·a_i t_i/Σ a t
    a_i = in_flight_penalty^(rollouts of i in flight)        # not over-sampled before its results return
    t_i = c − C_i                                            # draws since i was last sampled (PLR staleness)

A batch of k draws is taken without replacement within a call, with at most `cap` draws per competition.

Why block sums: w_i depends on the current version v only through decay^v (learnability.sampling_weight), so
with u_i = (LP_e,i^power − w0)·decay^−(v_e,i − v_ref) every mass above is linear in per-item terms
(a_i, a_i·u_i, a_i·C_i). The sampler keeps their sums per block of rows (and per sub-block of 16 rows) and draws
competition → block → sub-block → item with vector ops: a batch costs O(#blocks + k·16), not O(#items), and a
version change costs nothing. The sampler is a RowListener of the buffer: the rows the buffer reports changed
(drawn, reported, released, inserted, evicted) are refreshed lazily, all at once, before the next read of the
sums (_sync), so recording a group only updates the item's statistics.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from acelib.curriculum import learnability as lp_math
from acelib.curriculum.buffer import BLOCK, EvolvingBuffer, Task, grown
from acelib.curriculum.config import STEP_TYPES, SamplerConfig

# Rebase u_i = ...·decay^−(v_e − v_ref) before it can overflow float64 (≈1e308).
_MAX_GROWTH = 1e150
# Inside a block the draw goes sub-block (_SUB rows, sums kept like the block sums) → row: it reads 2·16 masses
# instead of gathering and summing all BLOCK rows of each drawn block, which was the largest cost of sample().
_SUB = 16
_NSUB = BLOCK // _SUB
# Columns of `terms` (per row) and of `block_sums` / `sub_sums`: a, a·u, a·C side by side, so a row gather (a draw
# reads 2 per task) or update touches one cache line instead of three far-apart ones.
_A, _AU, _AC = 0, 1, 2
_REBUILD_BLOCKS = 256  # blocks per chunk of rebuild (65,536 rows)


class LearnabilitySampler:
    """Draws tasks from `buffer` by learnability and records finished groups (through the buffer's statistics
    API). One sampler per buffer; the Curriculum owns both and checkpoints them in one transaction.

    `std_scaling` / `reward_bounds`: how GRPO scales advantages and the (min, max) step reward; they set the unit
    of a group's spread (learnability.group_stats) and the headroom range. `state`: a `state_dict()` to resume
    from (RNG, policy version); without it the RNG starts from `seed`.
    """

    def __init__(self, buffer: EvolvingBuffer, config: SamplerConfig | None = None, seed: int = 0, *,
                 std_scaling: bool = True, reward_bounds: tuple[float, float] = (0.0, 1.0),
                 state: dict | None = None) -> None:
        if any(isinstance(x, LearnabilitySampler) for x in buffer.listeners):
            raise ValueError("this buffer already has a sampler; use that one (its statistics live in the buffer)")
        lo, hi = (float(x) for x in reward_bounds)
        if not hi > lo:
            raise ValueError(f"reward_bounds must be (min, max) with max > min, got {reward_bounds}; "
                             f"pass RewardConfig.bounds")
        self.config = config or SamplerConfig()
        self.config.validate()
        self.buf = buffer
        self.mode = buffer.config.mode
        self.std_scaling, self.reward_bounds = bool(std_scaling), (lo, hi)
        cfg = self.config
        self.w0 = cfg.prior_lp ** cfg.power
        if self.mode == "uniform":
            self.shares = (0.0, 1.0, 0.0)
        else:
            self.shares = (1.0 - cfg.uniform_share - cfg.staleness_share, cfg.uniform_share, cfg.staleness_share)
        self.rng = np.random.default_rng(seed)
        self.version = 0    # newest policy version seen (sample or report)
        self.v_ref = 0.0
        self._max_dv = (math.log(_MAX_GROWTH) / -math.log(cfg.decay)) if cfg.decay < 1 else math.inf
        # per-row terms (a, a·u, a·C) [cap, 3] and their per-block [n_blocks, 3] and per-sub-block
        # [n_blocks·_NSUB, 3] sums, kept in step with the buffer's rows
        self.terms, self.block_sums, self.sub_sums = np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3))
        # rows whose terms lag their statistics (the buffer said they changed): refreshed together by _sync()
        self._stale: set[int] = set()
        # id → row of the tasks in flight: report() looks ids up here, as the buffer's index of every item is large
        # enough that each lookup in it misses the CPU cache
        self._out: dict[str, int] = {}
        self._order = None
        self.on_grow(buffer.capacity)
        buffer.add_listener(self)
        if state is not None:
            self.load_state_dict(state)
        else:
            self.rebuild()

    # ---------------------------------------------------------------- RowListener
    def on_grow(self, cap: int) -> None:
        self.terms = grown(self.terms, cap, 0.0)

    def on_blocks_changed(self) -> None:
        nb = self.buf.n_blocks
        self.block_sums, self.sub_sums = grown(self.block_sums, nb, 0.0), grown(self.sub_sums, nb * _NSUB, 0.0)
        self._order = None

    def on_rows_changed(self, rows: list[int]) -> None:
        self._stale.update(rows)

    def on_row_changed(self, row: int) -> None:
        self._stale.add(row)

    # ---------------------------------------------------------------- per-row terms
    def _lp_e(self, rows) -> np.ndarray:
        """LP_e of buffer `rows` (an index array or a slice)."""
        b, cfg = self.buf, self.config
        return lp_math.lp_at_evidence(b.ev_n[rows], b.ev_spread[rows], b.ev_mean[rows], cfg.prior_lp,
                                      cfg.prior_strength, cfg.headroom_power, self.reward_bounds)

    def _terms(self, rows) -> np.ndarray:
        """[n, 3] terms (a, a·u, a·C) of buffer `rows` (an index array or a slice)."""
        b, cfg = self.buf, self.config
        lp_e, v_e = self._lp_e(rows), b.ev_version[rows]
        x = np.empty((len(lp_e), 3))
        a = x[:, _A]
        a[:] = np.where(b.active[rows], cfg.in_flight_penalty ** b.in_flight[rows].astype(float), 0.0)
        x[:, _AU] = a * ((lp_e ** cfg.power - self.w0) * cfg.decay ** -(v_e - self.v_ref))
        x[:, _AC] = a * b.last_sampled[rows]
        return x

    def rebuild(self) -> None:
        """Recompute every per-row term and block/sub-block sum from the buffer (exact; at load and before each
        checkpoint, so the live state equals a reload's)."""
        nb = self.buf.n_blocks
        self.v_ref = float(self.version)
        self._stale.clear()
        self.block_sums, self.sub_sums = np.empty((nb, 3)), np.empty((nb * _NSUB, 3))
        # in whole blocks of rows, _REBUILD_BLOCKS at a time: the temporaries stay cache-sized instead of holding
        # several copies of every row at once (which also stayed in the process's RSS)
        for b0 in range(0, nb, _REBUILD_BLOCKS):
            b1 = min(b0 + _REBUILD_BLOCKS, nb)
            x = self._terms(slice(b0 * BLOCK, b1 * BLOCK))
            self.terms[b0 * BLOCK:b1 * BLOCK] = x
            for i in (_A, _AU, _AC):  # per column, as in _coefficients
                self.block_sums[b0:b1, i] = x[:, i].reshape(-1, BLOCK).sum(1)
                self.sub_sums[b0 * _NSUB:b1 * _NSUB, i] = x[:, i].reshape(-1, _SUB).sum(1)
        self._order = None

    def _sync(self) -> None:
        """Bring the terms of the rows changed since the last call up to date. Every reader of the terms or sums
        calls it first, so deferring them (a group is recorded once per finished rollout, and per-row Python
        updates would cost more there than the statistics themselves) to one vectorised update changes no
        probability."""
        if not self._stale:
            return
        rows = np.fromiter(self._stale, dtype=np.int64, count=len(self._stale))
        rows.sort()
        self._stale.clear()
        if float(self.buf.ev_version[rows].max()) - self.v_ref > self._max_dv:
            self.rebuild()  # rare: evidence far newer than v_ref; rebasing recomputes these rows too
            return
        self._refresh_rows(rows)

    def _refresh_rows(self, rows: np.ndarray) -> None:
        """Recompute the terms of `rows` (distinct) and move the block and sub-block sums by the difference."""
        x = self._terms(rows)
        d = x - self.terms[rows]  # [n, 3]
        np.add.at(self.block_sums, rows // BLOCK, d)
        np.add.at(self.sub_sums, rows // _SUB, d)
        self.terms[rows] = x

    # ---------------------------------------------------------------- probabilities
    def _coefficients(self) -> tuple[float, float, float, float]:
        """(c_lp, c_uniform, c_stale, g) such that mass_i = c_lp·(w0 a + g a u) + c_uniform·a + c_stale·(c a − a C)."""
        g = self.config.decay ** (self.version - self.v_ref)
        # one sum per column: numpy's axis-0 sum of an [n, 3] array is ~10× slower
        a_tot, au_tot, ac_tot = (float(self.block_sums[:, i].sum()) for i in (_A, _AU, _AC))
        tot = [max(self.w0 * a_tot + g * au_tot, 0.0), a_tot, max(self.buf.draws * a_tot - ac_tot, 0.0)]
        c = lp_math.mixture_coefficients(self.shares, tot)
        return c[0], c[1], c[2], g

    def _mass(self, x: np.ndarray, coef) -> np.ndarray:
        """Sampling mass of terms or sums `x` [..., 3] → [...]."""
        c_lp, c_u, c_s, g = coef
        # = c_lp·(w0 a + g a u) + c_u·a + c_s·(c a − a C), with the scalars folded (hot path)
        m = (c_lp * self.w0 + c_u + c_s * self.buf.draws) * x[..., _A]
        m += (c_lp * g) * x[..., _AU]
        m -= c_s * x[..., _AC]
        return np.maximum(m, 0.0, out=m)

    def probabilities_rows(self, rows: np.ndarray) -> np.ndarray:
        """Single-draw probability of `rows` (sorted active rows) from the exact formula (no per-batch cap).
        O(#items): for tests and analysis; sample() draws the same distribution through the block sums."""
        b, cfg = self.buf, self.config
        self._sync()
        all_rows = np.flatnonzero(b.active)
        if self.mode == "uniform":
            w = np.zeros(len(all_rows))
        else:
            w = lp_math.sampling_weight(self._lp_e(all_rows), self.version, b.ev_version[all_rows], cfg.prior_lp,
                                        cfg.decay, cfg.power)
        p = lp_math.mixture_probabilities(w, self.terms[all_rows, _A], b.draws - b.last_sampled[all_rows],
                                          *self.shares[1:])
        return p[np.searchsorted(all_rows, rows)]

    def probabilities(self) -> pd.Series:
        """Single-draw probability of every active item (index: item id; sums to 1), from the exact formula."""
        rows = np.flatnonzero(self.buf.active)
        return pd.Series(self.probabilities_rows(rows), index=[self.buf.ids[r] for r in rows], name="p_sample")

    def lp(self, rows: np.ndarray) -> np.ndarray:
        """Current LP of buffer rows at the sampler's policy version (the buffer's `lp_fn`)."""
        b = self.buf
        return lp_math.lp_of_evidence(b.ev_n[rows], b.ev_spread[rows], b.ev_mean[rows], b.ev_version[rows],
                                      self.config, self.version, self.reward_bounds)

    def competition_cap(self, batch: int, competitions_with_mass: int) -> int:
        """Most tasks of one competition in a batch of `batch`: max(ceil(batch·share), ceil(batch / competitions
        with mass)), so a competition with thousands of items cannot fill it but few competitions still can."""
        return max(math.ceil(batch * self.config.max_competition_share), math.ceil(batch / competitions_with_mass))

    # ---------------------------------------------------------------- draws and results
    def sample(self, k: int, policy_version: int, *, cap_batch: int | None = None,
               taken: np.ndarray | None = None) -> list[Task]:
        """Draw up to k distinct tasks and mark them in flight.

        Each competition c gets at most competition_cap(cap_batch) − taken[c] of them (cap_batch defaults to k,
        taken to 0: the cap holds per call; the Curriculum passes the learner batch size and what the current
        batch already holds). Fewer than k come back when the caps or the available items do not allow k (the
        caller asks again later)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        b = self.buf
        if b.n_active == 0:
            raise ValueError("the buffer is empty: add root tasks first (Curriculum(competition_ids=...) or "
                             "buffer.add_roots)")
        n_comp = len(b.comps)
        if taken is not None and len(taken) != n_comp:
            raise ValueError(f"taken has {len(taken)} entries for {n_comp} competitions; pass one count per "
                             f"competition (buffer.comps order)")
        self.version = max(self.version, int(policy_version))
        if self._order is None:
            self._order = np.argsort(b.block_comp, kind="stable")
            sorted_comp = b.block_comp[self._order]
            self._cstart = np.searchsorted(sorted_comp, np.arange(n_comp), "left")
            self._cend = np.searchsorted(sorted_comp, np.arange(n_comp), "right")
        order, cstart, cend = self._order, self._cstart, self._cend
        counts = np.zeros(n_comp, dtype=np.int64)
        comp_count = np.asarray(b.comp_count)
        picked: list[int] = []
        seen: set[int] = set()
        limit = None
        for _ in range(4 * k + 16):
            need = k - len(picked)
            if need <= 0:
                break
            self._sync()  # rows changed since the last call, and those drawn in the previous round
            coef = self._coefficients()
            # block masses, cumulated in competition order: a competition's blocks are one stretch [lo, hi)
            cum = np.cumsum(self._mass(self.block_sums, coef)[order])  # [n_blocks]
            c_hi = cum[cend - 1]                                        # [n_comp]
            c_lo = np.where(cstart > 0, cum[np.maximum(cstart - 1, 0)], 0.0)
            mc = c_hi - c_lo  # competition masses (>= 0 exactly: the cumsum never decreases)
            if limit is None:
                n_pos = int((mc > 0).sum())
                if n_pos == 0:
                    break
                limit = self.competition_cap(cap_batch or k, n_pos) - (0 if taken is None else np.asarray(taken))
            # full: at the cap, or every item of the competition already drawn in this call (tasks are distinct)
            mc[(counts >= limit) | (counts >= comp_count)] = 0.0
            if mc.sum() <= 0:
                break
            cmc = np.cumsum(mc)
            comps = np.minimum(np.searchsorted(cmc, self.rng.random(need) * cmc[-1], "right"), n_comp - 1)
            room = (limit - counts).tolist()
            keep = []
            for i, c in enumerate(comps.tolist()):  # first come first served within the cap
                if room[c] > 0:
                    room[c] -= 1
                    keep.append(i)
            comps = comps[keep]
            # competition → block: u uniform inside the competition's stretch of the block cumsum
            lo, hi = c_lo[comps], c_hi[comps]
            x = lo + self.rng.random(len(comps)) * (hi - lo)
            j = np.clip(np.searchsorted(cum, x, "right"), cstart[comps], cend[comps] - 1)
            rows, ok = self._draw_in_blocks(order[j], coef)
            round_rows = []
            for r, good in zip(rows.tolist(), ok.tolist()):
                # a repeat is redrawn next round (the batch holds distinct tasks)
                if good and r not in seen:
                    seen.add(r)
                    round_rows.append(r)
            if not round_rows:
                continue
            counts += np.bincount(b.comp[round_rows], minlength=n_comp)
            b.mark_sampled(round_rows)
            picked.extend(round_rows)
        ids = [b.ids[r] for r in picked]
        self._out.update(zip(ids, picked))
        comp_of, step_of = b.comp[picked].tolist(), b.step[picked].tolist()
        return [Task(i, b.comps[c], STEP_TYPES[st], self.version, b) for i, c, st in zip(ids, comp_of, step_of)]

    def _draw_in_blocks(self, blocks: np.ndarray, coef) -> tuple[np.ndarray, np.ndarray]:
        """One row per entry of `blocks`, drawn ∝ its item mass; returns (rows, ok). ok is False where the block
        has no mass or rounding pushed the draw past its end (the caller redraws those).

        One uniform per draw, as a single search over the block would use: it picks the sub-block from the sub-block
        sums, then (rescaled to [0, 1) inside that sub-block) the row from the exact masses of its _SUB rows."""
        n, nb = len(blocks), self.buf.n_blocks
        at = np.arange(n)
        ms = self._mass(self.sub_sums.reshape(nb, _NSUB, 3)[blocks], coef)  # [n, _NSUB]
        cs = np.cumsum(ms, axis=1)
        x = self.rng.random(n) * cs[:, -1]
        sub = (cs <= x[:, None]).sum(1)
        ok = (cs[:, -1] > 0) & (sub < _NSUB)
        sub = np.minimum(sub, _NSUB - 1)
        lo = np.where(sub > 0, cs[at, sub - 1], 0.0)
        frac = (x - lo) / np.where(ok, cs[at, sub] - lo, 1.0)
        s = blocks * _NSUB + sub  # [n] drawn sub-blocks
        mi = self._mass(self.terms[: nb * BLOCK].reshape(-1, _SUB, 3)[s], coef)  # [n, _SUB]
        ci = np.cumsum(mi, axis=1)
        idx = (ci <= (frac * ci[:, -1])[:, None]).sum(1)
        ok &= idx < _SUB
        return s * _SUB + np.minimum(idx, _SUB - 1), ok

    def _row_in_flight(self, task_id: str) -> int:
        r = self._out.get(task_id)
        if r is not None:
            return r
        if task_id not in self.buf.id_to_row:
            raise KeyError(f"unknown task {task_id!r}: report/release only ids returned by sample()")
        raise ValueError(f"task {task_id!r} has no rollout in flight: report or release each sampled task "
                         f"exactly once (in-flight counts restart at 0 after a resume)")

    def report(self, task_id: str, rewards: Sequence[float], policy_version_started: int,
               masked: Sequence[bool] | None = None) -> lp_math.GroupStats:
        """Record a finished group of task `task_id` and release one in-flight slot.

        Late results are always counted: the evidence is aged from `policy_version_started` (the version the
        rollout started with), never dropped. `masked` marks infra-error samples, which are excluded.
        """
        r = self._row_in_flight(task_id)
        g = lp_math.group_stats(rewards, masked, self.std_scaling, self.reward_bounds)  # positional: hot path
        v0 = int(policy_version_started)
        if v0 > self.version:
            self.version = v0
        if not self.buf.record_group(r, g, len(rewards), v0, self.config.decay):
            del self._out[task_id]
        return g

    def release(self, task_id: str) -> None:
        """Free the in-flight slot of an abandoned rollout (no statistics recorded)."""
        if not self.buf.release(self._row_in_flight(task_id)):
            del self._out[task_id]

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict:
        """RNG state, policy version, mode and reward units (the statistics themselves live in the buffer)."""
        return {"rng": self.rng.bit_generator.state, "version": self.version, "mode": self.mode,
                "std_scaling": self.std_scaling, "reward_bounds": list(self.reward_bounds)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mode", self.mode) != self.mode:
            raise ValueError(f"sampler state was saved in mode {state['mode']!r}, this run uses {self.mode!r}; "
                             f"resume with the same BufferConfig.mode")
        units = (state.get("std_scaling"), tuple(state.get("reward_bounds", ())))
        if units != (self.std_scaling, self.reward_bounds):
            # the stored spreads are in the old units until their evidence decays: allowed, but visible
            warnings.warn(f"buffer {self.buf.path} holds spreads measured with (std_scaling, reward_bounds) = "
                          f"{units}, resuming with {(self.std_scaling, self.reward_bounds)}", stacklevel=2)
        self.rng.bit_generator.state = state["rng"]
        self.version = int(state["version"])
        self.rebuild()
