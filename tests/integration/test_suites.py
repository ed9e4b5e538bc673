"""Prepare every offline mini-competition, run its reference solution in the sandbox under the agent program
contract and grade it: valid, above the leaderboard median, not gold. Its compact baseline must be valid too, and
a sample of the baseline's mutations (one per competition, every kind) must break it. Also checks the layout, the
cache and byte-for-byte reproducibility.

Competitions are prepared into the default cache (`$ACELIB_CACHE_DIR` or ~/.cache/acelib) so reruns are fast; a
cold cache is prepared by one process per core and the reference solutions run concurrently in a SandboxPool.
"""
import concurrent.futures
import hashlib
import io
import multiprocessing
import os
import random
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from acelib import sandbox
from acelib.sandbox import Limits, SandboxPool
from acelib.tasks.grader import grade, grade_dataframe
from acelib.tasks.leaderboard import MLEBENCH_COLUMNS, read_scores
from acelib.tasks.suites import BUILD_JSON, SUITES, compact_baseline, mutations, prepare_competition, reference_solution

pytestmark = pytest.mark.integration
ALL = SUITES["train"] + SUITES["lite-mini"]
WORKERS = os.cpu_count() or 1
needs_bwrap = pytest.mark.skipif(sandbox.capabilities()["mode"] != "bwrap",
                                 reason=f"no bwrap isolation here: {sandbox.capabilities()['reason']}")


@pytest.fixture(scope="module")
def prepared() -> dict:
    """Every competition, prepared (or reused from the cache); a cold cache is built by one process per core."""
    # forkserver: the test process may already run sandbox launcher threads, which fork would copy mid-lock
    ctx = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
        comps = list(ex.map(prepare_competition, ALL))
    return dict(zip(ALL, comps))


@pytest.fixture(scope="module")
def reference_runs(prepared) -> dict:
    """ExecResult of every reference solution, all run concurrently in one SandboxPool."""
    limits = Limits(timeout_s=120, threads=1)
    with SandboxPool(workers=WORKERS, limits=limits) as pool:
        results = pool.map([reference_solution(c) for c in ALL], [prepared[c] for c in ALL])
    return dict(zip(ALL, results))


@needs_bwrap
@pytest.mark.parametrize("comp_id", ALL)
def test_reference_solution_beats_median_but_not_gold(comp_id, prepared, reference_runs):
    comp, r = prepared[comp_id], reference_runs[comp_id]
    assert r.status == "ok", r.output_for_agent()
    assert any(line.startswith("VALIDATION_SCORE:") for line in r.stdout.splitlines()), \
        "the solution must print VALIDATION_SCORE"
    assert r.submission is not None and "submission/submission.csv" in r.files, r.reason
    report = grade_dataframe(comp, pd.read_csv(io.BytesIO(r.submission)), "submission/submission.csv")
    assert report["valid_submission"], report
    assert report["above_median"], report
    assert not report["gold_medal"], report
    assert r.duration_s < 60, f"{comp_id}: the reference solution took {r.duration_s:.1f} s"


@pytest.mark.parametrize("comp_id", ALL)
def test_layout_and_sample_submission(comp_id, prepared):
    comp = prepared[comp_id]
    for name in ("description.md", "test.csv", "sample_submission.csv"):
        assert (comp.public_dir / name).is_file(), name
    assert comp.answers_path.is_file() and (comp.root / "competition.json").is_file()
    board = pd.read_csv(comp.leaderboard_path)
    assert tuple(board.columns) == MLEBENCH_COLUMNS and len(board) >= 100
    scores = read_scores(comp.leaderboard_path)
    assert (scores == scores.round(5)).all()
    diffs = pd.Series(scores).diff().dropna()
    assert ((diffs >= 0) if comp.is_lower_better else (diffs <= 0)).all(), "leaderboard must be best first"
    text = comp.description
    for section in ("## Overview", "## Data", "## Evaluation", "## Submission File"):
        assert section in text
    # the hidden answers never leak into the public folder
    answers = pd.read_csv(comp.answers_path)
    public_test = pd.read_csv(comp.public_dir / "test.csv")
    assert not set(comp.target_columns) & set(public_test.columns)
    assert set(public_test[comp.id_column].astype(str)) == set(answers[comp.id_column].astype(str))
    # the trivial sample submission is valid and scores no better than the median
    report = grade(comp, comp.public_dir / "sample_submission.csv")
    assert report["valid_submission"], report
    assert not report["above_median"], report


