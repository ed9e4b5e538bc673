"""Registry of the 22 MLE-bench-Lite competitions (`experiments/splits/low.txt` in openai/mle-bench).

Each `LiteSpec` mirrors that competition's `mlebench/competitions/<id>/{config.yaml,grade.py}` at openai/mle-bench's
2026-02-26 head: metric, id column, the submission columns the grader reads, the answers file under
`prepared/private/` and rules that make acelib's grader accept, reject and score exactly what MLE-bench's does
(docs/tasks.md lists every quirk). The grader derives most rules from the metric; the `rules` here only name what
differs from those defaults. The same keys as everywhere (see `grader.RULE_DEFAULTS`):

- `allow_extra_columns`: most MLE-bench graders pick the columns they need and ignore the rest. spooky
  (exact shape), leaf and plant-pathology (exact column set) and jigsaw (every column is scored) reject extras.
- `clip_eps` for log losses: MLE-bench needs scikit-learn>=1.5, whose `log_loss` clips at float64 machine
  epsilon and no longer renormalises rows, so `normalize_rows` is False.
- `row_sum_atol`: spooky, leaf and dog-breed reject rows not summing to 1 (`np.isclose(..., atol=1e-6)`).
- `proba`: `prepare_for_auroc_metric` (binary AUC, ranzcr) rejects values outside [0, 1]; plant-pathology
  and jigsaw call `roc_auc_score` directly and do not check, so the rule is off for them.

Per-competition hooks that the generic grader exposes as rules (and only these competitions use):

- jigsaw `align: "index"`, `columns_by_position`, `skip_negative_answer_rows`: its grader indexes both files by
  id, keeps the answer rows Kaggle scored (not -1), takes the submission rows with those ids and scores every
  non-id column against the answers' columns by position. Ids are not checked beyond that, and values in the
  unscored rows are never read.
- new-york-city-taxi-fare-prediction `align: "sorted"`: sorted by key, rows paired by position, keys unchecked.
- nomad2018 `align: "row"`: rows scored in file order; ids are neither checked nor needed.
- spooky `id_first`: its row-sum and range checks read every column after the first by position.
- text-normalization `string_targets`: both columns are compared as strings (`astype(str)`), NaN as "nan".
- ranzcr: MLE-bench's `classes.py` lists 9 of Kaggle's 11 label columns (issue openai/mle-bench#30): its sample
  submission has those 9 and its grader scores those 9; `CVC - Normal` and `Swan Ganz Catheter Present` are
  ignored like any other extra column.

Where acelib's own checks are stricter than one of these graders (ids of taxi, nomad2018 and jigsaw, jigsaw's
column order and unscored rows, nomad2018's row order), the report carries a warning and MLE-bench's verdict.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from acelib.tasks.competition import Competition

DATA_DIR = Path(__file__).resolve().parent / "data" / "lite"
SUITE = "mlebench-lite"
# MLE-bench's default log_loss clipping (scikit-learn>=1.5: np.finfo(float64).eps); see metrics.SKLEARN_CLIP_EPS
_MLEBENCH_EPS = 2.220446049250313e-16
_LOG_LOSS_RULES = {"clip_eps": _MLEBENCH_EPS, "normalize_rows": False}


@dataclasses.dataclass(frozen=True)
class LiteSpec:
    """What MLE-bench's config.yaml + grade.py say about one Lite competition."""

    id: str
    name: str
    grader_name: str                 # `grader.name` in config.yaml
    metric: str                      # key of acelib.tasks.metrics.METRICS
    is_lower_better: bool
    id_column: str
    target_columns: tuple[str, ...]
    answers_file: str = "test.csv"
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def leaderboard_path(self) -> Path | None:
        """The shipped leaderboard, or None (siim-isic: not available)."""
        path = DATA_DIR / f"{self.id}.csv"
        return path if path.is_file() else None

    def competition(self, root: str | Path) -> Competition:
        """A `Competition` for MLE-bench data prepared at `root` (the dir holding `prepared/`)."""
        return Competition(
            id=self.id, root=Path(root).resolve(), metric=self.metric, is_lower_better=self.is_lower_better,
            id_column=self.id_column, target_columns=self.target_columns, suite=SUITE, name=self.name,
            answers_file=self.answers_file, rules=dict(self.rules),
            source=f"MLE-bench-Lite; grading mirrors openai/mle-bench mlebench/competitions/{self.id}/grade.py",
        )


@functools.cache
def _classes(comp_id: str) -> tuple[str, ...]:
    return tuple(json.loads((DATA_DIR / "classes.json").read_text())[comp_id])


