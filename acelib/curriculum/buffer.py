"""Evolving Data Buffer: training tasks (agent states) with their learnability statistics, durable in SQLite.

Layout (docs/buffer.md):
- hot statistics live in numpy arrays indexed by *row* (the evidence as one [rows, 4] matrix and the counters
  record_group() updates as one record per row, so recording a group touches few cache lines); rows are grouped
  in blocks of `BLOCK` rows, each block owned by one competition, so a draw index (the sampler) can keep
  per-block sums and draw competition → block → row without visiting every row;
- only the buffer writes these arrays (`mark_sampled`, `record_group`, `release`, insertion, eviction); whoever
  keeps derived state (the sampler's block sums) subscribes as a `RowListener` and is told which rows changed;
- SQLite (WAL) is written behind: inserts, evictions and changed statistics are queued and committed in ONE
  transaction by `checkpoint(extra_meta)`, which also stores the caller's state (the sampler's RNG) in `meta`.
  A killed process therefore loses at most what happened since the last checkpoint, and reopening the file
  restores that checkpoint exactly (rollouts in flight at the crash are gone, so in-flight counts restart at 0).
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import math
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd

from acelib.agent.state import State
from acelib.config import to_dict
from acelib.curriculum.config import STEP_TYPES, BufferConfig, SamplerConfig
from acelib.curriculum.learnability import GroupStats, lp_of_evidence, update_evidence

BLOCK = 256  # rows per block: BLOCK-wide vector ops per draw stay cheap while #blocks stays small at 1M items
_STEP_CODE = {s: i for i, s in enumerate(STEP_TYPES)}

# statistics written behind (UPDATE ... WHERE id=?), in this order (EvolvingBuffer._stat_arrays)
_STAT_COLS = ("n_groups", "n_samples", "n_masked", "n_zero_spread", "ev_n", "ev_spread", "ev_mean", "ev_version",
              "last_sampled", "last_mean", "last_spread")
# record_group() updates one row, and at 1M rows each separate array costs it a cache miss: so its counters are one
# record per row and the evidence one [cap, 4] matrix (the attributes are views). The rest stay plain arrays: numpy
# reductions over strided views are slow, and `active`, `in_flight`, `last_sampled` are scanned whole.
_RECORD_DTYPE = np.dtype([("n_groups", "int64"), ("n_samples", "int64"), ("n_masked", "int64"),
                          ("n_zero_spread", "int64"), ("last_mean", "float64"), ("last_spread", "float64")], align=True)
_EMPTY_RECORD = np.array((0, 0, 0, 0, math.nan, math.nan), dtype=_RECORD_DTYPE)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, row INTEGER, competition_id TEXT NOT NULL, step_type TEXT NOT NULL,
    is_root INTEGER NOT NULL, parent_id TEXT, depth INTEGER NOT NULL, policy_version INTEGER NOT NULL,
    created_seq INTEGER NOT NULL, created_at REAL NOT NULL, valid INTEGER NOT NULL, score REAL,
    active INTEGER NOT NULL, state TEXT NOT NULL,
    {", ".join(f"{c} {'INTEGER' if c.startswith('n_') else 'REAL'}{'' if c.startswith('last_') and c != 'last_sampled' else ' NOT NULL DEFAULT 0'}" for c in _STAT_COLS)});
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class RowListener(Protocol):
    """Keeps state derived from the buffer's rows (the sampler's block sums); the buffer calls it synchronously."""

    def on_grow(self, cap: int) -> None:
        """Row storage now holds `cap` rows (rows past the old capacity are empty)."""

    def on_blocks_changed(self) -> None:
        """A block of rows was assigned to a competition (`n_blocks`, `block_comp` changed)."""

    def on_rows_changed(self, rows: list[int]) -> None:
        """Membership, in-flight count or statistics of `rows` changed."""

    def on_row_changed(self, row: int) -> None:
        """The same for one row (record_group, release: once per finished rollout, so no list is built)."""


class Task:
    """One sampled training task. Pass `policy_version` back to `report` as `policy_version_started`."""

    __slots__ = ("id", "competition_id", "step_type", "policy_version", "_buffer", "_state")

    def __init__(self, id: str, competition_id: str, step_type: str, policy_version: int,
                 buffer: "EvolvingBuffer") -> None:
        self.id, self.competition_id, self.step_type, self.policy_version = id, competition_id, step_type, policy_version
        self._buffer, self._state = buffer, None

    @property
    def state(self) -> State:
        """The task's State (loaded on first access: the hot sampling path never touches SQLite)."""
        if self._state is None:
            self._state = self._buffer.get_state(self.id)
        return self._state

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, competition_id={self.competition_id!r}, step_type={self.step_type!r})"


