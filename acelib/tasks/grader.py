"""Grade a submission CSV the way MLE-bench does, with a reason when it is invalid and warnings where we are stricter.

`grade(competition, path)` returns MLE-bench's `CompetitionReport.to_dict()` fields plus three of ours:

    competition_id, score (rounded to 5 decimals; None if invalid), gold/silver/bronze/median_threshold,
    any_medal, gold_medal, silver_medal, bronze_medal, above_median, submission_exists, valid_submission,
    is_lower_better, created_at, submission_path,
    reason       why the submission is invalid (None when valid),
    human_rank   fraction of leaderboard teams strictly beaten (None when invalid or without leaderboard),
    warnings     what acelib's own checks would reject but this competition's MLE-bench grader accepts (a list).

The verdict and the score are MLE-bench's, quirks included: for a Lite competition the rules in `acelib.tasks.lite`
reproduce what its `grade.py` accepts and how it pairs rows and columns; a check MLE-bench does not make becomes a
warning, never a different verdict. MLE-bench semantics kept: `submission_exists` = a file with a `.csv` suffix;
CSVs read with `float_precision="round_trip"`; medals and `above_median` use the rounded score; medals are mutually
exclusive; `above_median` is strict; direction from the leaderboard (first row vs last). Every problem with the
submission gives `valid_submission=False` and a `reason`; only a broken competition (answers missing, leaderboard
contradicting the metric, unknown rule) raises.

Rules (`Competition.rules`, all optional; `RULE_DEFAULTS` lists them; defaults derive from the metric):

    proba                    values must lie in [0, 1]                      default: metric.needs_proba
    row_sum_atol             target columns of a row sum to 1 (np.isclose)  default: None (no check)
    clip_eps                 log-loss clipping                              default: 1e-15 (Kaggle)
    normalize_rows           divide rows by their sum before log loss       default: True (multiclass only)
    labels                   allowed label values (accuracy, QWK, F1)       default: None (any)
    case_sensitive_ids       compare string ids case-sensitively            default: True
    allow_extra_columns      ignore columns other than id + targets         default: False (reject them)
    align                    how rows pair with answers (ALIGN_MODES)       default: "id"
    columns_by_position      pair non-id columns with targets by position   default: False (by name; jigsaw hook)
    id_first                 the id must be the first column                default: False (spooky hook)
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
    "valid_submission", "is_lower_better", "created_at", "submission_path", "reason", "human_rank", "warnings",
)

# How submission rows pair with answer rows. Only "id" checks the ids; the others grade what MLE-bench grades and
# turn acelib's id check into a warning.
ALIGN_MODES = {
    "id": "sort both by id; the sorted ids must be equal (MLE-bench's usual check)",
    "sorted": "sort both by id and pair rows by position; ids unchecked (new-york-city-taxi-fare-prediction)",
    "row": "pair rows in file order; ids unchecked, the id column optional (nomad2018)",
    "index": "index both by id; answer rows kept by `skip_negative_answer_rows` select the submission rows with "
             "the same ids, then pair by position; ids unchecked except that each must be in the test set (jigsaw)",
}

RULE_DEFAULTS: dict[str, Any] = {
    "proba": None,            # None → metric.needs_proba
    "row_sum_atol": None,
    "clip_eps": M.KAGGLE_CLIP_EPS,
    "normalize_rows": True,
    "labels": None,
    "case_sensitive_ids": True,
    "allow_extra_columns": False,
    "align": "id",
    "columns_by_position": False,
    "id_first": False,
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
    if rules["align"] not in ALIGN_MODES:
        raise ValueError(f"competition '{competition.id}': rule align must be one of {list(ALIGN_MODES)}, "
                         f"got {rules['align']!r}")
    if rules["columns_by_position"] and rules["allow_extra_columns"]:
        raise ValueError(f"competition '{competition.id}': columns_by_position reads every non-id column, so it "
                         "cannot be combined with allow_extra_columns; drop one of the two rules")
    return rules


# MLE-bench's read_csv passes float_precision="round_trip" (exact parsing); pandas >= 3 parses exactly by default
# and deprecates the option, while pandas 2's default parser is off by an ulp on about half of long decimals
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV read as MLE-bench's `mlebench.utils.read_csv` reads it (exact float parsing)."""
    return pd.read_csv(path, **_EXACT_FLOATS)


