"""Reference solutions and compact baselines, rendered on demand from each competition's `Spec.solution`.

- `render_reference(id)`: the reference solution. Tabular and text competitions share `_tabular_template.py`,
  image competitions `_image_template.py`; rendering fills the template's `SETTINGS = {}` line with the
  competition's columns, metric and `Spec.solution` (everything else is the template, verbatim). The model
  choice is middle-of-the-road: above the leaderboard median, below gold (docs/suites.md, `calibrate`).
- `compact_baseline(id)`: a short plain script (`compact.py`), the seed of the agent's curriculum.

Nothing rendered is committed; a prepared competition holds its own copy (`reference_solution.py`). Print one:

    python -m acelib.tasks.suites.solutions <id> [--compact]
"""
from __future__ import annotations

from pathlib import Path

from acelib.tasks.suites.solutions.compact import compact_baseline, compact_plan

HERE = Path(__file__).parent
TEMPLATES = {"tabular": HERE / "_tabular_template.py", "image": HERE / "_image_template.py"}
SETTINGS_LINE = "SETTINGS = {}"


def reference_settings(comp_id: str, solution: dict | None = None) -> dict:
    """The `SETTINGS` of a reference solution: the competition's columns and metric plus `solution`
    (default: `Spec.solution` without its `compact` part)."""
    from acelib.tasks.suites import get_spec

    spec = get_spec(comp_id)
    solution = {k: v for k, v in (spec.solution if solution is None else solution).items() if k != "compact"}
    if "model" not in solution:
        raise ValueError(f"{comp_id}: Spec.solution needs a 'model' (run `python -m acelib.tasks.suites.calibrate "
                         f"{comp_id}` and paste its choice into the Spec)")
    label = None if spec.task != "multiclass" or spec.metric != "multiclass_log_loss" else spec.label
    return {"id": spec.id_column, "targets": list(spec.target_columns), "label": label, "task": spec.task,
            "metric": spec.metric, **solution}


def render_reference(comp_id: str, solution: dict | None = None) -> str:
    """The reference solution of a competition: its template with the `SETTINGS` line filled in.

    `solution` overrides `Spec.solution` (`calibrate` tries candidate models this way).
    """
    from acelib.tasks.suites import get_spec

    settings = reference_settings(comp_id, solution)
    template = TEMPLATES["image" if get_spec(comp_id).modality == "image" else "tabular"]
    text = template.read_text()
    if SETTINGS_LINE not in text:
        raise ValueError(f"{template} lost its `{SETTINGS_LINE}` line")
    return text.replace(SETTINGS_LINE, f"SETTINGS = {dict(sorted(settings.items()))!r}", 1)


__all__ = ["TEMPLATES", "compact_baseline", "compact_plan", "reference_settings", "render_reference"]