class _RowViews:
    """memoryviews of the arrays record_group() and release() update one row at a time: an item read or write
    through a memoryview costs ~40 ns and yields a Python number, numpy item access 100–350 ns."""

    __slots__ = ("n_groups", "n_samples", "n_masked", "n_zero_spread", "last_mean", "last_spread", "ev_n",
                 "ev_spread", "ev_mean", "ev_version", "in_flight")

    def __init__(self, buf: "EvolvingBuffer") -> None:
        self.n_groups, self.n_samples = memoryview(buf.n_groups), memoryview(buf.n_samples)
        self.n_masked, self.n_zero_spread = memoryview(buf.n_masked), memoryview(buf.n_zero_spread)
        self.last_mean, self.last_spread = memoryview(buf.last_mean), memoryview(buf.last_spread)
        self.ev_n, self.ev_spread = memoryview(buf.ev_n), memoryview(buf.ev_spread)
        self.ev_mean, self.ev_version = memoryview(buf.ev_mean), memoryview(buf.ev_version)
        self.in_flight = memoryview(buf.in_flight)


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(State))


def _state_to_json(s: State) -> str:
    # not dataclasses.asdict: it deep-copies every field and dominates bulk inserts
    return json.dumps({k: getattr(s, k) for k in _STATE_FIELDS})


def _state_from_json(text: str) -> State:
    d = json.loads(text)
    d["memory"] = tuple(d.get("memory", ()))
    return State(**d)


