"""Pick the model of each tabular reference solution (a maintainer tool, not run by `prepare`).

A reference solution must land between the leaderboard median and gold. For each competition we try a short
list of ordinary models, weakest-looking last, and keep the first whose hidden-test rank falls in the band
[RANK_LO, RANK_HI] of the 120-row board (gold is rank <= 10, the median is rank 60), so small changes leave
it inside. The chosen settings are pasted into the competition's `Spec.solution`.

    python -m acelib.tasks.suites.calibrate titanic-survival ames-house-prices
"""
from __future__ import annotations

import sys

RANK_LO, RANK_HI = 14, 48
MAX_SECONDS = 15  # a reference solution must stay quick (measured on a loaded 2-core box)
FEATURE_KEYS = ("text", "dates", "letters", "size", "labels")  # how features are read, kept as is

CANDIDATES: list[dict] = [
    {"model": "boosting"},
    {"model": "forest"},
    {"model": "linear"},
    {"model": "boosting", "iters": 40},
    {"model": "forest", "trees": 30, "leaf": 5},
    {"model": "knn", "k": 10},
    {"model": "linear", "C": 0.05, "alpha": 20.0},
    {"model": "boosting", "iters": 300, "lr": 0.05},
    {"model": "forest", "trees": 200},
    {"model": "knn", "k": 30},
]


TEXT_CANDIDATES: list[dict] = [
    {"model": "linear", "C": 1.0, "alpha": 1.0},
    {"model": "linear", "C": 3.0, "alpha": 0.3},
    {"model": "linear", "C": 0.3, "alpha": 3.0},
    {"model": "linear", "C": 10.0, "alpha": 0.1},
    {"model": "linear", "C": 0.1, "alpha": 10.0},
    {"model": "linear", "C": 1.0, "alpha": 1.0, "ngram": 1},
    {"model": "linear", "C": 0.03, "alpha": 30.0},
]


def calibrate(comp_id: str) -> tuple[dict | None, list[tuple[dict, int, float]]]:
    """(first candidate inside the rank band or None, every tried (settings, rank, seconds))."""
    from acelib.tasks.suites import get_spec, prepare_competition
    from acelib.tasks.suites.check import reference_report
    from acelib.tasks.suites.solutions import render_reference

    comp = prepare_competition(comp_id)
    tried = []
    # keep how the features are read (text columns, date/letter columns); only the model is calibrated
    keep = {k: v for k, v in get_spec(comp_id).solution.items() if k in FEATURE_KEYS}
    for cand in (TEXT_CANDIDATES if "text" in keep else CANDIDATES):
        cand = {**cand, **keep}
        rep = reference_report(comp, render_reference(comp_id, solution=cand))
        tried.append((cand, rep["rank"], rep["seconds"]))
        if RANK_LO <= rep["rank"] <= RANK_HI and rep["seconds"] < MAX_SECONDS:
            return cand, tried
    return None, tried


if __name__ == "__main__":
    for cid in sys.argv[1:]:
        best, tried = calibrate(cid)
        print(f"{cid}: solution={best!r}  # tried {[(t[0], t[1]) for t in tried]}", flush=True)
