"""Curriculum: the per-competition cap per learner batch (any acquire size), admission indices, release, resume,
picklable values (acelib/curriculum/curriculum.py, docs/learnability.md)."""
import collections
import pickle

import pytest

from acelib.agent.state import State
from acelib.curriculum import BufferConfig, Curriculum, SamplerConfig, TaskAssignment


def kids(comp: str, n: int, tag: str = "") -> list[State]:
    return [State(comp, code=f"{comp}_{tag}{j} = 1", valid=bool(j % 2)) for j in range(n)]


def dominated(path=":memory:", batch_size=8, seed=0) -> Curriculum:
    """Four competitions; c0 has 200 children whose groups are all at the frontier (LP 0.214), the others a root and
    3 children each whose groups were all equal (LP 0.014): c0 holds nearly all of the LP mass."""
    comps = ["c0", "c1", "c2", "c3"]
    cur = Curriculum(str(path), BufferConfig(), SamplerConfig(), comps, batch_size=batch_size, seed=seed)
    for c, n in zip(comps, (200, 3, 3, 3)):
        cur.buffer.add_children(State(c).id, kids(c, n), 0)
    s = cur.sampler
    for _ in range(3):
        for t in s.sample(len(cur.buffer), 0):
            s.report(t.id, [1.0, 0.0] * 4 if t.competition_id == "c0" else [0.0] * 8, 0)
    return cur


