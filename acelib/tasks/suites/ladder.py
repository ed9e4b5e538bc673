"""The baseline ladder that produces each mini-competition's leaderboard.

A Kaggle leaderboard is a crowd of real submissions of very different strength. We reproduce one honestly:
we fit a ladder of real scikit-learn baselines on the public train set (dummy -> linear on feature subsets
and training subsamples -> kNN / single trees -> forests and boosting), score each on the hidden test set,
and add blends (averages of the fitted models' predictions, as Kaggle teams blend public kernels), until
the board holds `N_ROWS` submissions. Scores are rounded to 5 decimals (as MLE-bench does) and sorted best
first. Everything is seeded and single-threaded, so the board is byte-for-byte reproducible.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from acelib.tasks.suites.base import Built, Spec

N_ROWS = 120          # leaderboard size: 100-249 teams puts gold at rank 10 (MLE-bench progression rules)
N_BLEND_MAX = 4       # a blend averages 2..N_BLEND_MAX fitted baselines


# --------------------------------------------------------------------------------------------- scoring
# The metric options a competition's `rules` may set (grader.py passes the same ones).
METRIC_OPTIONS = ("clip_eps", "normalize_rows", "average")


def score_submission(spec: Spec, answers: pd.DataFrame, sub: pd.DataFrame) -> float:
    """Score a submission frame against the answers frame (rows aligned by id), as the grader does."""
    if len(sub) != len(answers) or set(sub[spec.id_column]) != set(answers[spec.id_column]):
        raise ValueError(f"{spec.id}: ladder submission ids do not match the answers")
    a = answers.sort_values(spec.id_column, kind="stable")
    s = sub.sort_values(spec.id_column, kind="stable")
    cols = list(spec.target_columns)
    y, p = a[cols].to_numpy(), s[cols].to_numpy()
    if len(cols) == 1:
        y, p = y[:, 0], p[:, 0]
    from acelib.tasks.metrics import METRICS  # one implementation for the grader and the ladder

    metric = METRICS[spec.metric]
    if metric.label_valued:
        p = p.astype(y.dtype)
    else:
        y, p = y.astype(float), p.astype(float)
    options = {k: v for k, v in spec.rules.items() if k in METRIC_OPTIONS}
    return metric(y, p, **options)


# --------------------------------------------------------------------------------------------- models
def _is_classifier(task: str) -> bool:
    return task in ("binary", "multiclass", "multilabel")


def _zoo(task: str, sparse: bool, n_features: int, n_classes: int) -> list[tuple[str, Callable, float, float]]:
    """(name, make_estimator(seed), feature fraction, training-row fraction), weakest first."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier,
                                  HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
    from sklearn.naive_bayes import ComplementNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    clf = _is_classifier(task)
    multi = task in ("multilabel", "multiregression")

    def per_column(est):
        # scikit-learn's linear models and boosting fit one target; forests/kNN handle [N, K] natively.
        if not multi:
            return est
        return MultiOutputClassifier(est) if clf else MultiOutputRegressor(est)

    def linear(C):
        if clf:
            est = LogisticRegression(C=C, max_iter=300)
        else:
            est = Ridge(alpha=1.0 / C)
        return per_column(est if sparse else make_pipeline(StandardScaler(), est))

    z: list[tuple[str, Callable, float, float]] = []
    if clf:
        z.append(("dummy-prior", lambda s: DummyClassifier(strategy="prior"), 1.0, 1.0))
        z += [(f"dummy-stratified-s{s}", lambda s: DummyClassifier(strategy="stratified", random_state=s), 1.0, 1.0)
              for s in range(3)]
    else:
        z += [("dummy-mean", lambda s: DummyRegressor(strategy="mean"), 1.0, 1.0),
              ("dummy-median", lambda s: DummyRegressor(strategy="median"), 1.0, 1.0)]
    # Linear models that see only a random part of the features or of the rows spread the middle of the board.
    for frac in (0.05, 0.15, 0.4):
        z.append((f"linear-features{frac}", lambda s: linear(1.0), frac, 1.0))
    for rows in (0.05, 0.2, 1.0):
        z.append((f"linear-rows{rows}", lambda s: linear(1.0), 1.0, rows))
    z.append(("linear-C0.01", lambda s: linear(0.01), 1.0, 1.0))
    if sparse:
        if clf and task != "multilabel":
            z.append(("complement-nb", lambda s: ComplementNB(), 1.0, 1.0))
        z.append(("linear-C10", lambda s: linear(10.0), 1.0, 1.0))
        return z
    z.append(("knn-15", lambda s: make_pipeline(StandardScaler(), (KNeighborsClassifier if clf else
                                                                    KNeighborsRegressor)(15)), 1.0, 1.0))
    z.append(("tree-depth3", lambda s: (DecisionTreeClassifier if clf else DecisionTreeRegressor)(
        max_depth=3, random_state=s), 1.0, 1.0))
    z.append(("tree-depth8", lambda s: (DecisionTreeClassifier if clf else DecisionTreeRegressor)(
        max_depth=8, min_samples_leaf=5, random_state=s), 1.0, 1.0))
    forest = RandomForestClassifier if clf else RandomForestRegressor
    extra = ExtraTreesClassifier if clf else ExtraTreesRegressor
    for rows in (0.1, 0.3):
        z.append((f"forest-rows{rows}", lambda s: forest(40, min_samples_leaf=2, max_samples=0.5, random_state=s,
                                                          n_jobs=1), 1.0, rows))
    z.append(("forest-features0.3", lambda s: forest(40, min_samples_leaf=2, max_samples=0.5, random_state=s,
                                                     n_jobs=1), 0.3, 1.0))
    for s in (0, 1):
        z.append((f"forest-s{s}", lambda s: forest(60, min_samples_leaf=2, max_samples=0.5, random_state=s,
                                                   n_jobs=1), 1.0, 1.0))
        z.append((f"extra-trees-s{s}", lambda s: extra(60, min_samples_leaf=2, random_state=s, n_jobs=1), 1.0, 1.0))
    # Boosting with K classes grows K trees per round: keep it for small class counts and few features.
    if task != "multilabel" and n_classes <= 5 and n_features <= 800:
        hgb = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        z.append(("boosting-rows0.3", lambda s: per_column(hgb(max_iter=60, early_stopping=False,
                                                                random_state=s)), 1.0, 0.3))
        z.append(("boosting", lambda s: per_column(hgb(max_iter=100, early_stopping=False, random_state=s)),
                  1.0, 1.0))
        z.append(("boosting-lr0.05", lambda s: per_column(hgb(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                               early_stopping=False, random_state=s)), 1.0, 1.0))
    return z


