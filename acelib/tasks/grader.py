"""Grade a submission CSV the way MLE-bench does, with a reason when it is invalid.

`grade(competition, path)` returns MLE-bench's `CompetitionReport.to_dict()` fields plus two of ours:

    competition_id, score (rounded to 5 decimals; None if invalid), gold/silver/bronze/median_threshold,
    any_medal, gold_medal, silver_medal, bronze_medal, above_median, submission_exists, valid_submission,
    is_lower_better, created_at, submission_path,
    reason       why the submission is invalid (None when valid),
    human_rank   fraction of leaderboard teams strictly beaten (None when invalid or without leaderboard).

MLE-bench semantics kept: `submission_exists` = a file with a `.csv` suffix; medals and `above_median` use the
rounded score; medals are mutually exclusive; `above_median` is strict; direction from the leaderboard
(first row vs last). Every problem with the submission gives `valid_submission=False` and a `reason`; only a
broken competition (answers missing, leaderboard contradicting the metric, unknown rule) raises.

Rules (`Competition.rules`, all optional; `RULE_DEFAULTS` lists them; defaults derive from the metric):

    proba                    values must lie in [0, 1]                      default: metric.needs_proba
    row_sum_atol             target columns of a row sum to 1 (np.isclose)  default: None (no check)
    clip_eps                 log-loss clipping                              default: 1e-15 (Kaggle)
    normalize_rows           divide rows by their sum before log loss       default: True (multiclass only)
    labels                   allowed label values (accuracy, QWK, F1)       default: None (any)
    case_sensitive_ids       compare string ids case-sensitively            default: True
    allow_extra_columns      ignore columns other than id + targets         default: False (reject them)
    align                    "id": match rows by id; "row": file order      default: "id"
    skip_negative_answer_rows  drop answer rows whose targets sum < 0       default: False (jigsaw hook)
    string_targets           compare targets as strings (NaN as "nan")      default: False (text-norm hook)
    average                  F1 averaging ("binary", "macro", ...)          default: "binary"
"""
from __future__ import annotations

import datetime
import difflib
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from acelib.tasks import leaderboard as lb
from acelib.tasks import metrics as M
from acelib.tasks.competition import Competition

REPORT_KEYS = (
    "competition_id", "score", "gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold",
    "any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median", "submission_exists",
    "valid_submission", "is_lower_better", "created_at", "submission_path", "reason", "human_rank",
)

RULE_DEFAULTS: dict[str, Any] = {
    "proba": None,            # None → metric.needs_proba
    "row_sum_atol": None,
    "clip_eps": M.KAGGLE_CLIP_EPS,
    "normalize_rows": True,
    "labels": None,
    "case_sensitive_ids": True,
    "allow_extra_columns": False,
    "align": "id",
    "skip_negative_answer_rows": False,
    "string_targets": False,
    "average": "binary",
}


class InvalidSubmission(ValueError):
    """The submission cannot be graded; the message says why (it becomes the report's `reason`)."""


