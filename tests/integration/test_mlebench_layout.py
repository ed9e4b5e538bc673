"""From `mlebench prepare --lite` output to graded reports (the walk-through in docs/tasks.md, "From `mlebench
prepare` to an evaluation").

A synthetic data directory in exactly the layout `mlebench prepare` writes (mlebench/data.py
`download_and_prepare_dataset` with its defaults: the Kaggle zip kept in `<data>/<id>/`, `raw/` removed,
`prepared/public/description.md` added; the files inside `prepared/` as each competition's prepare.py writes them)
for spooky-author-identification and nomad2018-predict-transparent-conductors. It is found through
$MLEBENCH_DATA_DIR by acelib's loader, and a perfect, the sample and a broken submission get MLE-bench's reports,
with thresholds and medals from acelib's shipped Lite leaderboards.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import acelib.tasks as tasks

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SPOOKY, NOMAD = "spooky-author-identification", "nomad2018-predict-transparent-conductors"
SPOOKY_SAMPLE = {"EAP": 0.403493538995863, "HPL": 0.287808366106543, "MWS": 0.308698094897594}
# MLE-bench's CompetitionReport.to_dict() keys; acelib adds reason, human_rank and warnings after them
MLEBENCH_KEYS = ("competition_id", "score", "gold_threshold", "silver_threshold", "bronze_threshold",
                 "median_threshold", "any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median",
                 "submission_exists", "valid_submission", "is_lower_better", "created_at", "submission_path")


def prepared(data: Path, comp_id: str) -> tuple[Path, Path]:
    """`<data>/<id>/` after `mlebench prepare -c <id>`: the downloaded zip, prepared/public, prepared/private."""
    root = data / comp_id
    public, private = root / "prepared" / "public", root / "prepared" / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    (root / f"{comp_id}.zip").write_bytes(b"PK\x05\x06" + bytes(18))        # the Kaggle download (empty zip)
    (public / "description.md").write_text(f"# {comp_id}\n")               # written by download_and_prepare_dataset
    return public, private


def spooky_layout(data: Path) -> pd.DataFrame:
    """spooky prepare.py: train/test split of Kaggle's train.csv; private/test.csv one-hot (df_to_one_hot)."""
    public, private = prepared(data, SPOOKY)
    authors = ["EAP", "HPL", "MWS", "EAP", "MWS", "HPL", "EAP"]
    ids = [f"id{n:05d}" for n in (2310, 24541, 134, 27757, 4081, 15373, 19764)]
    test = pd.DataFrame({"id": ids, "text": [f"sentence {i}" for i in range(7)], "author": authors})
    answers = pd.DataFrame({"id": ids, **{a: [int(x == a) for x in authors] for a in ("EAP", "HPL", "MWS")}})
    pd.DataFrame({"id": ["id26305", "id17569"], "text": ["This process...", "It never..."],
                  "author": ["EAP", "HPL"]}).to_csv(public / "train.csv", index=False)
    test.drop(columns=["author"]).to_csv(public / "test.csv", index=False)
    answers.assign(**SPOOKY_SAMPLE).to_csv(public / "sample_submission.csv", index=False)
    answers.to_csv(private / "test.csv", index=False)
    return answers


def nomad_layout(data: Path) -> pd.DataFrame:
    """nomad2018 prepare.py: ids renumbered 1..N; geometry files per id; private/test.csv keeps every column."""
    public, private = prepared(data, NOMAD)
    rng = np.random.default_rng(0)
    n = 6
    test = pd.DataFrame({"id": range(1, n + 1), "spacegroup": rng.choice([12, 33, 194, 206], n),
                         "number_of_total_atoms": rng.choice([10.0, 40.0, 80.0], n),
                         "percent_atom_al": 0.5, "percent_atom_ga": 0.25, "percent_atom_in": 0.25,
                         "lattice_vector_1_ang": 9.9, "lattice_vector_2_ang": 8.5, "lattice_vector_3_ang": 9.1,
                         "lattice_angle_alpha_degree": 90.0, "lattice_angle_beta_degree": 90.0,
                         "lattice_angle_gamma_degree": 90.0,
                         "formation_energy_ev_natom": rng.uniform(0, 0.4, n).round(4),
                         "bandgap_energy_ev": rng.uniform(0.5, 5, n).round(4)})
    test.head(3).to_csv(public / "train.csv", index=False)
    test.drop(columns=["formation_energy_ev_natom", "bandgap_energy_ev"]).to_csv(public / "test.csv", index=False)
    test.to_csv(private / "test.csv", index=False)
    test[["id"]].assign(formation_energy_ev_natom=0.1779, bandgap_energy_ev=1.8892).to_csv(
        public / "sample_submission.csv", index=False)
    for split, ids in (("train", range(1, 4)), ("test", range(1, n + 1))):
        for i in ids:
            (public / split / str(i)).mkdir(parents=True)
            (public / split / str(i) / "geometry.xyz").write_text("lattice_vector 9.9 0 0\n")
    return test


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "mle-bench-data"
    monkeypatch.setenv("MLEBENCH_DATA_DIR", str(data))
    return data


