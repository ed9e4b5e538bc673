"""Learnability sampler: probabilities, stratification, in-flight handling, late results, ablation modes,
checkpoint/restore (acelib/curriculum/sampler.py, docs/learnability.md)."""
import numpy as np
import pytest

from acelib.agent.state import State
from acelib.curriculum import BufferConfig, Curriculum, EvolvingBuffer, LearnabilitySampler, SamplerConfig
from acelib.curriculum.learnability import lp_of_evidence


def make_curriculum(n_children=(20, 5, 0), mode="lp", path=":memory:", seed=0, batch_size=8, **sampler_kw):
    """A Curriculum with one competition per entry of n_children: a root plus that many children."""
    comps = [f"c{i}" for i in range(len(n_children))]
    cur = Curriculum(str(path), BufferConfig(mode=mode), SamplerConfig(**sampler_kw), comps, batch_size=batch_size,
                     seed=seed)
    for c, n in zip(comps, n_children):
        cur.buffer.add_children(State(c).id, [State(c, code=f"{c}_{j} = 1", valid=bool(j % 2)) for j in range(n)], 0)
    return cur


def make(n_children=(20, 5, 0), mode="lp", path=":memory:", seed=0, **sampler_kw):
    """make_curriculum's buffer and sampler."""
    cur = make_curriculum(n_children, mode, path, seed, **sampler_kw)
    return cur.buffer, cur.sampler


def h(item_id: str) -> int:
    """A deterministic number per item (ids are hex content hashes; str hash() changes per process)."""
    return int(item_id[:8], 16)


def visit(s, rewards_of, version=0, rounds=3):
    """Report one group for every item (rewards_of(id) → list) so items get evidence."""
    for _ in range(rounds):
        for t in s.sample(len(s.buf), version):
            s.report(t.id, rewards_of(t.id), version)


def test_probabilities_sum_to_one_and_match_the_block_sampler():
    buf, s = make((300, 40, 0), staleness_share=0.0)
    visit(s, lambda i: [1.0, 0.0] * 4 if h(i) % 3 == 0 else [1.0] * 8)
    p = s.probabilities()
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    # single draws (released at once, so nothing changes between draws) follow the exact formula
    n = 6_000
    counts = {}
    for _ in range(n):
        t = s.sample(1, 0)[0]
        counts[t.id] = counts.get(t.id, 0) + 1
        s.release(t.id)
    freq = np.array([counts.get(i, 0) for i in p.index]) / n
    mixed = np.array([h(i) % 3 == 0 for i in p.index])
    comp = np.array([buf.comps[buf.comp[buf.id_to_row[i]]] for i in p.index])
    for group in [mixed, ~mixed] + [comp == c for c in buf.comps]:  # aggregated: noise σ ≤ 0.0065
        assert freq[group].sum() == pytest.approx(p.to_numpy()[group].sum(), abs=0.025)
    assert p[mixed].mean() > 3 * p[~mixed].mean()  # the frontier is preferred


def test_stratification_caps_each_competition_per_batch():
    buf, s = make((300, 40, 0, 0))
    for _ in range(20):
        tasks = s.sample(8, 0)
        comps = [t.competition_id for t in tasks]
        assert len(set(t.id for t in tasks)) == len(tasks)
        assert max(comps.count(c) for c in set(comps)) <= 2  # cap = max(ceil(8·0.25), ceil(8/4)) = 2
        for t in tasks:
            s.release(t.id)
    # two competitions, one with a single item: cap 4, and a batch never repeats a task
    buf, s = make((300, 0))
    tasks = s.sample(8, 0)
    assert sorted(t.competition_id for t in tasks) == ["c0"] * 4 + ["c1"]


def test_in_flight_items_are_not_over_sampled():
    buf, s = make((9,), in_flight_penalty=0.05, staleness_share=0.0)
    t = s.sample(1, 0)[0]
    p = s.probabilities()
    others = p.drop(t.id)
    assert p[t.id] == pytest.approx(0.05 * others.iloc[0])  # all items still at the prior: 5% of the mass
    s.release(t.id)
    assert s.probabilities().std() == pytest.approx(0.0)
    buf, s = make((9,), in_flight_penalty=0.0)
    assert len(s.sample(10, 0)) == 10 and s.sample(5, 0) == []  # nothing left that is not in flight


