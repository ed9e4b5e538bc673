"""Shared machinery of the offline suites: the `Spec` of one mini-competition, what a builder returns
(`Built`), deterministic file writing, seeded splits and the Kaggle-style description.

A builder is a pure function `build(spec) -> Built` of the package-shipped data: no clock, no network,
every random draw from `spec.rng(...)`, so preparing twice gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import io
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

# Bump to rebuild every cached competition (e.g. after a change to the ladder or the file writer).
SUITES_VERSION = 1

# Deterministic float formatting for every CSV we write: 10 significant digits keeps the data exact enough
# for any metric while making the bytes independent of platform repr quirks.
FLOAT_FORMAT = "%.10g"

TASKS = ("binary", "multiclass", "regression", "multilabel", "multiregression", "custom")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Static description of one mini-competition (everything but the data)."""

    id: str
    suite: str                         # "train" or "lite-mini"
    title: str
    source: str                        # "<package>:<dataset>" (disjointness between suites is tested on it)
    modality: str                      # tabular, text, image, audio, image-to-image, seq2seq
    metric: str                        # key of acelib.tasks.metrics.METRICS
    id_column: str
    target_columns: tuple[str, ...]
    task: str                          # one of TASKS: how the ladder models the target
    build: Callable[["Spec"], "Built"]
    overview: str                      # the Kaggle "Overview" paragraph
    namesake: str | None = None
    label: str | None = None           # train.csv class column when the submission has one column per class
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    version: int = 1                   # bump when this builder's output changes
    # Settings of the reference solution (its template's `SETTINGS`: model, how features are read) and of the
    # compact baseline (`compact` key); acelib/tasks/suites/solutions renders both on demand.
    solution: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_lower_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the competition id (and a salt), so each builder draw is reproducible."""
        return np.random.default_rng(zlib.crc32(f"{self.id}/{salt}".encode()))

    def seed(self, salt: str = "") -> int:
        return zlib.crc32(f"{self.id}/{salt}".encode()) % (2**31)


@dataclasses.dataclass
class Built:
    """What a builder produces.

    `train`, `test`, `answers` and `sample` become `train.csv`, `test.csv`, `private/<answers>.csv` and
    `sample_submission.csv`; `files` holds any other public file (relative path -> bytes, e.g. images).
    The ladder gets numeric features `X_train` [n_train, d], `y_train` ([n_train] or [n_train, k]) and
    `X_test` [n_test, d]; `to_submission(pred)` turns a ladder prediction into a submission frame.
    Competitions whose ladder is not a plain (X, y) model (seq2seq, image-to-image) set `ladder` instead:
    a callable returning a list of submission frames (one per baseline run).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    answers: pd.DataFrame
    sample: pd.DataFrame
    data_description: str              # markdown for the "Data" section (files and columns)
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    X_test: np.ndarray | None = None
    to_submission: Callable[[np.ndarray], pd.DataFrame] | None = None
    classes: tuple | None = None       # class labels of a multiclass task (column order of probabilities)
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    ladder: Callable[[], list[tuple[str, pd.DataFrame]]] | None = None
    train_csv: bool = True             # False when the training data ship as other files only


LOWER_IS_BETTER = {"log_loss", "multiclass_log_loss", "rmse", "rmsle", "mae", "mean_column_rmsle"}

