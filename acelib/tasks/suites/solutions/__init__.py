"""Reference solutions, one `<id with underscores>.py` per mini-competition.

Tabular (and table-like) competitions share one script, `_tabular_template.py`, whose `SETTINGS` block is
filled in per competition by `render_tabular`; the rendered files are committed so that each solution is a
plain, self-contained program (what an agent would write). Re-render after editing the template or
`TABULAR`:

    python -m acelib.tasks.suites.solutions

`tests/unit/test_suites_registry.py` fails when a rendered file is out of date.
The model choice is deliberately middle-of-the-road: a reference solution must beat the leaderboard median
but stay below gold (see docs/suites.md).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = {"tabular": HERE / "_tabular_template.py", "image": HERE / "_image_template.py"}
SETTINGS_LINE = "SETTINGS = {}"

# competition id -> model settings of its reference solution (see make_model in the template)
TABULAR: dict[str, dict] = {
    "titanic-survival": {"model": "boosting"},
    "ames-house-prices": {"model": "forest", "trees": 30, "leaf": 5},
    "diamond-prices": {"model": "forest", "trees": 30, "leaf": 5},
    "caravan-insurance": {"model": "linear"},
    "breast-cancer": {"model": "linear"},
    "diabetes-progression": {"model": "forest"},
    "boston-housing": {"model": "forest"},
    "marital-affairs": {"model": "linear"},
    "credit-scoring": {"model": "linear"},
    "telco-churn": {"model": "boosting"},
    "phone-churn": {"model": "forest", "trees": 30, "leaf": 5},
    "lending-club": {"model": "forest"},
    "concrete-strength": {"model": "forest", "trees": 30, "leaf": 5},
    "credit-default": {"model": "linear"},
    "carseat-sales": {"model": "boosting"},
    "college-applications": {"model": "forest", "trees": 30, "leaf": 5},
    "poverty-opinion": {"model": "boosting"},
    "developer-roles": {"model": "linear"},
    "hpc-jobs": {"model": "forest", "trees": 30, "leaf": 5},
    "cell-segmentation": {"model": "boosting"},
    "food-delivery-time": {"model": "boosting", "iters": 40},
    "hotel-rates": {"model": "forest", "trees": 30, "leaf": 5},
    "employee-attrition": {"model": "forest"},
    "sacramento-homes": {"model": "boosting"},
    "election-vote": {"model": "forest"},
    "orange-juice": {"model": "boosting", "iters": 40},
    "nomad-mini": {"model": "boosting"},
    "taxi-mini": {"model": "boosting", "iters": 40, "dates": ["pickup_datetime"]},
    "tps-dec-2021-mini": {"model": "knn", "k": 35},
    "tps-may-2022-mini": {"model": "forest", "trees": 30, "leaf": 5, "letters": ["f_27"]},
    "leaf-mini": {"model": "forest", "trees": 30, "leaf": 5},
    "tate-artwork-year": {"model": "linear", "C": 0.3, "alpha": 3.0, "text": ["artist", "title", "medium"]},
    "spooky-mini": {"model": "linear", "C": 0.3, "alpha": 3.0, "text": ["text"]},
    "jigsaw-mini": {"model": "linear", "text": ["comment_text"]},
    "insults-mini": {"model": "linear", "text": ["Comment"]},
    "pizza-mini": {"model": "linear", "text": ["request_text_edit_aware", "request_source"]},
    "handwritten-digits": {"template": "image", "model": "forest", "size": 8, "labels": "train.csv"},
    "dog-breed-mini": {"template": "image", "model": "forest", "size": 14, "labels": "labels.csv"},
    "dogs-vs-cats-mini": {"template": "image", "model": "forest", "size": 14, "labels": "filename"},
    "aerial-cactus-mini": {"template": "image", "model": "forest", "trees": 30, "leaf": 5, "size": 16, "labels": "train.csv"},
}


def solution_path(comp_id: str) -> Path:
    return HERE / f"{comp_id.replace('-', '_')}.py"


def render_tabular(comp_id: str) -> str:
    """The reference solution of a tabular competition: the template with its settings filled in."""
    from acelib.tasks.suites import get_spec

    spec = get_spec(comp_id)
    label = None if spec.task != "multiclass" or spec.metric != "multiclass_log_loss" else spec.label
    settings = {"id": spec.id_column, "targets": list(spec.target_columns), "label": label, "task": spec.task,
                "metric": spec.metric, **TABULAR[comp_id]}
    template = TEMPLATES[settings.pop("template", "tabular")]
    text = template.read_text()
    if SETTINGS_LINE not in text:
        raise ValueError(f"{template} lost its `{SETTINGS_LINE}` line")
    return text.replace(SETTINGS_LINE, f"SETTINGS = {dict(sorted(settings.items()))!r}", 1)


def render_all() -> list[Path]:
    out = []
    for comp_id in sorted(TABULAR):
        path = solution_path(comp_id)
        path.write_text(render_tabular(comp_id))
        out.append(path)
    return out