def _run_all(codes: list[str], comps: list) -> list:
    """ExecResults of the scripts, run concurrently in one SandboxPool."""
    limits = Limits(timeout_s=120, threads=1)
    with SandboxPool(workers=WORKERS, limits=limits) as pool:
        return pool.map(codes, comps, limits)


def _graded(comp, r) -> dict | None:
    """The grader's report of a run's submission (None when the run wrote none or did not finish)."""
    if r.status != "ok" or r.submission is None:
        return None
    return grade_dataframe(comp, pd.read_csv(io.BytesIO(r.submission)), "submission/submission.csv")


@pytest.fixture(scope="module")
def compact_runs(prepared) -> dict:
    return dict(zip(ALL, _run_all([compact_baseline(c) for c in ALL], [prepared[c] for c in ALL])))


@needs_bwrap
@pytest.mark.parametrize("comp_id", ALL)
def test_compact_baseline_makes_a_valid_submission(comp_id, prepared, compact_runs):
    r = compact_runs[comp_id]
    assert r.status == "ok", r.output_for_agent()
    assert any(line.startswith("VALIDATION_SCORE:") for line in r.stdout.splitlines())
    report = _graded(prepared[comp_id], r)
    assert report is not None and report["valid_submission"], report
    assert r.duration_s < 60, f"{comp_id}: the compact baseline took {r.duration_s:.1f} s"


# One mutation per competition, the kinds in turn (each kind on 5 competitions of different modalities).
MUTATION_SAMPLE = [(cid, mutations.KINDS[k % len(mutations.KINDS)]) for k, cid in enumerate(ALL)]


@pytest.fixture(scope="module")
def mutation_runs(prepared) -> dict:
    picked = {(cid, kind): random.Random(f"{cid}:{kind}").choice(mutations.mutations(cid, kinds=[kind]))
              for cid, kind in MUTATION_SAMPLE}
    runs = _run_all([m.code for m in picked.values()], [prepared[cid] for cid, _ in picked])
    return {key: (m, r) for (key, m), r in zip(picked.items(), runs)}


@needs_bwrap
@pytest.mark.parametrize("comp_id, kind", MUTATION_SAMPLE)
def test_mutation_breaks_the_compact_baseline(comp_id, kind, prepared, mutation_runs):
    m, r = mutation_runs[comp_id, kind]
    report = _graded(prepared[comp_id], r)
    assert report is None or not report["valid_submission"], f"{m.description} still works"
    assert r.status != "infra_error", r.reason


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# One per builder family (text, tabular, images); cheap ones, since each is built a second time here.
@pytest.mark.parametrize("comp_id", ["spooky-mini", "carseat-sales", "handwritten-digits"])
def test_prepare_is_cached_and_byte_for_byte_reproducible(comp_id, prepared):
    cached = prepared[comp_id]
    stamp = (cached.root / BUILD_JSON).stat().st_mtime_ns
    assert prepare_competition(comp_id).root == cached.root  # cached: reused, not rebuilt
    assert (cached.root / BUILD_JSON).stat().st_mtime_ns == stamp
    with tempfile.TemporaryDirectory() as other:
        fresh = prepare_competition(comp_id, cache_dir=other)  # an independent build from scratch
        ha, hb = _hashes(cached.root), _hashes(fresh.root)
        assert len(ha) > 5 and ha == hb
        assert [p.name for p in fresh.root.parent.iterdir()] == [comp_id]  # no temporary directories left
