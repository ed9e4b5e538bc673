"""Compact baselines: for every competition a short, plain script rendered from its `Spec`.

Where the reference solution is a generic 150-line program that branches on its settings, a compact baseline
holds only the lines its competition needs (at most `MAX_LINES`): read the data, simple features (numeric and
one-hot columns, TF-IDF for text, raw pixels for images), one standard scikit-learn model, the metric on a 20%
hold-out printed as `VALIDATION_SCORE:`, and ./submission/submission.csv. It follows the agent program contract
(AGENTS.md) and makes a valid submission; it does not aim at the median. It is what a small model can read,
repair and improve, so it seeds the curriculum (`acelib.tasks.suites.mutations`, `acelib.agent.seeds`).

Rendered from: modality, id and target columns, `label`, task, metric, and from `Spec.solution` the `text`
columns, the `dates` / `letters` columns (dropped here), the image `labels` layout and `compact.files` (the image
file name of an id, default `"{}.png"`).
"""
from __future__ import annotations

import json

from acelib.tasks.suites.base import Spec

MAX_LINES = 30

# metric -> the scikit-learn function computing it on the hold-out, and extra arguments of the call
SCORERS = {
    "auc": ("roc_auc_score", ""), "mean_column_auc": ("roc_auc_score", ""), "log_loss": ("log_loss", ""),
    "multiclass_log_loss": ("log_loss", ", labels=model.classes_"), "accuracy": ("accuracy_score", ""),
    "f1": ("f1_score", ""), "qwk": ("cohen_kappa_score", ', weights="quadratic"'),
    "rmse": ("root_mean_squared_error", ""), "rmsle": ("root_mean_squared_log_error", ""),
    "mean_column_rmsle": ("root_mean_squared_log_error", ""), "mae": ("mean_absolute_error", ""),
}
LABEL_METRICS = ("accuracy", "f1", "qwk")   # the submission holds labels, not probabilities
CLASSIFY = ("binary", "multiclass", "multilabel")


def _spec(comp_id: str) -> Spec:
    from acelib.tasks.suites import get_spec

    spec = get_spec(comp_id)
    if spec.task not in CLASSIFY + ("regression", "multiregression") or spec.metric not in SCORERS:
        raise ValueError(f"{comp_id}: no compact baseline for task {spec.task!r} / metric {spec.metric!r}; "
                         "add them to acelib/tasks/suites/solutions/compact.py")
    return spec


def _model(spec: Spec) -> tuple[list[str], str]:
    """(import lines, constructor): a random forest on tabular and image features, a linear model on TF-IDF."""
    classify = spec.task in CLASSIFY
    if spec.modality == "text":
        name, module, args = ("LogisticRegression", "linear_model", "max_iter=1000") if classify else \
            ("Ridge", "linear_model", "")
    else:
        name, module, args = ("RandomForestClassifier" if classify else "RandomForestRegressor", "ensemble",
                              "n_estimators=100, random_state=0")
    imports, model = [f"from sklearn.{module} import {name}"], f"{name}({args})"
    if spec.task == "multilabel":  # one binary model per label; predict_proba gives one column per label
        imports.append("from sklearn.multiclass import OneVsRestClassifier")
        model = f"OneVsRestClassifier({model})"
    return imports, model


def _predict(spec: Spec, X: str) -> str:
    if spec.task in CLASSIFY and spec.metric not in LABEL_METRICS:
        return f"model.predict_proba({X})" + ("[:, 1]" if spec.task == "binary" else "")
    return f"model.predict({X})"


def _q(value) -> str:
    """A string or list of strings as a Python literal in double quotes (the style of the scripts)."""
    return json.dumps(value)