def _predict(est, X: np.ndarray, task: str) -> np.ndarray:
    """Prediction in the ladder's common form: P(class 1) [N], class probabilities [N, C],
    label probabilities [N, K] or values ([N] / [N, K])."""
    if task == "binary":
        return est.predict_proba(X)[:, 1]
    if task == "multiclass":
        return est.predict_proba(X)
    if task == "multilabel":
        proba = est.predict_proba(X)
        if isinstance(proba, list):  # forests and MultiOutputClassifier give one [N, 2] array per label
            return np.column_stack([p[:, 1] if p.shape[1] == 2 else np.zeros(len(p)) for p in proba])
        return proba
    return np.asarray(est.predict(X), dtype=float)


def fit_ladder(spec: Spec, built: Built) -> list[tuple[str, np.ndarray]]:
    """Fit every baseline of the zoo on the public train features; returns (name, test prediction)."""
    from threadpoolctl import threadpool_limits

    X, y, Xt = built.X_train, built.y_train, built.X_test
    sparse = sp.issparse(X)
    n_classes = len(built.classes) if built.classes is not None else 2
    out = []
    with threadpool_limits(1):  # single-threaded: deterministic and polite to the other cores
        for k, (name, make, ffrac, rfrac) in enumerate(_zoo(spec.task, sparse, X.shape[1], n_classes)):
            rng = np.random.default_rng(spec.seed(f"ladder/{name}"))
            cols = np.arange(X.shape[1])
            if ffrac < 1.0:
                cols = np.sort(rng.choice(X.shape[1], size=max(1, int(round(ffrac * X.shape[1]))), replace=False))
            rows = np.arange(X.shape[0])
            if rfrac < 1.0:
                rows = _row_subset(rng, y, spec.task, max(20, int(round(rfrac * X.shape[0]))))
            est = make(k)
            est.fit(X[rows][:, cols], y[rows])
            pred = _predict(est, Xt[:, cols], spec.task)
            if spec.task == "multiclass" and pred.shape[1] != n_classes:  # a subsample missed a class
                full = np.zeros((pred.shape[0], n_classes))
                full[:, np.searchsorted(np.arange(n_classes), est.classes_)] = pred
                pred = full
            out.append((name, pred))
    return out


def _row_subset(rng: np.random.Generator, y: np.ndarray, task: str, n: int) -> np.ndarray:
    """Random training rows; for classification every class keeps at least two rows so models can fit."""
    rows = rng.choice(len(y), size=min(n, len(y)), replace=False)
    if task in ("binary", "multiclass"):
        extra = [np.flatnonzero(y == c)[:2] for c in np.unique(y)]
        rows = np.union1d(rows, np.concatenate(extra))
    return np.sort(rows)


def blends(spec: Spec, preds: list[tuple[str, np.ndarray]], n: int) -> list[tuple[str, np.ndarray]]:
    """`n` seeded blends: each averages 2..N_BLEND_MAX distinct non-dummy baselines."""
    pool = [(name, p) for name, p in preds if not name.startswith("dummy")]
    rng = np.random.default_rng(spec.seed("blends"))
    out = []
    for _ in range(n):
        k = int(rng.integers(2, N_BLEND_MAX + 1))
        pick = sorted(rng.choice(len(pool), size=min(k, len(pool)), replace=False))
        name = "blend:" + "+".join(pool[i][0] for i in pick)
        out.append((name, np.mean([pool[i][1] for i in pick], axis=0)))
    return out


def ladder_submissions(spec: Spec, built: Built) -> list[tuple[str, pd.DataFrame]]:
    """All baseline submissions of a competition (fitted models and blends, or the builder's own ladder)."""
    if built.ladder is not None:
        subs = built.ladder()
    else:
        preds = fit_ladder(spec, built)
        preds += blends(spec, preds, max(0, N_ROWS - len(preds)))
        subs = [(name, built.to_submission(p)) for name, p in preds]
    return subs


def leaderboard(spec: Spec, built: Built) -> list[tuple[str, float]]:
    """(baseline name, score rounded to 5 decimals) of every ladder submission, best first."""
    scored = [(name, round(score_submission(spec, built.answers, sub), 5))
              for name, sub in ladder_submissions(spec, built)]
    if len(scored) < 100:
        raise ValueError(f"{spec.id}: the ladder produced {len(scored)} submissions; a leaderboard needs >= 100")
    # Best first; ties keep ladder order (stable sort) so the file is deterministic.
    return sorted(scored, key=lambda t: t[1] if spec.is_lower_better else -t[1])
