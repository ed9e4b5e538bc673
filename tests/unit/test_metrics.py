"""Metrics against values computed by hand (the arithmetic is in the comments), and the scikit-learn 1.5 answers
they keep whatever version is installed (docs/tasks.md, "scikit-learn version")."""
import math
import warnings

import numpy as np
import pytest

from acelib.tasks import metrics as M
from acelib.tasks.metrics import METRICS


def test_accuracy():
    assert METRICS["accuracy"]([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx(0.75)  # 3 of 4 right


def test_auc_counts_correctly_ordered_pairs():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) → 3/4
    assert METRICS["auc"]([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_binary_log_loss():
    # -(ln 0.8 + ln 0.7) / 2
    assert METRICS["log_loss"]([1, 0], [0.8, 0.3]) == pytest.approx((0.2231436 + 0.3566749) / 2, abs=1e-7)


def test_binary_log_loss_clipping():
    # p = 0 for a positive: Kaggle clips to 1e-15 → -ln(1e-15) = 34.538776; the negative row costs ~0
    assert METRICS["log_loss"]([1, 0], [0.0, 0.0]) == pytest.approx(34.5387764 / 2, abs=1e-6)
    # MLE-bench (scikit-learn>=1.5) clips at machine epsilon: -ln(2^-52) = 52 ln 2 = 36.0436534
    assert METRICS["log_loss"]([1, 0], [0.0, 0.0], clip_eps=M.SKLEARN_CLIP_EPS) == pytest.approx(
        36.0436534 / 2, abs=1e-6)


def test_multiclass_log_loss_one_hot_answers():
    y = [[1, 0, 0], [0, 1, 0]]
    p = [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]]
    # -(ln 0.7 + ln 0.5) / 2
    assert METRICS["multiclass_log_loss"](y, p) == pytest.approx((0.3566749 + 0.6931472) / 2, abs=1e-7)


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")  # the point of the test
def test_multiclass_log_loss_row_normalisation():
    y, p = [[1, 0, 0]], [[0.4, 0.2, 0.2]]                        # row sums to 0.8
    assert METRICS["multiclass_log_loss"](y, p) == pytest.approx(math.log(2))          # 0.4/0.8 = 0.5
    assert METRICS["multiclass_log_loss"](y, p, normalize_rows=False) == pytest.approx(-math.log(0.4))


def test_multiclass_log_loss_label_answers_need_labels():
    p = [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]]
    got = METRICS["multiclass_log_loss"](["a", "b"], p, labels=["a", "b", "c"])
    assert got == pytest.approx((0.3566749 + 0.6931472) / 2, abs=1e-7)
    with pytest.raises(ValueError, match="labels="):
        METRICS["multiclass_log_loss"](["a", "b"], p)


def test_log_loss_calls_scikit_learn_without_deprecation_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)   # scikit-learn 1.9 renamed y_pred to y_proba
        METRICS["log_loss"]([1, 0], [0.8, 0.3])
        METRICS["multiclass_log_loss"]([[1, 0], [0, 1]], [[0.8, 0.2], [0.3, 0.7]])


