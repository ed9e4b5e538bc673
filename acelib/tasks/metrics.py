"""Competition metrics: one registry, scikit-learn underneath, MLE-bench semantics on top.

`METRICS[name]` is a `MetricSpec`. Its `fn(y_true, y_pred, **options)` takes arrays that the grader has
already aligned by id and checked (no NaN, numbers where numbers are due):

- single-column metrics get 1-D arrays `[N]`;
- multi-column metrics (`multi_column=True`) get 2-D arrays `[N, K]`, columns in `Competition.target_columns`
  order. For `multiclass_log_loss` the answers are one-hot `[N, K]` (the form MLE-bench's answers files use:
  a "perfect submission"), or 1-D class labels together with `labels=`.

Options come from `Competition.rules` (see `grader.py`): `clip_eps`, `normalize_rows` (log losses), `average`
(F1). scikit-learn is imported inside the functions so that `import acelib.tasks` stays light.

**scikit-learn version.** MLE-bench's environment pins scikit-learn 1.5.1, and its published results date from
when 1.5 was current. Where a later scikit-learn answers differently, these functions keep 1.5's answer whatever
version is installed (docs/tasks.md, "scikit-learn and pandas versions"):
- `rmsle`, `mean_column_rmsle`: any negative value is an error (>= 1.6 only rejects values <= -1);
- `accuracy`: numbers never equal text, so numeric answers against text labels score 0.0 (>= 1.6 raises);
- `MetricSpec.python_float`: 1.5 returns a Python float only for accuracy and the log losses, a numpy.float64
  elsewhere, and MLE-bench's `round(score, 5)` rounds half-way cases of the two types differently.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

# Kaggle's log-loss clipping, also scikit-learn's default before 1.3. MLE-bench pins scikit-learn>=1.5, whose
# log_loss clips at float64 machine epsilon instead; the Lite registry sets that value explicitly.
KAGGLE_CLIP_EPS = 1e-15
SKLEARN_CLIP_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A metric and what the grader must know to validate submissions for it."""

    name: str
    fn: Callable[..., float]
    is_lower_better: bool
    needs_proba: bool = False    # predictions are probabilities: the grader checks they lie in [0, 1]
    multi_column: bool = False   # reads all target columns at once ([N, K]) instead of one column ([N])
    label_valued: bool = False   # predictions are class labels compared by equality (accuracy, F1, QWK)
    python_float: bool = False   # scikit-learn 1.5 returns a Python float, not a numpy.float64 (see round_score)
    description: str = ""

    def __call__(self, y_true: Any, y_pred: Any, **options: Any) -> float:
        return float(self.fn(y_true, y_pred, **options))

    def round_score(self, value: float) -> float:
        """`value` rounded to 5 decimals exactly as MLE-bench's `round(score, 5)` rounds this metric's result.

        round() of a numpy.float64 scales by 1e5 and rounds half to even, while round() of a Python float rounds
        the exact binary value, so e.g. 0.123455 gives 0.12346 and 0.12345 respectively.
        """
        return round(float(value), 5) if self.python_float else float(round(np.float64(value), 5))


def _clip(p: np.ndarray, eps: float) -> np.ndarray:
    if not 0 <= eps < 0.5:
        raise ValueError(f"clip_eps must be in [0, 0.5), got {eps}; MLE-bench uses {SKLEARN_CLIP_EPS!r}, Kaggle 1e-15")
    return np.clip(p, eps, 1 - eps)


def _is_text(a: np.ndarray) -> bool:
    return a.dtype.kind in "SU" or (a.dtype.kind == "O" and any(isinstance(v, str) for v in a.ravel()))


def accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose label equals the answer.

    Numeric answers against text labels (or the reverse) score 0.0: scikit-learn 1.5 compares them element-wise
    and no number equals a string; scikit-learn >= 1.6 raises "Mix of label input types" instead.
    """
    from sklearn.metrics import accuracy_score
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if _is_text(t) != _is_text(p) and len(t) == len(p):
        return 0.0
    return accuracy_score(t, p)


def auc(y_true, y_pred) -> float:
    """Binary ROC AUC; y_pred is the score (probability) of the positive class."""
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(y_true, y_pred)


def log_loss(y_true, y_pred, clip_eps: float = KAGGLE_CLIP_EPS) -> float:
    """Binary log loss; y_pred is P(y = 1), shape [N].

    The [1 - p, p] matrix is built before clipping, exactly as scikit-learn does, so that with
    clip_eps = machine epsilon the result equals MLE-bench's `sklearn.metrics.log_loss(y_true, y_pred)`.
    """
    p = np.asarray(y_pred, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"binary log_loss expects one probability per row, got shape {p.shape}")
    proba = _clip(np.column_stack([1 - p, p]), clip_eps)  # [N, 2]
    return _sk_log_loss(y_true, proba, labels=[0, 1])


def _sk_log_loss(y_true, proba: np.ndarray, **kw) -> float:
    """scikit-learn's log_loss; its probability argument is `y_pred` before 1.9 and `y_proba` from 1.9 on."""
    import inspect

    from sklearn.metrics import log_loss as sk_log_loss
    key = "y_proba" if "y_proba" in inspect.signature(sk_log_loss).parameters else "y_pred"
    return sk_log_loss(y_true, **{key: proba}, **kw)


def multiclass_log_loss(y_true, y_pred, clip_eps: float = KAGGLE_CLIP_EPS, normalize_rows: bool = True,
                        labels: list | None = None) -> float:
    """Multiclass log loss, Kaggle style: clip to [eps, 1 - eps], then (optionally) divide each row by its sum.

    y_pred: [N, K]; y_true: one-hot [N, K] or labels [N] with `labels` naming the K classes in column order.
    """
    p = _clip(np.asarray(y_pred, dtype=np.float64), clip_eps)  # [N, K]
    if p.ndim != 2:
        raise ValueError(f"multiclass_log_loss expects an [N, K] probability matrix, got shape {p.shape}")
    if normalize_rows:
        p = p / p.sum(axis=1, keepdims=True)
    y = np.asarray(y_true)
    if y.ndim == 2:
        # one-hot answers: scikit-learn reads an indicator matrix as is (MLE-bench passes it the same way)
        return _sk_log_loss(y, p)
    if labels is None:
        raise ValueError("multiclass_log_loss with 1-D labels needs labels= (the class of each column, in order)")
    return _sk_log_loss(y, p, labels=list(labels))


def rmse(y_true, y_pred) -> float:
    from sklearn.metrics import root_mean_squared_error
    return root_mean_squared_error(y_true, y_pred)


def _check_nonnegative(*arrays) -> None:
    # scikit-learn 1.5 (MLE-bench's) rejects any negative value; >= 1.6 would accept values in (-1, 0)
    if any((np.asarray(a, dtype=np.float64) < 0).any() for a in arrays):
        raise ValueError("RMSLE cannot be used when targets contain negative values (scikit-learn 1.5, as in "
                         "MLE-bench; predict values >= 0)")


def rmsle(y_true, y_pred) -> float:
    from sklearn.metrics import root_mean_squared_log_error
    _check_nonnegative(y_true, y_pred)
    return root_mean_squared_log_error(y_true, y_pred)


def mae(y_true, y_pred) -> float:
    from sklearn.metrics import mean_absolute_error
    return mean_absolute_error(y_true, y_pred)


def qwk(y_true, y_pred) -> float:
    """Quadratic weighted kappa (Cohen's kappa with quadratic weights)."""
    from sklearn.metrics import cohen_kappa_score
    # symmetric, but the sums run in a different order; MLE-bench's aptos grader passes (y_pred, y_true)
    return cohen_kappa_score(y_pred, y_true, weights="quadratic")


