"""Learnability-Potential sampler over an EvolvingBuffer, async-aware (docs/learnability.md).

Single-draw probability of item i (a = availability, t = staleness, w = LP weight; learnability.py):

    P(i) = (1−ε−ρ)·a_i w_i/Σ a w  +  ε·a_i/Σ a  +  ρ·a_i t_i/Σ a t
    a_i = in_flight_penalty^(rollouts of i in flight)        # not over-sampled before its results return
    t_i = c − C_i                                            # draws since i was last sampled (PLR staleness)

A batch of k draws is taken without replacement within a call, with at most `cap` draws per competition.

Why block sums: w_i depends on the current version v only through decay^v (learnability.sampling_weight), so
with u_i = (LP_e,i^power − w0)·decay^−(v_e,i − v_ref) every mass above is linear in per-item terms
(a_i, a_i·u_i, a_i·C_i). The sampler keeps their sums per block of rows and draws competition → block → item
with vector ops: a batch costs O(#blocks + k·BLOCK), not O(#items), and a version change costs nothing.
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


def lp_of_rows(buf: EvolvingBuffer, rows: np.ndarray, cfg: SamplerConfig | None = None,
               version: float | None = None) -> np.ndarray:
    """Current LP of buffer rows: LP(v) = prior + (LP_e − prior)·decay^max(v − v_e, 0)."""
    cfg = cfg or SamplerConfig()
    if version is None:
        version = float(buf.ev_version[rows].max()) if len(rows) else 0.0
    lp_e = L.lp_at_evidence(buf.ev_n[rows], buf.ev_spread[rows], buf.ev_mean[rows], cfg.prior_lp,
                            cfg.prior_strength, cfg.headroom_power, tuple(cfg.reward_range))
    return L.lp_now(lp_e, version, buf.ev_version[rows], cfg.prior_lp, cfg.decay)


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
        self._rr = tuple(cfg.reward_range)
        if self.mode == "uniform":
            self.shares = (0.0, 1.0, 0.0)
        else:
            self.shares = (1.0 - cfg.uniform_share - cfg.staleness_share, cfg.uniform_share, cfg.staleness_share)
        self.rng = np.random.default_rng(seed)
        self.counter = 0.0  # c: total draws so far (PLR's global episode counter)
        self.version = 0    # newest policy version seen (sample or report)
        self.v_ref = 0.0
        self._max_dv = (math.log(_MAX_GROWTH) / -math.log(cfg.decay)) if cfg.decay < 1 else math.inf
        # per-row terms, kept in step with the buffer's rows
        self.a = np.zeros(0)
        self.u = np.zeros(0)
        self.ac = np.zeros(0)
        self.Ba = self.Bu = self.Bac = np.zeros(0)  # per-block sums of a, a·u, a·C
        self._grow(buffer._cap)
        self._order = None
        buffer.sampler = self
        saved = buffer._meta("sampler")
        if saved is not None:
            self.load_state_dict(saved)
        else:
            self._rebuild()

    # ---------------------------------------------------------------- per-row terms
    def _grow(self, cap: int) -> None:
        for name in ("a", "u", "ac"):
            old = getattr(self, name)
            new = np.zeros(cap)
            new[: len(old)] = old
            setattr(self, name, new)

    def _blocks_changed(self) -> None:
        nb = self.buf.n_blocks
        for name in ("Ba", "Bu", "Bac"):
            old = getattr(self, name)
            new = np.zeros(nb)
            new[: len(old)] = old
            setattr(self, name, new)
        self._order = None

    def _lp_e(self, rows):
        b, cfg = self.buf, self.config
        return L.lp_at_evidence(b.ev_n[rows], b.ev_spread[rows], b.ev_mean[rows], cfg.prior_lp, cfg.prior_strength,
                                cfg.headroom_power, tuple(cfg.reward_range))

    def _terms(self, rows: np.ndarray):
        b, cfg = self.buf, self.config
        a = np.where(b.active[rows], cfg.in_flight_penalty ** b.in_flight[rows].astype(float), 0.0)
        u = (self._lp_e(rows) ** cfg.power - self.w0) * cfg.decay ** -(b.ev_version[rows] - self.v_ref)
        return a, u, b.last_sampled[rows]

    def _rebuild(self) -> None:
        """Recompute every per-row term and block sum from the buffer (exact; at load and each checkpoint)."""
        b = self.buf
        n = b.n_blocks * BLOCK
        self.v_ref = float(self.version)
        rows = np.arange(n)
        a, u, c = self._terms(rows)
        self.a[:n], self.u[:n], self.ac[:n] = a, u, a * c
        self.Ba = self.a[:n].reshape(-1, BLOCK).sum(1)
        self.Bu = (self.a[:n] * self.u[:n]).reshape(-1, BLOCK).sum(1)
        self.Bac = self.ac[:n].reshape(-1, BLOCK).sum(1)
        self._order = None

    def _refresh_rows(self, rows: np.ndarray) -> None:
        """Recompute the terms of `rows` (distinct) and move the block sums by the difference."""
        a, u, c = self._terms(rows)
        blk = rows // BLOCK
        np.add.at(self.Ba, blk, a - self.a[rows])
        np.add.at(self.Bu, blk, a * u - self.a[rows] * self.u[rows])
        np.add.at(self.Bac, blk, a * c - self.ac[rows])
        self.a[rows], self.u[rows], self.ac[rows] = a, u, a * c

    def _refresh_row(self, r: int) -> None:
        """Scalar twin of _refresh_rows for the per-report hot path (numpy on 1-element arrays is ~10× slower)."""
        b, cfg = self.buf, self.config
        a = cfg.in_flight_penalty ** int(b.in_flight[r]) if b.active[r] else 0.0
        ev_n = float(b.ev_n[r])
        lp_e = L.lp_at_evidence(ev_n, float(b.ev_spread[r]), float(b.ev_mean[r]), cfg.prior_lp,
                                cfg.prior_strength, cfg.headroom_power, self._rr)
        dv = float(b.ev_version[r]) - self.v_ref
        if dv > self._max_dv:
            self._rebuild()  # rare: evidence far newer than v_ref; rebasing recomputes row r too
            return
        u = (lp_e ** cfg.power - self.w0) * cfg.decay ** -dv
        ac = a * float(b.last_sampled[r])
        blk = r // BLOCK
        self.Ba[blk] += a - self.a[r]
        self.Bu[blk] += a * u - self.a[r] * self.u[r]
        self.Bac[blk] += ac - self.ac[r]
        self.a[r], self.u[r], self.ac[r] = a, u, ac

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
        all_rows = np.flatnonzero(b.active)
        if self.mode == "uniform":
            w = np.zeros(len(all_rows))
        else:
            w = L.sampling_weight(self._lp_e(all_rows), self.version, b.ev_version[all_rows], cfg.prior_lp,
                                  cfg.decay, cfg.power)
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
        picked: list[int] = []
        seen: set[int] = set()
        cap = None
        offs = np.arange(BLOCK)
        for _ in range(4 * k + 16):
            need = k - len(picked)
            if need <= 0:
                break
            coef = self._coefficients()
            mb = self._mass(self.Ba, self.Bu, self.Bac, coef)  # [n_blocks]
            mc = np.bincount(b.block_comp, weights=mb, minlength=n_comp)
            if cap is None:
                n_pos = int((mc > 0).sum())
                if n_pos == 0:
                    break
                cap = max(math.ceil(k * self.config.max_competition_share), math.ceil(k / n_pos))
            # full: at the cap, or every item of the competition already drawn in this call (tasks are distinct)
            mc[(counts >= cap) | (counts >= np.asarray(b.comp_count))] = 0.0
            if mc.sum() <= 0:
                break
            cmc = np.cumsum(mc)
            comps = np.minimum(np.searchsorted(cmc, self.rng.random(need) * cmc[-1], "right"), n_comp - 1)
            keep = np.zeros(need, dtype=bool)
            room = cap - counts
            for i, c in enumerate(comps.tolist()):  # first come first served within the cap
                if room[c] > 0:
                    room[c] -= 1
                    keep[i] = True
            comps = comps[keep]
            # competition → block: u uniform inside the competition's stretch of the block cumsum
            cum = np.cumsum(mb[order])
            lo = np.where(cstart[comps] > 0, cum[np.maximum(cstart[comps] - 1, 0)], 0.0)
            hi = cum[cend[comps] - 1]
            x = lo + self.rng.random(len(comps)) * (hi - lo)
            j = np.clip(np.searchsorted(cum, x, "right"), cstart[comps], cend[comps] - 1)
            blocks = order[j]
            # block → item
            R = blocks[:, None] * BLOCK + offs  # [n, BLOCK]
            nb = b.n_blocks
            a_blk = self.a[: nb * BLOCK].reshape(nb, BLOCK)[blocks]  # row gathers: cheaper than R fancy-indexing
            mi = self._mass(a_blk, a_blk * self.u[: nb * BLOCK].reshape(nb, BLOCK)[blocks],
                            self.ac[: nb * BLOCK].reshape(nb, BLOCK)[blocks], coef)
            cs = np.cumsum(mi, axis=1)
            tot = cs[:, -1]
            x = self.rng.random(len(comps)) * tot
            idx = (cs <= x[:, None]).sum(1)
            ok = (tot > 0) & (idx < BLOCK)
            rows = R[np.arange(len(comps)), np.minimum(idx, BLOCK - 1)]
            round_rows = []
            for r, good in zip(rows.tolist(), ok.tolist()):
                # a repeat is redrawn next round (the batch holds distinct tasks)
                if good and r not in seen:
                    seen.add(r)
                    round_rows.append(r)
            if not round_rows:
                continue
            ra = np.asarray(round_rows)
            np.add.at(counts, b.comp[ra], 1)
            b.last_sampled[ra] = self.counter + np.arange(len(ra))
            self.counter += len(ra)
            b.in_flight[ra] += 1
            self._refresh_rows(ra)
            b._dirty.update(round_rows)
            picked.extend(round_rows)
        return [Task(b.ids[r], b.comps[b.comp[r]], STEP_TYPES[b.step[r]], self.version, b) for r in picked]

    def _row_in_flight(self, task_id: str) -> int:
        r = self.buf.id_to_row.get(task_id)
        if r is None:
            raise KeyError(f"unknown task {task_id!r}: report/release only ids returned by sample()")
        if self.buf.in_flight[r] <= 0:
            raise ValueError(f"task {task_id!r} has no rollout in flight: report or release each sampled task "
                             f"exactly once (in-flight counts restart at 0 after a resume)")
        return r

    def report(self, task_id: str, rewards: Sequence[float], policy_version_started: int,
               masked: Sequence[bool] | None = None) -> L.GroupStats:
        """Record a finished group of task `task_id` and release one in-flight slot.

        Late results are always counted: the evidence is aged from `policy_version_started` (the version the
        rollout started with), never dropped. `masked` marks infra-error samples, which are excluded.
        """
        b, cfg = self.buf, self.config
        r = self._row_in_flight(task_id)
        g = L.group_stats(rewards, masked, cfg.reward_scale)
        v0 = int(policy_version_started)
        if v0 > self.version:
            self.version = v0
        b.n_groups[r] += 1
        if g.m != len(rewards):
            b.n_masked[r] += len(rewards) - g.m
        b.n_samples[r] += len(rewards)
        if g.m >= 2:
            if g.spread == 0.0:
                b.n_zero_spread[r] += 1
            b.last_mean[r] = g.mean
            b.last_spread[r] = g.spread
            n, s, m, v = L.update_evidence(float(b.ev_n[r]), float(b.ev_spread[r]), float(b.ev_mean[r]),
                                           float(b.ev_version[r]), g, v0, cfg.decay)
            b.ev_n[r], b.ev_spread[r], b.ev_mean[r], b.ev_version[r] = n, s, m, v
        b.in_flight[r] -= 1
        b._dirty.add(r)
        self._refresh_row(r)
        return g

    def release(self, task_id: str) -> None:
        """Free the in-flight slot of an abandoned rollout (no statistics recorded)."""
        r = self._row_in_flight(task_id)
        self.buf.in_flight[r] -= 1
        self.buf.counters["released"] += 1
        self._refresh_row(r)

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