def _async_run(penalty, latency=40, versions=160):
    """Two tasks per version; the 'slow' item's results come back `latency` versions after it was sampled, the
    others' at once. Rewards are mixed for everyone (all at the frontier)."""
    buf, s = make((9,), in_flight_penalty=penalty)
    slow = sorted(buf.id_to_row)[0]
    pending, sampled_slow, max_in_flight, returned = [], 0, 0, 0
    for v in range(versions):
        for t in s.sample(2, v):
            if t.id == slow:
                sampled_slow += 1
                pending.append((v + latency, t.id, v))
            else:
                s.report(t.id, [1.0, 0.0] * 4, policy_version_started=v)
        max_in_flight = max(max_in_flight, int(buf.in_flight[buf.id_to_row[slow]]))
        for due, tid, v0 in [x for x in pending if x[0] == v]:
            s.report(tid, [1.0, 0.0] * 4, policy_version_started=v0)  # many versions late
            returned += 1
        pending = [x for x in pending if x[0] > v]
    return buf, s, slow, sampled_slow, max_in_flight, returned


def test_slow_items_are_counted_and_not_starved_nor_over_sampled():
    buf, s, slow, n_slow, max_in_flight, returned = _async_run(penalty=0.05)
    r = buf.id_to_row[slow]
    # every late group was counted (no staleness drop): visits and evidence exist
    assert returned >= 3 and buf.n_groups[r] == returned and buf.ev_n[r] > 0
    assert buf.last_spread[r] == pytest.approx(0.25)
    assert s.lp(np.array([r]))[0] > s.config.prior_lp  # its (decayed) evidence moves its LP
    # not starved: it is drawn again soon after each return (about once per latency window)...
    assert n_slow >= 160 // (40 + 15)
    # ...and not over-sampled while its rollouts are out; without in-flight awareness they pile up
    assert max_in_flight <= 2
    *_, max_unaware, _ = _async_run(penalty=1.0)
    assert max_unaware >= 2 * max_in_flight + 1


def test_ablation_modes_behave_as_named():
    def rewards(i):
        return [1.0, 0.0] * 4 if h(i) % 2 else [0.0] * 8

    buf, s = make((30, 10), mode="uniform")
    visit(s, rewards)
    p = s.probabilities()
    assert p.to_numpy() == pytest.approx(np.full(len(p), 1 / len(p)))
    buf, s = make((30, 10), mode="lp")
    visit(s, rewards)
    assert s.probabilities().std() > 1e-3
    buf = EvolvingBuffer(":memory:", BufferConfig(mode="no_buffer"))
    s = LearnabilitySampler(buf, SamplerConfig(), seed=0)
    root = buf.add_roots(["a", "b"])[0]
    assert buf.add_children(root, [State("a", code="x = 1")], 0) == [] and len(buf) == 2
    t = s.sample(1, 0)[0]
    s.report(t.id, [1.0, 0.0] * 4, 0)
    p = s.probabilities()
    assert p[t.id] > p.drop(t.id).iloc[0]  # still learnability-weighted over the roots


def test_checkpoint_restore_gives_identical_subsequent_samples(tmp_path):
    def play(s, versions):
        ids = []
        for v in versions:
            tasks = s.sample(4, v)
            for t in tasks:
                s.report(t.id, [float((h(t.id) + v + j) % 3 == 0) for j in range(6)], v)
                s.buf.add_children(t.id, [State(t.competition_id, code=f"{t.id}_{v}", valid=bool(v % 2))], v)
            ids.append([t.id for t in tasks])
        return ids

    cur = make_curriculum((5, 5, 5), path=tmp_path / "b.sqlite", seed=3)
    s = cur.sampler
    play(s, range(10))
    copy = tmp_path / "ckpt.sqlite"
    cur.checkpoint(copy_to=str(copy))
    live = play(s, range(10, 30))
    # a different seed: the RNG state comes from the checkpoint (the sampler's meta in the buffer's transaction)
    cur2 = Curriculum(str(copy), BufferConfig(), SamplerConfig(), ["c0", "c1", "c2"], batch_size=8, seed=12345)
    assert play(cur2.sampler, range(10, 30)) == live
    np.testing.assert_allclose(cur2.sampler.probabilities().to_numpy(), s.probabilities().to_numpy(), rtol=1e-12)


