"""Evolving Data Buffer: roots, insertion filters, dedup, caps, eviction, durability, export (docs/buffer.md)."""
import sqlite3

import numpy as np
import pandas as pd
import pytest

from acelib.agent.state import State
from acelib.curriculum import BufferConfig, Curriculum, EvolvingBuffer, SamplerConfig
from acelib.curriculum.learnability import group_stats


def child(comp: str, code: str, valid: bool = False, **kw) -> State:
    return State(competition_id=comp, code=code, valid=valid, exec_status="ok" if valid else "error", **kw)


def test_roots_are_drafts_and_idempotent(tmp_path):
    buf = EvolvingBuffer(tmp_path / "b.sqlite")
    seed = child("a", "print('reference')", valid=True)
    ids = buf.add_roots(["a", "b"], seed_states=[seed])
    assert len(ids) == 3 and len(buf) == 3
    st = buf.stats()
    assert st["size_by_type"] == {"draft": 2.0, "debug": 0.0, "improve": 1.0} and st["roots"] == 3.0
    assert buf.get_state(ids[0]).step_type == "draft"
    assert buf.add_roots(["a", "b"], seed_states=[seed]) == []       # resume: nothing new, counters unchanged
    assert buf.stats() == st
    assert buf.add_roots(["c"]) != [] and len(buf) == 4
    with pytest.raises(ValueError, match="has no root"):
        buf.add_roots([], seed_states=[child("zzz", "x = 1")])


def test_children_become_debug_and_improve_tasks_with_filters():
    buf = EvolvingBuffer(":memory:", BufferConfig(max_depth=2))
    root = buf.add_roots(["a"])[0]
    ids = buf.add_children(root, [child("a", "x = 1"), child("a", "y = 2", valid=True, score=0.5)], 3)
    df = buf.dataframe().set_index("id")
    assert df.loc[ids, "step_type"].tolist() == ["debug", "improve"]
    assert df.loc[ids, "parent_id"].tolist() == [root, root] and df.loc[ids, "depth"].tolist() == [1, 1]
    assert df.loc[ids, "policy_version"].tolist() == [3, 3] and df.loc[ids[1], "score"] == 0.5
    # dedup by normalised code hash: comments / blank lines / trailing spaces do not make a new task
    assert buf.add_children(root, [child("a", "x = 1   # same\n\n")], 4) == []
    assert buf.add_children(root, [State(competition_id="a")], 4) == []          # a draft child is the root again
    assert buf.add_children(ids[0], [State("a", code="w = 4", exec_status="infra_error")], 4) == []
    d2 = buf.add_children(ids[0], [child("a", "w = 5")], 4)                                 # depth 2: kept
    assert buf.add_children(d2[0], [child("a", "w = 6")], 4) == []                          # depth 3 > max_depth
    c = buf.counters
    assert (c["rejected_duplicate"], c["rejected_status"], c["rejected_depth"]) == (2, 1, 1)
    with pytest.raises(KeyError, match="unknown parent"):
        buf.add_children("nope", [child("a", "q = 1")], 0)
    with pytest.raises(ValueError, match="competition"):
        buf.add_children(root, [child("b", "q = 1")], 0)


def test_cap_per_competition_evicts_lowest_lp_never_roots_or_in_flight():
    cur = Curriculum(":memory:", BufferConfig(max_per_competition=3), SamplerConfig(), ["a"], batch_size=3)
    buf, s = cur.buffer, cur.sampler
    root = State("a").id
    boring, frontier = buf.add_children(root, [child("a", "boring = 1"), child("a", "frontier = 1")], 0)
    # visit both: all-equal rewards (LP → 0.014) vs a mixed group (LP 0.214)
    for t in s.sample(3, 0):
        s.report(t.id, [1.0] * 8 if t.id != frontier else [1, 0] * 4, 0)
    assert len(buf) == 3
    new = buf.add_children(root, [child("a", "new = 1")], 1)
    assert new and boring not in buf and frontier in buf and root in buf and len(buf) == 3
    assert buf.counters["evicted"] == 1
    # an evicted id stays out (tombstone): regenerating the same code does not churn the buffer
    assert buf.add_children(root, [child("a", "boring = 1")], 2) == []
    # in-flight items are never evicted: with every old item in flight, the newcomer is the only candidate
    tasks = s.sample(3, 2)
    assert len(tasks) == 3
    assert buf.add_children(root, [child("a", "more = 1")], 2) == []
    assert {t.id for t in tasks} == set(buf.id_to_row) and buf.counters["evicted"] == 2
    for t in tasks:
        s.release(t.id)