# Evaluation section text per metric: name, formula (markdown/LaTeX) and what the submission holds.
METRIC_TEXT = {
    "accuracy": ("classification accuracy",
                 r"$\text{accuracy} = \frac{1}{N}\sum_i [\hat y_i = y_i]$", "the predicted label"),
    "auc": ("area under the ROC curve",
            r"$\text{AUC} = P(\hat p_{+} > \hat p_{-})$ over all (positive, negative) pairs (ties count 1/2)",
            "the predicted probability (any monotone score works) of the positive class"),
    "log_loss": ("binary log loss",
                 r"$-\frac{1}{N}\sum_i \left[y_i\log p_i + (1-y_i)\log(1-p_i)\right]$, "
                 r"with $p_i$ clipped to $[10^{-15}, 1-10^{-15}]$",
                 "the predicted probability of the positive class"),
    "multiclass_log_loss": ("multi-class log loss",
                            r"$-\frac{1}{N}\sum_i\sum_j y_{ij}\log p_{ij}$, with $y_{ij} = 1$ for the true class "
                            r"and probabilities clipped away from 0 and 1",
                            "one probability column per class; each row should sum to 1"),
    "rmse": ("root mean squared error", r"$\sqrt{\frac{1}{N}\sum_i (\hat y_i - y_i)^2}$", "the predicted value"),
    "rmsle": ("root mean squared logarithmic error",
              r"$\sqrt{\frac{1}{N}\sum_i (\log(1+\hat y_i) - \log(1+y_i))^2}$ (predictions must be $\ge 0$)",
              "the predicted value"),
    "mae": ("mean absolute error", r"$\frac{1}{N}\sum_i |\hat y_i - y_i|$", "the predicted value"),
    "qwk": ("quadratic weighted kappa",
            r"$\kappa = 1 - \frac{\sum_{ij} w_{ij} O_{ij}}{\sum_{ij} w_{ij} E_{ij}}$ with "
            r"$w_{ij} = (i-j)^2/(K-1)^2$, $O$ the observed and $E$ the expected confusion matrix",
            "the predicted (integer) grade"),
    "f1": ("F1 score of the positive class", r"$F_1 = \frac{2\,TP}{2\,TP + FP + FN}$", "the predicted label (0/1)"),
    "mean_column_auc": ("mean column-wise ROC AUC",
                        r"$\frac{1}{K}\sum_k \text{AUC}_k$, the ROC AUC of each target column, averaged",
                        "one probability column per label"),
    "mean_column_rmsle": ("mean column-wise RMSLE",
                          r"$\frac{1}{K}\sum_k \sqrt{\frac{1}{N}\sum_i (\log(1+\hat y_{ik}) - \log(1+y_{ik}))^2}$",
                          "one non-negative value column per target"),
}


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV bytes with fixed float formatting and '\\n' line endings (byte-identical across runs)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buf.getvalue().encode()


def split_index(spec: Spec, n: int, test_size: float, stratify: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test row indices (stratified for classification so tiny tests keep every class)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    tr, te = train_test_split(idx, test_size=test_size, random_state=spec.seed("split"), stratify=stratify)
    return np.sort(tr), np.sort(te)


def subsample(spec: Spec, df: pd.DataFrame, n: int) -> pd.DataFrame:
    """At most `n` rows, drawn with the competition's seed (keeps each mini-competition a few seconds)."""
    if len(df) <= n:
        return df.reset_index(drop=True)
    return df.sample(n=n, random_state=spec.seed("subsample")).reset_index(drop=True)


def describe_columns(columns: dict[str, str]) -> str:
    return "\n".join(f"- `{c}`: {d}" for c, d in columns.items())


def description_md(spec: Spec, built: Built) -> str:
    """The Kaggle-like overview shown to the agent: task, data files, metric with formula, submission format."""
    name, formula, holds = METRIC_TEXT[spec.metric]
    direction = "lower is better" if spec.is_lower_better else "higher is better"
    example = to_csv_bytes(built.sample.head(3)).decode().rstrip("\n")
    targets = ", ".join(f"`{c}`" for c in spec.target_columns)
    namesake = (f"\n\nThis is a miniature of the Kaggle competition `{spec.namesake}`: same modality, metric and "
                f"submission format, on a small offline data set." if spec.namesake else "")
    return f"""# {spec.title}

## Overview

{spec.overview.strip()}{namesake}

## Data

{built.data_description.strip()}

## Evaluation

Submissions are scored with the **{name}** ({direction}):

{formula}

## Submission File

For every row of `test.csv` the submission holds the id column `{spec.id_column}` and {targets}:
{holds}. The file must contain a header and every test id exactly once, for example:

```
{example}
```

`sample_submission.csv` has the right format with trivial values.
"""


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
