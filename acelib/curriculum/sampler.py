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
version change costs nothing. The terms of rows drawn or reported are refreshed lazily, all at once, before the
next read of the sums (_sync), so report() itself only updates the item's statistics.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from acelib.curriculum import learnability as L
from acelib.curriculum.buffer import BLOCK, EvolvingBuffer, Task
from acelib.curriculum.config import STEP_TYPES, SamplerConfig

# Rebase u_i = ...·decay^−(v_e − v_ref) before it can overflow float64 (≈1e308).
_MAX_GROWTH = 1e150
# Inside a block the draw goes sub-block (_SUB rows, sums kept like the block sums) → row: it reads 2·16 masses
# instead of gathering and summing all BLOCK rows of each drawn block, which was the largest cost of sample().
_SUB = 16
_NSUB = BLOCK // _SUB
# Columns of the term and sum arrays. Each row of T/B/S holds its three values side by side, so a row gather (a
# draw reads 2 per task) or update touches one cache line instead of three far-apart ones.
_T_COLS, _B_COLS, _S_COLS = ("a", "au", "ac"), ("Ba", "Bu", "Bac"), ("Sa", "Su", "Sac")
_REBUILD_BLOCKS = 256  # blocks per chunk of _rebuild (65,536 rows)


def lp_of_rows(buf: EvolvingBuffer, rows: np.ndarray, cfg: SamplerConfig | None = None,
               version: float | None = None) -> np.ndarray:
    """Current LP of buffer rows: LP(v) = prior + (LP_e − prior)·decay^max(v − v_e, 0)."""
    cfg = cfg or SamplerConfig()
    lp_e, v_e = _lp_e_of_rows(buf, rows, cfg)
    if version is None:
        version = float(v_e.max()) if len(v_e) else 0.0
    return L.lp_now(lp_e, version, v_e, cfg.prior_lp, cfg.decay)


def _lp_e_of_rows(buf: EvolvingBuffer, rows, cfg: SamplerConfig) -> tuple[np.ndarray, np.ndarray]:
    """(LP_e, v_e) of buffer `rows` (an index array or a slice)."""
    return L.lp_at_evidence(buf.ev_n[rows], buf.ev_spread[rows], buf.ev_mean[rows], cfg.prior_lp,
                            cfg.prior_strength, cfg.headroom_power, tuple(cfg.reward_range)), buf.ev_version[rows]


