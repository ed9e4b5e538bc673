"""Reference solution for a tiny-image mini-competition (rendered from acelib/tasks/suites/solutions/_image_template.py).

Reads the PNG files under ./input/{train,test}/ and the labels, fits a model on block-averaged pixels, prints
VALIDATION_SCORE on a 20% hold-out, refits on everything and writes ./submission/submission.csv.
"""
# --- settings (the only part that differs between competitions) ---
SETTINGS = {'id': 'id', 'label': None, 'labels': 'train.csv', 'leaf': 5, 'metric': 'auc', 'model': 'forest', 'size': 16, 'targets': ['has_cactus'], 'task': 'binary', 'trees': 30}
# --- end of settings ---
import os

import numpy as np
import pandas as pd
from PIL import Image
from sklearn import ensemble, linear_model, metrics, neighbors, pipeline, preprocessing
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

threadpool_limits(1)  # one thread: reproducible and fast on a shared 2-core machine
ID, TARGETS, LABEL = SETTINGS["id"], SETTINGS["targets"], SETTINGS["label"]
METRIC, MODEL, SIZE = SETTINGS["metric"], SETTINGS["model"], SETTINGS["size"]
LABELS = SETTINGS["labels"]  # "train.csv", "labels.csv" or "filename" (cat.<n>.png / dog.<n>.png)


def load(path):
    img = np.asarray(Image.open(path), dtype=float)
    if img.ndim == 3:
        img = img.mean(axis=2)
    f = img.shape[0] // SIZE
    return img[: f * SIZE, : f * SIZE].reshape(SIZE, f, SIZE, f).mean(axis=(1, 3)).ravel() / 255.0


def file_name(i):
    return str(i) if str(i).endswith(".png") else f"{i}.png"


if LABELS == "filename":
    names = sorted(os.listdir("input/train"))
    X = np.array([load(f"input/train/{n}") for n in names])
    y = np.array([1 if n.startswith("dog.") else 0 for n in names])
else:
    labels = pd.read_csv(f"input/{LABELS}")
    X = np.array([load(f"input/train/{file_name(i)}") for i in labels[ID]])
    y = labels[LABEL or TARGETS[0]].to_numpy()
test = pd.read_csv("input/test.csv") if os.path.exists("input/test.csv") else None
if test is None:
    test = pd.DataFrame({ID: sorted(int(n[:-4]) for n in os.listdir("input/test"))})
X_test = np.array([load(f"input/test/{file_name(i)}") for i in test[ID]])


def make_model():
    if MODEL == "linear":
        return pipeline.make_pipeline(preprocessing.StandardScaler(),
                                      linear_model.LogisticRegression(C=SETTINGS.get("C", 1.0), max_iter=1000))
    if MODEL == "knn":
        return pipeline.make_pipeline(preprocessing.StandardScaler(),
                                      neighbors.KNeighborsClassifier(SETTINGS.get("k", 10), weights="distance"))
    if MODEL == "forest":
        return ensemble.RandomForestClassifier(n_estimators=SETTINGS.get("trees", 100),
                                               min_samples_leaf=SETTINGS.get("leaf", 1), random_state=0, n_jobs=1)
    if MODEL == "boosting":
        return ensemble.HistGradientBoostingClassifier(max_iter=SETTINGS.get("iters", 100), random_state=0)
    raise ValueError(f"unknown model {MODEL}")


def predict(model, X):
    proba = model.predict_proba(X)
    if LABEL:  # one probability column per class, in submission order
        out = np.zeros((len(X), len(TARGETS)))
        out[:, [TARGETS.index(str(c)) for c in model.classes_]] = proba
        return out
    return proba[:, 1]


def score(y_true, pred):
    if METRIC == "auc":
        return metrics.roc_auc_score(y_true, pred)
    if METRIC == "log_loss":
        return metrics.log_loss(y_true, np.clip(pred, 1e-15, 1 - 1e-15), labels=[0, 1])
    return metrics.log_loss(y_true.astype(str), pred, labels=TARGETS)


X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
model = make_model().fit(X_tr, y_tr)
print(f"VALIDATION_SCORE: {score(y_va, predict(model, X_va)):.6f}")
model = make_model().fit(X, y)
pred = predict(model, X_test)
sub = test[[ID]].copy()
if LABEL:
    sub = pd.concat([sub, pd.DataFrame(pred, columns=TARGETS)], axis=1)
else:
    sub[TARGETS[0]] = pred
os.makedirs("submission", exist_ok=True)
sub.to_csv("submission/submission.csv", index=False)