def test_eviction_ranks_by_the_injected_lp_fn():
    # the buffer alone (no sampler): an injected LP decides who goes; the default is SamplerConfig()'s LP
    buf = EvolvingBuffer(":memory:", BufferConfig(max_per_competition=3),
                         lp_fn=lambda rows: -buf.created_seq[rows].astype(float))  # the NEWEST has the lowest LP
    root = buf.add_roots(["a"])[0]
    first, second = buf.add_children(root, [child("a", "x = 1"), child("a", "y = 1")], 0)
    assert buf.add_children(root, [child("a", "z = 1")], 0) == [] and {first, second} <= set(buf.id_to_row)
    plain = EvolvingBuffer(":memory:")
    plain.add_roots(["a"])
    assert plain.lp_fn(np.array([0])).tolist() == [SamplerConfig().prior_lp]  # unvisited: the prior


class _Recorder:
    """A RowListener that records what the buffer tells it."""

    def __init__(self):
        self.calls = []

    def on_grow(self, cap):
        self.calls.append(("grow", cap))

    def on_blocks_changed(self):
        self.calls.append(("blocks",))

    def on_rows_changed(self, rows):
        self.calls.append(("rows", sorted(rows)))

    def on_row_changed(self, row):
        self.calls.append(("rows", [row]))


def test_statistics_api_writes_the_rows_and_notifies_listeners():
    buf = EvolvingBuffer(":memory:")
    rec = _Recorder()
    buf.add_listener(rec)
    root = buf.add_roots(["a"])[0]
    assert rec.calls == [("grow", 256), ("blocks",), ("rows", [0])]
    kids = buf.add_children(root, [child("a", "x = 1"), child("a", "y = 1")], 0)
    rows = [buf.id_to_row[i] for i in kids]
    buf.mark_sampled(rows + [0])  # drawn in this order: draw counter 0, 1, 2
    assert buf.last_sampled[rows + [0]].tolist() == [0.0, 1.0, 2.0] and buf.draws == 3.0
    assert buf.in_flight[[0] + rows].tolist() == [1, 1, 1]
    buf.mark_sampled([rows[0]])  # a second rollout of the same task
    # one group of 4 with one infra-masked sample: [1, 0, 1] valid → spread p̂(1−p̂) = 2/9, zero-variance [1, 1]
    assert buf.record_group(rows[0], group_stats([1.0, 0.0, 1.0, 0.0], [False, False, False, True]), 4, 5, 0.9) == 1
    assert buf.record_group(rows[0], group_stats([1.0, 1.0]), 2, 7, 0.9) == 0
    r = rows[0]
    assert (buf.n_groups[r], buf.n_samples[r], buf.n_masked[r], buf.n_zero_spread[r]) == (2, 6, 1, 1)
    assert (buf.last_mean[r], buf.last_spread[r]) == (1.0, 0.0)
    # evidence: 3 samples of spread 2/9 at v=5, aged 0.9² by the group of 2 that started at v=7
    n_old = 3 * 0.81
    np.testing.assert_allclose(buf._ev[r], [n_old + 2, n_old * (2 / 9) / (n_old + 2), (n_old * 2 / 3 + 2) / (n_old + 2),
                                            7.0])
    assert buf.release(rows[1]) == 0 and buf.counters["released"] == 1
    assert rec.calls[3:] == [("rows", sorted(rows)), ("rows", sorted(rows + [0])), ("rows", [rows[0]]),
                             ("rows", [r]), ("rows", [r]), ("rows", [rows[1]])]
    assert buf.stats()["zero_spread_share"] == 1.0  # the one visited item's latest group had equal rewards


def test_total_cap_and_oldest_eviction():
    buf = EvolvingBuffer(":memory:", BufferConfig(max_items=4, eviction="oldest"))
    roots = buf.add_roots(["a", "b"])
    first = buf.add_children(roots[0], [child("a", "a1 = 1"), child("a", "a2 = 1")], 0)
    later = buf.add_children(roots[1], [child("b", "b1 = 1")], 1)
    assert first[0] not in buf and first[1] in buf and later[0] in buf and len(buf) == 4
    assert buf.stats()["evicted"] == 1.0


def test_no_buffer_mode_inserts_nothing():
    buf = EvolvingBuffer(":memory:", BufferConfig(mode="no_buffer"))
    root = buf.add_roots(["a"])[0]
    assert buf.add_children(root, [child("a", "x = 1")], 0) == [] and len(buf) == 1
    assert buf.counters["rejected_no_buffer"] == 1


