"""Turn one table (features + target columns) into a `Built` competition: seeded split, answers, sample
submission, ladder features and the prediction -> submission conversion. Tabular, text and image builders
all end here, so every competition gets the same file semantics."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from acelib.tasks.suites.base import Built, Spec, describe_columns, split_index

PROBA_METRICS = {"auc", "log_loss", "multiclass_log_loss", "mean_column_auc"}
LABEL_METRICS = {"accuracy", "qwk", "f1"}
LOG_TARGET_METRICS = {"rmsle", "mean_column_rmsle"}


def default_rules(spec_metric: str, classes: tuple | None = None) -> dict:
    """Grader rules (AGENTS.md keys) implied by the metric."""
    if spec_metric == "multiclass_log_loss":
        return {"proba": True, "clip_eps": 1e-15, "normalize_rows": True}
    if spec_metric in PROBA_METRICS:
        return {"proba": True, "clip_eps": 1e-15} if spec_metric == "log_loss" else {"proba": True}
    if spec_metric in LABEL_METRICS and classes is not None:
        return {"labels": [c.item() if hasattr(c, "item") else c for c in classes]}
    return {}


def onehot_features(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric matrix for the ladder: one-hot categoricals (categories seen in train or test), median-imputed."""
    both = pd.concat([train, test], axis=0, ignore_index=True)
    cat = [c for c in both.columns if not pd.api.types.is_numeric_dtype(both[c]) or both[c].dtype == bool]
    both = pd.get_dummies(both, columns=cat, dummy_na=False, dtype=float).astype(float)
    both = both.fillna(both.iloc[: len(train)].median()).fillna(0.0)
    X = both.to_numpy()
    return X[: len(train)], X[len(train):]


def assemble(spec: Spec, df: pd.DataFrame, *, features: list[str], columns_doc: dict[str, str],
             label: str | None = None, test_size: float = 0.2,
             featurize: Callable[[pd.DataFrame, pd.DataFrame], tuple] | None = None,
             files_note: str = "", classes: tuple | None = None) -> Built:
    """Build the competition from `df`.

    `label`: the train.csv column holding the class of a multi-class log-loss task (the submission has one
    probability column per class, `spec.target_columns`); otherwise the targets are `spec.target_columns`.
    `df[spec.id_column]` is used when present, else ids are a seeded permutation of 0..n-1.
    """
    df = df.reset_index(drop=True).copy()
    id_col, targets, task, metric = spec.id_column, list(spec.target_columns), spec.task, spec.metric
    if id_col not in df:
        df.insert(0, id_col, spec.rng("ids").permutation(len(df)))
    if df[id_col].duplicated().any():
        raise ValueError(f"{spec.id}: id column {id_col!r} has duplicates")
    train_targets = [label] if label else targets

    if task == "multiclass":
        lab = df[train_targets[0]]
        classes = tuple(targets) if label else (classes or tuple(sorted(lab.unique())))
        missing = set(lab.unique()) - set(classes)
        if missing:
            raise ValueError(f"{spec.id}: labels {sorted(missing)} are not among the classes {classes}")
        index = {c: k for k, c in enumerate(classes)}
        y_all = np.array([index[v] for v in lab])
    elif task == "binary":
        y_all = df[targets[0]].to_numpy().astype(int)
        classes = (0, 1)
        if set(np.unique(y_all)) != {0, 1}:
            raise ValueError(f"{spec.id}: a binary target must hold 0/1")
    else:
        y_all = df[targets].to_numpy(dtype=float)
        if task == "regression":
            y_all = y_all[:, 0]
    stratify = y_all if task in ("binary", "multiclass") else None
    tr, te = split_index(spec, len(df), test_size, stratify)
    dtr, dte = df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)

    train = dtr[[id_col] + features + train_targets]
    test = dte[[id_col] + features]
    if task == "multiclass" and metric == "multiclass_log_loss":
        onehot = (dte[train_targets[0]].to_numpy()[:, None] == np.array(classes, dtype=object)[None, :])
        answers = pd.concat([dte[[id_col]], pd.DataFrame(onehot.astype(int), columns=list(classes))], axis=1)
    else:
        answers = dte[[id_col] + targets]

    ids = dte[[id_col]].reset_index(drop=True)
    if metric in PROBA_METRICS:
        trivial = 1.0 / len(targets) if metric == "multiclass_log_loss" else 0.5
        sample = ids.assign(**{c: trivial for c in targets})
    elif metric in LABEL_METRICS:
        sample = ids.assign(**{targets[0]: classes[0]})
    else:
        sample = ids.assign(**{c: float(np.round(dtr[c].median(), 2)) for c in targets})

    if featurize is None:
        X, Xt = onehot_features(dtr[features], dte[features])
    else:  # custom featurizers also get the id column (image and audio files are keyed by id)
        X, Xt = featurize(dtr[[id_col] + features], dte[[id_col] + features])
    y = y_all[tr]
    if metric in LOG_TARGET_METRICS:  # model log1p(target) so squared error matches the metric
        y = np.log1p(y)

    def to_submission(pred: np.ndarray) -> pd.DataFrame:
        if metric in LABEL_METRICS:
            k = (pred > 0.5).astype(int) if task == "binary" else np.argmax(pred, axis=1)
            return ids.assign(**{targets[0]: np.asarray(classes)[k]})
        if metric in LOG_TARGET_METRICS:
            pred = np.clip(np.expm1(pred), 0, None)
        if metric == "multiclass_log_loss":
            pred = pred / pred.sum(axis=1, keepdims=True)
        pred = pred.reshape(len(ids), -1)
        return pd.concat([ids, pd.DataFrame(pred, columns=targets)], axis=1)

    data = (f"- `train.csv`: {len(train)} rows, the training set.\n"
            f"- `test.csv`: {len(test)} rows, the test set (same columns without the target"
            f"{'s' if len(train_targets) > 1 else ''}).\n"
            f"- `sample_submission.csv`: a submission in the correct format.\n"
            + (files_note.strip() + "\n" if files_note else "")
            + "\nColumns:\n\n" + describe_columns(columns_doc))
    return Built(train=train, test=test, answers=answers, sample=sample, data_description=data,
                 X_train=X, y_train=y, X_test=Xt, to_submission=to_submission,
                 classes=tuple(classes) if classes is not None else None)
