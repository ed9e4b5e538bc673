"""acelib gives MLE-bench's verdict and score on the cases where it used to disagree (issue 15 §4).

Each test writes answers in the exact format of that competition's `prepare.py` and a submission, and asserts
what openai/mle-bench (2026-02-26 head) reports. The expectations come from reading its code; the comments name
the lines (`<id>/grade.py:N` is `mlebench/competitions/<id>/grade.py`, `utils.py` is
`mlebench/competitions/utils.py`). Cases that depend on the scikit-learn or pandas version assert what MLE-bench's
environment (scikit-learn 1.5.1, pandas 2.2) gives; docs/tasks.md explains that choice.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import acelib.tasks as tasks
from acelib.tasks import lite


def lite_dir(tmp_path: Path, comp_id: str, answers: pd.DataFrame, sample: pd.DataFrame) -> Path:
    """`<data>/<id>/prepared/{public,private}` as `mlebench prepare` leaves it (no competition.json)."""
    root = tmp_path / "data" / comp_id
    (root / "prepared" / "public").mkdir(parents=True)
    (root / "prepared" / "private").mkdir(parents=True)
    answers.to_csv(root / "prepared" / "private" / lite.get(comp_id).answers_file, index=False)
    sample.to_csv(root / "prepared" / "public" / "sample_submission.csv", index=False)
    return root


def grade(tmp_path: Path, root: Path, sub: pd.DataFrame) -> dict:
    path = tmp_path / "submission.csv"
    sub.to_csv(path, index=False)
    return tasks.grade(tasks.load(root), path)


def assert_invalid(r: dict, reason: str) -> None:
    assert r["valid_submission"] is False and r["score"] is None and not r["any_medal"], r
    assert reason in r["reason"], r["reason"]


# ------------------------------------------------------------------------------------------- ranzcr: 9 classes
RANZCR_11 = ["ETT - Abnormal", "ETT - Borderline", "ETT - Normal", "NGT - Abnormal", "NGT - Borderline",
             "NGT - Incompletely Imaged", "NGT - Normal", "CVC - Abnormal", "CVC - Borderline", "CVC - Normal",
             "Swan Ganz Catheter Present"]
RANZCR_9 = RANZCR_11[:9]   # ranzcr classes.py:1-11 (CLASSES at the head: 9 names, issue openai/mle-bench#30)


@pytest.fixture
def ranzcr(tmp_path):
    # prepare.py: private/test.csv = rows of Kaggle's train.csv (StudyInstanceUID, 11 labels, PatientID);
    # sample_submission.csv = StudyInstanceUID + CLASSES set to 0
    uids = [f"1.2.826.0.1.3680043.8.498.{10**9 + 7 * i}" for i in range(6)]
    labels = {c: [(i + k) % 2 for i in range(6)] for k, c in enumerate(RANZCR_11)}
    answers = pd.DataFrame({"StudyInstanceUID": uids, **labels, "PatientID": [f"p{i}" for i in range(6)]})
    sample = answers[["StudyInstanceUID", *RANZCR_9]].assign(**{c: 0 for c in RANZCR_9})
    return lite_dir(tmp_path, "ranzcr-clip-catheter-line-classification", answers, sample), answers


def test_ranzcr_scores_mlebench_9_classes(tmp_path, ranzcr):
    root, answers = ranzcr
    assert lite.get("ranzcr-clip-catheter-line-classification").target_columns == tuple(RANZCR_9)
    # MLE-bench's own format, perfect: grade.py:12-15 needs the 9 CLASSES, :21-30 averages their 9 AUCs → 1.0, gold
    perfect = answers[["StudyInstanceUID", *RANZCR_9]]
    r = grade(tmp_path, root, perfect)
    assert r["valid_submission"] and r["score"] == 1.0 and r["gold_medal"] and r["warnings"] == []
    # Kaggle's 11 columns: the 2 extra ones are never read (prepare_for_auroc_metric picks one column at a time),
    # so even inverted they change nothing
    eleven = answers[["StudyInstanceUID", *RANZCR_11]].assign(**{c: 1 - answers[c] for c in RANZCR_11[9:]})
    assert grade(tmp_path, root, eleven)["score"] == 1.0
    # one of the 9 inverted (AUC 0): the mean runs over 9 columns (grade.py:30), 8/9, not Kaggle's 10/11
    r = grade(tmp_path, root, perfect.assign(**{"CVC - Borderline": 1 - answers["CVC - Borderline"]}))
    assert r["score"] == round(8 / 9, 5)
    # a missing one of the 9 is invalid (grade.py:14-15)
    assert_invalid(grade(tmp_path, root, perfect.drop(columns=["CVC - Borderline"])), "CVC - Borderline")


# ------------------------------------------------------------------------------------------- ids MLE-bench never checks
TAXI_KEYS = ["2015-01-27 13:08:24.0000002", "2011-10-08 11:53:44.0000002", "2013-07-01 00:00:53.0000001",
             "2012-12-01 21:12:12.0000005"]


@pytest.fixture
def taxi(tmp_path):
    # prepare.py: private/test.csv = 8 columns of Kaggle's train.csv; sample_submission.csv = key, fare_amount 11.35
    answers = pd.DataFrame({"key": TAXI_KEYS, "fare_amount": [5.0, 7.0, 9.0, 11.0],
                            "pickup_datetime": [k[:19] + " UTC" for k in TAXI_KEYS], "pickup_longitude": -73.98,
                            "pickup_latitude": 40.75, "dropoff_longitude": -73.97, "dropoff_latitude": 40.78,
                            "passenger_count": 1})
    return lite_dir(tmp_path, "new-york-city-taxi-fare-prediction", answers,
                    answers[["key"]].assign(fare_amount=11.35)), answers


def test_taxi_duplicated_keys_with_the_right_row_count_are_graded(tmp_path, taxi):
    root, answers = taxi
    # taxi grade.py:17-18 sorts both by key, :20-21 takes the fares, :28 computes RMSE by position: no key check.
    # Sorted answers: 2011 (7), 2012 (11), 2013 (9), 2015 (5). The submission repeats the 2011 key instead of 2012:
    # sorted 2011 (7), 2011 (7), 2013 (9), 2015 (5) → one error of 11 - 7 = 4 → sqrt(16 / 4) = 2.0
    sub = pd.DataFrame({"key": [TAXI_KEYS[0], TAXI_KEYS[1], TAXI_KEYS[2], TAXI_KEYS[1]],
                        "fare_amount": [5.0, 7.0, 9.0, 7.0]})
    r = grade(tmp_path, root, sub)
    assert r["valid_submission"] and r["score"] == 2.0
    assert "duplicated ids in `key`: 2011-10-08" in r["warnings"][0] and "does not check ids" in r["warnings"][0]
    # keys that are not in the test set at all: still paired by sorted position, so fares in the answers' sorted
    # order score 0.0
    made_up = pd.DataFrame({"key": ["a", "b", "c", "d"], "fare_amount": [7.0, 11.0, 9.0, 5.0]})
    r = grade(tmp_path, root, made_up)
    assert r["valid_submission"] and r["score"] == 0.0 and "4 ids are not in the test set" in r["warnings"][0]
    # the row count is still checked (root_mean_squared_error raises on 3 vs 4 rows)
    assert_invalid(grade(tmp_path, root, made_up.iloc[:3]), "3 rows, expected 4")


@pytest.fixture
def nomad(tmp_path):
    # prepare.py: ids renumbered 1..N in test order; private/test.csv = every column of Kaggle's train.csv;
    # sample_submission.csv = id, formation_energy_ev_natom 0.1779, bandgap_energy_ev 1.8892
    e1 = math.e - 1                                                            # log1p(e - 1) = 1
    answers = pd.DataFrame({"id": [1, 2], "spacegroup": [33, 194], "number_of_total_atoms": [80.0, 10.0],
                            "percent_atom_al": 0.5, "percent_atom_ga": 0.25, "percent_atom_in": 0.25,
                            "lattice_vector_1_ang": 9.9, "lattice_vector_2_ang": 8.5, "lattice_vector_3_ang": 9.1,
                            "lattice_angle_alpha_degree": 90.0, "lattice_angle_beta_degree": 90.0,
                            "lattice_angle_gamma_degree": 90.0, "formation_energy_ev_natom": [0.0, e1],
                            "bandgap_energy_ev": [0.0, e1]})
    sample = answers[["id"]].assign(formation_energy_ev_natom=0.1779, bandgap_energy_ev=1.8892)
    return lite_dir(tmp_path, "nomad2018-predict-transparent-conductors", answers, sample), answers


def test_nomad_reads_rows_in_file_order_without_ids(tmp_path, nomad):
    root, answers = nomad
    perfect = answers[["id", "formation_energy_ev_natom", "bandgap_energy_ev"]]
    # nomad grade.py:20 checks only the row count; :25-32 take the columns as they are; :44-47 RMSLE row by row
    r = grade(tmp_path, root, perfect.assign(id=[1, 1]))                   # duplicated id, right row count
    assert r["valid_submission"] and r["score"] == 0.0 and "duplicated ids in `id`: 1" in r["warnings"][0]
    r = grade(tmp_path, root, perfect.drop(columns=["id"]))                 # no id column at all
    assert r["valid_submission"] and r["score"] == 0.0 and r["warnings"][0].startswith("no `id` column")
    # rows reversed: row i still meets answer i, so log1p errors (1 - 0), (0 - 1) in each column → RMSLE 1 → 1.0
    r = grade(tmp_path, root, perfect.iloc[::-1])
    assert r["valid_submission"] and r["score"] == 1.0 and "not in the test set's order" in r["warnings"][0]


@pytest.mark.parametrize("prediction", [-0.5, -0.01])
def test_nomad_negative_predictions_above_minus_one_are_invalid_as_scikit_learn_1_5(tmp_path, nomad, prediction):
    root, answers = nomad
    # nomad grade.py:45 → scikit-learn 1.5.1 root_mean_squared_log_error raises "cannot be used when targets
    # contain negative values" → Grader.__call__ returns None. (scikit-learn >= 1.6 would score values > -1.)
    sub = answers[["id", "formation_energy_ev_natom", "bandgap_energy_ev"]].assign(
        formation_energy_ev_natom=[prediction, 1.0])
    assert_invalid(grade(tmp_path, root, sub), "negative values")


# ------------------------------------------------------------------------------------------- jigsaw
JIG = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
JIG_IDS = ["00001cee341fdb12", "0000247867823ef7", "00013b17ad220c46", "00017563c3f7919a", "00017695ad8997eb",
           "0001ea8717f6de06"]


@pytest.fixture
def jigsaw(tmp_path):
    # prepare.py: private/test.csv = Kaggle's test_labels.csv (id + 6 labels, -1 in rows Kaggle did not score);
    # sample_submission.csv = Kaggle's, every label 0.5. Rows 2 and 4 are unscored; severe_toxic is the opposite
    # of toxic on the scored rows, the other four equal toxic.
    toxic = [0, 1, -1, 0, -1, 1]
    severe = [1, 0, -1, 1, -1, 0]
    answers = pd.DataFrame({"id": JIG_IDS, "toxic": toxic, "severe_toxic": severe,
                            **{c: toxic for c in JIG[2:]}})
    return lite_dir(tmp_path, "jigsaw-toxic-comment-classification-challenge", answers,
                    answers.assign(**{c: 0.5 for c in JIG})), answers


def jig_perfect(answers: pd.DataFrame) -> pd.DataFrame:
    return answers.assign(**{c: answers[c].clip(0, 1) * 0.8 + 0.1 for c in JIG})


def test_jigsaw_reads_columns_by_position(tmp_path, jigsaw):
    root, answers = jigsaw
    sub = jig_perfect(answers)
    assert grade(tmp_path, root, sub)["score"] == 1.0
    # jigsaw grade.py:30 drops `id` into the index and :40-41 hand every remaining column to roc_auc_score in
    # file order: severe_toxic written first is scored against toxic's answers and toxic against severe_toxic's
    # (AUC 0 each, they are opposite), the other four stay 1 → 4/6
    swapped = sub[["id", "severe_toxic", "toxic", *JIG[2:]]]
    r = grade(tmp_path, root, swapped)
    assert r["valid_submission"] and r["score"] == round(4 / 6, 5)
    assert "`severe_toxic` as `toxic`, `toxic` as `severe_toxic`" in r["warnings"][0]
    # an extra column makes y_score 7 wide against 6 → roc_auc_score fails → invalid
    assert_invalid(grade(tmp_path, root, sub.assign(comment="x")), "unexpected columns ['comment']")


def test_jigsaw_never_reads_unscored_rows(tmp_path, jigsaw):
    root, answers = jigsaw
    sub = jig_perfect(answers).astype({"toxic": object, "insult": object})
    # rows 2 and 4 are -1 in the answers: jigsaw grade.py:35-37 drops them before scoring, so their values are
    # never converted to numbers; one is text, one is empty
    sub.loc[2, "toxic"], sub.loc[4, "insult"] = "not a number", np.nan
    r = grade(tmp_path, root, sub)
    assert r["valid_submission"] and r["score"] == 1.0
    assert "rows the answers do not score fail acelib's own check" in r["warnings"][0]
    # the same in a scored row: check_array cannot convert it → invalid
    sub.loc[1, "toxic"] = "not a number"
    assert_invalid(grade(tmp_path, root, sub), "must be numeric")


def test_jigsaw_ids(tmp_path, jigsaw):
    root, answers = jigsaw
    sub = jig_perfect(answers)
    # jigsaw grade.py:37 indexes the submission with the answers' mask, aligned by id: row 1's id written again
    # instead of row 0's keeps 4 scored rows on each side → graded, rows paired by position. Row 0's answers
    # (toxic 0, severe_toxic 1) then meet a copy of row 1's predictions (0.9, 0.1): in each column two of the four
    # positive-negative pairs become ties (half credit each) → AUC 0.75 everywhere
    dup = sub.assign(id=[JIG_IDS[1], *JIG_IDS[1:]])
    dup.loc[0, JIG] = dup.loc[1, JIG].to_numpy()
    r = grade(tmp_path, root, dup)
    assert r["valid_submission"] and r["score"] == 0.75
    assert "duplicated ids in `id`: 0000247867823ef7" in r["warnings"][0]
    # an id the answers do not know: pandas cannot align the mask ("Unalignable boolean Series") → invalid
    assert_invalid(grade(tmp_path, root, sub.assign(id=["zzz", *JIG_IDS[1:]])), "1 ids are not in the test set")


# ------------------------------------------------------------------------------------------- spooky: id first
def test_spooky_id_column_must_come_first(tmp_path):
    # prepare.py: private/test.csv = df_to_one_hot (id, EAP, HPL, MWS as 0/1); the sample submission holds
    # 0.403493538995863 / 0.287808366106543 / 0.308698094897594 in every row
    answers = pd.DataFrame({"id": ["id02310", "id24541", "id00134"], "EAP": [1, 0, 0], "HPL": [0, 1, 0],
                            "MWS": [0, 0, 1]})
    sample = answers.assign(EAP=0.403493538995863, HPL=0.287808366106543, MWS=0.308698094897594)
    root = lite_dir(tmp_path, "spooky-author-identification", answers, sample)
    sub = answers.assign(EAP=[0.8, 0.1, 0.1], HPL=[0.1, 0.8, 0.1], MWS=[0.1, 0.1, 0.8])
    assert grade(tmp_path, root, sub)["score"] == round(-math.log(0.8), 5)
    # spooky grade.py:22 sums `submission.iloc[:, 1:]`: with `id` elsewhere the text ids are in the sum → TypeError
    # → Grader.__call__ returns None
    assert_invalid(grade(tmp_path, root, sub[["EAP", "id", "HPL", "MWS"]]), "`id` must be the first column")
    # class columns in another order are fine: utils.py one_hot_dfs_to_log_loss_inputs reorders them by name
    assert grade(tmp_path, root, sub[["id", "MWS", "EAP", "HPL"]])["score"] == round(-math.log(0.8), 5)


# ------------------------------------------------------------------------------------------- tabular dec 2021
def test_tps_dec_text_labels_score_zero_as_scikit_learn_1_5(tmp_path):
    # prepare.py: private/test.csv = rows of Kaggle's train.csv (Id, 54 features, Cover_Type);
    # sample_submission.csv = Id, Cover_Type 2
    features = ["Elevation", "Aspect", "Slope", "Horizontal_Distance_To_Hydrology", "Vertical_Distance_To_Hydrology",
                "Horizontal_Distance_To_Roadways", "Hillshade_9am", "Hillshade_Noon", "Hillshade_3pm",
                "Horizontal_Distance_To_Fire_Points", *[f"Wilderness_Area{i}" for i in range(1, 5)],
                *[f"Soil_Type{i}" for i in range(1, 41)]]
    answers = pd.DataFrame({"Id": [3051, 17, 999812, 42], **{f: 0 for f in features}, "Cover_Type": [1, 2, 2, 3]})
    root = lite_dir(tmp_path, "tabular-playground-series-dec-2021", answers,
                    pd.DataFrame({"Id": answers["Id"], "Cover_Type": 2}))
    assert grade(tmp_path, root, answers[["Id", "Cover_Type"]].assign(Cover_Type=[1, 2, 3, 3]))["score"] == 0.75
    # one text label makes the whole column text; tabular-playground-series-dec-2021 grade.py:11 calls
    # accuracy_score, which in scikit-learn 1.5.1 compares numbers with strings element-wise: no row matches → 0.0
    # (valid). scikit-learn >= 1.6 raises "Mix of label input types" instead.
    r = grade(tmp_path, root, pd.DataFrame({"Id": answers["Id"], "Cover_Type": ["1", "2", "2", "three"]}))
    assert r["valid_submission"] and r["score"] == 0.0 and "holds text but the answers are numbers" in r["warnings"][0]
    # an empty label among the text: numpy cannot sort str with float inside scikit-learn → invalid in every version
    assert_invalid(grade(tmp_path, root, pd.DataFrame({"Id": answers["Id"], "Cover_Type": ["1", "2", None, "x"]})),
                   "empty values")


# ------------------------------------------------------------------------------------------- insults: repeated ids
def test_insults_pairs_repeated_comments_as_pandas_2_sorts_them(tmp_path):
    # detecting-insults prepare.py: private/test.csv = Kaggle's test_with_solutions.csv (Insult, Date, Comment,
    # Usage); the Comment text is the id and repeats. utils.py prepare_for_auroc_metric sorts both files by Comment
    # with pandas' default quicksort, which is not stable: rows with the same comment pair up in the order that
    # sort leaves them. Expected value: MLE-bench's grader run on these two files with pandas 2.2.2 and
    # scikit-learn 1.5.1 (under pandas 3, whose text sort is stable, it gives 0.5467).
    rng = np.random.default_rng(5)
    n = 400
    answers = pd.DataFrame({"Insult": rng.integers(0, 2, n), "Date": "x",
                            "Comment": [f'"c{v}"' for v in rng.integers(0, 60, n)], "Usage": "PrivateTest"})
    sub = answers[["Insult", "Date", "Comment"]].sample(frac=1, random_state=3).assign(Insult=rng.random(n).round(4))
    root = lite_dir(tmp_path, "detecting-insults-in-social-commentary", answers, sub.assign(Insult=0))
    r = grade(tmp_path, root, sub)
    assert r["valid_submission"] and r["score"] == 0.49292 and r["warnings"] == []