def f1(y_true, y_pred, average: str = "binary") -> float:
    """F1 score; `average="binary"` (positive label 1) or "macro"/"micro"/"weighted" via the `average` rule."""
    from sklearn.metrics import f1_score
    return f1_score(y_true, y_pred, average=average)


def _columns(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"column-wise metrics need [N, K] arrays of equal shape, got {t.shape} and {p.shape}")
    return t, p


def mean_column_auc(y_true, y_pred) -> float:
    """Mean over target columns of the binary ROC AUC (jigsaw, plant-pathology, ranzcr)."""
    from sklearn.metrics import roc_auc_score
    t, p = _columns(y_true, y_pred)
    return float(np.mean([roc_auc_score(t[:, k], p[:, k]) for k in range(t.shape[1])]))


def mean_column_rmsle(y_true, y_pred) -> float:
    """Mean over target columns of RMSLE (nomad2018)."""
    from sklearn.metrics import root_mean_squared_log_error
    t, p = _columns(y_true, y_pred)
    _check_nonnegative(t, p)
    return float(np.mean([root_mean_squared_log_error(t[:, k], p[:, k]) for k in range(t.shape[1])]))


def auc_flattened(y_true, y_pred) -> float:
    """ROC AUC over every (row, column) pair of a wide multilabel table, as Kaggle scored mlsp-2013-birds.

    MLE-bench's own mlsp answers are already long (one `Id = rec_id * 100 + species` per row), so the Lite
    entry uses plain `auc`; this is for wide-format suites.
    """
    from sklearn.metrics import roc_auc_score
    t, p = _columns(y_true, y_pred)
    return roc_auc_score(t.ravel(), p.ravel())


METRICS: dict[str, MetricSpec] = {m.name: m for m in [
    MetricSpec("accuracy", accuracy, is_lower_better=False, label_valued=True, python_float=True,
               description="fraction of rows whose label equals the answer"),
    MetricSpec("auc", auc, is_lower_better=False, needs_proba=True,
               description="binary ROC AUC of the positive-class probability"),
    MetricSpec("log_loss", log_loss, is_lower_better=True, needs_proba=True, python_float=True,
               description="binary log loss of P(y=1), clipped to [clip_eps, 1-clip_eps]"),
    MetricSpec("multiclass_log_loss", multiclass_log_loss, is_lower_better=True, needs_proba=True,
               multi_column=True, python_float=True,
               description="multiclass log loss, one probability column per class"),
    MetricSpec("rmse", rmse, is_lower_better=True, description="root mean squared error"),
    MetricSpec("rmsle", rmsle, is_lower_better=True, description="root mean squared logarithmic error"),
    MetricSpec("mae", mae, is_lower_better=True, description="mean absolute error"),
    MetricSpec("qwk", qwk, is_lower_better=False, label_valued=True,
               description="quadratic weighted kappa between integer grades"),
    MetricSpec("f1", f1, is_lower_better=False, label_valued=True,
               description="F1 score (binary by default; rule `average` for macro/micro/weighted)"),
    MetricSpec("mean_column_auc", mean_column_auc, is_lower_better=False, needs_proba=True, multi_column=True,
               description="mean over target columns of the binary ROC AUC"),
    MetricSpec("mean_column_rmsle", mean_column_rmsle, is_lower_better=True, multi_column=True,
               description="mean over target columns of RMSLE"),
    MetricSpec("auc_flattened", auc_flattened, is_lower_better=False, needs_proba=True, multi_column=True,
               description="ROC AUC over all (row, column) cells of a multilabel table"),
]}


def get(name: str) -> MetricSpec:
    """The registered metric `name`; an unknown name fails with the closest valid spelling."""
    if name not in METRICS:
        import difflib
        close = difflib.get_close_matches(name, list(METRICS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise KeyError(f"unknown metric '{name}'.{hint} Known metrics: {sorted(METRICS)}")
    return METRICS[name]