def test_regression_metrics():
    assert METRICS["rmse"]([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert METRICS["mae"]([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)              # (1 + 0 + 2) / 3
    e1 = math.e - 1                                                                  # log1p(e - 1) = 1
    assert METRICS["rmsle"]([0, e1], [e1, e1]) == pytest.approx(math.sqrt(0.5))     # errors (1, 0)


@pytest.mark.parametrize("name, y_true, y_pred", [
    ("rmsle", [1.0, 2.0], [-0.5, 2.0]),                               # a prediction in (-1, 0)
    ("rmsle", [-0.5, 2.0], [1.0, 2.0]),                               # an answer in (-1, 0)
    ("mean_column_rmsle", [[1.0, 1.0], [2.0, 2.0]], [[1.0, -0.1], [2.0, 2.0]]),
])
def test_rmsle_rejects_negative_values_as_scikit_learn_1_5(name, y_true, y_pred):
    # scikit-learn 1.5.1 (MLE-bench's environment): "cannot be used when targets contain negative values";
    # scikit-learn >= 1.6 only rejects values <= -1 and would score these
    with pytest.raises(ValueError, match="negative values"):
        METRICS[name](y_true, y_pred)


def test_accuracy_of_text_labels_against_numbers_is_zero_as_scikit_learn_1_5():
    # scikit-learn 1.5.1 compares [1, 2, 3] == ['1', '2', 'x'] element-wise (no number equals a string) → 0.0;
    # scikit-learn >= 1.6 raises "Mix of label input types"
    assert METRICS["accuracy"](np.array([1, 2, 3]), np.array(["1", "2", "x"], dtype=object)) == 0.0
    assert METRICS["accuracy"](np.array(["a", "b"], dtype=object), np.array(["a", "c"], dtype=object)) == 0.5


@pytest.mark.parametrize("name, expected", [("auc", 0.12346), ("rmse", 0.12346), ("mean_column_auc", 0.12346),
                                            ("accuracy", 0.12345), ("log_loss", 0.12345)])
def test_round_score_follows_the_type_scikit_learn_1_5_returns(name, expected):
    # MLE-bench rounds with round(score, 5). scikit-learn 1.5 returns a numpy.float64 for AUC/RMSE/... and np.mean of
    # floats is one too: round() scales by 1e5 (12345.5) and rounds half to even → 0.12346. accuracy and log_loss
    # return a Python float: round() uses the exact binary value 0.12345499999... → 0.12345.
    assert METRICS[name].round_score(0.123455) == expected


def test_qwk():
    # observed O = [[1,1],[0,2]], expected E = [[.5,1.5],[.5,1.5]], weights (i-j)^2 → 1 - 1/2
    assert METRICS["qwk"]([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    # 3 classes: sum w*O = 2, sum w*E = 22/4 → 1 - 2/5.5
    assert METRICS["qwk"]([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(1 - 2 / 5.5)


def test_f1_binary_and_macro():
    y, p = [1, 1, 1, 0], [1, 1, 0, 0]
    assert METRICS["f1"](y, p) == pytest.approx(0.8)                      # P = 1, R = 2/3
    # class 0: P = 1/2, R = 1 → 2/3; macro = (0.8 + 2/3) / 2
    assert METRICS["f1"](y, p, average="macro") == pytest.approx((0.8 + 2 / 3) / 2)


def test_column_wise_metrics():
    y = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])
    p = np.array([[0.1, 0.1], [0.4, 0.2], [0.35, 0.8], [0.8, 0.9]])
    assert METRICS["mean_column_auc"](y, p) == pytest.approx((0.75 + 1.0) / 2)
    e1 = math.e - 1
    yt = np.array([[0, 1.0], [e1, 2.0]])
    yp = np.array([[e1, 1.0], [e1, 2.0]])
    assert METRICS["mean_column_rmsle"](yt, yp) == pytest.approx((math.sqrt(0.5) + 0) / 2)


def test_auc_flattened():
    # cells y = [0,1,1,0], p = [.3,.9,.2,.1]: pairs (.9>.3)(.9>.1)(.2<.3)(.2>.1) → 3/4
    assert METRICS["auc_flattened"]([[0, 1], [1, 0]], [[0.3, 0.9], [0.2, 0.1]]) == pytest.approx(0.75)


def test_registry_directions_and_flags():
    lower = {"log_loss", "multiclass_log_loss", "rmse", "rmsle", "mae", "mean_column_rmsle"}
    assert {n for n, m in METRICS.items() if m.is_lower_better} == lower
    assert {n for n, m in METRICS.items() if m.label_valued} == {"accuracy", "qwk", "f1"}
    assert {n for n, m in METRICS.items() if m.python_float} == {"accuracy", "log_loss", "multiclass_log_loss"}
    assert {n for n, m in METRICS.items() if m.needs_proba} == {
        "auc", "log_loss", "multiclass_log_loss", "mean_column_auc", "auc_flattened"}
    assert all(m.name == n for n, m in METRICS.items())


def test_unknown_metric_names_closest():
    with pytest.raises(KeyError, match="Did you mean 'rmsle'"):
        M.get("rmsl")


def test_bad_clip_eps_is_rejected():
    with pytest.raises(ValueError, match="clip_eps"):
        METRICS["log_loss"]([1, 0], [0.5, 0.5], clip_eps=0.7)