def mlebench_report(r: dict) -> dict:
    assert tuple(r)[:len(MLEBENCH_KEYS)] == MLEBENCH_KEYS
    return {k: r[k] for k in MLEBENCH_KEYS if k not in ("created_at", "submission_path")}


def expected(comp_id, score, board, lower, medal=None, above_median=False, valid=True) -> dict:
    gold, silver, bronze, median = board
    return {"competition_id": comp_id, "score": score, "gold_threshold": gold, "silver_threshold": silver,
            "bronze_threshold": bronze, "median_threshold": median, "any_medal": medal is not None,
            "gold_medal": medal == "gold", "silver_medal": medal == "silver", "bronze_medal": medal == "bronze",
            "above_median": above_median, "submission_exists": True, "valid_submission": valid,
            "is_lower_better": lower}


SPOOKY_BOARD = (0.16506, 0.26996, 0.29381, 0.41815)   # acelib/tasks/data/lite/spooky-author-identification.csv
NOMAD_BOARD = (0.05589, 0.06229, 0.06582, 0.06988)    # acelib/tasks/data/lite/nomad2018-...csv (878 teams)


def test_spooky_from_mlebench_prepare_to_reports(data, tmp_path):
    answers = spooky_layout(data)
    rows = {r["id"]: r for r in tasks.list_competitions()}
    assert rows[SPOOKY]["available"] and rows[SPOOKY]["path"] == str(data / SPOOKY)
    comp = tasks.load(SPOOKY)                                              # bare id → $MLEBENCH_DATA_DIR/<id>
    assert comp.suite == "mlebench-lite" and comp.root == (data / SPOOKY).resolve()
    assert comp.public_dir == comp.root / "prepared" / "public"           # the agent's ./input/
    assert comp.answers_path == comp.root / "prepared" / "private" / "test.csv"   # graded against, never shown

    perfect = tmp_path / "perfect.csv"
    answers.to_csv(perfect, index=False)
    # one-hot predictions: log loss of 1 - eps clipped probabilities ≈ 2e-16 → 0.0 after rounding; gold
    r = tasks.grade(comp, perfect)
    assert mlebench_report(r) == expected(SPOOKY, 0.0, SPOOKY_BOARD, True, "gold", above_median=True)
    assert r["reason"] is None and r["warnings"] == [] and r["human_rank"] > 0.99

    # the sample submission: each row pays -ln(p of its author); 3 EAP, 2 HPL, 2 MWS rows
    sample_loss = -(3 * math.log(SPOOKY_SAMPLE["EAP"]) + 2 * math.log(SPOOKY_SAMPLE["HPL"])
                    + 2 * math.log(SPOOKY_SAMPLE["MWS"])) / 7
    r = tasks.grade(comp, comp.public_dir / "sample_submission.csv")
    assert mlebench_report(r) == expected(SPOOKY, round(sample_loss, 5), SPOOKY_BOARD, True)

    # broken: the id column last. MLE-bench's spooky grader sums columns 2-4 by position and fails → invalid
    broken = tmp_path / "broken.csv"
    answers[["EAP", "HPL", "MWS", "id"]].to_csv(broken, index=False)
    r = tasks.grade(comp, broken)
    assert mlebench_report(r) == expected(SPOOKY, None, SPOOKY_BOARD, True, valid=False)
    assert "`id` must be the first column" in r["reason"]


def test_nomad_from_mlebench_prepare_to_reports(data, tmp_path):
    answers = nomad_layout(data)
    comp = tasks.load(data / NOMAD)                                        # a path works as well as the id
    assert comp.answers_path.name == "test.csv" and (comp.public_dir / "test" / "1" / "geometry.xyz").is_file()

    perfect = tmp_path / "perfect.csv"
    answers[["id", "formation_energy_ev_natom", "bandgap_energy_ev"]].to_csv(perfect, index=False)
    r = tasks.grade(comp, perfect)
    assert mlebench_report(r) == expected(NOMAD, 0.0, NOMAD_BOARD, True, "gold", above_median=True)

    # broken: a target column missing (nomad grade.py:18-19 → InvalidSubmissionError)
    broken = tmp_path / "broken.csv"
    answers[["id", "formation_energy_ev_natom"]].to_csv(broken, index=False)
    r = tasks.grade(comp, broken)
    assert mlebench_report(r) == expected(NOMAD, None, NOMAD_BOARD, True, valid=False)
    assert "bandgap_energy_ev" in r["reason"]

    # the same through the CLI, by bare id: the JSON report on stdout, exit 0 for a graded (even invalid) file
    out = subprocess.run([sys.executable, "-m", "acelib.tasks", "grade", NOMAD, str(perfect)], cwd=REPO,
                         env={**os.environ, "MLEBENCH_DATA_DIR": str(data)}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert mlebench_report(json.loads(out.stdout)) == expected(NOMAD, 0.0, NOMAD_BOARD, True, "gold",
                                                               above_median=True)