def per_batch(assignments: list[TaskAssignment], batch_size: int) -> dict[int, collections.Counter]:
    out: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for a in assignments:
        out[a.index // batch_size][a.state.competition_id] += 1
    return out


def test_cap_holds_per_learner_batch_with_k1_acquires():
    cur = dominated()
    p = cur.dataframe().groupby("competition_id")["p_sample"].sum()
    assert p["c0"] > 0.85  # even with the uniform and staleness shares
    got = []
    for i in range(80):  # async admission: one group at a time, each reported before the next is admitted
        (a,) = cur.sample(1, policy_version=1, first_index=i)
        assert a.index == i and a.policy_version == 1
        got.append(a)
        cur.report(a.task_id, [1.0, 0.0] * 4, [False] * 8, 1, [], 1)
    batches = per_batch(got, 8)
    # cap = max(ceil(8·0.25), ceil(8/4)) = 2: c0 gets at most 2 of every batch, whatever its LP mass
    assert len(batches) == 10 and all(sum(b.values()) == 8 for b in batches.values())
    assert all(max(b.values()) <= 2 for b in batches.values())
    # the same k=1 draws through the per-call cap alone (what the trainer had): c0 fills most of each batch
    per_call = [cur.sampler.sample(1, 1)[0] for _ in range(8)]
    assert sum(t.competition_id == "c0" for t in per_call) > 4


def test_cap_holds_across_calls_of_any_size_that_straddle_batches():
    cur = dominated(batch_size=8, seed=1)
    got, index = [], 0
    for k in [3, 5, 2, 7, 1, 6, 4, 4, 8]:  # calls that start and end inside batches
        out = cur.sample(k, policy_version=1, first_index=index)
        assert [a.index for a in out] == list(range(index, index + len(out)))
        assert len(out) == k
        index += len(out)
        got += out
        for a in out:
            cur.report(a.task_id, [1.0, 0.0] * 4, [False] * 8, 1, [], 1)
    assert all(max(b.values()) <= 2 for b in per_batch(got, 8).values())


def test_a_full_batch_returns_fewer_with_contiguous_indices():
    # "a" has one task, "b" many; cap = max(ceil(8·0.25), ceil(8/2)) = 4 per batch of 8
    cur = Curriculum(":memory:", BufferConfig(), SamplerConfig(), ["a", "b"], batch_size=8)
    cur.buffer.add_children(State("b").id, kids("b", 30), 0)
    first = cur.sample(8, 0, first_index=0)
    assert [a.index for a in first] == [0, 1, 2, 3, 4]  # 1 of "a" (a call returns distinct tasks) + 4 of "b"
    assert collections.Counter(a.state.competition_id for a in first) == {"a": 1, "b": 4}
    a_id = next(a.task_id for a in first if a.state.competition_id == "a")
    # "b" is full in this batch; "a"'s one task (in flight, 5% of its mass) is drawn again, once per call
    for i in (5, 6, 7):  # asking for the rest of the batch gives one task
        assert [(a.index, a.task_id) for a in cur.sample(8 - i, 0, first_index=i)] == [(i, a_id)]
    assert cur.buffer.in_flight[cur.buffer.id_to_row[a_id]] == 4
    assert collections.Counter(a.state.competition_id for a in cur.sample(8, 0, first_index=8)) == {"a": 1, "b": 4}


def test_a_competition_without_mass_does_not_count_for_the_cap():
    # in_flight_penalty=0: "a"'s only task is out, so "a" has no mass and the cap is ceil(8/1) = 8 for "b"
    cur = Curriculum(":memory:", BufferConfig(), SamplerConfig(in_flight_penalty=0.0), ["a", "b"], batch_size=8)
    cur.buffer.add_children(State("b").id, kids("b", 30), 0)
    first = cur.sample(5, 0, first_index=0)
    assert collections.Counter(a.state.competition_id for a in first) == {"a": 1, "b": 4}
    rest = cur.sample(3, 0, first_index=5)
    assert [a.index for a in rest] == [5, 6, 7] and {a.state.competition_id for a in rest} == {"b"}


def test_release_frees_the_batch_slot_of_its_competition():
    # two competitions, B = 4: cap = max(ceil(4·0.25), ceil(4/2)) = 2, so a batch is exactly 2 + 2
    cur = Curriculum(":memory:", BufferConfig(), SamplerConfig(), ["a", "b"], batch_size=4)
    for c in ("a", "b"):
        cur.buffer.add_children(State(c).id, kids(c, 10), 0)
    batch = cur.sample(4, 0, first_index=0)
    assert collections.Counter(a.state.competition_id for a in batch) == {"a": 2, "b": 2}
    gone = next(a for a in batch if a.state.competition_id == "a")
    cur.release(gone.task_id)
    # the driver gives the slot back (index 3 again): only "a" has room left in this batch
    (refill,) = cur.sample(1, 0, first_index=3)
    assert refill.state.competition_id == "a" and cur.buffer.counters["released"] == 1
    assert cur.sample(1, 0, first_index=4) != []  # next batch
    with pytest.raises(KeyError, match="returned by sample"):
        cur.report("nope", [1.0], [False], 0, [], 0)


def test_resume_from_a_checkpoint_copy_repeats_the_same_assignments(tmp_path):
    def play(cur, steps, first_step):
        out = []
        for step in range(first_step, first_step + steps):  # async-style: k=1 acquires, B = 4 per learner step
            for i in range(4):
                (a,) = cur.sample(1, step, first_index=4 * step + i)
                r = [float((int(a.task_id[:8], 16) + step + j) % 3 == 0) for j in range(4)]
                children = [State(a.state.competition_id, code=f"{a.task_id}_{step}", valid=bool(step % 2))]
                inserted = cur.report(a.task_id, r, [False] * 4, step, children, step)
                out.append((a.index, a.task_id, tuple(inserted)))
        return out

    cur = Curriculum(str(tmp_path / "run.sqlite"), BufferConfig(), SamplerConfig(), ["a", "b", "c"], batch_size=4,
                     seed=7)
    play(cur, 5, 0)
    cur.checkpoint(copy_to=str(tmp_path / "step5.sqlite"))
    live = play(cur, 6, 5)
    # a new process resumes from the copy; the driver restarts its indices at steps_done · B = 20
    again = Curriculum(str(tmp_path / "step5.sqlite"), BufferConfig(), SamplerConfig(), ["a", "b", "c"],
                       batch_size=4, seed=0)
    assert play(again, 6, 5) == live
    assert again.stats() == cur.stats()


def test_values_crossing_ray_are_picklable_and_typed(tmp_path):
    args = (str(tmp_path / "b.sqlite"), BufferConfig(), SamplerConfig(), ["a"], [State("a", code="x = 1", valid=True)])
    cur = Curriculum(*pickle.loads(pickle.dumps(args)), batch_size=2, reward_bounds=(-1.0, 1.6))
    (a,) = cur.sample(1, 3, first_index=0)
    back = pickle.loads(pickle.dumps(a))
    assert back == a and isinstance(back.state, State) and back.policy_version == 3 and back.index == 0
    inserted = cur.report(a.task_id, [1.0, 0.0], [False, False], 3, [State("a", code="y = 2", valid=True)], 4)
    assert isinstance(inserted, list) and all(isinstance(i, str) for i in inserted)
    assert cur.buffer.get_state(inserted[0]).parent_id == a.task_id
    stats = pickle.loads(pickle.dumps(cur.stats()))
    assert stats["size"] == 3.0 and stats["inserted"] == 3.0
    cur.close()
    with pytest.raises(ValueError, match="batch_size"):
        Curriculum(":memory:", BufferConfig(), SamplerConfig(), ["a"], batch_size=0)