class LearnabilitySampler:
    """Draws tasks from `buffer` by learnability; records finished groups. One sampler per buffer.

    If the buffer's database holds a sampler state (a resumed run), it is restored (RNG, counters, version);
    otherwise the RNG starts from `seed`.
    """

    def __init__(self, buffer: EvolvingBuffer, config: SamplerConfig | None = None, seed: int = 0) -> None:
        if buffer.sampler is not None:
            raise ValueError("this buffer already has a sampler; use that one (its statistics live in the buffer)")
        self.config = config or SamplerConfig()
        self.config.validate()
        self.buf = buffer
        self.mode = buffer.config.mode
        cfg = self.config
        self.w0 = cfg.prior_lp ** cfg.power
        if self.mode == "uniform":
            self.shares = (0.0, 1.0, 0.0)
        else:
            self.shares = (1.0 - cfg.uniform_share - cfg.staleness_share, cfg.uniform_share, cfg.staleness_share)
        self.rng = np.random.default_rng(seed)
        self.counter = 0.0  # c: total draws so far (PLR's global episode counter)
        self.version = 0    # newest policy version seen (sample or report)
        self.v_ref = 0.0
        self._max_dv = (math.log(_MAX_GROWTH) / -math.log(cfg.decay)) if cfg.decay < 1 else math.inf
        # per-row terms T = (a, a·u, a·C) and their per-block (B) and per-sub-block (S) sums, kept in step with the
        # buffer's rows; self.a, self.Ba, ... are column views (_bind)
        self.T, self.B, self.S = np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3))
        # rows whose terms lag their statistics (drawn, reported, released): refreshed together by _sync()
        self._stale: set[int] = set()
        # id → row of the tasks in flight: report() looks ids up here, as the buffer's index of every item is large
        # enough that each lookup in it misses the CPU cache
        self._out: dict[str, int] = {}
        self._grow(buffer._cap)
        self._order = None
        buffer.sampler = self
        saved = buffer._meta("sampler")
        if saved is not None:
            self.load_state_dict(saved)
        else:
            self._rebuild()

    # ---------------------------------------------------------------- per-row terms
    def _bind(self) -> None:
        """(Re)name the columns of T, B and S after they were replaced: self.a, self.au, self.ac, self.Ba, ..."""
        for arr, cols in ((self.T, _T_COLS), (self.B, _B_COLS), (self.S, _S_COLS)):
            for i, name in enumerate(cols):
                setattr(self, name, arr[:, i])

    @staticmethod
    def _resized(old: np.ndarray, n: int) -> np.ndarray:
        new = np.zeros((n, 3))
        new[: len(old)] = old
        return new

    def _grow(self, cap: int) -> None:
        self.T = self._resized(self.T, cap)
        self._bind()

    def _blocks_changed(self) -> None:
        nb = self.buf.n_blocks
        self.B, self.S = self._resized(self.B, nb), self._resized(self.S, nb * _NSUB)
        self._bind()
        self._order = None

    def _terms(self, rows) -> np.ndarray:
        """[n, 3] terms (a, a·u, a·C) of buffer `rows` (an index array or a slice)."""
        b, cfg = self.buf, self.config
        lp_e, v_e = _lp_e_of_rows(b, rows, cfg)
        x = np.empty((len(lp_e), 3))
        a = x[:, 0]
        a[:] = np.where(b.active[rows], cfg.in_flight_penalty ** b.in_flight[rows].astype(float), 0.0)
        x[:, 1] = a * ((lp_e ** cfg.power - self.w0) * cfg.decay ** -(v_e - self.v_ref))
        x[:, 2] = a * b.last_sampled[rows]
        return x

    def _rebuild(self) -> None:
        """Recompute every per-row term and block/sub-block sum from the buffer (exact; at load and each
        checkpoint)."""
        nb = self.buf.n_blocks
        self.v_ref = float(self.version)
        self._stale.clear()
        self.B, self.S = np.empty((nb, 3)), np.empty((nb * _NSUB, 3))
        # in whole blocks of rows, _REBUILD_BLOCKS at a time: the temporaries stay cache-sized instead of holding
        # several copies of every row at once (which also stayed in the process's RSS)
        for b0 in range(0, nb, _REBUILD_BLOCKS):
            b1 = min(b0 + _REBUILD_BLOCKS, nb)
            x = self._terms(slice(b0 * BLOCK, b1 * BLOCK))
            self.T[b0 * BLOCK:b1 * BLOCK] = x
            for i in range(3):
                self.B[b0:b1, i] = x[:, i].reshape(-1, BLOCK).sum(1)
                self.S[b0 * _NSUB:b1 * _NSUB, i] = x[:, i].reshape(-1, _SUB).sum(1)
        self._bind()
        self._order = None

    def _sync(self) -> None:
        """Bring the terms of the rows drawn, reported or released since the last call up to date. Every reader of
        the terms or sums calls it first, so deferring them (report() runs once per group, and per-row Python
        updates cost more there than the statistics themselves) to one vectorised update changes no probability."""
        if not self._stale:
            return
        rows = np.fromiter(self._stale, dtype=np.int64, count=len(self._stale))
        rows.sort()
        self._stale.clear()
        if float(self.buf.ev_version[rows].max()) - self.v_ref > self._max_dv:
            self._rebuild()  # rare: evidence far newer than v_ref; rebasing recomputes these rows too
            return
        self._refresh_rows(rows)

    def _refresh_rows(self, rows: np.ndarray) -> None:
        """Recompute the terms of `rows` (distinct) and move the block and sub-block sums by the difference."""
        x = self._terms(rows)
        d = x - self.T[rows]  # [n, 3]
        np.add.at(self.B, rows // BLOCK, d)
        np.add.at(self.S, rows // _SUB, d)
        self.T[rows] = x

    # ---------------------------------------------------------------- probabilities
    def _coefficients(self) -> tuple[float, float, float, float]:
        """(c_lp, c_uniform, c_stale, g) such that mass_i = c_lp·(w0 a + g a u) + c_uniform·a + c_stale·(c a − a C)."""
        g = self.config.decay ** (self.version - self.v_ref)
        Ba_tot = float(self.Ba.sum())
        tot = [max(self.w0 * Ba_tot + g * float(self.Bu.sum()), 0.0), Ba_tot,
               max(self.counter * Ba_tot - float(self.Bac.sum()), 0.0)]
        c = L.mixture_coefficients(self.shares, tot)
        return c[0], c[1], c[2], g

    def _mass(self, a, au, ac, coef) -> np.ndarray:
        c_lp, c_u, c_s, g = coef
        # = c_lp·(w0 a + g a u) + c_u·a + c_s·(c a − a C), with the scalars folded (hot path)
        m = (c_lp * self.w0 + c_u + c_s * self.counter) * a
        m += (c_lp * g) * au
        m -= c_s * ac
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
            lp_e, v_e = _lp_e_of_rows(b, all_rows, cfg)
            w = L.sampling_weight(lp_e, self.version, v_e, cfg.prior_lp, cfg.decay, cfg.power)
        p = L.mixture_probabilities(w, self.a[all_rows], self.counter - b.last_sampled[all_rows], *self.shares[1:])
        return p[np.searchsorted(all_rows, rows)]

    def probabilities(self) -> pd.Series:
        """Single-draw probability of every active item (index: item id; sums to 1), from the exact formula."""
        rows = np.flatnonzero(self.buf.active)
        return pd.Series(self.probabilities_rows(rows), index=[self.buf.ids[r] for r in rows], name="p_sample")

    def lp(self, rows: np.ndarray) -> np.ndarray:
        """Current LP of buffer rows at the sampler's policy version."""
        return lp_of_rows(self.buf, rows, self.config, self.version)

    # ---------------------------------------------------------------- the trainer's API
    def sample(self, k: int, policy_version: int) -> list[Task]:
        """Draw up to k distinct tasks and mark them in flight. Each competition gets at most
        cap = max(ceil(k·max_competition_share), ceil(k/#competitions with mass)) of them, so fewer than k come
        back when the caps or the number of available items do not allow k (the caller asks again later)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        b = self.buf
        if b.n_active == 0:
            raise ValueError("the buffer is empty: call buffer.add_roots(competition_ids) first")
        self.version = max(self.version, int(policy_version))
        if self._order is None:
            self._order = np.argsort(b.block_comp, kind="stable")
            sorted_comp = b.block_comp[self._order]
            n_comp = len(b.comps)
            self._cstart = np.searchsorted(sorted_comp, np.arange(n_comp), "left")
            self._cend = np.searchsorted(sorted_comp, np.arange(n_comp), "right")
        order, cstart, cend = self._order, self._cstart, self._cend
        n_comp = len(b.comps)
        counts = np.zeros(n_comp, dtype=np.int64)
        comp_count = np.asarray(b.comp_count)
        picked: list[int] = []
        seen: set[int] = set()
        cap = None
        for _ in range(4 * k + 16):
            need = k - len(picked)
            if need <= 0:
                break
            self._sync()  # rows reported or released since the last call, and those drawn in the previous round
            coef = self._coefficients()
            mb = self._mass(self.Ba, self.Bu, self.Bac, coef)  # [n_blocks]
            mc = np.bincount(b.block_comp, weights=mb, minlength=n_comp)
            if cap is None:
                n_pos = int((mc > 0).sum())
                if n_pos == 0:
                    break
                cap = max(math.ceil(k * self.config.max_competition_share), math.ceil(k / n_pos))
            # full: at the cap, or every item of the competition already drawn in this call (tasks are distinct)
            mc[(counts >= cap) | (counts >= comp_count)] = 0.0
            if mc.sum() <= 0:
                break
            cmc = np.cumsum(mc)
            comps = np.minimum(np.searchsorted(cmc, self.rng.random(need) * cmc[-1], "right"), n_comp - 1)
            room = (cap - counts).tolist()
            keep = []
            for i, c in enumerate(comps.tolist()):  # first come first served within the cap
                if room[c] > 0:
                    room[c] -= 1
                    keep.append(i)
            comps = comps[keep]
            # competition → block: u uniform inside the competition's stretch of the block cumsum
            cum = np.cumsum(mb[order])
            lo = np.where(cstart[comps] > 0, cum[np.maximum(cstart[comps] - 1, 0)], 0.0)
            hi = cum[cend[comps] - 1]
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
            ra = np.asarray(round_rows)
            counts += np.bincount(b.comp[ra], minlength=n_comp)
            b.last_sampled[ra] = self.counter + np.arange(len(ra))
            self.counter += len(ra)
            b.in_flight[ra] += 1
            b._dirty.update(round_rows)
            self._stale.update(round_rows)
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
        sums = self.S.reshape(nb, _NSUB, 3)[blocks]  # [n, _NSUB, 3]
        ms = self._mass(sums[..., 0], sums[..., 1], sums[..., 2], coef)  # [n, _NSUB]
        cs = np.cumsum(ms, axis=1)
        x = self.rng.random(n) * cs[:, -1]
        sub = (cs <= x[:, None]).sum(1)
        ok = (cs[:, -1] > 0) & (sub < _NSUB)
        sub = np.minimum(sub, _NSUB - 1)
        lo = np.where(sub > 0, cs[at, sub - 1], 0.0)
        frac = (x - lo) / np.where(ok, cs[at, sub] - lo, 1.0)
        s = blocks * _NSUB + sub  # [n] drawn sub-blocks
        t = self.T[: nb * BLOCK].reshape(-1, _SUB, 3)[s]  # [n, _SUB, 3]
        mi = self._mass(t[..., 0], t[..., 1], t[..., 2], coef)  # [n, _SUB]
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

    def _land(self, task_id: str, r: int) -> None:
        """One rollout of task `task_id` (row r) is back: free its in-flight slot; its terms are refreshed later."""
        bv = self.buf._mv
        bv.in_flight[r] -= 1
        if not bv.in_flight[r]:
            del self._out[task_id]
        self._stale.add(r)

    def report(self, task_id: str, rewards: Sequence[float], policy_version_started: int,
               masked: Sequence[bool] | None = None) -> L.GroupStats:
        """Record a finished group of task `task_id` and release one in-flight slot.

        Late results are always counted: the evidence is aged from `policy_version_started` (the version the
        rollout started with), never dropped. `masked` marks infra-error samples, which are excluded.
        """
        cfg = self.config
        r = self._row_in_flight(task_id)
        g = L.group_stats(rewards, masked, cfg.reward_scale)
        v0 = int(policy_version_started)
        if v0 > self.version:
            self.version = v0
        bv = self.buf._mv  # memoryviews: this runs once per finished group, numpy item access would dominate it
        bv.n_groups[r] += 1
        if g.m != len(rewards):
            bv.n_masked[r] += len(rewards) - g.m
        bv.n_samples[r] += len(rewards)
        if g.m >= 2:
            if g.spread == 0.0:
                bv.n_zero_spread[r] += 1
            bv.last_mean[r] = g.mean
            bv.last_spread[r] = g.spread
            n, s, m, v = L.update_evidence(bv.ev_n[r], bv.ev_spread[r], bv.ev_mean[r], bv.ev_version[r], g, v0,
                                           cfg.decay)
            bv.ev_n[r], bv.ev_spread[r], bv.ev_mean[r], bv.ev_version[r] = n, s, m, v
        self.buf._dirty.add(r)
        self._land(task_id, r)
        return g

    def release(self, task_id: str) -> None:
        """Free the in-flight slot of an abandoned rollout (no statistics recorded)."""
        r = self._row_in_flight(task_id)
        self.buf.counters["released"] += 1
        self._land(task_id, r)

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict:
        """RNG state and counters (the statistics themselves live in the buffer's arrays/SQLite)."""
        return {"rng": self.rng.bit_generator.state, "counter": self.counter, "version": self.version,
                "mode": self.mode}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mode", self.mode) != self.mode:
            raise ValueError(f"sampler state was saved in mode {state['mode']!r}, this run uses {self.mode!r}; "
                             f"resume with the same BufferConfig.mode")
        self.rng.bit_generator.state = state["rng"]
        self.counter = float(state["counter"])
        self.version = int(state["version"])
        self._rebuild()

    def checkpoint(self) -> None:
        """Commit the buffer and this sampler's state (one SQLite transaction); see EvolvingBuffer.checkpoint
        (and EvolvingBuffer.backup for a copy)."""
        self.buf.checkpoint()

    def close(self) -> None:
        self.buf.close()
