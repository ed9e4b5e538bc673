"""The run's headline: first third vs last third of the steps, valid rate on debug + improve, z-test."""
import json
import math

import pytest

from acelib.trainer.summary import headline, main, report


def _row(step, debug_n, debug_valid, improve_n=0, improve_valid_changed=0, draft_n=0):
    return {"step": step, "samples/debug": debug_n, "samples/valid_changed/debug": debug_valid,
            "samples/improve": improve_n, "samples/valid_changed/improve": improve_valid_changed,
            "samples/draft": draft_n, "samples/valid_changed/draft": 0, "rate/identical_to_parent": 0.25}


def test_thirds_rates_and_the_two_sided_z_test_by_hand():
    # 6 steps: first third = steps 1-2 (4 of 32 valid), last third = steps 5-6 (20 of 32); middle ignored
    rows = [_row(1, 8, 1, 8, 1), _row(2, 8, 1, 8, 1), _row(3, 16, 16), _row(4, 16, 0),
            _row(5, 8, 5, 8, 5), _row(6, 8, 5, 8, 5, draft_n=8)]
    h = headline(rows)
    assert h["steps"] == 6 and h["thirds_of"] == 2
    assert h["valid_rate_first_third"] == 4 / 32 and h["valid_rate_last_third"] == 20 / 32
    p1, p2, pooled = 4 / 32, 20 / 32, 24 / 64          # pooled two-proportion z statistic
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (2 / 32))
    assert h["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)   # two-sided normal tail
    assert h["debug_valid_rate_first_third"] == 2 / 16 and h["improve_valid_rate_last_third"] == 10 / 16
    assert h["draft_valid_rate_last_third"] == 0.0 and h["draft_valid_rate_first_third"] is None
    text = report({**h, "run_dir": "/r", "mlflow_run_id": "abc"})
    assert "12% in the first third of 6 steps → 62% in the last third" in text and "a significant rise" in text


def test_no_signal_has_no_p_value_and_says_so(tmp_path, capsys):
    rows = [_row(s, 8, 0) for s in range(1, 4)]
    h = headline(rows)
    assert h["p_value"] is None and h["valid_rate_first_third"] == 0.0
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"mlflow_run_id": "r1"}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main([str(run)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    out = json.loads(last)                                   # the last line is one JSON object
    assert {"steps", "valid_rate_first_third", "valid_rate_last_third", "p_value", "run_dir",
            "mlflow_run_id"} <= set(out) and out["steps"] == 3 and out["mlflow_run_id"] == "r1"
    main(["--json", str(run)])                               # what `make train` prints after the notebook's report
    assert [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()] == [out]


def _probe(step, valid, samples, by_kind):
    return {"step": step, "policy_version": step, "valid": valid, "samples": samples,
            "valid_rate": valid / samples, "by_kind": by_kind}


def test_probe_before_vs_after_by_hand(tmp_path, capsys):
    from acelib.trainer.summary import probe_headline
    probes = [_probe(12, 22, 32, {"header": [6, 16], "file_name": [16, 16]}),   # written out of order: sorted
              _probe(0, 8, 32, {"header": [0, 16], "file_name": [8, 16]}),
              _probe(6, 15, 32, {"header": [3, 16], "file_name": [12, 16]})]
    h = probe_headline(probes)
    assert h["probe_valid_rate_before"] == 8 / 32 and h["probe_valid_rate_after"] == 22 / 32
    assert h["probe_curve"] == [[0, 8 / 32], [6, 15 / 32], [12, 22 / 32]] and h["probe_steps"] == 12
    p1, p2, pooled = 8 / 32, 22 / 32, 30 / 64
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (2 / 32))
    assert h["probe_p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert h["probe_by_kind"] == {"header": [0.0, 6 / 16], "file_name": [0.5, 1.0]}
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"mlflow_run_id": "r1"}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(_row(s, 8, 2)) + "\n" for s in range(1, 13)))
    (run / "probe.jsonl").write_text("".join(json.dumps(p) + "\n" for p in probes))
    main([str(run)])
    out = capsys.readouterr().out
    assert "fixed probe tasks (never trained on): 25% valid before RL → 69% after 12 steps" in out
    assert "a significant rise" in out and "header 0% → 38%" in out
    last = json.loads(out.strip().splitlines()[-1])
    assert last["probe_p_value"] == pytest.approx(h["probe_p_value"])