def read_answers(competition: Competition) -> pd.DataFrame:
    """The hidden answers; missing answers mean the competition is not prepared (an error, not a bad submission)."""
    path = competition.answers_path
    if not path.is_file():
        hint = (f"run `mlebench prepare -c {competition.id}`" if competition.suite == "mlebench-lite"
                else f"run `python -m acelib.tasks prepare {competition.id}`")
        raise FileNotFoundError(f"answers for '{competition.id}' not found at {path}; the competition is not "
                                f"prepared: {hint}")
    answers = read_csv(path)
    needed = [competition.id_column, *competition.target_columns]
    missing = [c for c in needed if c not in answers.columns]
    if missing:
        raise ValueError(f"answers file {path} lacks columns {missing}; re-prepare '{competition.id}'")
    return answers


def _examples(values: Iterable, k: int = 5) -> str:
    vals = sorted(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values)
    more = f" (+{len(vals) - k} more)" if len(vals) > k else ""
    return ", ".join(vals[:k]) + more


# ------------------------------------------------------------------------------------------- columns
def _prediction_columns(sub: pd.DataFrame, answers: pd.DataFrame, competition: Competition, rules: dict,
                        notes: list[str]) -> tuple[list[str], list[str]]:
    """(submission columns, answer columns) the metric pairs, in order; raises on missing or unexpected columns."""
    id_col, targets = competition.id_column, list(competition.target_columns)
    id_needed = rules["align"] != "row"
    missing = [c for c in [id_col, *targets] if c not in sub.columns and (c != id_col or id_needed)]
    if missing:
        raise InvalidSubmission(f"missing columns {missing}; expected columns {[id_col, *targets]} "
                                "(see sample_submission.csv)")
    if id_col not in sub.columns:
        notes.append(f"no `{id_col}` column: this competition's MLE-bench grader scores rows in file order and "
                     "does not read it; acelib's own check would reject the file")
    extra = [c for c in sub.columns if c not in (id_col, *targets)]
    if extra and not rules["allow_extra_columns"]:
        raise InvalidSubmission(f"unexpected columns {extra}; the submission must have exactly the columns "
                                f"{[id_col, *targets]} (see sample_submission.csv)")
    if rules["id_first"] and sub.columns[0] != id_col:
        raise InvalidSubmission(f"`{id_col}` must be the first column, as in sample_submission.csv: this "
                                "competition's MLE-bench grader reads the prediction columns by position (all "
                                f"columns after the first); the file starts with `{sub.columns[0]}`")
    if not rules["columns_by_position"]:
        return targets, targets
    # jigsaw: MLE-bench scores the submission's non-id columns against the answers' columns by position
    sub_cols = [c for c in sub.columns if c != id_col]
    ans_cols = [c for c in answers.columns if c in targets]
    if sub_cols != ans_cols:
        pairs = [f"`{s}` as `{a}`" for s, a in zip(sub_cols, ans_cols) if s != a]
        notes.append(f"columns are scored by position, not by name: {', '.join(pairs)}; write the columns in "
                     f"the order {ans_cols} (sample_submission.csv's)")
    return sub_cols, ans_cols


# ------------------------------------------------------------------------------------------- rows
def _sort_order(ids: pd.Series) -> np.ndarray:
    """Positions that sort `ids` as MLE-bench's `df.sort_values(id)` does under pandas 2.2 (its environment):
    numpy's quicksort of the present ids, missing ids last. That sort is not stable, so rows with equal ids
    (detecting-insults' repeated comments) pair up exactly as in MLE-bench; pandas >= 3 sorts text stably and
    would pair them differently, hence no `sort_values` here."""
    missing = ids.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(ids) or pd.api.types.is_bool_dtype(ids)
    values = (ids.to_numpy() if numeric else ids.to_numpy(dtype=object))[~missing]
    idx = np.arange(len(ids))
    try:
        present = idx[~missing][values.argsort(kind="quicksort")]
    except TypeError as e:  # MLE-bench's sort fails the same way, which makes the submission invalid
        raise InvalidSubmission(f"the ids in `{ids.name}` cannot be sorted ({e}); write ids of one type, as in "
                                "sample_submission.csv") from e
    return np.concatenate([present, idx[missing]])


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise `a == b` as numpy compares MLE-bench's id arrays (3.0 equals 3, text never equals a number)."""
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        return a == b
    return np.asarray(a, dtype=object) == np.asarray(b, dtype=object)


