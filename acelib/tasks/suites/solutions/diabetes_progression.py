"""Reference solution for a tabular mini-competition (rendered from acelib/tasks/suites/solutions/_tabular_template.py).

Reads ./input/{train,test}.csv, prints VALIDATION_SCORE on a 20% hold-out of train, refits on all of train
and writes ./submission/submission.csv.
"""
# --- settings (the only part that differs between competitions) ---
SETTINGS = {'id': 'id', 'label': None, 'metric': 'rmse', 'model': 'forest', 'targets': ['target'], 'task': 'regression'}
# --- end of settings ---
import os

import numpy as np
import pandas as pd
from sklearn import ensemble, linear_model, metrics, multioutput, neighbors, pipeline, preprocessing
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

threadpool_limits(1)  # one thread: reproducible and fast on a shared 2-core machine

ID, TARGETS, LABEL = SETTINGS["id"], SETTINGS["targets"], SETTINGS["label"]
TASK, METRIC, MODEL = SETTINGS["task"], SETTINGS["metric"], SETTINGS["model"]
CLASSIFY = TASK in ("binary", "multiclass", "multilabel")
LOG_TARGET = METRIC in ("rmsle", "mean_column_rmsle")

train = pd.read_csv("input/train.csv")
test = pd.read_csv("input/test.csv")
label_cols = [LABEL] if LABEL else TARGETS


def expand(d):
    """Date columns -> hour, weekday, month; letter-string columns -> one ordinal per position (one-hot encoding
    either would give thousands of near-unique dense columns)."""
    d = d.copy()
    for c in SETTINGS.get("dates", []):
        t = pd.to_datetime(d.pop(c).str.replace(" UTC", ""))
        d[c + "_hour"], d[c + "_weekday"], d[c + "_month"] = t.dt.hour, t.dt.dayofweek, t.dt.month
    for c in SETTINGS.get("letters", []):
        chars = d.pop(c).astype(str).apply(list).tolist()
        for k, col in enumerate(zip(*chars)):
            d[f"{c}_{k}"] = [ord(ch) for ch in col]
    return d


train, test = expand(train), expand(test)
features = [c for c in train.columns if c not in label_cols and c != ID]

TEXT = SETTINGS.get("text")
if TEXT:  # free text: word n-gram TF-IDF of the text columns (sparse)
    from sklearn.feature_extraction.text import TfidfVectorizer

    def join(d):
        return d[TEXT].fillna("").astype(str).agg(" ".join, axis=1)
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, SETTINGS.get("ngram", 2)),
                          max_features=SETTINGS.get("vocab", 20000))
    X, X_test = vec.fit_transform(join(train)), vec.transform(join(test))
else:
    # One-hot encode text categories over train+test so both get the same columns; impute medians.
    both = pd.get_dummies(pd.concat([train[features], test[features]], ignore_index=True), dtype=float)
    both = both.astype(float).fillna(both.iloc[: len(train)].median()).fillna(0.0)
    X, X_test = both.iloc[: len(train)].to_numpy(), both.iloc[len(train):].to_numpy()
y = train[label_cols].to_numpy()
if TASK not in ("multilabel", "multiregression"):
    y = y[:, 0]
if LOG_TARGET:
    y = np.log1p(y.astype(float))


def make_model():
    model = make_single_model()
    if TASK in ("multilabel", "multiregression") and MODEL in ("linear", "boosting"):
        # these models fit one target column; forests and kNN handle several natively
        model = (multioutput.MultiOutputClassifier if CLASSIFY else multioutput.MultiOutputRegressor)(model)
    return model


def make_single_model():
    if MODEL == "linear":
        est = linear_model.LogisticRegression(C=SETTINGS.get("C", 1.0), max_iter=1000) if CLASSIFY \
            else linear_model.Ridge(alpha=SETTINGS.get("alpha", 1.0))
        return est if TEXT else pipeline.make_pipeline(preprocessing.StandardScaler(), est)
    if MODEL == "knn":
        est = (neighbors.KNeighborsClassifier if CLASSIFY else neighbors.KNeighborsRegressor)(
            SETTINGS.get("k", 10), weights="distance")
        return pipeline.make_pipeline(preprocessing.StandardScaler(), est)
    if MODEL == "forest":
        return (ensemble.RandomForestClassifier if CLASSIFY else ensemble.RandomForestRegressor)(
            n_estimators=SETTINGS.get("trees", 100), min_samples_leaf=SETTINGS.get("leaf", 1), random_state=0,
            n_jobs=1)
    if MODEL == "boosting":
        return (ensemble.HistGradientBoostingClassifier if CLASSIFY else ensemble.HistGradientBoostingRegressor)(
            max_iter=SETTINGS.get("iters", 100), learning_rate=SETTINGS.get("lr", 0.1), random_state=0)
    raise ValueError(f"unknown model {MODEL}")


def predict(model, X):
    """Predictions in submission form: probabilities, labels or values."""
    if TASK == "multilabel":
        return np.column_stack([p[:, 1] for p in model.predict_proba(X)])
    if METRIC in ("accuracy", "qwk", "f1"):
        return model.predict(X)
    if TASK == "binary":
        return model.predict_proba(X)[:, 1]
    if TASK == "multiclass":
        proba = model.predict_proba(X)
        out = np.zeros((X.shape[0], len(TARGETS)))
        out[:, [TARGETS.index(c) for c in model.classes_]] = proba
        return out
    pred = model.predict(X)
    return np.clip(np.expm1(pred), 0, None) if LOG_TARGET else pred


def score(y_true, pred):
    if LOG_TARGET:
        y_true = np.expm1(y_true)
    if METRIC == "auc":
        return metrics.roc_auc_score(y_true, pred)
    if METRIC == "log_loss":
        return metrics.log_loss(y_true, np.clip(pred, 1e-15, 1 - 1e-15), labels=[0, 1])
    if METRIC == "multiclass_log_loss":
        return metrics.log_loss(y_true, pred, labels=TARGETS)
    if METRIC == "accuracy":
        return metrics.accuracy_score(y_true, pred)
    if METRIC == "f1":
        return metrics.f1_score(y_true, pred)
    if METRIC == "qwk":
        return metrics.cohen_kappa_score(y_true, pred, weights="quadratic")
    if METRIC == "rmse":
        return metrics.root_mean_squared_error(y_true, pred)
    if METRIC in ("rmsle", "mean_column_rmsle"):
        return metrics.root_mean_squared_log_error(y_true, pred)
    if METRIC == "mae":
        return metrics.mean_absolute_error(y_true, pred)
    if METRIC == "mean_column_auc":
        return np.mean([metrics.roc_auc_score(y_true[:, k], pred[:, k]) for k in range(y_true.shape[1])])
    raise ValueError(METRIC)


strat = y if TASK in ("binary", "multiclass") else None
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=strat)
model = make_model().fit(X_tr, y_tr)
print(f"VALIDATION_SCORE: {score(y_va, predict(model, X_va)):.6f}")

model = make_model().fit(X, y)
pred = predict(model, X_test)
sub = test[[ID]].copy()
if TASK in ("multiclass", "multilabel", "multiregression") and METRIC not in ("accuracy", "qwk", "f1"):
    sub = pd.concat([sub, pd.DataFrame(np.asarray(pred).reshape(len(sub), -1), columns=TARGETS)], axis=1)
else:
    sub[TARGETS[0]] = pred
os.makedirs("submission", exist_ok=True)
sub.to_csv("submission/submission.csv", index=False)