def _f(x) -> float | None:
    """SQLite REAL or NULL for a float that may be NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def grown(old: np.ndarray, cap: int, fill) -> np.ndarray:
    """`old` extended to `cap` rows (along axis 0); the new rows hold `fill`."""
    new = np.full((cap,) + old.shape[1:], fill, dtype=old.dtype)
    new[: len(old)] = old
    return new


class EvolvingBuffer:
    """Training tasks = root drafts + child states of executed steps, deduplicated by `State.id`.

    `path`: the SQLite file (created if missing, resumed if present) or ':memory:' (tests, benchmarks).
    `lp_fn(rows) -> LP` ranks eviction candidates (lowest first) and fills `stats()`/`dataframe()`; the default is
    LP with `SamplerConfig()` at the newest evidence version. The Curriculum passes its sampler's `lp`.
    """

    # Per-row arrays, one entry per row, declared here empty with their dtype; _alloc grows them (never in place),
    # and unused or evicted rows hold the value in the comment.
    comp = np.empty(0, np.int32)           # competition index: −1
    active = np.empty(0, bool)             # False
    is_root = np.empty(0, bool)            # False
    step = np.empty(0, np.int8)            # index into STEP_TYPES: 0
    depth = np.empty(0, np.int32)          # 0
    version = np.empty(0, np.int64)        # policy version that produced the state: 0
    created_seq = np.empty(0, np.int64)    # insertion counter: 0
    created_at = np.empty(0)               # wall time: 0
    valid = np.empty(0, bool)              # False
    score = np.empty(0)                    # NaN
    last_sampled = np.empty(0)             # value of `draws` when last drawn (PLR staleness): 0
    in_flight = np.empty(0, np.int32)      # rollouts out now (memory only): 0
    _record = np.empty(0, _RECORD_DTYPE)   # the counters record_group() updates (_EMPTY_RECORD), viewed as:
    n_groups: np.ndarray                   # groups reported
    n_samples: np.ndarray                  # samples reported (masked included)
    n_masked: np.ndarray                   # infra-masked samples
    n_zero_spread: np.ndarray              # zero-variance groups (acelib.groups)
    last_mean: np.ndarray                  # mean reward of the latest group with >= 2 valid samples: NaN
    last_spread: np.ndarray                # its normalised spread (learnability.group_stats): NaN
    _ev = np.empty((0, 4))                 # the evidence (learnability.update_evidence): 0, viewed as:
    ev_n: np.ndarray                       # decayed sample count
    ev_spread: np.ndarray                  # weighted mean spread
    ev_mean: np.ndarray                    # weighted mean reward
    ev_version: np.ndarray                 # evidence version

    def __init__(self, path: str | Path, config: BufferConfig | None = None,
                 lp_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.config = config or BufferConfig()
        self.config.validate()
        self.path = str(path)
        self.lp_fn = lp_fn or self._default_lp
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one checkpoint is one transaction
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"SQLite at {self.path} refused WAL mode ({mode}); use a local filesystem path")
        self._db.execute(f"PRAGMA synchronous={self.config.synchronous}")
        self._db.executescript(_SCHEMA)
        self._listeners: list[RowListener] = []
        self._on_row_changed: list[Callable[[int], None]] = []
        self._cap = 0
        self._alloc(0)
        self.ids: list[str | None] = []
        self.parents: list[str | None] = []
        self.id_to_row: dict[str, int] = {}
        self.tombstones: set[str] = set()        # evicted ids: a regenerated duplicate stays out (no churn)
        self.comps: list[str] = []
        self.comp_index: dict[str, int] = {}
        self.comp_count: list[int] = []          # active items per competition
        self.comp_free: list[list[int]] = []     # min-heaps of free rows per competition (lowest row reused first)
        self.block_comp = np.zeros(0, dtype=np.int64)
        self.n_blocks = 0
        self.n_active = 0
        self.seq = 0                             # insertion counter (created_seq)
        self.draws = 0.0                         # tasks drawn so far (PLR's global episode counter)
        self.counters: dict[str, int] = {k: 0 for k in (
            "inserted", "rejected_duplicate", "rejected_step_type", "rejected_depth", "rejected_status",
            "rejected_no_buffer", "evicted", "cap_overflow", "released")}
        self._pending_states: dict[str, State] = {}
        self._pending_inserts: list[tuple] = []
        self._pending_evictions: list[tuple] = []
        self._dirty: set[int] = set()
        self._load()

    def add_listener(self, listener: RowListener) -> None:
        """Subscribe `listener` to row changes (it reads the rows already held itself)."""
        self._listeners.append(listener)
        self._on_row_changed.append(listener.on_row_changed)  # bound once: _land runs once per group

    @property
    def listeners(self) -> tuple[RowListener, ...]:
        return tuple(self._listeners)

    def _notify(self, rows: list[int]) -> None:
        for listener in self._listeners:
            listener.on_rows_changed(rows)

    def _default_lp(self, rows: np.ndarray) -> np.ndarray:
        v_e = self.ev_version[rows]
        return lp_of_evidence(self.ev_n[rows], self.ev_spread[rows], self.ev_mean[rows], v_e, SamplerConfig(),
                              float(v_e.max()) if len(v_e) else 0.0)

    # ---------------------------------------------------------------- storage layout
    def _alloc(self, cap: int) -> None:
        """(Re)allocate the per-row arrays for `cap` rows (new rows get the empty-row values), keeping the rows held."""
        self.comp, self.active = grown(self.comp, cap, -1), grown(self.active, cap, False)
        self.is_root, self.step = grown(self.is_root, cap, False), grown(self.step, cap, 0)
        self.depth, self.version = grown(self.depth, cap, 0), grown(self.version, cap, 0)
        self.created_seq, self.created_at = grown(self.created_seq, cap, 0), grown(self.created_at, cap, 0.0)
        self.valid, self.score = grown(self.valid, cap, False), grown(self.score, cap, math.nan)
        self.last_sampled, self.in_flight = grown(self.last_sampled, cap, 0.0), grown(self.in_flight, cap, 0)
        self._record, self._ev = grown(self._record, cap, _EMPTY_RECORD), grown(self._ev, cap, 0.0)
        rec, ev = self._record, self._ev
        self.n_groups, self.n_samples, self.n_masked = rec["n_groups"], rec["n_samples"], rec["n_masked"]
        self.n_zero_spread = rec["n_zero_spread"]
        self.last_mean, self.last_spread = rec["last_mean"], rec["last_spread"]
        self.ev_n, self.ev_spread, self.ev_mean, self.ev_version = ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3]
        self._views = _RowViews(self)

    def _stat_arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays of _STAT_COLS, in that order."""
        return (self.n_groups, self.n_samples, self.n_masked, self.n_zero_spread, self.ev_n, self.ev_spread,
                self.ev_mean, self.ev_version, self.last_sampled, self.last_mean, self.last_spread)

    def _grow(self, need_rows: int) -> None:
        if need_rows <= self._cap:
            return
        cap = max(need_rows, 2 * self._cap, BLOCK)
        self._alloc(cap)
        self.ids.extend([None] * (cap - self._cap))
        self.parents.extend([None] * (cap - self._cap))
        self._cap = cap
        for listener in self._listeners:
            listener.on_grow(cap)

    def _comp(self, competition_id: str) -> int:
        c = self.comp_index.get(competition_id)
        if c is None:
            c = len(self.comps)
            self.comps.append(competition_id)
            self.comp_index[competition_id] = c
            self.comp_count.append(0)
            self.comp_free.append([])
        return c

    def _new_block(self, c: int) -> None:
        b = self.n_blocks
        self.n_blocks += 1
        self._grow(self.n_blocks * BLOCK)
        self.block_comp = np.append(self.block_comp, c)
        # rows of a fresh block are already sorted, hence a valid heap
        self.comp_free[c].extend(range(b * BLOCK, (b + 1) * BLOCK))
        heapq.heapify(self.comp_free[c])
        for listener in self._listeners:
            listener.on_blocks_changed()

    def _alloc_row(self, c: int) -> int:
        if not self.comp_free[c]:
            self._new_block(c)
        return heapq.heappop(self.comp_free[c])

    @property
    def capacity(self) -> int:
        """Rows allocated (active or not): the length of every per-row array."""
        return self._cap

    # ---------------------------------------------------------------- insertion
    def add_roots(self, competition_ids: Iterable[str], seed_states: Sequence[State] = ()) -> list[str]:
        """One draft task per competition (unless `BufferConfig.draft_roots` is off), plus optional seed states
        (compact baselines and their mutations, acelib.agent.seeds).

        Roots and seeds are never evicted. Calling it again (e.g. on resume) inserts only what is missing.
        """
        competition_ids = list(competition_ids)
        roots = [State(competition_id=c) for c in competition_ids] if self.config.draft_roots else []
        known = set(competition_ids) | set(self.comps)
        for s in seed_states:
            if s.competition_id not in known:
                raise ValueError(f"seed state for competition {s.competition_id!r} that has no root; "
                                 f"add it to competition_ids")
        # already present (a resume): skipped silently, so counters stay those of the checkpoint
        new = [s for s in list(roots) + list(seed_states) if s.id not in self.id_to_row and s.id not in self.tombstones]
        return self._insert(new, is_root=True, policy_version=0, check_filters=False)

    def add_children(self, parent_id: str, states: Sequence[State], policy_version: int) -> list[str]:
        """Insert the child states of executed steps of task `parent_id`; returns the ids actually inserted.

        Filters (counted in `counters`): duplicate id (active or evicted), step type not in
        `insert_step_types`, depth > `max_depth`, exec_status in `skip_exec_status`. In mode 'no_buffer' nothing
        is inserted (counted as `rejected_no_buffer`). Over a cap, items are evicted (never roots/in-flight).
        """
        row = self.id_to_row.get(parent_id)
        if row is None and parent_id not in self.tombstones:
            raise KeyError(f"unknown parent task {parent_id!r}: pass the id of a Task the sampler returned")
        parent_comp = self.comps[self.comp[row]] if row is not None else None
        parent_depth = int(self.depth[row]) if row is not None else None
        fixed = []
        for s in states:
            if parent_comp is not None and s.competition_id != parent_comp:
                raise ValueError(f"child {s.id} is for competition {s.competition_id!r} but its parent "
                                 f"{parent_id} is for {parent_comp!r}")
            if s.parent_id is not None and s.parent_id != parent_id:
                raise ValueError(f"child {s.id} has parent_id {s.parent_id!r}, not {parent_id!r}")
            if s.parent_id is None or (s.depth == 0 and parent_depth is not None):
                s = dataclasses.replace(s, parent_id=parent_id,
                                        depth=s.depth or (parent_depth + 1 if parent_depth is not None else 1))
            fixed.append(s)
        if self.config.mode == "no_buffer":
            self.counters["rejected_no_buffer"] += len(fixed)
            return []
        return self._insert(fixed, is_root=False, policy_version=policy_version, check_filters=True)

    def _insert(self, states: list[State], is_root: bool, policy_version: int, check_filters: bool) -> list[str]:
        cfg, cnt = self.config, self.counters
        rows, new_ids, touched = [], [], set()
        now = time.time()
        # a new item is as "fresh" as the most recent draw: it gets the prior, not a staleness jackpot
        fresh = self.draws
        for s in states:
            sid = s.id
            if sid in self.id_to_row or sid in self.tombstones:
                cnt["rejected_duplicate"] += 1
                continue
            if check_filters:
                if s.step_type not in cfg.insert_step_types:
                    cnt["rejected_step_type"] += 1
                    continue
                if s.depth > cfg.max_depth:
                    cnt["rejected_depth"] += 1
                    continue
                if s.exec_status in cfg.skip_exec_status:
                    cnt["rejected_status"] += 1
                    continue
            c = self._comp(s.competition_id)
            r = self._alloc_row(c)
            self.id_to_row[sid] = r
            self.ids[r], self.parents[r] = sid, s.parent_id
            self.comp_count[c] += 1
            touched.add(c)
            rows.append(r)
            new_ids.append(sid)
            self._pending_states[sid] = s
            self._pending_inserts.append((
                sid, r, s.competition_id, s.step_type, int(is_root), s.parent_id, s.depth, policy_version,
                self.seq, now, int(s.valid), _f(s.score), _state_to_json(s), fresh))
            self.comp[r], self.step[r], self.depth[r] = c, _STEP_CODE[s.step_type], s.depth
            self.valid[r], self.score[r] = s.valid, (math.nan if s.score is None else s.score)
            self.created_seq[r], self.created_at[r] = self.seq, now
            self.seq += 1
        if not rows:
            return []
        ra = np.asarray(rows, dtype=np.int64)
        self.active[ra], self.is_root[ra], self.version[ra] = True, is_root, policy_version
        self._record[ra], self._ev[ra], self.in_flight[ra] = _EMPTY_RECORD, 0.0, 0
        self.last_sampled[ra] = fresh
        self.n_active += len(rows)
        cnt["inserted"] += len(rows)
        self._notify(rows)
        self._enforce_caps(touched)
        return [i for i in new_ids if i in self.id_to_row]

    # ---------------------------------------------------------------- statistics (the only writers of the arrays)
    def mark_sampled(self, rows: list[int]) -> None:
        """`rows` (distinct) were just drawn, in this order: stamp their draw counter and count one rollout in
        flight each."""
        ra = np.asarray(rows, dtype=np.int64)
        self.last_sampled[ra] = self.draws + np.arange(len(ra))
        self.draws += len(ra)
        self.in_flight[ra] += 1
        self._dirty.update(rows)
        self._notify(rows)

    def record_group(self, row: int, g: GroupStats, samples: int, version_started: int, decay: float) -> int:
        """Record one finished group of `samples` rollouts (masked included) of the item at `row`, started at
        policy version `version_started`, and free its in-flight slot. The evidence ages by `decay` per version
        (learnability.update_evidence). Returns the rollouts still in flight."""
        mv = self._views  # this runs once per finished group: numpy item access would dominate it
        mv.n_groups[row] += 1
        mv.n_samples[row] += samples
        if g.m != samples:
            mv.n_masked[row] += samples - g.m
        if g.m >= 2:
            if g.zero_variance:
                mv.n_zero_spread[row] += 1
            mv.last_mean[row] = g.mean
            mv.last_spread[row] = g.spread
            ev = update_evidence(mv.ev_n[row], mv.ev_spread[row], mv.ev_mean[row], mv.ev_version[row], g,
                                 version_started, decay)
            mv.ev_n[row], mv.ev_spread[row], mv.ev_mean[row], mv.ev_version[row] = ev
        return self._land(row)

    def release(self, row: int) -> int:
        """Free the in-flight slot of an abandoned rollout of the item at `row` (nothing recorded). Returns the
        rollouts still in flight."""
        self.counters["released"] += 1
        return self._land(row)

    def _land(self, row: int) -> int:
        left = self._views.in_flight[row] - 1
        self._views.in_flight[row] = left
        self._dirty.add(row)
        for on_row_changed in self._on_row_changed:
            on_row_changed(row)
        return left

    # ---------------------------------------------------------------- eviction
    def _comp_rows(self, c: int) -> np.ndarray:
        blocks = np.flatnonzero(self.block_comp == c)
        return (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()

    def _evict_from(self, rows: np.ndarray, excess: int) -> None:
        rows = rows[self.active[rows] & ~self.is_root[rows] & (self.in_flight[rows] == 0)]
        if len(rows) < excess:
            # every candidate is a root or in flight: the cap is exceeded until they return
            self.counters["cap_overflow"] += excess - len(rows)
            excess = len(rows)
        if excess <= 0:
            return
        if self.config.eviction == "oldest":
            order = np.argsort(self.created_seq[rows], kind="stable")
        else:
            # lexsort: last key is primary → lowest LP first, then least recently sampled, then oldest
            order = np.lexsort((self.created_seq[rows], self.last_sampled[rows], self.lp_fn(rows)))
        self._evict(rows[order[:excess]])

    def _evict(self, rows: np.ndarray) -> None:
        stats = self._stat_arrays()
        for r in rows.tolist():
            sid = self.ids[r]
            self._pending_evictions.append((sid, *(_f(float(a[r])) if a.dtype.kind == "f" else int(a[r])
                                                   for a in stats)))
            self._dirty.discard(r)
            del self.id_to_row[sid]
            self.tombstones.add(sid)
            self._pending_states.pop(sid, None)
            self.ids[r] = self.parents[r] = None
            c = int(self.comp[r])
            self.comp_count[c] -= 1
            heapq.heappush(self.comp_free[c], r)
        self.active[rows] = False
        self.n_active -= len(rows)
        self.counters["evicted"] += len(rows)
        self._notify(rows.tolist())

    def _enforce_caps(self, touched: set[int]) -> None:
        for c in sorted(touched):
            excess = self.comp_count[c] - self.config.max_per_competition
            if excess > 0:
                self._evict_from(self._comp_rows(c), excess)
        excess = self.n_active - self.config.max_items
        if excess > 0:
            self._evict_from(np.flatnonzero(self.active), excess)

    # ---------------------------------------------------------------- durability
    def checkpoint(self, extra_meta: dict | None = None) -> None:
        """Commit everything since the last checkpoint (inserts, evictions, statistics) and `extra_meta` (JSON
        values stored under their keys in `meta`, e.g. the sampler's state) in one transaction: after a crash,
        reopening the file gives exactly this point."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO items (id,row,competition_id,step_type,is_root,parent_id,depth,policy_version,created_seq,"
            "created_at,valid,score,active,state,last_sampled) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)",
            self._pending_inserts)
        dirty = sorted(r for r in self._dirty if self.active[r])
        if dirty:
            ra = np.asarray(dirty)
            cols = [[_f(x) for x in a[ra].tolist()] if a.dtype.kind == "f" else a[ra].tolist()
                    for a in self._stat_arrays()]
            db.executemany(f"UPDATE items SET {', '.join(f'{c}=?' for c in _STAT_COLS)} WHERE id=?",
                           zip(*cols, (self.ids[r] for r in dirty)))
        db.executemany(f"UPDATE items SET active=0, row=NULL, {', '.join(f'{c}=?' for c in _STAT_COLS)} WHERE id=?",
                       [(*e[1:], e[0]) for e in self._pending_evictions])
        meta = {"comps": self.comps, "block_comp": self.block_comp.tolist(), "seq": self.seq, "draws": self.draws,
                "counters": self.counters, "config": to_dict(self.config), **(extra_meta or {})}
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                       [(k, json.dumps(v)) for k, v in meta.items()])
        db.execute("COMMIT")
        self._pending_inserts.clear()
        self._pending_evictions.clear()
        self._pending_states.clear()
        self._dirty.clear()

    def backup(self, copy_to: str | Path, extra_meta: dict | None = None) -> Path:
        """Checkpoint, then write a consistent copy of the database to `copy_to` (SQLite online backup API: a
        single self-contained file, no -wal/-shm) and return its path."""
        self.checkpoint(extra_meta)
        copy_to = Path(copy_to)
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(str(copy_to))
        try:
            self._db.backup(dst)
        finally:
            dst.close()
        return copy_to

    def close(self, extra_meta: dict | None = None) -> None:
        """Checkpoint and close the database."""
        self.checkpoint(extra_meta)
        self._db.close()

    def meta(self, key: str):
        """The committed JSON value stored under `key` (None if absent), e.g. a checkpoint's extra_meta."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _load(self) -> None:
        comps = self.meta("comps")
        if comps is None:
            return
        stored = self.meta("config")
        if stored is not None and stored != to_dict(self.config):
            # a changed config on resume is allowed (e.g. a larger cap), but should be visible
            warnings.warn(f"buffer {self.path} was written with config {stored}, resuming with "
                          f"{to_dict(self.config)}", stacklevel=3)
        for name in comps:
            self._comp(name)
        block_comp = self.meta("block_comp")
        self.n_blocks = len(block_comp)
        self.block_comp = np.asarray(block_comp, dtype=np.int64)
        self._grow(self.n_blocks * BLOCK)
        self.seq = self.meta("seq")
        self.draws = float(self.meta("draws") or 0.0)
        self.counters.update(self.meta("counters"))
        cur = self._db.execute(
            f"SELECT id,row,competition_id,step_type,is_root,parent_id,depth,policy_version,created_seq,created_at,"
            f"valid,score,{','.join(_STAT_COLS)} FROM items WHERE active=1")
        recs = cur.fetchall()
        if recs:
            cols = list(zip(*recs))
            rows = np.asarray(cols[1], dtype=np.int64)
            for r, sid, parent in zip(rows.tolist(), cols[0], cols[5]):
                self.ids[r], self.parents[r] = sid, parent
                self.id_to_row[sid] = r
            self.comp[rows] = [self.comp_index[c] for c in cols[2]]
            self.step[rows] = [_STEP_CODE[s] for s in cols[3]]
            self.is_root[rows] = cols[4]
            self.depth[rows], self.version[rows], self.created_seq[rows] = cols[6], cols[7], cols[8]
            self.created_at[rows], self.valid[rows] = cols[9], cols[10]
            self.score[rows] = [math.nan if x is None else x for x in cols[11]]
            for a, col in zip(self._stat_arrays(), cols[12:]):
                a[rows] = [math.nan if x is None else x for x in col]
            self.active[rows] = True
            self.n_active = len(rows)
            counts = np.bincount(self.comp[rows], minlength=len(self.comps))
            self.comp_count = counts.tolist()
        for c in range(len(self.comps)):
            rows_c = self._comp_rows(c)
            self.comp_free[c] = rows_c[~self.active[rows_c]].tolist()  # sorted → valid heap
        self.tombstones = {r[0] for r in self._db.execute("SELECT id FROM items WHERE active=0")}

    # ---------------------------------------------------------------- access and analysis
    def __len__(self) -> int:
        return self.n_active

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.id_to_row

    def get_state(self, item_id: str) -> State:
        """The State of an item (active or evicted)."""
        s = self._pending_states.get(item_id)
        if s is not None:
            return s
        row = self._db.execute("SELECT state FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"no buffer item {item_id!r}")
        return _state_from_json(row[0])

    def dataframe(self) -> pd.DataFrame:
        """Active items with their statistics (one row each) and their current `lp` (lp_fn)."""
        rows = np.flatnonzero(self.active)
        df = pd.DataFrame({
            "id": [self.ids[r] for r in rows], "competition_id": [self.comps[c] for c in self.comp[rows]],
            "step_type": [STEP_TYPES[s] for s in self.step[rows]], "is_root": self.is_root[rows],
            "parent_id": [self.parents[r] for r in rows], "depth": self.depth[rows],
            "policy_version": self.version[rows], "created_seq": self.created_seq[rows],
            "created_at": self.created_at[rows], "valid": self.valid[rows], "score": self.score[rows],
            **{c: a[rows] for c, a in zip(_STAT_COLS, self._stat_arrays())}, "in_flight": self.in_flight[rows],
            "lp": self.lp_fn(rows),
        })
        return df.sort_values("created_seq", ignore_index=True)

    def stats(self) -> dict:
        """Metrics for logging (the trainer prefixes `buffer/`): sizes, size by step type (one nested dict),
        LP quantiles, visit shares and the insertion/eviction counters."""
        rows = np.flatnonzero(self.active)
        out: dict = {"size": float(len(rows)), "competitions": float(len(self.comps)),
                     "roots": float(self.is_root[rows].sum()), "in_flight": float(self.in_flight[rows].sum())}
        steps = np.bincount(self.step[rows], minlength=len(STEP_TYPES))
        out["size_by_type"] = {s: float(n) for s, n in zip(STEP_TYPES, steps)}
        out["groups_on_active_items"] = float(self.n_groups[rows].sum())
        visited = self.n_groups[rows] > 0
        lp = self.lp_fn(rows)
        if len(rows):
            out["unvisited_share"] = float(1 - visited.mean())
            q = np.quantile(lp, [0.1, 0.5, 0.9])
            out.update({"lp_p10": float(q[0]), "lp_p50": float(q[1]), "lp_p90": float(q[2]),
                        "lp_mean": float(lp.mean()), "lp_max": float(lp.max()),
                        "depth_max": float(self.depth[rows].max())})
        if visited.any():
            # items whose latest group was zero-variance: GRPO got no gradient from them. group_stats gives a
            # spread of exactly 0 iff acelib.groups.is_zero_variance (NaN: no group with 2 valid samples yet)
            out["zero_spread_share"] = float((self.last_spread[rows][visited] == 0.0).mean())
        out.update({k: float(v) for k, v in self.counters.items()})
        return out