def _id_keys(ids: pd.Series, rules: dict) -> pd.Series:
    if rules["case_sensitive_ids"] or pd.api.types.is_numeric_dtype(ids):
        return ids
    return ids.astype(str).str.lower().where(ids.notna())


def _id_check(sub_ids: pd.Series, ans_ids: pd.Series, rules: dict) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(order sorting the submission by id, order sorting the answers, why the ids are not exactly the test set's
    ids or None): MLE-bench's check, the sorted id columns compared element-wise."""
    s, a = _id_keys(sub_ids, rules), _id_keys(ans_ids, rules)
    order_s, order_a = _sort_order(s), _sort_order(a)
    if len(s) == len(a) and _equal(s.to_numpy()[order_s], a.to_numpy()[order_a]).all():
        return order_s, order_a, None
    name = sub_ids.name
    parts = []
    if s.isna().any():
        parts.append(f"column `{name}` has {int(s.isna().sum())} empty ids")
    # comparable keys for the message: 7 and 7.0 count as one id, and any mix of types can be counted as text
    numeric = pd.api.types.is_numeric_dtype(s) and pd.api.types.is_numeric_dtype(a)
    key = (lambda x: x.dropna().astype(np.float64)) if numeric else (lambda x: x.dropna().astype(str))
    sub_counts, ans_counts = key(s).value_counts(), key(a).value_counts()
    missing = ans_counts.index.difference(sub_counts.index)
    unexpected = sub_counts.index.difference(ans_counts.index)
    common = sub_counts.index.intersection(ans_counts.index)
    dup = common[sub_counts[common].to_numpy() > ans_counts[common].to_numpy()]
    if len(dup):
        parts.append(f"duplicated ids in `{name}`: {_examples(dup)}")
    if len(missing):
        parts.append(f"{len(missing)} ids of the test set are missing: {_examples(missing)}")
    if len(unexpected):
        parts.append(f"{len(unexpected)} ids are not in the test set: {_examples(unexpected)}")
    if not parts:
        parts.append(f"the ids in `{name}` do not match the test set's ids")
    problem = "; ".join(parts) + " (write exactly one row per id of test.csv / sample_submission.csv)"
    return order_s, order_a, problem


def _unchecked_ids_note(problem: str, how: str) -> str:
    return (f"{problem}. This competition's MLE-bench grader does not check ids ({how}), so the file is graded "
            "anyway; acelib's own check would reject it")


def _scored(answers: pd.DataFrame, truth_cols: list[str], rules: dict) -> np.ndarray:
    """Which answer rows count: all, or (jigsaw) those whose targets do not sum below 0 (Kaggle's -1 rows)."""
    if not rules["skip_negative_answer_rows"]:
        return np.ones(len(answers), dtype=bool)
    return (answers[truth_cols].to_numpy(dtype=np.float64).sum(axis=1) >= 0)


