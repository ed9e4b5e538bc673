"""Prepare every offline mini-competition, run its reference solution under the agent program contract and grade
it: valid, above the leaderboard median, not gold. Also checks the layout and byte-for-byte reproducibility.

Competitions are prepared into the default cache (`$ACELIB_CACHE_DIR` or ~/.cache/acelib) so reruns are fast.
"""
import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from acelib.tasks.grader import grade
from acelib.tasks.leaderboard import MLEBENCH_COLUMNS, read_scores
from acelib.tasks.suites import SUITES, prepare_competition, reference_solution
from acelib.tasks.suites.check import run_solution

pytestmark = pytest.mark.integration
ALL = SUITES["train"] + SUITES["lite-mini"]


@pytest.mark.parametrize("comp_id", ALL)
def test_reference_solution_beats_median_but_not_gold(comp_id, tmp_path):
    comp = prepare_competition(comp_id)
    res = run_solution(comp, reference_solution(comp_id), tmp_path / "ws", timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.validation_score is not None, "the solution must print VALIDATION_SCORE"
    report = grade(comp, res.submission)
    assert report["valid_submission"], report
    assert report["above_median"], report
    assert not report["gold_medal"], report


@pytest.mark.parametrize("comp_id", ALL)
def test_layout_and_sample_submission(comp_id):
    comp = prepare_competition(comp_id)
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


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("comp_id", ["spooky-mini", "ames-house-prices", "dogs-vs-cats-mini"])
def test_prepare_is_byte_for_byte_reproducible(comp_id):
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        ca, cb = prepare_competition(comp_id, cache_dir=a), prepare_competition(comp_id, cache_dir=b)
        ha, hb = _hashes(ca.root), _hashes(cb.root)
        assert len(ha) > 5 and ha == hb
        # cached: a second call reuses the directory; no temporary directories are left behind
        assert prepare_competition(comp_id, cache_dir=a).root == ca.root
        assert [p.name for p in ca.root.parent.iterdir()] == [comp_id]