def test_a_significant_fall_reads_as_one_and_noise_as_no_change():
    # the 2026-12-07 default run: probe 18/48 -> 1/48 (p = 1.3e-5), rollouts 10/32 -> 9/32 (p = 0.78)
    from acelib.trainer.summary import probe_headline
    h = probe_headline([_probe(0, 18, 48, {}), _probe(12, 1, 48, {})])
    rollouts = headline([_row(s, 8, v) for s, v in zip(range(1, 13), [0, 2, 8, 0, 0, 8, 7, 1, 1, 3, 3, 2])])
    assert rollouts["valid_rate_first_third"] == 10 / 32 and rollouts["valid_rate_last_third"] == 9 / 32
    text = report({**rollouts, **h, "run_dir": "/r", "mlflow_run_id": "abc"})
    assert "38% valid before RL → 2% after 12 steps" in text and "a significant fall" in text
    assert "(32 vs 32 responses; two-sided p = 0.784): no significant change" in text


def test_no_probe_before_rl_means_no_probe_headline():
    from acelib.trainer.summary import probe_headline
    assert probe_headline([])["probe_p_value"] is None
    h = probe_headline([_probe(4, 3, 8, {"typo": [3, 8]}), _probe(8, 5, 8, {"typo": [5, 8]})])   # resumed late
    assert h["probe_valid_rate_before"] is None and h["probe_curve"] == [[4, 3 / 8], [8, 5 / 8]]
    assert "fixed probe tasks" not in report({**headline([_row(1, 8, 1)] * 3), **h, "run_dir": "/r",
                                              "mlflow_run_id": "x"})


def test_probe_before_after_prefers_a_task_that_became_valid(tmp_path):
    from acelib.trainer.summary import probe_before_after

    def row(step, outcomes, texts):
        return {**_probe(step, 0, 4, {}), "tasks": [["a", "header"], ["b", "file_name"], ["c", "makedirs"]],
                "outcomes": outcomes, "texts": texts}
    rows = [row(0, [["valid"], ["error"], ["error"]], ["a0", "b0", "c0"]),
            row(4, [["valid"], ["valid"], ["format_error"]], ["a4", "b4", "c4"])]
    (tmp_path / "probe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = probe_before_after(tmp_path, pairs=2)
    assert [p["competition_id"] for p in pairs] == ["b", "c"]   # became valid first, then changed outcome
    assert pairs[0]["before_response"] == "b0" and pairs[0]["after_response"] == "b4"
    assert pairs[0]["after_outcome"] == "valid" and pairs[0]["bug_kind"] == "file_name" and pairs[0]["after_step"] == 4


def test_valid_copies_of_an_improve_parent_do_not_count_and_the_report_says_so():
    # seed-1 CPU run (2026-12-07): steps 9-11 were improve tasks answered valid 7, 8, 7 of 8 times, all by copying
    # the parent; the step lines said "valid 0.88", the closing line 0%
    rows = [{"step": s, "samples/improve": 8.0, "samples/valid/improve": 7.0, "samples/valid_changed/improve": 0.0,
             "rate/identical_to_parent": 1.0} for s in (1, 2, 3)]
    h = headline(rows)
    assert h["valid_rate_last_third"] == 0.0 and h["identical_to_parent_share"] == 1.0
    assert h["updates"] == 3   # no zero-variance share logged: every step counts as an update
    text = report({**h, "run_dir": "/r", "mlflow_run_id": "abc"})
    assert "a copy of the parent's script counts as not valid" in text and "policy updates: 3 of 3 steps" in text
    rows[1]["groups/zero_variance_share"] = 1.0
    assert headline(rows)["updates"] == 2


# ---- the stratified headline: groups recorded per step, strata = (task kind, root seed's mutation kind)
SEEDS = {"h1": {"kind": "header"}, "f1": {"kind": "file_name"}, "b1": {"kind": "baseline"}}
PARENTS = {"h1": None, "f1": None, "b1": None, "h1-c": "h1", "h1-cc": "h1-c", "f1-c": "f1", "d0": None, "d0-c": "d0"}


def _grow(step, groups):
    """A metrics row whose step consumed `groups` = [(task id, step type, samples, valid_changed)]."""
    return {"step": step, "groups": [{"task_id": t, "step_type": k, "samples": n, "valid_changed": v}
                                     for t, k, n, v in groups]}


def test_roots_follow_the_parent_links():
    from acelib.trainer.summary import roots
    assert roots(PARENTS) == {"h1": "h1", "f1": "f1", "b1": "b1", "h1-c": "h1", "h1-cc": "h1", "f1-c": "f1",
                              "d0": "d0", "d0-c": "d0"}


def test_a_shift_to_easier_tasks_is_a_rise_only_without_strata():
    """Simpson's paradox: within each bug kind the rate is the same in both thirds (header 1/8, file_name 6/8), but
    the first third drew mostly header tasks and the last mostly file_name: the pooled test sees a rise, CMH none."""
    from acelib.trainer.summary import stratified_headline
    first = [("h1", "debug", 8, 1), ("h1-c", "debug", 8, 1), ("h1-cc", "debug", 8, 1), ("f1", "debug", 8, 6)]
    last = [("f1", "debug", 8, 6), ("f1-c", "debug", 8, 6), ("f1", "debug", 8, 6), ("h1-c", "debug", 8, 1)]
    rows = [_grow(1, first[:2]), _grow(2, first[2:]), _grow(3, []), _grow(4, []), _grow(5, last[:2]),
            _grow(6, last[2:])]
    pooled = headline([{"step": r["step"], "samples/debug": sum(g["samples"] for g in r["groups"]),
                        "samples/valid_changed/debug": sum(g["valid_changed"] for g in r["groups"])} for r in rows])
    assert pooled["p_value"] < 0.05 and pooled["valid_rate_last_third"] > pooled["valid_rate_first_third"]
    s = stratified_headline(rows, PARENTS, SEEDS)
    assert s["strata"] == {"debug/header": [3, 24, 1, 8], "debug/file_name": [6, 8, 18, 24]}
    assert s["p_value_stratified"] == pytest.approx(1.0) and s["odds_ratio_stratified"] == pytest.approx(1.0)
    assert s["stratified_excess_valid"] == pytest.approx(0.0, abs=1e-12) and s["stratified_samples"] == 64


def test_strata_without_variance_are_left_out_of_the_test_and_the_counts():
    """Run J's case: header tasks never solved (0/20, 0/8) carry nothing; file_name 11/12 -> 12/24 is the test."""
    from acelib.trainer.summary import stratified_headline
    rows = [_grow(1, [("h1", "debug", 20, 0), ("f1", "debug", 12, 11)]), _grow(2, []),
            _grow(3, [("h1-c", "debug", 8, 0), ("f1-c", "debug", 24, 12)])]
    s = stratified_headline(rows, PARENTS, SEEDS)
    assert (s["stratified_strata"], s["stratified_samples"]) == (1, 36) and s["stratified_excess_valid"] < 0
    a, n2, c, n1 = 12, 24, 11, 12
    big, m = n1 + n2, a + c
    stat = (a - n2 * m / big) ** 2 / (n1 * n2 * m * (big - m) / (big ** 2 * (big - 1)))
    assert s["p_value_stratified"] == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)


