"""Competition metrics: one registry, scikit-learn underneath, MLE-bench semantics on top.

`METRICS[name]` is a `MetricSpec`. Its `fn(y_true, y_pred, **options)` takes arrays that the grader has
already aligned by id and checked (no NaN, numbers where numbers are due):

- single-column metrics get 1-D arrays `[N]`;
- multi-column metrics (`multi_column=True`) get 2-D arrays `[N, K]`, columns in `Competition.target_columns`
  order. For `multiclass_log_loss` the answers are one-hot `[N, K]` (the form MLE-bench's answers files use:
  a "perfect submission"), or 1-D class labels together with `labels=`.

Options come from `Competition.rules` (see `grader.py`): `clip_eps`, `normalize_rows` (log losses), `average`
(F1). scikit-learn is imported inside the functions so that `import acelib.tasks` stays light.
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
    description: str = ""

    def __call__(self, y_true: Any, y_pred: Any, **options: Any) -> float:
        return float(self.fn(y_true, y_pred, **options))


def _clip(p: np.ndarray, eps: float) -> np.ndarray:
    if not 0 <= eps < 0.5:
        raise ValueError(f"clip_eps must be in [0, 0.5), got {eps}; MLE-bench uses {SKLEARN_CLIP_EPS!r}, Kaggle 1e-15")
    return np.clip(p, eps, 1 - eps)


def accuracy(y_true, y_pred) -> float:
    from sklearn.metrics import accuracy_score
    return accuracy_score(y_true, y_pred)


def auc(y_true, y_pred) -> float:
    """Binary ROC AUC; y_pred is the score (probability) of the positive class."""
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(y_true, y_pred)


def log_loss(y_true, y_pred, clip_eps: float = KAGGLE_CLIP_EPS) -> float:
    """Binary log loss; y_pred is P(y = 1), shape [N].

    The [1 - p, p] matrix is built before clipping, exactly as scikit-learn does, so that with
    clip_eps = machine epsilon the result equals MLE-bench's `sklearn.metrics.log_loss(y_true, y_pred)`.
    """
    from sklearn.metrics import log_loss as sk_log_loss
    p = np.asarray(y_pred, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"binary log_loss expects one probability per row, got shape {p.shape}")
    proba = _clip(np.column_stack([1 - p, p]), clip_eps)  # [N, 2]
    return sk_log_loss(y_true, proba, labels=[0, 1])


def multiclass_log_loss(y_true, y_pred, clip_eps: float = KAGGLE_CLIP_EPS, normalize_rows: bool = True,
                        labels: list | None = None) -> float:
    """Multiclass log loss, Kaggle style: clip to [eps, 1 - eps], then (optionally) divide each row by its sum.

    y_pred: [N, K]; y_true: one-hot [N, K] or labels [N] with `labels` naming the K classes in column order.
    """
    from sklearn.metrics import log_loss as sk_log_loss
    p = _clip(np.asarray(y_pred, dtype=np.float64), clip_eps)  # [N, K]
    if p.ndim != 2:
        raise ValueError(f"multiclass_log_loss expects an [N, K] probability matrix, got shape {p.shape}")
    if normalize_rows:
        p = p / p.sum(axis=1, keepdims=True)
    y = np.asarray(y_true)
    if y.ndim == 2:
        # one-hot answers: scikit-learn reads an indicator matrix as is (MLE-bench passes it the same way)
        return sk_log_loss(y, p)
    if labels is None:
        raise ValueError("multiclass_log_loss with 1-D labels needs labels= (the class of each column, in order)")
    return sk_log_loss(y, p, labels=list(labels))


def rmse(y_true, y_pred) -> float:
    from sklearn.metrics import root_mean_squared_error
    return root_mean_squared_error(y_true, y_pred)


def rmsle(y_true, y_pred) -> float:
    from sklearn.metrics import root_mean_squared_log_error
    return root_mean_squared_log_error(y_true, y_pred)


def mae(y_true, y_pred) -> float:
    from sklearn.metrics import mean_absolute_error
    return mean_absolute_error(y_true, y_pred)


def qwk(y_true, y_pred) -> float:
    """Quadratic weighted kappa (Cohen's kappa with quadratic weights), symmetric in its arguments."""
    from sklearn.metrics import cohen_kappa_score
    return cohen_kappa_score(y_true, y_pred, weights="quadratic")


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
    MetricSpec("accuracy", accuracy, is_lower_better=False, label_valued=True,
               description="fraction of rows whose label equals the answer"),
    MetricSpec("auc", auc, is_lower_better=False, needs_proba=True,
               description="binary ROC AUC of the positive-class probability"),
    MetricSpec("log_loss", log_loss, is_lower_better=True, needs_proba=True,
               description="binary log loss of P(y=1), clipped to [clip_eps, 1-clip_eps]"),
    MetricSpec("multiclass_log_loss", multiclass_log_loss, is_lower_better=True, needs_proba=True,
               multi_column=True, description="multiclass log loss, one probability column per class"),
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