def test_resume_with_another_mode_is_refused(tmp_path):
    make_curriculum((3,), path=tmp_path / "b.sqlite").close()
    with pytest.warns(UserWarning, match="resuming with"):
        with pytest.raises(ValueError, match="same BufferConfig.mode"):
            Curriculum(str(tmp_path / "b.sqlite"), BufferConfig(mode="uniform"), SamplerConfig(), ["c0"], batch_size=8)
    # other reward units: allowed (the old spreads decay away), but visible
    with pytest.warns(UserWarning, match="spreads measured with"):
        Curriculum(str(tmp_path / "b.sqlite"), BufferConfig(), SamplerConfig(), ["c0"], batch_size=8,
                   reward_bounds=(-1.0, 1.6))


def test_report_and_release_errors():
    buf, s = make((3,))
    with pytest.raises(KeyError, match="returned by sample"):
        s.report("nope", [1.0], 0)
    with pytest.raises(ValueError, match="no rollout in flight"):
        s.release(next(iter(buf.id_to_row)))
    with pytest.raises(ValueError, match="already has a sampler"):
        LearnabilitySampler(buf)
    with pytest.raises(ValueError, match="RewardConfig.bounds"):
        LearnabilitySampler(EvolvingBuffer(":memory:"), reward_bounds=(1.0, 1.0))


class _Uniforms:
    """Stands in for the sampler's RNG: random(n) returns the next n given values."""

    def __init__(self, values):
        self.values = list(values)

    def random(self, n):
        out, self.values = self.values[:n], self.values[n:]
        return np.array(out)


def test_draw_in_a_block_goes_sub_block_then_row():
    # uniform mode: every available item has the same mass. Root + 20 children fill rows 0..20 of block 0, i.e.
    # sub-block 0 (rows 0..15, 16 items) and sub-block 1 (rows 16..20, 5 items)
    buf, s = make((20,), mode="uniform", in_flight_penalty=0.0)
    assert sorted(buf.id_to_row.values()) == list(range(21))
    s._sync()  # the inserted rows' terms are refreshed lazily, before the sums are read
    block = np.array([0, 0, 0])
    # u·21 = 0 → row 0; 18.9 → sub-block 1 (16 ≤ 18.9 < 21), 2.9 of its 5 items → row 18; 20.979 → row 20
    s.rng = _Uniforms([0.0, 0.9, 0.999])
    rows, ok = s._draw_in_blocks(block, s._coefficients())
    assert rows.tolist() == [0, 18, 20] and ok.all()
    # row 18 in flight (penalty 0: no mass): u·20 = 18.6 → sub-block 1, 2.6 of its 4 items → past row 18, to 19
    buf.in_flight[18] = 1  # (by hand: the buffer's own writers notify the sampler)
    s._refresh_rows(np.array([18]))
    s.rng = _Uniforms([0.93])
    rows, ok = s._draw_in_blocks(block[:1], s._coefficients())
    assert rows.tolist() == [19] and ok.all()
    # a block with no mass: flagged, the caller redraws
    buf.in_flight[:21] = 1
    s._refresh_rows(np.arange(21))
    s.rng = _Uniforms([0.5])
    assert not s._draw_in_blocks(block[:1], s._coefficients())[1].any()


def test_terms_refreshed_lazily_equal_a_full_rebuild():
    buf, s = make((300, 40, 0))
    tasks = s.sample(20, 0)
    for i, t in enumerate(tasks):
        if i % 4:
            s.report(t.id, [1.0, 0.0, 1.0, 1.0] if i % 2 else [0.0] * 4, 0)
        else:
            s.release(t.id)
    buf.add_children(tasks[0].id, [State(tasks[0].competition_id, code="late = 1")], 0)  # an insert, notified too
    assert s._stale  # report/release/insert only record the row; sums catch up before they are read
    p = s.probabilities()
    assert not s._stale
    terms, block_sums, sub_sums = s.terms.copy(), s.block_sums.copy(), s.sub_sums.copy()
    s.rebuild()
    np.testing.assert_allclose(terms, s.terms, rtol=1e-12)
    np.testing.assert_allclose(block_sums, s.block_sums, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sub_sums, s.sub_sums, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.to_numpy(), s.probabilities().to_numpy(), rtol=1e-12)