def test_cochran_mantel_haenszel_by_hand():
    from acelib.trainer.summary import report, stratified_headline
    first = [("h1-c", "debug", 8, 1), ("b1", "improve", 4, 1), ("d0-c", "debug", 4, 0)]
    last = [("h1-cc", "debug", 8, 5), ("b1", "improve", 4, 3), ("f1-c", "debug", 4, 4), ("d0", "draft", 4, 4)]
    rows = [_grow(1, first), _grow(2, []), _grow(3, last)]
    s = stratified_headline(rows, PARENTS, SEEDS)
    # debug/file_name appears only in the last third, debug/draft root only in the first, draft tasks never count
    assert s["strata"] == {"debug/header": [1, 8, 5, 8], "improve/baseline": [1, 4, 3, 4],
                           "debug/draft root": [0, 4, 0, 0], "debug/file_name": [0, 0, 4, 4]}
    assert (s["stratified_strata"], s["stratified_samples"]) == (2, 24)
    # per stratum: a = valid in the last third, E[a] = n_last * valid / N, Var = n_last n_first valid invalid /
    # (N^2 (N - 1)); statistic = (sum(a - E))^2 / sum(Var), chi-squared with 1 degree of freedom
    tables = [(5, 8, 1, 8), (3, 4, 1, 4)]     # (valid last, n last, valid first, n first)
    excess = var = 0.0
    for a, n2, c, n1 in tables:
        big, m = n1 + n2, a + c
        excess += a - n2 * m / big
        var += n1 * n2 * m * (big - m) / (big ** 2 * (big - 1))
    stat = excess ** 2 / var
    assert s["stratified_excess_valid"] == pytest.approx(excess)
    assert s["p_value_stratified"] == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)   # chi2(1) tail
    mh = (5 * 7 / 16 + 3 * 3 / 8) / (3 * 1 / 16 + 1 * 1 / 8)   # sum(a d / N) / sum(b c / N)
    assert s["odds_ratio_stratified"] == pytest.approx(mh)
    line = report({**headline([{"step": i} for i in range(1, 4)]), **s, "run_dir": "/r", "mlflow_run_id": "x"})
    assert "Cochran-Mantel-Haenszel over 2 strata with responses in both thirds and some variance, 24 responses" in line
    assert f"p = {s['p_value_stratified']:.3g}" in line