def test_export_and_dataframe(tmp_path):
    cur = Curriculum(":memory:", BufferConfig(), SamplerConfig(), ["a", "b"], batch_size=2)
    cur.buffer.add_children(State("a").id, [child("a", "x = 1", valid=True, score=0.3)], 0)
    df = cur.dataframe()
    assert {"id", "competition_id", "step_type", "parent_id", "depth", "policy_version", "valid", "score",
            "n_groups", "lp", "p_sample", "in_flight"} <= set(df.columns)
    assert df["p_sample"].sum() == pytest.approx(1.0)
    assert df.drop(columns="p_sample").equals(cur.buffer.dataframe())
    for suffix in (".parquet", ".csv"):
        out = cur.export(str(tmp_path / f"snap{suffix}"))
        back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
        assert back["id"].tolist() == df["id"].tolist()
    with pytest.raises(ValueError, match="parquet or .csv"):
        cur.export(str(tmp_path / "snap.json"))
    assert cur.sampler.probabilities().sum() == pytest.approx(1.0)


def _play(cur, steps, v0=0):
    """A deterministic little training loop: sample, report (reward depends on the id), add a child."""
    drawn = []
    for v in range(v0, v0 + steps):
        for t in cur.sample(3, v, first_index=3 * v):
            r = [float((int(t.task_id[:8], 16) + i) % 3 == 0) for i in range(4)]
            kid = child(t.state.competition_id, f"{t.task_id}_{v} = 1", valid=bool(v % 2))
            cur.report(t.task_id, r, [False] * 4, v, [kid], v)
            drawn.append(t.task_id)
    return drawn


def test_uncommitted_work_is_lost_committed_work_reopens_identically(tmp_path):
    path = str(tmp_path / "b.sqlite")
    cur = Curriculum(path, BufferConfig(max_per_competition=8), SamplerConfig(), ["a", "b", "c"], batch_size=3,
                     seed=1)
    _play(cur, 6)
    cur.checkpoint()
    snap = cur.dataframe().drop(columns=["created_at"])
    _play(cur, 3, v0=6)  # not checkpointed: a crash now loses it
    # a second process view of the file (WAL lets it read while the writer is open) = a restart after a crash
    other = Curriculum(path, BufferConfig(max_per_competition=8), SamplerConfig(), ["a", "b", "c"], batch_size=3,
                       seed=999)
    pd.testing.assert_frame_equal(other.dataframe().drop(columns=["created_at"]), snap)
    c = other.buffer.counters
    assert c == {**c, "inserted": snap.shape[0] + c["evicted"]}
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_backup_is_a_self_contained_consistent_copy(tmp_path):
    cur = Curriculum(str(tmp_path / "run" / "b.sqlite"), BufferConfig(), SamplerConfig(), ["a", "b"], batch_size=3,
                     seed=1)
    _play(cur, 4)
    copy = tmp_path / "ckpt" / "buffer.sqlite"
    cur.checkpoint(copy_to=str(copy))
    assert sorted(p.name for p in copy.parent.iterdir()) == ["buffer.sqlite"]
    moved = tmp_path / "elsewhere.sqlite"
    copy.rename(moved)
    again = Curriculum(str(moved), BufferConfig(), SamplerConfig(), ["a", "b"], batch_size=3, seed=5)
    pd.testing.assert_frame_equal(again.dataframe(), cur.dataframe())
    some = again.dataframe()["id"].iloc[-1]
    assert again.buffer.get_state(some) == cur.buffer.get_state(some)


def test_row_storage_grows_keeping_rows_and_views_in_step():
    # evidence is one [rows, 4] matrix and report()'s counters one record per row; the attributes are views of them
    buf = EvolvingBuffer(":memory:")
    root = buf.add_roots(["a"])[0]
    first = buf.add_children(root, [child("a", f"x = {j}") for j in range(10)], 0)
    r = buf.id_to_row[first[3]]
    buf.ev_n[r], buf.ev_version[r], buf.n_groups[r], buf.last_mean[r] = 8.0, 3.0, 2, 0.375
    assert buf._ev[r].tolist() == [8.0, 0.0, 0.0, 3.0]
    cap = buf.capacity
    buf.add_children(root, [child("a", f"y = {j}") for j in range(300)], 0)  # past the first block: storage grows
    assert buf.capacity > cap
    assert (buf.ev_n[r], buf.ev_version[r], buf.n_groups[r], buf.last_mean[r]) == (8.0, 3.0, 2, 0.375)
    assert buf._ev[r].tolist() == [8.0, 0.0, 0.0, 3.0]
    # rows past the filled ones hold the empty-row values (NaN means, competition −1)
    free = buf.capacity - 1
    assert buf.comp[free] == -1 and np.isnan(buf.last_mean[free]) and np.isnan(buf.score[free])
    # the memoryviews record_group() writes through follow the new arrays
    buf._views.ev_mean[r] = 0.5
    buf._views.n_samples[r] += 8
    assert buf.ev_mean[r] == 0.5 and buf._ev[r, 2] == 0.5 and buf.n_samples[r] == 8