def _features(spec: Spec) -> tuple[list[str], list[str]]:
    """(extra import lines, lines defining X, X_test and y from the data files)."""
    sol, id_col = spec.solution, _q(spec.id_column)
    y_cols = [spec.label] if spec.label else list(spec.target_columns)
    multi = len(y_cols) > 1
    y = "y = train[targets]" if multi else f"y = train[{_q(y_cols[0])}]"
    if spec.modality == "image":
        file = sol.get("compact", {}).get("files", "{}.png").format("{i}")
        lines = ["def load(path):", "    return np.asarray(Image.open(path), dtype=float).ravel() / 255", ""]
        if sol["labels"] == "filename":  # the class is in the file name: cat.<n>.png / dog.<n>.png
            lines += ['files = sorted(os.listdir("input/train"))',
                      'X = np.array([load(f"input/train/{f}") for f in files])',
                      'y = [int(f.startswith("dog.")) for f in files]']
        else:
            lines += [f'train = pd.read_csv("input/{sol["labels"]}")',
                      f'X = np.array([load(f"input/train/{file}") for i in train[{id_col}]])', y]
        return (["import numpy as np", "from PIL import Image"],
                lines + ['test = pd.read_csv("input/test.csv")',
                         f'X_test = np.array([load(f"input/test/{file}") for i in test[{id_col}]])'])
    lines = ['train = pd.read_csv("input/train.csv")', 'test = pd.read_csv("input/test.csv")']
    lines += [f"targets = {_q(y_cols)}"] if multi else []
    if spec.modality == "text":
        cols = sol["text"]
        if len(cols) > 1:
            lines.append(f"columns = {_q(cols)}")
        text = (lambda d: f'{d}[{_q(cols[0])}].fillna("")') if len(cols) == 1 else \
            (lambda d: f'{d}[columns].fillna("").agg(" ".join, axis=1)')
        return (["from sklearn.feature_extraction.text import TfidfVectorizer"],
                lines + ["vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2)",
                         f"X = vectorizer.fit_transform({text('train')})",
                         f"X_test = vectorizer.transform({text('test')})", y])
    # Date and letter-string columns are near-unique: one-hot encoding them would give thousands of columns.
    excluded = _q([spec.id_column] + ([] if multi else y_cols) + sol.get("dates", []) + sol.get("letters", []))
    return [], lines + [
        f"features = [c for c in train.columns if c not in {excluded}{' + targets' if multi else ''}]",
        "data = pd.get_dummies(pd.concat([train[features], test[features]]), dtype=float).fillna(0)",
        "X, X_test = data.iloc[:len(train)], data.iloc[len(train):]", y]


def compact_baseline(comp_id: str) -> str:
    """A short script for the competition (≤ `MAX_LINES` lines) following the agent program contract: a standard
    scikit-learn model, `VALIDATION_SCORE:` on a 20% hold-out, a valid ./submission/submission.csv."""
    spec = _spec(comp_id)
    extra_imports, feature_lines = _features(spec)
    model_imports, model = _model(spec)
    scorer, score_args = SCORERS[spec.metric]
    id_col = _q(spec.id_column)
    if spec.label and spec.task == "multiclass" and spec.metric not in LABEL_METRICS:
        submission = [f"submission = pd.DataFrame({_predict(spec, 'X_test')}, columns=model.classes_)",
                      f"submission.insert(0, {id_col}, test[{id_col}])"]
    elif len(spec.target_columns) > 1:
        submission = [f"submission = pd.DataFrame({_predict(spec, 'X_test')}, columns=targets)",
                      f"submission.insert(0, {id_col}, test[{id_col}])"]
    else:
        submission = [f"submission = pd.DataFrame({{{id_col}: test[{id_col}], "
                      f"{_q(spec.target_columns[0])}: {_predict(spec, 'X_test')}}})"]
    imports = sorted(["import pandas as pd", *[i for i in extra_imports if i.startswith("import")]]) + \
        sorted([*[i for i in extra_imports if i.startswith("from")], *model_imports,
                f"from sklearn.metrics import {scorer}", "from sklearn.model_selection import train_test_split"])
    lines = ["import os", "", *imports, "", *feature_lines,
             "X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0)",
             f"model = {model}", "model.fit(X_tr, y_tr)",
             f'print("VALIDATION_SCORE:", {scorer}(y_va, {_predict(spec, "X_va")}{score_args}))',
             *submission, 'os.makedirs("submission", exist_ok=True)',
             'submission.to_csv("submission/submission.csv", index=False)']
    code = "\n".join(lines) + "\n"
    if code.count("\n") > MAX_LINES:
        raise AssertionError(f"{comp_id}: the compact baseline has {code.count(chr(10))} lines (> {MAX_LINES})")
    return code


def compact_plan(comp_id: str) -> str:
    """The plan that comes with the compact baseline (a seed state's `plan`)."""
    spec = _spec(comp_id)
    _, model = _model(spec)
    features = {"text": "TF-IDF word and bigram features of the text", "image": "the raw pixels of each image"}.get(
        spec.modality, "the numeric columns plus one-hot encoded categories")
    return (f"A simple baseline: {model.split('(')[0]} on {features}. Score it on a 20% hold-out of the training "
            "data and write predictions for every test row to submission/submission.csv.")