def test_runs_without_group_records_have_no_stratified_test():
    from acelib.trainer.summary import stratified_headline
    s = stratified_headline([{"step": i, "samples/debug": 8} for i in range(1, 7)], PARENTS, SEEDS)
    assert s["p_value_stratified"] is None and s["strata"] == {}


# ---- several runs pooled (`--pool`): one test each, strata kept per run
def _run(path, rows, seeds, probes=()):
    path.mkdir()
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "seeds.json").write_text(json.dumps(seeds))
    (path / "probe.jsonl").write_text("".join(json.dumps(p) + "\n" for p in probes))
    return path


def test_pooled_runs_keep_their_strata_apart_and_the_probe_test_by_hand(tmp_path, capsys):
    from acelib.trainer.summary import pooled_summary
    seeds = {"h1": {"kind": "header"}, "h2": {"kind": "header"}}
    # run a solves header tasks 1 in 8 in both thirds, run b 3 in 4: no change within either run. Merged by
    # stratum name the first third would be 19/32 and the last 9/32, a fall that neither run shows.
    a = _run(tmp_path / "a", [_grow(1, [("h1", "debug", 8, 1)]), _grow(2, []), _grow(3, [("h2", "debug", 24, 3)])],
             seeds, [_probe(0, 2, 8, {"header": [2, 8]}), _probe(3, 6, 8, {"header": [6, 8]})])
    b = _run(tmp_path / "b", [_grow(1, [("h1", "debug", 24, 18)]), _grow(2, []), _grow(3, [("h2", "debug", 8, 6)])],
             seeds, [_probe(0, 4, 8, {"file_name": [4, 8]}), _probe(3, 4, 8, {"file_name": [4, 8]})])
    old = _run(tmp_path / "old", [{"step": s, "samples/debug": 8} for s in (1, 2, 3)], {})   # no groups, no probe
    p = pooled_summary([a, b, old])
    assert p["rollouts_counts"] == {"a/debug/header": [1, 8, 3, 24], "b/debug/header": [18, 24, 6, 8]}
    assert (p["rollouts_valid_first"], p["rollouts_samples_first"], p["rollouts_valid_last"]) == (19, 32, 9)
    assert p["rollouts_p_value"] == pytest.approx(1.0) and p["rollouts_excess_valid"] == pytest.approx(0.0, abs=1e-12)
    assert p["rollouts_missing"] == ["old"] and p["probe_missing"] == ["old"]
    # probe: a 2/8 -> 6/8 (E[after] = 4, Var = 8*8*8*8 / (16^2 * 15)), b 4/8 -> 4/8 (E = 4, same Var)
    var = 8 * 8 * 8 * 8 / (16 ** 2 * 15)
    stat = (6 - 4 + 4 - 4) ** 2 / (2 * var)
    assert p["probe_p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)
    assert (p["probe_valid_before"], p["probe_valid_after"], p["probe_strata"]) == (6, 10, 2)
    main(["--pool", str(a), str(b)])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "2 runs: a, b" and "probe, before RL → after the last step: 6/16 → 10/16 valid" in out[2]
    assert json.loads(out[-1])["probe_p_value"] == pytest.approx(p["probe_p_value"])
    assert p["probe_shared_before"] == []
    rerun = _run(tmp_path / "rerun", [], seeds, [{**_probe(0, 2, 8, {"header": [2, 8]}), "cached": True},
                                                 _probe(3, 5, 8, {"header": [5, 8]})])
    assert pooled_summary([a, b, rerun])["probe_shared_before"] == [["a", "rerun"]]   # a's before, from the cache
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        pooled_summary([tmp_path])


def test_a_significant_change_without_a_policy_update_is_named_the_task_mix():
    """Run 3 of 2026-12-07 (seed 1): every group had zero variance, so the policy never changed, yet its rollouts
    fell 50% -> 0% (LP moved from tasks it always solves to ones it never does)."""
    rows = [_row(s, 8, v) for s, v in zip(range(1, 7), (8, 8, 4, 4, 0, 0))]
    for r in rows:
        r["groups/zero_variance_share"] = 1.0
    h = headline(rows)
    assert h["updates"] == 0 and h["p_value"] < 0.05
    text = report({**h, "run_dir": "/r", "mlflow_run_id": "x"})
    assert "a significant fall" in text and "no policy update in this run" in text
    rows[2]["groups/zero_variance_share"] = 0.0                      # one update: the report makes no such claim
    assert "no policy update" not in report({**headline(rows), "run_dir": "/r", "mlflow_run_id": "x"})