def _specs() -> list[LiteSpec]:
    auc = dict(metric="auc", grader_name="auc-roc", is_lower_better=False, rules={"allow_extra_columns": True})
    return [
        LiteSpec("aerial-cactus-identification", "Aerial Cactus Identification", id_column="id",
                 target_columns=("has_cactus",), **auc),
        LiteSpec("aptos2019-blindness-detection", "APTOS 2019 Blindness Detection", "quadratic-weighted-kappa",
                 "qwk", False, "id_code", ("diagnosis",), rules={"allow_extra_columns": True}),
        LiteSpec("denoising-dirty-documents", "Denoising Dirty Documents", "root_mean_squared_error", "rmse",
                 True, "id", ("value",), answers_file="answers.csv", rules={"allow_extra_columns": True}),
        # The id is the comment text itself; the sample submission also carries a Date column.
        LiteSpec("detecting-insults-in-social-commentary", "Detecting Insults in Social Commentary",
                 id_column="Comment", target_columns=("Insult",), **auc),
        LiteSpec("dog-breed-identification", "Dog Breed Identification", "multi-class-log-loss",
                 "multiclass_log_loss", True, "id", _classes("dog-breed-identification"),
                 rules={**_LOG_LOSS_RULES, "row_sum_atol": 1e-6, "allow_extra_columns": True}),
        LiteSpec("dogs-vs-cats-redux-kernels-edition", "Dogs vs. Cats Redux: Kernels Edition", "log-loss",
                 "log_loss", True, "id", ("label",), answers_file="answers.csv",
                 rules={"clip_eps": _MLEBENCH_EPS, "allow_extra_columns": True}),
        LiteSpec("histopathologic-cancer-detection", "Histopathologic Cancer Detection", id_column="id",
                 target_columns=("label",), answers_file="answers.csv", **auc),
        LiteSpec("jigsaw-toxic-comment-classification-challenge", "Toxic Comment Classification Challenge",
                 "column-wise ROC AUC", "mean_column_auc", False, "id",
                 ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"),
                 rules={"proba": False, "skip_negative_answer_rows": True, "align": "index",
                        "columns_by_position": True}),
        LiteSpec("leaf-classification", "Leaf Classification", "multi-class-log-loss", "multiclass_log_loss",
                 True, "id", _classes("leaf-classification"), rules={**_LOG_LOSS_RULES, "row_sum_atol": 1e-6}),
        # Answers are already long: Id = rec_id * 100 + species, one row per (recording, species) pair.
        LiteSpec("mlsp-2013-birds", "MLSP 2013 Bird Classification Challenge", id_column="Id",
                 target_columns=("Probability",), answers_file="answers.csv", **auc),
        LiteSpec("new-york-city-taxi-fare-prediction", "New York City Taxi Fare Prediction",
                 "root-mean-squared-error", "rmse", True, "key", ("fare_amount",),
                 rules={"align": "sorted", "allow_extra_columns": True}),
        LiteSpec("nomad2018-predict-transparent-conductors", "Nomad2018 Predicting Transparent Conductors",
                 "mean-column-wise-rmsle", "mean_column_rmsle", True, "id",
                 ("formation_energy_ev_natom", "bandgap_energy_ev"),
                 rules={"align": "row", "allow_extra_columns": True}),
        LiteSpec("plant-pathology-2020-fgvc7", "Plant Pathology 2020 - FGVC7", "mean-column-wise-roc-auc",
                 "mean_column_auc", False, "image_id", ("healthy", "multiple_diseases", "rust", "scab"),
                 rules={"proba": False}),
        LiteSpec("random-acts-of-pizza", "Random Acts of Pizza", id_column="request_id",
                 target_columns=("requester_received_pizza",), **auc),
        # MLE-bench's classes.py: 9 of Kaggle's 11 columns (module docstring); the answers keep all 11
        LiteSpec("ranzcr-clip-catheter-line-classification", "RANZCR CLiP - Catheter and Line Position Challenge",
                 "auc-roc", "mean_column_auc", False, "StudyInstanceUID",
                 ("ETT - Abnormal", "ETT - Borderline", "ETT - Normal", "NGT - Abnormal", "NGT - Borderline",
                  "NGT - Incompletely Imaged", "NGT - Normal", "CVC - Abnormal", "CVC - Borderline"),
                 rules={"allow_extra_columns": True}),
        LiteSpec("siim-isic-melanoma-classification", "SIIM-ISIC Melanoma Classification", id_column="image_name",
                 target_columns=("target",), **auc),
        LiteSpec("spooky-author-identification", "Spooky Author Identification", "multi-class-log-loss",
                 "multiclass_log_loss", True, "id", ("EAP", "HPL", "MWS"),
                 rules={**_LOG_LOSS_RULES, "row_sum_atol": 1e-6, "id_first": True}),
        LiteSpec("tabular-playground-series-dec-2021", "Tabular Playground Series - Dec 2021",
                 "multi-class-classification-accuracy", "accuracy", False, "Id", ("Cover_Type",),
                 rules={"allow_extra_columns": True}),
        LiteSpec("tabular-playground-series-may-2022", "Tabular Playground Series - May 2022", id_column="id",
                 target_columns=("target",), **auc),
        LiteSpec("text-normalization-challenge-english-language", "Text Normalization Challenge - English Language",
                 "accuracy", "accuracy", False, "id", ("after",), answers_file="answers.csv",
                 rules={"string_targets": True, "allow_extra_columns": True}),
        LiteSpec("text-normalization-challenge-russian-language", "Text Normalization Challenge - Russian Language",
                 "accuracy", "accuracy", False, "id", ("after",), answers_file="answers.csv",
                 rules={"string_targets": True, "allow_extra_columns": True}),
        LiteSpec("the-icml-2013-whale-challenge-right-whale-redux", "The ICML 2013 Whale Challenge - Right Whale Redux",
                 id_column="clip", target_columns=("probability",), **auc),
    ]


LITE: dict[str, LiteSpec] = {s.id: s for s in _specs()}
LITE_IDS: tuple[str, ...] = tuple(sorted(LITE))


def get(comp_id: str) -> LiteSpec:
    """The Lite entry `comp_id`; an unknown id names the closest one and how to list all."""
    if comp_id not in LITE:
        import difflib
        close = difflib.get_close_matches(comp_id, LITE_IDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise KeyError(f"'{comp_id}' is not an MLE-bench-Lite competition.{hint} "
                       f"See `python -m acelib.tasks list`.")
    return LITE[comp_id]