def rules_for(competition: Competition) -> dict[str, Any]:
    """The competition's rules over the metric-derived defaults; an unknown key fails with a did-you-mean."""
    unknown = [k for k in competition.rules if k not in RULE_DEFAULTS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(RULE_DEFAULTS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Valid rules: {sorted(RULE_DEFAULTS)}."
        raise ValueError(f"competition '{competition.id}': unknown grader rule '{unknown[0]}'.{hint}")
    rules = {**RULE_DEFAULTS, **competition.rules}
    if rules["proba"] is None:
        rules["proba"] = M.get(competition.metric).needs_proba
    if rules["align"] not in ("id", "row"):
        raise ValueError(f"competition '{competition.id}': rule align must be 'id' or 'row', got {rules['align']!r}")
    return rules


def read_answers(competition: Competition) -> pd.DataFrame:
    """The hidden answers; missing answers mean the competition is not prepared (an error, not a bad submission)."""
    path = competition.answers_path
    if not path.is_file():
        hint = (f"run `mlebench prepare -c {competition.id}`" if competition.suite == "mlebench-lite"
                else f"run `python -m acelib.tasks prepare {competition.id}`")
        raise FileNotFoundError(f"answers for '{competition.id}' not found at {path}; the competition is not "
                                f"prepared: {hint}")
    answers = pd.read_csv(path)
    needed = [competition.id_column, *competition.target_columns]
    missing = [c for c in needed if c not in answers.columns]
    if missing:
        raise ValueError(f"answers file {path} lacks columns {missing}; re-prepare '{competition.id}'")
    return answers


def _examples(values: Iterable, k: int = 5) -> str:
    vals = sorted(map(str, values))
    more = f" (+{len(vals) - k} more)" if len(vals) > k else ""
    return ", ".join(vals[:k]) + more


def _id_keys(sub_ids: pd.Series, ans_ids: pd.Series, case_sensitive: bool) -> tuple[np.ndarray, np.ndarray]:
    # Numbers compare as numbers (an id written "7.0" still matches 7); anything else as text.
    if pd.api.types.is_numeric_dtype(sub_ids) and pd.api.types.is_numeric_dtype(ans_ids):
        return sub_ids.to_numpy(dtype=np.float64), ans_ids.to_numpy(dtype=np.float64)
    s = sub_ids.to_numpy(dtype=object).astype(str)
    a = ans_ids.to_numpy(dtype=object).astype(str)
    if not case_sensitive:
        s, a = np.char.lower(s), np.char.lower(a)
    return s, a


def _align(sub: pd.DataFrame, ans: pd.DataFrame, competition: Competition, rules: dict) -> tuple:
    """Row orders (into sub, into ans) pairing each answer with its submission row, as MLE-bench's
    sort-both-by-id does; raises InvalidSubmission naming missing, unexpected or duplicated ids."""
    id_col = competition.id_column
    if sub[id_col].isna().any():
        raise InvalidSubmission(f"column `{id_col}` has {int(sub[id_col].isna().sum())} empty ids")
    s, a = _id_keys(sub[id_col], ans[id_col], rules["case_sensitive_ids"])
    order_s, order_a = np.argsort(s, kind="stable"), np.argsort(a, kind="stable")
    if not np.array_equal(s[order_s], a[order_a]):
        sub_counts, ans_counts = pd.Series(s).value_counts(), pd.Series(a).value_counts()
        missing = ans_counts.index.difference(sub_counts.index)
        unexpected = sub_counts.index.difference(ans_counts.index)
        common = sub_counts.index.intersection(ans_counts.index)
        dup = common[sub_counts[common].to_numpy() > ans_counts[common].to_numpy()]
        parts = []
        if len(dup):
            parts.append(f"duplicated ids in `{id_col}`: {_examples(dup)}")
        if len(missing):
            parts.append(f"{len(missing)} ids of the test set are missing: {_examples(missing)}")
        if len(unexpected):
            parts.append(f"{len(unexpected)} ids are not in the test set: {_examples(unexpected)}")
        raise InvalidSubmission("; ".join(parts) + " (write exactly one row per id of test.csv / "
                                "sample_submission.csv)")
    if rules["align"] == "row":
        # nomad2018 hook: MLE-bench scores rows in file order; the id check above only guards against garbage
        return np.arange(len(sub)), np.arange(len(ans))
    return order_s, order_a


def _numeric_targets(sub: pd.DataFrame, cols: list[str]) -> np.ndarray:
    out = np.empty((len(sub), len(cols)), dtype=np.float64)  # [N, K]
    for k, c in enumerate(cols):
        col = sub[c]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            conv = pd.to_numeric(col, errors="coerce")
            bad = col[conv.isna() & col.notna()]
            if len(bad):
                raise InvalidSubmission(f"column `{c}` must be numeric; found non-numeric values such as "
                                        f"{_examples(bad.astype(str).unique(), 3)}")
            col = conv
        out[:, k] = col.to_numpy(dtype=np.float64)
    if np.isnan(out).any():
        rows, ks = np.nonzero(np.isnan(out))
        raise InvalidSubmission(f"{len(rows)} empty/NaN values (first in column `{cols[ks[0]]}`, row {rows[0]}); "
                                "every row needs a prediction")
    if np.isinf(out).any():
        ks = np.nonzero(np.isinf(out))[1]
        raise InvalidSubmission(f"infinite values in column `{cols[ks[0]]}`; predictions must be finite")
    return out


def _check_numeric_rules(pred: np.ndarray, cols: list[str], rules: dict) -> None:
    if rules["proba"] and ((pred < 0) | (pred > 1)).any():
        k = int(np.nonzero((pred < 0) | (pred > 1))[1][0])
        raise InvalidSubmission(f"column `{cols[k]}` holds probabilities and must lie in [0, 1]; found "
                                f"values from {pred[:, k].min():g} to {pred[:, k].max():g}")
    atol = rules["row_sum_atol"]
    if atol is not None:
        # np.isclose with its default rtol=1e-5, exactly as MLE-bench's spooky/leaf/dog-breed graders
        ok = np.isclose(pred.sum(axis=1), 1, atol=atol)
        if not ok.all():
            raise InvalidSubmission(f"{int((~ok).sum())} rows do not sum to 1 (tolerance {atol}) across "
                                    f"{cols}; each row must be a probability distribution")


def _label_targets(sub: pd.DataFrame, ans: pd.DataFrame, col: str, rules: dict) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) for label metrics: numbers if the answers are numeric, else text."""
    if rules["string_targets"]:
        # text-normalization hook: MLE-bench compares `astype(str)` of both columns, so NaN is the text "nan"
        return (ans[col].to_numpy(dtype=object).astype(str), sub[col].to_numpy(dtype=object).astype(str))
    if pd.api.types.is_numeric_dtype(ans[col]) and not pd.api.types.is_bool_dtype(ans[col]):
        return ans[col].to_numpy(), _numeric_targets(sub, [col])[:, 0]
    if sub[col].isna().any():
        raise InvalidSubmission(f"{int(sub[col].isna().sum())} empty values in column `{col}`; every row needs "
                                "a label")
    return ans[col].to_numpy(dtype=object).astype(str), sub[col].to_numpy(dtype=object).astype(str)


def score_submission(competition: Competition, submission: pd.DataFrame,
                     answers: pd.DataFrame | None = None) -> float:
    """The unrounded metric value of a submission DataFrame; raises InvalidSubmission with the reason."""
    rules = rules_for(competition)
    spec = M.get(competition.metric)
    answers = read_answers(competition) if answers is None else answers
    id_col, targets = competition.id_column, list(competition.target_columns)

    if submission.shape[1] == 0 and len(submission) == 0:
        raise InvalidSubmission("the CSV is empty; write a header row and one row per test id")
    missing = [c for c in [id_col, *targets] if c not in submission.columns]
    if missing:
        raise InvalidSubmission(f"missing columns {missing}; expected columns {[id_col, *targets]} "
                                "(see sample_submission.csv)")
    extra = [c for c in submission.columns if c not in (id_col, *targets)]
    if extra and not rules["allow_extra_columns"]:
        raise InvalidSubmission(f"unexpected columns {extra}; the submission must have exactly the columns "
                                f"{[id_col, *targets]} (see sample_submission.csv)")
    if len(submission) != len(answers):
        raise InvalidSubmission(f"the submission has {len(submission)} rows, expected {len(answers)} "
                                "(one per test id)")

    order_s, order_a = _align(submission, answers, competition, rules)
    sub = submission.iloc[order_s].reset_index(drop=True)
    ans = answers.iloc[order_a].reset_index(drop=True)

    if spec.label_valued:
        if len(targets) != 1:
            raise ValueError(f"competition '{competition.id}': metric {spec.name} reads one target column, "
                             f"got {targets}")
        y_true, y_pred = _label_targets(sub, ans, targets[0], rules)
        if rules["labels"] is not None and not np.isin(y_pred, np.asarray(rules["labels"])).all():
            bad = pd.unique(y_pred[~np.isin(y_pred, np.asarray(rules["labels"]))])
            raise InvalidSubmission(f"column `{targets[0]}` has labels outside {list(rules['labels'])}: "
                                    f"{_examples(bad, 3)}")
    else:
        pred = _numeric_targets(sub, targets)  # [N, K]
        _check_numeric_rules(pred, targets, rules)
        truth = ans[targets].to_numpy()
        if rules["skip_negative_answer_rows"]:
            # jigsaw hook: rows Kaggle did not score carry -1 in every label column
            keep = truth.astype(np.float64).sum(axis=1) >= 0
            pred, truth = pred[keep], truth[keep]
        y_pred = pred if spec.multi_column else pred[:, 0]
        y_true = truth if spec.multi_column else truth[:, 0]

    options: dict[str, Any] = {}
    if spec.name in ("log_loss", "multiclass_log_loss"):
        options["clip_eps"] = rules["clip_eps"]
    if spec.name == "multiclass_log_loss":
        options["normalize_rows"] = rules["normalize_rows"]
    if spec.name == "f1":
        options["average"] = rules["average"]
    try:
        with warnings.catch_warnings():
            # scikit-learn warns when probability rows do not sum to 1 within 1.5e-8; validity is decided by
            # the row_sum_atol rule instead (MLE-bench: 1e-6), so the warning is noise in grading logs
            warnings.filterwarnings("ignore", message="The y_prob values do not sum to one")
            value = spec(y_true, y_pred, **options)
    except ValueError as e:
        # MLE-bench: any exception from grade_fn makes the submission invalid (score None)
        raise InvalidSubmission(f"the metric {spec.name} could not be computed: {e}") from e
    if not np.isfinite(value):
        raise InvalidSubmission(f"the metric {spec.name} is undefined for this submission ({value})")
    return value


def _read_submission(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as e:
        raise InvalidSubmission("the CSV is empty; write a header row and one row per test id") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InvalidSubmission(f"the file is not a readable CSV: {e}") from e


def leaderboard_path(competition: Competition) -> Path | None:
    """`<root>/leaderboard.csv` if present, else the shipped MLE-bench-Lite board for a Lite id, else None."""
    if competition.leaderboard_path.is_file():
        return competition.leaderboard_path
    if competition.suite == "mlebench-lite":
        from acelib.tasks import lite
        if competition.id in lite.LITE:
            return lite.LITE[competition.id].leaderboard_path
    return None


def _report(competition: Competition, score: float | None, reason: str | None, submission_exists: bool,
            submission_path: str) -> dict:
    path = leaderboard_path(competition)
    scores = lb.read_scores(path) if path is not None else None
    lower = competition.is_lower_better
    if scores is not None:
        board_lower = lb.direction(scores)
        if board_lower is not None and board_lower != lower:
            raise ValueError(f"competition '{competition.id}': leaderboard {path} is "
                             f"{'lower' if board_lower else 'higher'}-is-better but metric {competition.metric} "
                             f"says is_lower_better={lower}; fix competition.json or the leaderboard order")
    th = lb.thresholds(scores, lower) if scores is not None else dict.fromkeys(
        ("gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold"))

    def reaches(threshold: float | None) -> bool:
        return score is not None and threshold is not None and (score <= threshold if lower else score >= threshold)

    gold = reaches(th["gold_threshold"])
    silver = not gold and reaches(th["silver_threshold"])
    bronze = not gold and not silver and reaches(th["bronze_threshold"])
    median = th["median_threshold"]
    above_median = score is not None and median is not None and (score < median if lower else score > median)
    return {
        "competition_id": competition.id,
        "score": score,
        **th,
        "any_medal": gold or silver or bronze,
        "gold_medal": gold,
        "silver_medal": silver,
        "bronze_medal": bronze,
        "above_median": above_median,
        "submission_exists": submission_exists,
        "valid_submission": score is not None,
        "is_lower_better": lower,
        "created_at": datetime.datetime.now().isoformat(),
        "submission_path": submission_path,
        "reason": reason,
        "human_rank": lb.human_rank(score, scores, lower) if score is not None and scores is not None else None,
    }


def _graded(competition: Competition, read) -> tuple[float | None, str | None]:
    try:
        return round(score_submission(competition, read()), 5), None
    except InvalidSubmission as e:
        return None, str(e)


def grade_dataframe(competition: Competition, submission: pd.DataFrame,
                    submission_path: str = "<dataframe>") -> dict:
    """The report for an in-memory submission (e.g. written by a sandboxed program and read back)."""
    score, reason = _graded(competition, lambda: submission)
    return _report(competition, score, reason, True, submission_path)


def grade(competition: Competition, submission_csv_path: str | Path) -> dict:
    """Grade a submission file; see the module docstring for the report."""
    path = Path(submission_csv_path)
    if not path.is_file():
        reason = f"submission file {path} does not exist; write ./submission/submission.csv"
        return _report(competition, None, reason, False, str(path))
    if path.suffix.lower() != ".csv":
        return _report(competition, None, f"submission file {path} must be a .csv file", False, str(path))
    score, reason = _graded(competition, lambda: _read_submission(path))
    return _report(competition, score, reason, True, str(path))


def aggregate(reports: list[dict]) -> dict:
    """Run-level summary, as MLE-bench's `aggregate_reports`, plus the percentages its leaderboard script uses."""
    n = len(reports)
    totals = {
        "total_runs": n,
        "total_runs_with_submissions": sum(bool(r["submission_exists"]) for r in reports),
        "total_valid_submissions": sum(bool(r["valid_submission"]) for r in reports),
        "total_medals": sum(bool(r["any_medal"]) for r in reports),
        "total_gold_medals": sum(bool(r["gold_medal"]) for r in reports),
        "total_silver_medals": sum(bool(r["silver_medal"]) for r in reports),
        "total_bronze_medals": sum(bool(r["bronze_medal"]) for r in reports),
        "total_above_median": sum(bool(r["above_median"]) for r in reports),
    }
    pct = {
        "submission_exists_percentage": "total_runs_with_submissions",
        "valid_submissions_percentage": "total_valid_submissions",
        "any_medal_percentage": "total_medals",
        "gold_medal_percentage": "total_gold_medals",
        "silver_medal_percentage": "total_silver_medals",
        "bronze_medal_percentage": "total_bronze_medals",
        "above_median_percentage": "total_above_median",
    }
    return {**totals, **{k: (100.0 * totals[v] / n if n else 0.0) for k, v in pct.items()},
            "competition_reports": list(reports)}