def test_each_rollout_in_flight_is_reported_or_released_once():
    buf, s = make((0,), in_flight_penalty=1.0)  # one item, the root; drawn again while in flight
    t1, t2 = s.sample(1, 0)[0], s.sample(1, 0)[0]
    r = buf.id_to_row[t1.id]
    assert t1.id == t2.id and buf.in_flight[r] == 2
    s.report(t1.id, [1.0, 0.0], 0)
    s.release(t2.id)
    assert buf.in_flight[r] == 0 and buf.n_groups[r] == 1 and buf.counters["released"] == 1
    with pytest.raises(ValueError, match="no rollout in flight"):
        s.report(t1.id, [1.0, 0.0], 0)


def test_lp_of_evidence_from_the_evidence_matrix():
    buf, s = make((2,))
    r = buf.id_to_row[sorted(buf.id_to_row)[0]]
    # one group [1,0,1,1,0,0,0,0] at version 3: n = 8, S = 0.234375, M = 0.375
    buf.ev_n[r], buf.ev_spread[r], buf.ev_mean[r], buf.ev_version[r] = 8.0, 0.234375, 0.375, 3.0

    def lp(rows, version):
        return lp_of_evidence(buf.ev_n[rows], buf.ev_spread[rows], buf.ev_mean[rows], buf.ev_version[rows],
                              SamplerConfig(), version)

    # LP_e = (2·0.07 + 8·0.234375)/10 = 0.2015; 10 versions later: 0.07 + 0.1315·0.99^10
    assert s.lp(np.array([r]))[0] == pytest.approx(0.2015)  # the sampler is at version 0 < v_e: no decay
    assert lp(np.array([r]), 3)[0] == pytest.approx(0.2015)
    assert lp(np.array([r]), 13)[0] == pytest.approx(0.07 + 0.1315 * 0.99 ** 10)
    others = [x for x in range(3) if x != r]
    np.testing.assert_allclose(lp(np.array(others), 13), [0.07, 0.07])
    assert buf.lp_fn == s.lp  # the Curriculum wires the sampler's LP into eviction and stats


def test_quality_only_groups_are_sampled_like_validity_flips():
    # review F4: on the [−1, 1.6] ladder an all-valid group whose quality differs must weigh like an
    # invalid/valid group of the same normalised spread, and more than an unvisited item (std-normalised GRPO)
    cur = Curriculum(":memory:", BufferConfig(), SamplerConfig(staleness_share=0.0), ["a", "b", "c"], batch_size=3,
                     reward_bounds=(-1.0, 1.6))
    tasks = {t.state.competition_id: t for t in cur.sample(3, 0, 0)}
    cur.report(tasks["a"].task_id, [1.1, 0.9] * 4, [False] * 8, 0, [], 0)
    cur.report(tasks["b"].task_id, [0.2, 1.0] * 4, [False] * 8, 0, [], 0)
    cur.release(tasks["c"].task_id)
    df = cur.dataframe().set_index("competition_id")
    # LP = (2·0.07 + 8·0.25)/10 = 0.214 for both; the unvisited one keeps the prior 0.07
    assert df.loc["a", "lp"] == pytest.approx(0.214) and df.loc["b", "lp"] == pytest.approx(0.214)
    assert df.loc["c", "lp"] == pytest.approx(0.07)
    assert df.loc["a", "p_sample"] == pytest.approx(df.loc["b", "p_sample"])
    # (0.214/0.07)^6 ≈ 816× the weight: only the uniform share (5%, a third each) reaches "c"
    assert df.loc["a", "p_sample"] > 10 * df.loc["c", "p_sample"]
