"""MLE-bench-Lite registry, shipped leaderboards, `load()` of real-layout MLE-bench data, and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import acelib.tasks as tasks
from acelib.tasks import grader, lite
from acelib.tasks import leaderboard as lb
from acelib.tasks.metrics import METRICS

REPO = Path(__file__).resolve().parents[2]

# openai/mle-bench experiments/splits/low.txt
LITE_IDS = """aerial-cactus-identification aptos2019-blindness-detection denoising-dirty-documents
detecting-insults-in-social-commentary dog-breed-identification dogs-vs-cats-redux-kernels-edition
histopathologic-cancer-detection jigsaw-toxic-comment-classification-challenge leaf-classification mlsp-2013-birds
new-york-city-taxi-fare-prediction nomad2018-predict-transparent-conductors plant-pathology-2020-fgvc7
random-acts-of-pizza ranzcr-clip-catheter-line-classification siim-isic-melanoma-classification
spooky-author-identification tabular-playground-series-dec-2021 tabular-playground-series-may-2022
text-normalization-challenge-english-language text-normalization-challenge-russian-language
the-icml-2013-whale-challenge-right-whale-redux""".split()

# (teams, gold, silver, bronze, median) from the project's MLE-bench notes (mlebench_lite_thresholds.csv, the
# MLE-bench rank_score rules applied to the Kaggle private leaderboards; medians rounded to 6 digits there)
THRESHOLDS = {
    "aerial-cactus-identification": (1221, 1.0, 1.0, 1.0, 0.9991),
    "aptos2019-blindness-detection": (2928, 0.930508, 0.919654, 0.914492, 0.888912),
    "denoising-dirty-documents": (161, 0.01794, 0.02609, 0.04517, 0.073),
    "detecting-insults-in-social-commentary": (50, 0.83321, 0.82307, 0.79111, 0.77842),
    "dog-breed-identification": (1280, 0.0005, 0.00539, 0.04598, 0.47197),
    "dogs-vs-cats-redux-kernels-edition": (1314, 0.03882, 0.05038, 0.06127, 0.122095),
    "histopathologic-cancer-detection": (1149, 0.9835, 0.9798, 0.9738, 0.9477),
    "jigsaw-toxic-comment-classification-challenge": (4539, 0.9874, 0.98668, 0.98639, 0.98079),
    "leaf-classification": (1595, 0.0, 0.00791, 0.01526, 0.10729),
    "mlsp-2013-birds": (79, 0.93759, 0.91461, 0.8745, 0.86672),
    "new-york-city-taxi-fare-prediction": (1483, 2.83377, 2.88191, 2.92371, 3.59651),
    "nomad2018-predict-transparent-conductors": (878, 0.05589, 0.06229, 0.06582, 0.06988),
    "plant-pathology-2020-fgvc7": (1317, 0.97836, 0.97465, 0.97361, 0.94858),
    "random-acts-of-pizza": (462, 0.97908, 0.76482, 0.6921, 0.599595),
    "ranzcr-clip-catheter-line-classification": (1547, 0.97357, 0.97152, 0.9709, 0.9675),
    "spooky-author-identification": (1241, 0.16506, 0.26996, 0.29381, 0.41815),
    "tabular-playground-series-dec-2021": (1188, 0.9566, 0.95658, 0.95658, 0.953425),
    "tabular-playground-series-may-2022": (1151, 0.99823, 0.99822, 0.99818, 0.97275),
    "text-normalization-challenge-english-language": (260, 0.99724, 0.99135, 0.99038, 0.99037),
    "text-normalization-challenge-russian-language": (162, 0.99012, 0.98232, 0.97592, 0.97591),
    "the-icml-2013-whale-challenge-right-whale-redux": (129, 0.98961, 0.95017, 0.90521, 0.86521),
}


def test_registry_holds_the_22_lite_competitions():
    assert sorted(lite.LITE) == sorted(LITE_IDS) and len(lite.LITE_IDS) == 22


@pytest.mark.parametrize("comp_id", LITE_IDS)
def test_spec_is_consistent(comp_id, tmp_path):
    spec = lite.get(comp_id)
    metric = METRICS[spec.metric]
    assert spec.is_lower_better == metric.is_lower_better
    assert len(set(spec.target_columns)) == len(spec.target_columns) > 0
    assert spec.id_column not in spec.target_columns
    assert metric.multi_column == (len(spec.target_columns) > 1)
    assert spec.answers_file in ("test.csv", "answers.csv")
    grader.rules_for(spec.competition(tmp_path))                   # every rule key is known


@pytest.mark.parametrize("comp_id", sorted(THRESHOLDS))
def test_shipped_leaderboard_matches_published_thresholds(comp_id):
    spec = lite.get(comp_id)
    scores = lb.read_scores(spec.leaderboard_path)
    teams, gold, silver, bronze, median = THRESHOLDS[comp_id]
    assert len(scores) == teams
    assert lb.direction(scores) == spec.is_lower_better
    assert list(scores) == sorted(scores, reverse=not spec.is_lower_better)   # best row first
    assert list(pd.read_csv(spec.leaderboard_path).columns) == list(lb.MLEBENCH_COLUMNS)
    t = lb.thresholds(scores, spec.is_lower_better)
    assert (t["gold_threshold"], t["silver_threshold"], t["bronze_threshold"]) == (gold, silver, bronze)
    assert t["median_threshold"] == pytest.approx(median, abs=1e-6)


def test_siim_has_no_leaderboard_and_class_lists_are_complete():
    assert lite.get("siim-isic-melanoma-classification").leaderboard_path is None
    assert len(lite.get("leaf-classification").target_columns) == 99
    assert len(lite.get("dog-breed-identification").target_columns) == 120
    assert lite.get("spooky-author-identification").target_columns == ("EAP", "HPL", "MWS")
    # MLE-bench's ranzcr classes.py has 9 of Kaggle's 11 columns (openai/mle-bench#30)
    assert len(lite.get("ranzcr-clip-catheter-line-classification").target_columns) == 9


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS: ~/Library/Caches, as appdirs")
def test_default_data_dir_is_mlebench_default(tmp_path, monkeypatch):
    # MLE-bench's DEFAULT_DATA_DIR = appdirs.user_cache_dir() / "mle-bench" / "data", which honours XDG_CACHE_HOME
    monkeypatch.delenv("MLEBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tasks.mlebench_data_dir() == tmp_path / "mle-bench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert tasks.mlebench_data_dir() == Path.home() / ".cache" / "mle-bench" / "data"


def test_unknown_lite_id_suggests():
    with pytest.raises(KeyError, match="Did you mean 'leaf-classification'"):
        lite.get("leaf-clasification")


# ------------------------------------------------------------------------------------------- real MLE-bench layout
def fake_mlebench(data_dir: Path, comp_id: str, answers: pd.DataFrame, answers_file: str = "test.csv") -> Path:
    """`<data>/<id>/prepared/{public,private}` as `mlebench prepare` leaves it (no competition.json)."""
    root = data_dir / comp_id
    (root / "prepared" / "public").mkdir(parents=True)
    (root / "prepared" / "private").mkdir(parents=True)
    answers.to_csv(root / "prepared" / "private" / answers_file, index=False)
    return root


SPOOKY_ANSWERS = pd.DataFrame({"id": ["id1", "id2", "id3"], "EAP": [1, 0, 0], "HPL": [0, 1, 0], "MWS": [0, 0, 1]})


def spooky_sub(p_true: list[float]) -> pd.DataFrame:
    rest = [(1 - p) / 2 for p in p_true]
    return pd.DataFrame({"id": ["id1", "id2", "id3"], "EAP": [p_true[0], rest[1], rest[2]],
                         "HPL": [rest[0], p_true[1], rest[2]], "MWS": [rest[0], rest[1], p_true[2]]})


def test_load_mlebench_dir_and_grade_with_real_spooky_thresholds(tmp_path):
    root = fake_mlebench(tmp_path / "data", "spooky-author-identification", SPOOKY_ANSWERS)
    comp = tasks.load(root)
    assert comp.suite == "mlebench-lite" and comp.metric == "multiclass_log_loss" and comp.root == root.resolve()

    sub = tmp_path / "sub.csv"
    spooky_sub([0.7, 0.8, 0.6]).to_csv(sub, index=False)
    r = tasks.grade(comp, sub)
    # -(ln 0.7 + ln 0.8 + ln 0.6) / 3 = 0.3635483 → between bronze (0.29381) and the median (0.41815)
    assert r["score"] == 0.36355
    assert (r["gold_threshold"], r["silver_threshold"], r["bronze_threshold"]) == (0.16506, 0.26996, 0.29381)
    assert r["median_threshold"] == 0.41815
    assert r["above_median"] and not r["any_medal"] and r["is_lower_better"]

    spooky_sub([0.95, 0.95, 0.95]).to_csv(sub, index=False)
    r = tasks.grade(comp, sub)                                      # -ln 0.95 = 0.05129
    assert r["score"] == 0.05129 and r["gold_medal"] and r["human_rank"] > 0.99

    pd.DataFrame({**spooky_sub([0.7, 0.8, 0.6]), "extra": 0}).to_csv(sub, index=False)
    r = tasks.grade(comp, sub)                                      # spooky's grader checks the exact shape
    assert not r["valid_submission"] and "unexpected columns" in r["reason"]


def test_load_bare_lite_id_from_mlebench_data_dir(tmp_path, monkeypatch):
    fake_mlebench(tmp_path, "spooky-author-identification", SPOOKY_ANSWERS)
    monkeypatch.setenv("MLEBENCH_DATA_DIR", str(tmp_path))
    comp = tasks.load("spooky-author-identification")
    assert comp.root == (tmp_path / "spooky-author-identification").resolve()
    rows = {r["id"]: r for r in tasks.list_competitions()}
    assert rows["spooky-author-identification"]["available"] is True
    assert rows["leaf-classification"]["available"] is False


def test_missing_lite_data_names_mlebench_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("MLEBENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mlebench prepare -c leaf-classification"):
        tasks.load("leaf-classification")
    with pytest.raises(KeyError, match="python -m acelib.tasks list"):
        tasks.load("no-such-competition")


def test_siim_grades_without_thresholds(tmp_path):
    answers = pd.DataFrame({"image_name": ["a", "b", "c", "d"], "target": [0, 0, 1, 1]})
    comp = tasks.load(fake_mlebench(tmp_path, "siim-isic-melanoma-classification", answers))
    sub = tmp_path / "sub.csv"
    pd.DataFrame({"image_name": ["d", "c", "b", "a"], "target": [0.8, 0.35, 0.4, 0.1]}).to_csv(sub, index=False)
    r = tasks.grade(comp, sub)
    assert r["valid_submission"] and r["score"] == 0.75 and r["gold_threshold"] is None and not r["any_medal"]


def test_nomad_grades_in_file_order_and_jigsaw_skips_unscored_rows(tmp_path):
    nomad = pd.DataFrame({"id": [1, 2], "formation_energy_ev_natom": [0.1, 0.2], "bandgap_energy_ev": [1.0, 2.0]})
    comp = tasks.load(fake_mlebench(tmp_path, "nomad2018-predict-transparent-conductors", nomad))
    sub = tmp_path / "nomad.csv"
    nomad.to_csv(sub, index=False)
    assert tasks.grade(comp, sub)["score"] == 0.0

    jig = pd.DataFrame({"id": ["a", "b", "c"], **{c: [0, 1, -1] for c in lite.get(
        "jigsaw-toxic-comment-classification-challenge").target_columns}})
    comp = tasks.load(fake_mlebench(tmp_path, "jigsaw-toxic-comment-classification-challenge", jig))
    sub = tmp_path / "jig.csv"
    jig.assign(**{c: [0.2, 0.9, 0.0] for c in jig.columns[1:]}).to_csv(sub, index=False)
    assert tasks.grade(comp, sub)["score"] == 1.0


# ------------------------------------------------------------------------------------------- CLI
def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "acelib.tasks", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_grade_prints_report_even_when_invalid(tmp_path):
    root = fake_mlebench(tmp_path, "spooky-author-identification", SPOOKY_ANSWERS)
    sub = tmp_path / "sub.csv"
    spooky_sub([0.95, 0.95, 0.95]).to_csv(sub, index=False)
    out = _cli("grade", str(root), str(sub), "--output", str(tmp_path / "report.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["gold_medal"] and report["score"] == 0.05129
    assert json.loads((tmp_path / "report.json").read_text()) == report

    spooky_sub([0.95, 0.95, 0.95]).drop(columns=["MWS"]).to_csv(sub, index=False)
    out = _cli("grade", "spooky-author-identification", str(sub), env_extra={"MLEBENCH_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["valid_submission"] is False and "MWS" in report["reason"]

    out = _cli("grade", "no-such-competition", str(sub))
    assert out.returncode == 1 and "acelib.tasks list" in out.stderr


def test_cli_grade_prints_warnings_on_stderr(tmp_path):
    nomad = pd.DataFrame({"id": [1, 2], "formation_energy_ev_natom": [0.1, 0.2], "bandgap_energy_ev": [1.0, 2.0]})
    root = fake_mlebench(tmp_path, "nomad2018-predict-transparent-conductors", nomad)
    sub = tmp_path / "sub.csv"
    nomad.drop(columns=["id"]).to_csv(sub, index=False)          # MLE-bench grades it; acelib warns
    out = _cli("grade", str(root), str(sub))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["valid_submission"] and report["warnings"]
    assert out.stderr.strip() == f"warning: {report['warnings'][0]}"


def test_cli_list_json(tmp_path):
    out = _cli("list", "--json", env_extra={"MLEBENCH_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    lite_rows = [r for r in rows if r["suite"] == "mlebench-lite"]
    assert sorted(r["id"] for r in lite_rows) == sorted(LITE_IDS)
    assert not any(r["available"] for r in lite_rows)


# ------------------------------------------------------------------------------------------- offline suites
def test_suite_ids_are_listed_and_loaded_through_prepare(tmp_path, monkeypatch):
    suites = pytest.importorskip("acelib.tasks.suites")
    monkeypatch.setenv("ACELIB_CACHE_DIR", str(tmp_path))
    rows = tasks.list_competitions()
    suite_rows = [r for r in rows if r["suite"] in suites.SUITES]
    assert {r["id"] for r in suite_rows} == {c for ids in suites.SUITES.values() for c in ids}
    assert not any(r["available"] for r in suite_rows)                    # empty cache

    # a bare suite id goes to prepare_competition (recorded here instead of building the data)
    cid = suites.SUITES["train"][0]
    calls = []
    monkeypatch.setattr(suites, "prepare_competition", lambda comp_id: calls.append(comp_id) or "prepared")
    assert tasks.load(cid) == "prepared" and calls == [cid]
