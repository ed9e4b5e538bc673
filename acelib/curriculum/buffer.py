"""Evolving Data Buffer: training tasks (agent states) with their learnability statistics, durable in SQLite.

Layout (docs/buffer.md):
- hot statistics live in numpy arrays indexed by *row* (the evidence as one [rows, 4] matrix and report()'s
  counters as one record per row, so updating a row touches few cache lines); rows are grouped in blocks of
  `BLOCK` rows, each block owned by one competition, so the sampler can keep per-block (and per-sub-block) sums
  and draw competition → block → sub-block → item in O(#blocks) per batch + O(32) per draw, not O(#items);
- SQLite (WAL) is written behind: inserts, evictions and changed statistics are queued and committed in ONE
  transaction by `checkpoint()` (the trainer calls it once per step), together with the sampler's RNG state.
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
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from acelib.agent.state import State
from acelib.config import to_dict
from acelib.curriculum.config import STEP_TYPES, BufferConfig

if TYPE_CHECKING:
    from acelib.curriculum.sampler import LearnabilitySampler

BLOCK = 256  # rows per block: BLOCK-wide vector ops per draw stay cheap while #blocks stays small at 1M items
_STEP_CODE = {s: i for i, s in enumerate(STEP_TYPES)}

# per-row arrays: name -> (dtype, value of an empty row)
_ARRAYS: dict[str, tuple[str, float]] = {
    "comp": ("int32", -1), "active": ("bool", 0), "is_root": ("bool", 0), "step": ("int8", 0),
    "depth": ("int32", 0), "version": ("int64", 0), "created_seq": ("int64", 0), "created_at": ("float64", 0),
    "valid": ("bool", 0), "score": ("float64", math.nan),
    "n_groups": ("int64", 0), "n_samples": ("int64", 0), "n_masked": ("int64", 0), "n_zero_spread": ("int64", 0),
    "ev_n": ("float64", 0), "ev_spread": ("float64", 0), "ev_mean": ("float64", 0), "ev_version": ("float64", 0),
    "last_sampled": ("float64", 0), "last_mean": ("float64", math.nan), "last_spread": ("float64", math.nan),
    "in_flight": ("int32", 0),
}
# statistics written behind (UPDATE ... WHERE id=?), in this order
_STAT_COLS = ("n_groups", "n_samples", "n_masked", "n_zero_spread", "ev_n", "ev_spread", "ev_mean", "ev_version",
              "last_sampled", "last_mean", "last_spread")
# report() updates one row, and at 1M rows each separate array costs it a cache miss: so the evidence is one
# [cap, 4] matrix and report()'s counters one record per row (the attributes are views). The rest stay plain
# arrays: numpy reductions over strided views are slow, and `active`, `in_flight`, `last_sampled` are scanned whole.
_EV_COLS = ("ev_n", "ev_spread", "ev_mean", "ev_version")
_RECORD_DTYPE = np.dtype([(name, _ARRAYS[name][0]) for name in (
    "n_groups", "n_samples", "n_masked", "n_zero_spread", "last_mean", "last_spread")], align=True)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, row INTEGER, competition_id TEXT NOT NULL, step_type TEXT NOT NULL,
    is_root INTEGER NOT NULL, parent_id TEXT, depth INTEGER NOT NULL, policy_version INTEGER NOT NULL,
    created_seq INTEGER NOT NULL, created_at REAL NOT NULL, valid INTEGER NOT NULL, score REAL,
    active INTEGER NOT NULL, state TEXT NOT NULL,
    {", ".join(f"{c} {'INTEGER' if c.startswith('n_') else 'REAL'}{'' if c.startswith('last_') and c != 'last_sampled' else ' NOT NULL DEFAULT 0'}" for c in _STAT_COLS)});
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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


class EvolvingBuffer:
    """Training tasks = root drafts + child states of executed steps, deduplicated by `State.id`.

    `path`: the SQLite file (created if missing, resumed if present) or ':memory:' (tests, benchmarks).
    """

    def __init__(self, path: str | Path, config: BufferConfig | None = None) -> None:
        self.config = config or BufferConfig()
        self.config.validate()
        self.path = str(path)
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
        self.sampler: LearnabilitySampler | None = None
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
        self.counters: dict[str, int] = {k: 0 for k in (
            "inserted", "rejected_duplicate", "rejected_step_type", "rejected_depth", "rejected_status",
            "rejected_no_buffer", "evicted", "cap_overflow", "released")}
        self._pending_states: dict[str, State] = {}
        self._pending_inserts: list[tuple] = []
        self._pending_evictions: list[tuple] = []
        self._dirty: set[int] = set()
        self._load()

    # ---------------------------------------------------------------- storage layout
    def _grow(self, need_rows: int) -> None:
        if need_rows <= self._cap:
            return
        cap = max(need_rows, 2 * self._cap, BLOCK)
        self._alloc(cap)
        self.ids.extend([None] * (cap - self._cap))
        self.parents.extend([None] * (cap - self._cap))
        self._cap = cap
        if self.sampler is not None:
            self.sampler._grow(cap)

    def _alloc(self, cap: int) -> None:
        """(Re)allocate the per-row arrays for `cap` rows (empty rows get their fill value), keeping the rows held."""
        record = np.zeros(cap, dtype=_RECORD_DTYPE)
        self._ev = np.zeros((cap, len(_EV_COLS)))  # [cap, 4]: the columns are ev_n, ev_spread, ev_mean, ev_version
        for name, (dtype, fill) in _ARRAYS.items():
            if name in _EV_COLS:
                new = self._ev[:, _EV_COLS.index(name)]
            elif name in _RECORD_DTYPE.names:
                new = record[name]
            else:
                new = np.empty(cap, dtype=dtype)
            new[...] = fill
            old = self.__dict__.get(name)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)
        # memoryviews of the same arrays for the sampler's report(), which updates one row: an item read or write
        # through a memoryview costs ~40 ns and yields a Python number, numpy item access 100–350 ns
        self._mv = SimpleNamespace(**{name: memoryview(self.__dict__[name]) for name in _ARRAYS})

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
        if self.sampler is not None:
            self.sampler._blocks_changed()

    def _alloc_row(self, c: int) -> int:
        if not self.comp_free[c]:
            self._new_block(c)
        return heapq.heappop(self.comp_free[c])

    # ---------------------------------------------------------------- insertion
    def add_roots(self, competition_ids: Iterable[str], seed_states: Sequence[State] = ()) -> list[str]:
        """One draft task per competition, plus optional seed states (e.g. from reference solutions).

        Roots and seeds are never evicted. Calling it again (e.g. on resume) inserts only what is missing.
        """
        roots = [State(competition_id=c) for c in competition_ids]
        known = {s.competition_id for s in roots} | set(self.comps)
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
        # a new item is as "fresh" as the most recent sample: it gets the prior, not a staleness jackpot
        fresh = self.sampler.counter if self.sampler is not None else 0.0
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
        for name in _STAT_COLS + ("in_flight",):
            self.__dict__[name][ra] = _ARRAYS[name][1]
        self.last_sampled[ra] = fresh
        self.n_active += len(rows)
        cnt["inserted"] += len(rows)
        if self.sampler is not None:
            self.sampler._refresh_rows(ra)
        self._enforce_caps(touched)
        return [i for i in new_ids if i in self.id_to_row]

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
            order = np.lexsort((self.created_seq[rows], self.last_sampled[rows], self._lp_values(rows)))
        self._evict(rows[order[:excess]])

    def _evict(self, rows: np.ndarray) -> None:
        for r in rows.tolist():
            sid = self.ids[r]
            self._pending_evictions.append((sid, *self._stat_tuple(r)))
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
        if self.sampler is not None:
            self.sampler._refresh_rows(rows)

    def _enforce_caps(self, touched: set[int]) -> None:
        for c in sorted(touched):
            excess = self.comp_count[c] - self.config.max_per_competition
            if excess > 0:
                self._evict_from(self._comp_rows(c), excess)
        excess = self.n_active - self.config.max_items
        if excess > 0:
            self._evict_from(np.flatnonzero(self.active), excess)

    def _lp_values(self, rows: np.ndarray) -> np.ndarray:
        if self.sampler is not None:
            return self.sampler.lp(rows)
        from acelib.curriculum.sampler import lp_of_rows  # no sampler attached: default LP parameters
        return lp_of_rows(self, rows)

    # ---------------------------------------------------------------- durability
    def _stat_tuple(self, r: int) -> tuple:
        return tuple(int(self.__dict__[c][r]) if c.startswith("n_") else _f(float(self.__dict__[c][r]))
                     for c in _STAT_COLS)

    def checkpoint(self) -> None:
        """Commit everything since the last checkpoint (inserts, evictions, statistics, sampler state) in one
        transaction: after a crash, reopening the file gives exactly this point."""
        if self.sampler is not None:
            self.sampler._rebuild()  # drops float drift of incremental sums: the live state equals a reload's
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO items (id,row,competition_id,step_type,is_root,parent_id,depth,policy_version,created_seq,"
            "created_at,valid,score,active,state,last_sampled) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)",
            self._pending_inserts)
        dirty = sorted(r for r in self._dirty if self.active[r])
        if dirty:
            ra = np.asarray(dirty)
            cols = [self.__dict__[c][ra].tolist() for c in _STAT_COLS]
            cols = [[_f(x) for x in col] if not c.startswith("n_") else col for c, col in zip(_STAT_COLS, cols)]
            db.executemany(f"UPDATE items SET {', '.join(f'{c}=?' for c in _STAT_COLS)} WHERE id=?",
                           zip(*cols, (self.ids[r] for r in dirty)))
        db.executemany(f"UPDATE items SET active=0, row=NULL, {', '.join(f'{c}=?' for c in _STAT_COLS)} WHERE id=?",
                       [(*e[1:], e[0]) for e in self._pending_evictions])
        meta = {"comps": json.dumps(self.comps), "block_comp": json.dumps(self.block_comp.tolist()),
                "seq": json.dumps(self.seq), "counters": json.dumps(self.counters),
                "config": json.dumps(to_dict(self.config))}
        if self.sampler is not None:
            meta["sampler"] = json.dumps(self.sampler.state_dict())
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
        db.execute("COMMIT")
        self._pending_inserts.clear()
        self._pending_evictions.clear()
        self._pending_states.clear()
        self._dirty.clear()
    def backup(self, copy_to: str | Path) -> Path:
        """Checkpoint, then write a consistent copy of the database to `copy_to` (SQLite online backup API: a
        single self-contained file, no -wal/-shm) and return its path. The trainer calls it at every learner
        checkpoint; resuming from the copy gives the buffer and sampler exactly as of that step."""
        self.checkpoint()
        copy_to = Path(copy_to)
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(str(copy_to))
        try:
            self._db.backup(dst)
        finally:
            dst.close()
        return copy_to

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.checkpoint()
        self._db.close()

    def _meta(self, key: str):
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _load(self) -> None:
        comps = self._meta("comps")
        if comps is None:
            return
        stored = self._meta("config")
        if stored is not None and stored != to_dict(self.config):
            import warnings  # a changed config on resume is allowed (e.g. a larger cap), but should be visible
            warnings.warn(f"buffer {self.path} was written with config {stored}, resuming with "
                          f"{to_dict(self.config)}", stacklevel=3)
        for name in comps:
            self._comp(name)
        block_comp = self._meta("block_comp")
        self.n_blocks = len(block_comp)
        self.block_comp = np.asarray(block_comp, dtype=np.int64)
        self._grow(self.n_blocks * BLOCK)
        self.seq = self._meta("seq")
        self.counters.update(self._meta("counters"))
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
            for name, col in zip(_STAT_COLS, cols[12:]):
                self.__dict__[name][rows] = [math.nan if x is None else x for x in col]
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
        """Active items with their statistics (one row each); `lp` and `p_sample` when a sampler is attached."""
        rows = np.flatnonzero(self.active)
        df = pd.DataFrame({
            "id": [self.ids[r] for r in rows], "competition_id": [self.comps[c] for c in self.comp[rows]],
            "step_type": [STEP_TYPES[s] for s in self.step[rows]], "is_root": self.is_root[rows],
            "parent_id": [self.parents[r] for r in rows], "depth": self.depth[rows],
            "policy_version": self.version[rows], "created_seq": self.created_seq[rows],
            "created_at": self.created_at[rows], "valid": self.valid[rows], "score": self.score[rows],
            **{c: self.__dict__[c][rows] for c in _STAT_COLS}, "in_flight": self.in_flight[rows],
            "lp": self._lp_values(rows),
        })
        if self.sampler is not None:
            df["p_sample"] = self.sampler.probabilities_rows(rows)
        return df.sort_values("created_seq", ignore_index=True)

    def export(self, path: str | Path) -> Path:
        """Write `dataframe()` to .parquet or .csv (an MLflow artifact)."""
        path = Path(path)
        df = self.dataframe()
        if path.suffix == ".parquet":
            df.to_parquet(path, index=False)
        elif path.suffix == ".csv":
            df.to_csv(path, index=False)
        else:
            raise ValueError(f"export path must end in .parquet or .csv, got {path.name!r}")
        return path

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
        lp = self._lp_values(rows)
        if len(rows):
            out["unvisited_share"] = float(1 - visited.mean())
            q = np.quantile(lp, [0.1, 0.5, 0.9])
            out.update({"lp_p10": float(q[0]), "lp_p50": float(q[1]), "lp_p90": float(q[2]),
                        "lp_mean": float(lp.mean()), "lp_max": float(lp.max()),
                        "depth_max": float(self.depth[rows].max())})
        if visited.any():
            # items whose latest group had all-equal rewards: GRPO got no gradient from them
            out["zero_spread_share"] = float((self.last_spread[rows][visited] == 0).mean())
        out.update({k: float(v) for k, v in self.counters.items()})
        return out