def _pairs(sub: pd.DataFrame, ans: pd.DataFrame, competition: Competition, truth_cols: list[str], rules: dict,
           notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(scored submission rows, their answers, unscored submission rows), paired row i with row i as MLE-bench
    pairs them under the `align` rule."""
    id_col, mode = competition.id_column, rules["align"]
    if mode == "index":
        return _index_pairs(sub, ans, id_col, truth_cols, rules, notes)
    if mode == "row":
        # nomad2018: MLE-bench pairs row i with answer i and never reads the ids
        problem = _id_check(sub[id_col], ans[id_col], rules)[2] if id_col in sub.columns else None
        if problem:
            notes.append(_unchecked_ids_note(problem, "it pairs the i-th row with the i-th answer"))
        elif id_col in sub.columns and not _equal(sub[id_col].to_numpy(), ans[id_col].to_numpy()).all():
            notes.append(f"rows are not in the test set's order: this competition's MLE-bench grader pairs the "
                         f"i-th row with the i-th answer without reading `{id_col}`, so predictions are scored "
                         "against other rows' answers; keep sample_submission.csv's row order")
        order_s = order_a = np.arange(len(sub))
    else:
        order_s, order_a, problem = _id_check(sub[id_col], ans[id_col], rules)
        if problem and mode == "id":
            raise InvalidSubmission(problem)
        if problem:  # "sorted": taxi pairs the sorted rows by position whatever the keys
            notes.append(_unchecked_ids_note(problem, "it sorts both files by id and pairs rows by position"))
    s = sub.iloc[order_s].reset_index(drop=True)
    a = ans.iloc[order_a].reset_index(drop=True)
    keep = _scored(a, truth_cols, rules)
    return s[keep], a[keep], s[~keep]


def _index_pairs(sub: pd.DataFrame, ans: pd.DataFrame, id_col: str, truth_cols: list[str], rules: dict,
                 notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """jigsaw: both sorted by id; the scored answer rows select the submission rows carrying the same ids (so a
    duplicated id is taken as often as it occurs), then rows pair by position."""
    s = sub.iloc[_sort_order(sub[id_col])].reset_index(drop=True)
    a = ans.iloc[_sort_order(ans[id_col])].reset_index(drop=True)
    if a[id_col].duplicated().any():
        raise ValueError(f"answers of this competition repeat ids in `{id_col}`; re-prepare it")
    keep_a = _scored(a, truth_cols, rules)
    keep_s = pd.Series(keep_a, index=pd.Index(a[id_col].to_numpy())).reindex(pd.Index(s[id_col].to_numpy()))
    unknown = keep_s.isna().to_numpy()
    if unknown.any():
        raise InvalidSubmission(f"{int(unknown.sum())} ids are not in the test set: "
                                f"{_examples(s.loc[unknown, id_col].astype(str).unique())} (MLE-bench's grader "
                                "selects the scored rows by id and fails on an unknown id)")
    keep_s = keep_s.to_numpy(dtype=bool)
    problem = _id_check(sub[id_col], ans[id_col], rules)[2]
    if problem:
        notes.append(_unchecked_ids_note(problem, "it picks the rows to score by id and pairs them by position"))
    if keep_s.sum() != keep_a.sum():
        raise InvalidSubmission(f"the submission has {int(keep_s.sum())} rows for the ids the answers score, the "
                                f"test set {int(keep_a.sum())}: write exactly one row per id of sample_submission.csv")
    return s[keep_s], a[keep_a], s[~keep_s]


# ------------------------------------------------------------------------------------------- values
def _numeric(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The columns as float64 `[N, K]`; booleans count as 0/1 (MLE-bench's graders accept them)."""
    out = np.empty((len(frame), len(cols)), dtype=np.float64)  # [N, K]
    for k, c in enumerate(cols):
        col = frame[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
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


def _label_targets(sub: pd.DataFrame, ans: pd.DataFrame, pred_col: str, truth_col: str, spec: M.MetricSpec,
                   rules: dict, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) for label metrics, as MLE-bench hands them to scikit-learn."""
    if rules["string_targets"]:
        # text-normalization hook: MLE-bench compares `astype(str)` of both columns, so NaN is the text "nan"
        return (ans[truth_col].to_numpy(dtype=object).astype(str), sub[pred_col].to_numpy(dtype=object).astype(str))
    col = sub[pred_col]
    if col.isna().any():
        raise InvalidSubmission(f"{int(col.isna().sum())} empty values in column `{pred_col}`; every row needs "
                                "a label")
    truth = ans[truth_col]
    if not (pd.api.types.is_numeric_dtype(truth) and not pd.api.types.is_bool_dtype(truth)):
        return truth.to_numpy(dtype=object).astype(str), col.to_numpy(dtype=object).astype(str)
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return truth.to_numpy(), _numeric(sub, [pred_col])[:, 0]
    # text labels against numeric answers: passed through, as MLE-bench does (metrics.accuracy: every row wrong)
    if spec.name == "accuracy":
        notes.append(f"column `{pred_col}` holds text but the answers are numbers: MLE-bench (scikit-learn 1.5) "
                     "counts every row as wrong; scikit-learn >= 1.6 and acelib's own check reject the file; "
                     "write the labels as numbers")
    return truth.to_numpy(), col.to_numpy(dtype=object)


def _evaluate(competition: Competition, submission: pd.DataFrame, answers: pd.DataFrame | None = None,
              notes: list[str] | None = None) -> float:
    """The unrounded metric value; raises InvalidSubmission with the reason. Warnings are appended to `notes`."""
    rules = rules_for(competition)
    spec = M.get(competition.metric)
    answers = read_answers(competition) if answers is None else answers
    notes = [] if notes is None else notes

    if submission.shape[1] == 0:
        raise InvalidSubmission("the CSV is empty; write a header row and one row per test id")
    pred_cols, truth_cols = _prediction_columns(submission, answers, competition, rules, notes)
    if len(submission) != len(answers):
        raise InvalidSubmission(f"the submission has {len(submission)} rows, expected {len(answers)} "
                                "(one per test id)")
    sub, ans, unscored = _pairs(submission, answers, competition, truth_cols, rules, notes)
    if len(unscored):
        try:
            _numeric(unscored, pred_cols)
        except InvalidSubmission as e:  # a check MLE-bench does not make: a warning, not the verdict
            notes.append(f"rows the answers do not score fail acelib's own check ({e}); this competition's "
                         "MLE-bench grader never reads them")

    if spec.label_valued:
        if len(truth_cols) != 1:
            raise ValueError(f"competition '{competition.id}': metric {spec.name} reads one target column, "
                             f"got {truth_cols}")
        y_true, y_pred = _label_targets(sub, ans, pred_cols[0], truth_cols[0], spec, rules, notes)
        if rules["labels"] is not None and not np.isin(y_pred, np.asarray(rules["labels"])).all():
            bad = pd.unique(y_pred[~np.isin(y_pred, np.asarray(rules["labels"]))])
            raise InvalidSubmission(f"column `{pred_cols[0]}` has labels outside {list(rules['labels'])}: "
                                    f"{_examples(bad, 3)}")
    else:
        pred = _numeric(sub, pred_cols)  # [N, K]
        _check_numeric_rules(pred, pred_cols, rules)
        truth = ans[truth_cols].to_numpy()
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
            # scikit-learn warns when probability rows do not sum to 1 within 1.5e-8 and when a column has one
            # class; validity is decided by the rules and the finite check below, so these are grading-log noise
            warnings.filterwarnings("ignore", message="The y_(prob|pred) values do not sum to one")
            warnings.filterwarnings("ignore", message="Only one class")
            value = spec(y_true, y_pred, **options)
    except ValueError as e:
        # MLE-bench: any exception from grade_fn makes the submission invalid (score None)
        raise InvalidSubmission(f"the metric {spec.name} could not be computed: {e}") from e
    if not np.isfinite(value):
        # scikit-learn 1.5 raises where newer versions return NaN (e.g. ROC AUC of a single-class column)
        raise InvalidSubmission(f"the metric {spec.name} is undefined for this submission ({value})")
    return value


def score_submission(competition: Competition, submission: pd.DataFrame,
                     answers: pd.DataFrame | None = None) -> float:
    """The unrounded metric value of a submission DataFrame; raises InvalidSubmission with the reason."""
    return _evaluate(competition, submission, answers)


def _read_submission(path: Path) -> pd.DataFrame:
    # MLE-bench's grade_csv lets parse errors escape (no report at all); a report that says why is more useful
    try:
        return read_csv(path)
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
            submission_path: str, notes: list[str]) -> dict:
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
        "warnings": list(notes),
    }


def _graded(competition: Competition, read) -> tuple[float | None, str | None, list[str]]:
    notes: list[str] = []
    try:
        value = _evaluate(competition, read(), notes=notes)
    except InvalidSubmission as e:
        return None, str(e), notes
    return M.get(competition.metric).round_score(value), None, notes


def grade_dataframe(competition: Competition, submission: pd.DataFrame,
                    submission_path: str = "<dataframe>") -> dict:
    """The report for an in-memory submission (e.g. written by a sandboxed program and read back)."""
    score, reason, notes = _graded(competition, lambda: submission)
    return _report(competition, score, reason, True, submission_path, notes)


def grade(competition: Competition, submission_csv_path: str | Path) -> dict:
    """Grade a submission file; see the module docstring for the report."""
    path = Path(submission_csv_path)
    if not path.is_file():
        reason = f"submission file {path} does not exist; write ./submission/submission.csv"
        return _report(competition, None, reason, False, str(path), [])
    if path.suffix.lower() != ".csv":
        return _report(competition, None, f"submission file {path} must be a .csv file", False, str(path), [])
    score, reason, notes = _graded(competition, lambda: _read_submission(path))
    return _report(competition, score, reason, True, str(path), notes)


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
