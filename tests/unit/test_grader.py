"""Grader: MLE-bench thresholds per leaderboard size band, medals, HumanRank, every invalid-submission case,
the report's fields and types, the rules that reproduce MLE-bench's per-competition quirks (their warnings
included) and run-level aggregation. The Lite competitions themselves are pinned in test_mlebench_parity.py."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acelib.tasks import grader
from acelib.tasks import leaderboard as lb
from acelib.tasks.competition import Competition


def make_competition(root: Path, answers: pd.DataFrame, metric: str, is_lower_better: bool, targets: list[str],
                     board: list[float] | None = None, rules: dict | None = None, id_column: str = "id",
                     comp_id: str = "toy") -> Competition:
    (root / "prepared" / "public").mkdir(parents=True)
    (root / "prepared" / "private").mkdir(parents=True)
    answers.to_csv(root / "prepared" / "private" / "test.csv", index=False)
    comp = Competition(id=comp_id, root=root.resolve(), metric=metric, is_lower_better=is_lower_better,
                       id_column=id_column, target_columns=tuple(targets), suite="custom", rules=rules or {})
    if board is not None:
        lb.write(comp.leaderboard_path, board, is_lower_better)
    comp.save_metadata()
    return comp


def write_sub(tmp_path: Path, df: pd.DataFrame, name: str = "submission.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("n, expected", [
    (1, (1, 1, 1)), (10, (1, 2, 4)), (50, (5, 10, 20)), (99, (9, 19, 39)),           # N < 100
    (100, (10, 20, 40)), (150, (10, 30, 60)), (249, (10, 49, 99)),                   # 100-249
    (250, (10, 50, 100)), (500, (11, 50, 100)), (999, (11, 50, 100)),                # 250-999
    (1000, (12, 50, 100)), (1241, (12, 62, 124)), (2000, (14, 100, 200)),            # >= 1000
])
def test_threshold_positions_by_band(n, expected):
    assert lb.positions(n) == expected


def test_thresholds_lower_is_better_small_band():
    scores = [round(0.1 * i, 1) for i in range(1, 51)]        # 0.1 (best) .. 5.0, N = 50
    assert lb.thresholds(scores, True) == {"gold_threshold": 0.5, "silver_threshold": 1.0,
                                           "bronze_threshold": 2.0, "median_threshold": 2.55}


def test_thresholds_higher_is_better_mid_bands():
    # N = 500 (250-999): gold pos 11, silver pos 50, bronze pos 100 of 500, 499, ..., 1
    t = lb.thresholds(list(range(500, 0, -1)), False)
    assert (t["gold_threshold"], t["silver_threshold"], t["bronze_threshold"], t["median_threshold"]) == (
        490.0, 451.0, 401.0, 250.5)
    # N = 2000 (>= 1000), lower is better: pos 14, 100, 200 of 1, 2, ..., 2000
    t = lb.thresholds(list(range(1, 2001)), True)
    assert (t["gold_threshold"], t["silver_threshold"], t["bronze_threshold"], t["median_threshold"]) == (
        14.0, 100.0, 200.0, 1000.5)


def test_human_rank_counts_strictly_beaten_teams():
    assert lb.human_rank(3.5, [5, 4, 3, 2, 1], False) == pytest.approx(0.6)
    assert lb.human_rank(5, [5, 4, 3, 2, 1], False) == pytest.approx(0.8)     # a tie is not beaten
    assert lb.human_rank(2, [1, 2, 3, 4, 5], True) == pytest.approx(0.6)
    assert lb.human_rank(0, [1, 2, 3], True) == 1.0 and lb.human_rank(9, [1, 2, 3], True) == 0.0


def test_leaderboard_roundtrip_and_dojo_format(tmp_path):
    path = lb.write(tmp_path / "leaderboard.csv", [3.0, 1.0, 2.0], is_lower_better=True)
    assert list(pd.read_csv(path).columns) == list(lb.MLEBENCH_COLUMNS)
    assert lb.read_scores(path).tolist() == [1.0, 2.0, 3.0]                   # written best first
    (tmp_path / "dojo.csv").write_text("rank,score\n1,0.9\n2,0.8\n")
    assert lb.read_scores(tmp_path / "dojo.csv").tolist() == [0.9, 0.8]
    (tmp_path / "bad.csv").write_text("rank,points\n1,0.9\n")
    with pytest.raises(ValueError, match="no `score` column"):
        lb.read_scores(tmp_path / "bad.csv")


# ------------------------------------------------------------------------------------------- medals
@pytest.fixture
def mae_comp(tmp_path):
    """Lower is better: score = the constant predicted against all-zero answers; N = 50 board 0.1..5.0
    → gold 0.5, silver 1.0, bronze 2.0, median 2.55."""
    answers = pd.DataFrame({"id": range(8), "y": 0.0})
    board = [round(0.1 * i, 1) for i in range(1, 51)]
    return make_competition(tmp_path / "mae", answers, "mae", True, ["y"], board)


@pytest.mark.parametrize("c, medal, above_median, human_rank", [
    (0.5, "gold", True, 0.9), (0.7, "silver", True, 0.86), (1.0, "silver", True, 0.8), (1.5, "bronze", True, 0.7),
    (2.0, "bronze", True, 0.6), (2.3, None, True, 0.54), (2.55, None, False, 0.5), (3.0, None, False, 0.4),
])
def test_medals_lower_is_better(tmp_path, mae_comp, c, medal, above_median, human_rank):
    r = grader.grade(mae_comp, write_sub(tmp_path, pd.DataFrame({"id": range(8), "y": c})))
    assert r["valid_submission"] and r["reason"] is None and r["score"] == c
    assert (r["gold_medal"], r["silver_medal"], r["bronze_medal"]) == (medal == "gold", medal == "silver",
                                                                       medal == "bronze")
    assert r["any_medal"] == (medal is not None)
    assert r["above_median"] == above_median
    assert r["human_rank"] == pytest.approx(human_rank)
    assert r["is_lower_better"] is True


@pytest.fixture
def acc_comp(tmp_path):
    """Higher is better, N = 150 (100-249 band): 10×1.0, 20×0.9, 30×0.8, 90×0.5
    → gold pos 10 = 1.0, silver pos 30 = 0.9, bronze pos 60 = 0.8, median 0.5."""
    answers = pd.DataFrame({"id": range(10), "label": [1] * 10})
    board = [1.0] * 10 + [0.9] * 20 + [0.8] * 30 + [0.5] * 90
    return make_competition(tmp_path / "acc", answers, "accuracy", False, ["label"], board)


@pytest.mark.parametrize("n_right, medal, above_median, human_rank", [
    (10, "gold", True, 140 / 150), (9, "silver", True, 120 / 150), (8, "bronze", True, 90 / 150),
    (6, None, True, 90 / 150), (5, None, False, 0.0),
])
def test_medals_higher_is_better(tmp_path, acc_comp, n_right, medal, above_median, human_rank):
    sub = pd.DataFrame({"id": range(10), "label": [1] * n_right + [0] * (10 - n_right)})
    r = grader.grade(acc_comp, write_sub(tmp_path, sub))
    assert r["score"] == n_right / 10
    assert (r["gold_medal"], r["silver_medal"], r["bronze_medal"]) == (medal == "gold", medal == "silver",
                                                                       medal == "bronze")
    assert r["above_median"] == above_median
    assert r["human_rank"] == pytest.approx(human_rank)
    assert (r["gold_threshold"], r["silver_threshold"], r["bronze_threshold"], r["median_threshold"]) == (
        1.0, 0.9, 0.8, 0.5)


def test_score_is_rounded_to_5_decimals_before_medals(tmp_path):
    answers = pd.DataFrame({"id": range(2), "y": 0.0})
    comp = make_competition(tmp_path / "c", answers, "mae", True, ["y"], board=[0.1, 0.2, 0.3])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(2), "y": 0.100004})))
    assert r["score"] == 0.1 and r["gold_medal"]                   # 0.100004 rounds to gold's 0.1


# ------------------------------------------------------------------------------------------- report
def test_report_fields_and_types(tmp_path, mae_comp):
    r = grader.grade(mae_comp, write_sub(tmp_path, pd.DataFrame({"id": range(8), "y": 0.7})))
    assert tuple(r) == grader.REPORT_KEYS
    for k in ("score", "gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold", "human_rank"):
        assert type(r[k]) is float, k
    for k in ("any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median", "submission_exists",
              "valid_submission", "is_lower_better"):
        assert type(r[k]) is bool, k
    assert r["warnings"] == []
    assert r["competition_id"] == "toy" and r["submission_path"] == str(tmp_path / "submission.csv")
    pd.Timestamp(r["created_at"])                                   # ISO timestamp
    assert json.loads(json.dumps(r)) == r


def test_no_leaderboard_gives_score_without_thresholds(tmp_path):
    comp = make_competition(tmp_path / "c", pd.DataFrame({"id": range(3), "y": 0.0}), "mae", True, ["y"])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0.25})))
    assert r["valid_submission"] and r["score"] == 0.25 and r["human_rank"] is None
    assert all(r[k] is None for k in ("gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold"))
    assert not any(r[k] for k in ("any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median"))


def test_leaderboard_contradicting_metric_is_an_error(tmp_path):
    comp = make_competition(tmp_path / "c", pd.DataFrame({"id": range(3), "y": 0.0}), "mae", True, ["y"])
    lb.write(comp.leaderboard_path, [1.0, 2.0, 3.0], is_lower_better=False)   # 3.0 first: higher is better
    with pytest.raises(ValueError, match="higher-is-better"):
        grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0.0})))


def test_unknown_rule_is_rejected_with_suggestion(tmp_path):
    comp = make_competition(tmp_path / "c", pd.DataFrame({"id": range(3), "y": 0.0}), "mae", True, ["y"],
                            rules={"row_sum_tol": 1e-6})
    with pytest.raises(ValueError, match="Did you mean 'row_sum_atol'"):
        grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0.0})))


def test_missing_answers_names_the_fix(tmp_path):
    comp = make_competition(tmp_path / "c", pd.DataFrame({"id": range(3), "y": 0.0}), "mae", True, ["y"])
    comp.answers_path.unlink()
    with pytest.raises(FileNotFoundError, match="prepare"):
        grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0.0})))


# ------------------------------------------------------------------------------------------- invalid cases
@pytest.fixture
def proba_comp(tmp_path):
    """Spooky-like: id + 3 probability columns, multiclass log loss, rows must sum to 1, labels compared."""
    answers = pd.DataFrame({"id": ["a", "b", "c"], "A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1]})
    return make_competition(tmp_path / "p", answers, "multiclass_log_loss", True, ["A", "B", "C"],
                            board=[0.1, 0.2, 0.3], rules={"row_sum_atol": 1e-6})


def good_proba_sub() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b", "c"], "A": [0.8, 0.1, 0.1], "B": [0.1, 0.8, 0.1], "C": [0.1, 0.1, 0.8]})


def _assert_invalid(r: dict, reason_part: str, exists: bool = True):
    assert r["valid_submission"] is False and r["score"] is None and r["human_rank"] is None
    assert r["submission_exists"] is exists
    assert reason_part in r["reason"], r["reason"]
    assert not any(r[k] for k in ("any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median"))
    assert r["gold_threshold"] == 0.1                               # thresholds are still reported


def test_good_proba_submission_is_valid(tmp_path, proba_comp):
    r = grader.grade(proba_comp, write_sub(tmp_path, good_proba_sub()))
    assert r["valid_submission"] and r["score"] == round(-np.log(0.8), 5)


def test_missing_file(tmp_path, proba_comp):
    _assert_invalid(grader.grade(proba_comp, tmp_path / "nope.csv"), "does not exist", exists=False)


def test_not_a_csv(tmp_path, proba_comp):
    path = write_sub(tmp_path, good_proba_sub(), "submission.txt")
    _assert_invalid(grader.grade(proba_comp, path), ".csv", exists=False)


def test_empty_file(tmp_path, proba_comp):
    (tmp_path / "submission.csv").write_text("")
    _assert_invalid(grader.grade(proba_comp, tmp_path / "submission.csv"), "empty")


def test_header_only(tmp_path, proba_comp):
    (tmp_path / "submission.csv").write_text("id,A,B,C\n")
    _assert_invalid(grader.grade(proba_comp, tmp_path / "submission.csv"), "0 rows, expected 3")


def test_unreadable_bytes(tmp_path, proba_comp):
    (tmp_path / "submission.csv").write_bytes(b"id,A\n\xff\xfe\xfa\x00,\x81\n")
    _assert_invalid(grader.grade(proba_comp, tmp_path / "submission.csv"), "not a readable CSV")


@pytest.mark.parametrize("mutate, reason", [
    (lambda s: s.drop(columns=["C"]), "missing columns ['C']"),
    (lambda s: s.drop(columns=["id"]), "missing columns ['id']"),
    (lambda s: s.assign(extra=1), "unexpected columns ['extra']"),
    (lambda s: s.iloc[:2], "2 rows, expected 3"),
    (lambda s: pd.concat([s, s.iloc[:1]]), "4 rows, expected 3"),
    (lambda s: s.assign(id=["a", "a", "c"]), "duplicated ids"),
    (lambda s: s.assign(id=["a", "b", "z"]), "not in the test set: z"),
    (lambda s: s.assign(id=["a", "b", "z"]), "ids of the test set are missing: c"),
    (lambda s: s.assign(id=["a", "B", "c"]), "not in the test set: B"),
    (lambda s: s.assign(A=[0.8, np.nan, 0.1]), "NaN"),
    (lambda s: s.assign(A=[0.8, np.inf, 0.1]), "infinite"),
    (lambda s: s.assign(A=["0.8", "high", "0.1"]), "must be numeric"),
    (lambda s: s.assign(A=[1.2, 0.1, 0.1], B=[-0.3, 0.8, 0.1]), "must lie in [0, 1]"),
    (lambda s: s.assign(A=[0.5, 0.1, 0.1]), "do not sum to 1"),
])
def test_invalid_submissions(tmp_path, proba_comp, mutate, reason):
    _assert_invalid(grader.grade(proba_comp, write_sub(tmp_path, mutate(good_proba_sub()))), reason)


def test_extra_columns_allowed_by_rule(tmp_path):
    answers = pd.DataFrame({"id": range(3), "y": 0.0})
    comp = make_competition(tmp_path / "c", answers, "mae", True, ["y"], rules={"allow_extra_columns": True})
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0.5, "note": "x"})))
    assert r["valid_submission"] and r["score"] == 0.5


def test_case_insensitive_ids_by_rule(tmp_path):
    answers = pd.DataFrame({"id": ["a", "b"], "y": [0.0, 1.0]})
    comp = make_competition(tmp_path / "c", answers, "mae", True, ["y"], rules={"case_sensitive_ids": False})
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": ["B", "A"], "y": [1.0, 0.5]})))
    assert r["valid_submission"] and r["score"] == 0.25                    # a: |0-0.5|, b: 0 → 0.5 / 2


def test_rows_are_matched_by_id_not_position(tmp_path):
    answers = pd.DataFrame({"id": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
    comp = make_competition(tmp_path / "c", answers, "rmse", True, ["y"])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": [3.0, 1.0, 2.0], "y": [3.0, 1.0, 2.0]})))
    assert r["valid_submission"] and r["score"] == 0.0                     # float ids 3.0 match int 3


def test_labels_rule(tmp_path):
    answers = pd.DataFrame({"id": range(4), "label": [0, 1, 2, 1]})
    comp = make_competition(tmp_path / "c", answers, "accuracy", False, ["label"], rules={"labels": [0, 1, 2]})
    ok = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(4), "label": [0, 1, 2, 2]})))
    assert ok["score"] == 0.75
    bad = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(4), "label": [0, 1, 7, 1]})))
    _assert_invalid_no_board(bad, "labels outside [0, 1, 2]: 7")


def test_string_labels_are_compared_as_text(tmp_path):
    answers = pd.DataFrame({"id": range(3), "species": ["setosa", "virginica", "setosa"]})
    comp = make_competition(tmp_path / "c", answers, "accuracy", False, ["species"])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "species": ["setosa"] * 3})))
    assert r["score"] == pytest.approx(0.66667)
    missing = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "species": ["setosa", None, "x"]})))
    _assert_invalid_no_board(missing, "empty values")


def test_metric_failure_becomes_invalid(tmp_path):
    # RMSLE is undefined for predictions <= -1: scikit-learn raises, MLE-bench would report score None
    answers = pd.DataFrame({"id": range(2), "y": [1.0, 2.0]})
    comp = make_competition(tmp_path / "c", answers, "rmsle", True, ["y"])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(2), "y": [-2.0, 2.0]})))
    _assert_invalid_no_board(r, "could not be computed")


def _assert_invalid_no_board(r: dict, reason_part: str):
    assert r["valid_submission"] is False and r["score"] is None and reason_part in r["reason"], r["reason"]


# ------------------------------------------------------------------------------------------- rule hooks
def test_skip_negative_answer_rows_hook(tmp_path):
    # jigsaw: rows marked -1 are unscored. Kept rows 0..3: column a AUC = 0.75, column b AUC = 1 → 0.875
    answers = pd.DataFrame({"id": range(5), "a": [0, 0, 1, 1, -1], "b": [0, 0, 1, 1, -1]})
    sub = pd.DataFrame({"id": range(5), "a": [0.1, 0.4, 0.35, 0.8, 0.99], "b": [0.1, 0.2, 0.8, 0.9, 0.0]})
    comp = make_competition(tmp_path / "c", answers, "mean_column_auc", False, ["a", "b"],
                            rules={"skip_negative_answer_rows": True, "proba": False})
    assert grader.grade(comp, write_sub(tmp_path, sub))["score"] == 0.875


def test_align_row_hook_scores_file_order(tmp_path):
    # nomad2018: MLE-bench compares rows in file order. Reversed rows: errors (2, 0, 2) vs 0 when aligned by id
    answers = pd.DataFrame({"id": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
    sub = pd.DataFrame({"id": [3, 2, 1], "y": [3.0, 2.0, 1.0]})
    by_row = make_competition(tmp_path / "r", answers, "rmse", True, ["y"], rules={"align": "row"})
    by_id = make_competition(tmp_path / "i", answers, "rmse", True, ["y"])
    path = write_sub(tmp_path, sub)
    r = grader.grade(by_row, path)
    assert r["score"] == round(np.sqrt(8 / 3), 5) and "not in the test set's order" in r["warnings"][0]
    assert grader.grade(by_id, path)["score"] == 0.0
    # ids are neither checked nor needed: wrong ids and no id column are warnings, not a different verdict
    r = grader.grade(by_row, write_sub(tmp_path, sub.assign(id=[3, 3, 1])))
    assert r["valid_submission"] and "duplicated ids in `id`: 3" in r["warnings"][0]
    r = grader.grade(by_row, write_sub(tmp_path, sub.drop(columns=["id"])))
    assert r["valid_submission"] and r["warnings"][0].startswith("no `id` column")


def test_align_sorted_pairs_sorted_rows_without_checking_ids(tmp_path):
    # taxi: both sorted by key, then row i with row i. Keys a, a, c against a, b, c: y 1, 2, 3 vs 1, 5, 3 → |3| once
    answers = pd.DataFrame({"key": ["b", "a", "c"], "y": [2.0, 1.0, 3.0]})
    comp = make_competition(tmp_path / "c", answers, "rmse", True, ["y"], id_column="key", rules={"align": "sorted"})
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"key": ["a", "c", "a"], "y": [1.0, 3.0, 5.0]})))
    assert r["valid_submission"] and r["score"] == round(np.sqrt(9 / 3), 5)
    assert "duplicated ids in `key`: a" in r["warnings"][0] and "missing: b" in r["warnings"][0]
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"key": ["a", "c"], "y": [1.0, 3.0]})))
    assert not r["valid_submission"] and "2 rows, expected 3" in r["reason"]


@pytest.fixture
def jig_comp(tmp_path):
    """jigsaw-like: row "c" is unscored (-1 everywhere); rows pair by id, columns by position."""
    answers = pd.DataFrame({"id": ["a", "b", "c", "d"], "p": [0, 1, -1, 1], "q": [1, 0, -1, 0]})
    return make_competition(tmp_path / "j", answers, "mean_column_auc", False, ["p", "q"], rules={
        "align": "index", "columns_by_position": True, "skip_negative_answer_rows": True, "proba": False})


def test_align_index_reads_only_scored_rows(tmp_path, jig_comp):
    sub = pd.DataFrame({"id": ["d", "c", "b", "a"], "p": [0.9, "junk", 0.8, 0.1], "q": [0.2, None, 0.1, 0.7]})
    r = grader.grade(jig_comp, write_sub(tmp_path, sub))
    assert r["valid_submission"] and r["score"] == 1.0
    assert "rows the answers do not score fail acelib's own check" in r["warnings"][0]


def test_align_index_ids(tmp_path, jig_comp):
    good = pd.DataFrame({"id": ["a", "b", "c", "d"], "p": [0.1, 0.8, 0.5, 0.9], "q": [0.7, 0.1, 0.5, 0.2]})
    # "a" twice, "b" missing: the scored answer ids a, b, d select the submission rows a, a, d (3 and 3), which pair
    # by position with the answers a, b, d; the second "a" row holds b's predictions → AUC 1, with a warning
    r = grader.grade(jig_comp, write_sub(tmp_path, good.assign(id=["a", "a", "c", "d"])))
    assert r["valid_submission"] and r["score"] == 1.0
    assert "duplicated ids in `id`: a" in r["warnings"][0] and "missing: b" in r["warnings"][0]
    # "a" instead of the unscored "c": rows a, b, a, d are selected (4 ≠ 3), which MLE-bench's metric rejects
    r = grader.grade(jig_comp, write_sub(tmp_path, good.assign(id=["a", "b", "a", "d"])))
    assert not r["valid_submission"] and "4 rows for the ids the answers score, the test set 3" in r["reason"]
    r = grader.grade(jig_comp, write_sub(tmp_path, good.assign(id=["a", "b", "z", "d"])))
    assert not r["valid_submission"] and "1 ids are not in the test set: z" in r["reason"]


def test_columns_by_position(tmp_path, jig_comp):
    sub = pd.DataFrame({"id": ["a", "b", "c", "d"], "q": [0.7, 0.1, 0.5, 0.2], "p": [0.1, 0.8, 0.5, 0.9]})
    r = grader.grade(jig_comp, write_sub(tmp_path, sub))
    # q's values are scored against p's answers and p's against q's: AUC 0 for both columns
    assert r["valid_submission"] and r["score"] == 0.0
    assert "scored by position, not by name: `q` as `p`, `p` as `q`" in r["warnings"][0]
    r = grader.grade(jig_comp, write_sub(tmp_path, sub.assign(extra=0.5)))
    assert not r["valid_submission"] and "unexpected columns ['extra']" in r["reason"]


def test_id_first_rule(tmp_path):
    answers = pd.DataFrame({"id": ["a", "b"], "A": [1, 0], "B": [0, 1]})
    comp = make_competition(tmp_path / "c", answers, "multiclass_log_loss", True, ["A", "B"],
                            rules={"id_first": True, "row_sum_atol": 1e-6})
    sub = pd.DataFrame({"A": [0.9, 0.2], "id": ["a", "b"], "B": [0.1, 0.8]})
    r = grader.grade(comp, write_sub(tmp_path, sub))
    assert not r["valid_submission"] and "`id` must be the first column" in r["reason"]
    assert grader.grade(comp, write_sub(tmp_path, sub[["id", "B", "A"]]))["valid_submission"]   # classes by name


def test_booleans_count_as_0_and_1(tmp_path):
    # MLE-bench's graders read True/False columns and score them as 1/0 (e.g. AUC of [T, F, T, T] against 0 1 0 1)
    answers = pd.DataFrame({"id": range(4), "y": [0, 1, 0, 1]})
    comp = make_competition(tmp_path / "c", answers, "auc", False, ["y"])
    r = grader.grade(comp, write_sub(tmp_path, pd.DataFrame({"id": range(4), "y": [True, False, True, True]})))
    assert r["valid_submission"] and r["score"] == 0.25


def test_ids_that_cannot_be_sorted_are_invalid(tmp_path):
    answers = pd.DataFrame({"id": ["a", "b"], "y": [0.0, 1.0]})
    comp = make_competition(tmp_path / "c", answers, "mae", True, ["y"])
    r = grader.grade_dataframe(comp, pd.DataFrame({"id": ["a", 3], "y": [0.0, 1.0]}))
    assert not r["valid_submission"] and "cannot be sorted" in r["reason"]


def test_rule_combinations_are_checked(tmp_path):
    answers = pd.DataFrame({"id": range(2), "y": 0.0})
    bad_align = make_competition(tmp_path / "a", answers, "mae", True, ["y"], rules={"align": "position"})
    with pytest.raises(ValueError, match="align must be one of"):
        grader.rules_for(bad_align)
    both = make_competition(tmp_path / "b", answers, "mae", True, ["y"],
                            rules={"columns_by_position": True, "allow_extra_columns": True})
    with pytest.raises(ValueError, match="columns_by_position"):
        grader.rules_for(both)


def test_string_targets_hook_treats_nan_as_text(tmp_path):
    # text-normalization: astype(str) on both sides, as MLE-bench; an empty cell is the text "nan"
    answers = pd.DataFrame({"id": ["0_0", "0_1", "0_2", "0_3"], "after": ["one", "two", "3", "four"]})
    sub = pd.DataFrame({"id": ["0_0", "0_1", "0_2", "0_3"], "after": ["one", None, "3", "Four"]})
    comp = make_competition(tmp_path / "c", answers, "accuracy", False, ["after"], rules={"string_targets": True})
    r = grader.grade(comp, write_sub(tmp_path, sub))
    assert r["valid_submission"] and r["score"] == 0.5


# ------------------------------------------------------------------------------------------- dataframe + aggregate
def test_grade_dataframe(mae_comp):
    r = grader.grade_dataframe(mae_comp, pd.DataFrame({"id": range(8), "y": 1.5}))
    assert r["bronze_medal"] and r["submission_path"] == "<dataframe>"


def test_aggregate(tmp_path, mae_comp):
    reports = [grader.grade(mae_comp, write_sub(tmp_path, pd.DataFrame({"id": range(8), "y": c}), f"{i}.csv"))
               for i, c in enumerate([0.5, 0.7, 1.5, 2.3, 3.0])]
    reports.append(grader.grade(mae_comp, tmp_path / "missing.csv"))
    reports.append(grader.grade(mae_comp, write_sub(tmp_path, pd.DataFrame({"id": range(3), "y": 0}), "short.csv")))
    agg = grader.aggregate(reports)
    assert {k: agg[k] for k in agg if k.startswith("total_")} == {
        "total_runs": 7, "total_runs_with_submissions": 6, "total_valid_submissions": 5, "total_medals": 3,
        "total_gold_medals": 1, "total_silver_medals": 1, "total_bronze_medals": 1, "total_above_median": 4}
    assert agg["any_medal_percentage"] == pytest.approx(300 / 7)
    assert agg["competition_reports"] == reports
