"""Leaderboards: read/write MLE-bench `leaderboard.csv`, medal thresholds, HumanRank.

File format (MLE-bench, from Kaggle's `competition_leaderboard_view` minus team names), best row first::

    scoreNullable,teamId,hasTeamName,submissionDate,score,hasScore

Only `score` and the row order matter, so MLE-Dojo's reduced `rank,score` files are read too.

Thresholds follow MLE-bench `Grader.rank_score` / `get_thresholds` ("kaggle.com/progression"); N = number of
teams, pos(k) = score of the k-th best team (1-indexed), int() truncates exactly as MLE-bench's code does:

    N < 100      gold pos(max(1, int(0.1 N)))    silver pos(max(1, int(0.2 N)))  bronze pos(max(1, int(0.4 N)))
    100 ≤ N < 250  gold pos(10)                  silver pos(max(1, int(0.2 N)))  bronze pos(max(1, int(0.4 N)))
    250 ≤ N < 1000 gold pos(10 + int(0.002 N))   silver pos(50)                  bronze pos(100)
    N ≥ 1000     gold pos(10 + int(0.002 N))     silver pos(max(1, int(0.05 N))) bronze pos(max(1, int(0.1 N)))
    median = median of all N scores
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

MLEBENCH_COLUMNS = ("scoreNullable", "teamId", "hasTeamName", "submissionDate", "score", "hasScore")


def read_scores(path: str | Path) -> np.ndarray:
    """Scores of a leaderboard file in file order (best first) as float64 `[N]`.

    Accepts MLE-bench `leaderboard.csv` and MLE-Dojo `rank,score`; both carry a `score` column.
    """
    import pandas as pd
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"leaderboard file {path} does not exist")
    df = pd.read_csv(path)
    if "score" not in df.columns:
        raise ValueError(f"leaderboard {path} has no `score` column (columns: {list(df.columns)}); expected "
                         f"MLE-bench columns {','.join(MLEBENCH_COLUMNS)} or MLE-Dojo `rank,score`")
    scores = pd.to_numeric(df["score"], errors="raise").to_numpy(dtype=np.float64)
    if len(scores) == 0:
        raise ValueError(f"leaderboard {path} has no rows")
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))[:5].tolist()
        raise ValueError(f"leaderboard {path} has missing/non-finite scores at rows {bad}; drop those rows")
    return scores


def write(path: str | Path, scores: Sequence[float], is_lower_better: bool) -> Path:
    """Write `scores` as an MLE-bench `leaderboard.csv`, best row first.

    Kaggle team ids and dates are unknown for synthetic or MLE-Dojo-derived boards: teamId is the 1-based
    rank, submissionDate is empty and hasTeamName is False (MLE-bench reads none of them).
    """
    import pandas as pd
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0 or not np.isfinite(s).all():
        raise ValueError("leaderboard scores must be a non-empty 1-D list of finite numbers")
    s = _best_first(s, is_lower_better)
    df = pd.DataFrame({
        "scoreNullable": s,
        "teamId": np.arange(1, len(s) + 1),
        "hasTeamName": False,
        "submissionDate": "",
        "score": s,
        "hasScore": True,
    }, columns=list(MLEBENCH_COLUMNS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def direction(scores: Sequence[float]) -> bool | None:
    """MLE-bench's rule: lower is better iff the first (best) score is lower than the last.

    None when first == last (a flat board says nothing; MLE-bench would call it higher-is-better).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s[0] == s[-1]:
        return None
    return bool(s[0] < s[-1])


def _best_first(scores: np.ndarray, is_lower_better: bool) -> np.ndarray:
    # A stable sort leaves a well-formed (already best-first) board exactly as MLE-bench reads it.
    order = np.argsort(scores if is_lower_better else -scores, kind="stable")
    return scores[order]


def positions(n_teams: int) -> tuple[int, int, int]:
    """1-based leaderboard positions of the gold, silver and bronze thresholds for `n_teams` teams."""
    n = int(n_teams)
    if n < 1:
        raise ValueError("a leaderboard needs at least one team")
    if n < 100:
        return max(1, int(n * 0.1)), max(1, int(n * 0.2)), max(1, int(n * 0.4))
    if n < 250:
        return 10, max(1, int(n * 0.2)), max(1, int(n * 0.4))
    if n < 1000:
        return 10 + int(n * 0.002), 50, 100
    return 10 + int(n * 0.002), max(1, int(n * 0.05)), max(1, int(n * 0.1))


def thresholds(scores: Sequence[float], is_lower_better: bool) -> dict[str, float]:
    """Gold/silver/bronze/median thresholds of a leaderboard (see the module docstring for the table)."""
    s = _best_first(np.asarray(scores, dtype=np.float64), is_lower_better)
    gold, silver, bronze = positions(len(s))
    return {
        "gold_threshold": float(s[gold - 1]),
        "silver_threshold": float(s[silver - 1]),
        "bronze_threshold": float(s[bronze - 1]),
        "median_threshold": float(np.median(s)),
    }


def human_rank(score: float, scores: Sequence[float], is_lower_better: bool) -> float:
    """HumanRank = fraction of leaderboard teams the score strictly beats, in [0, 1].

    higher-is-better: #{s_i < score} / N;  lower-is-better: #{s_i > score} / N.
    Ties do not count as beaten, so matching the winner of a board of N distinct scores gives (N-1)/N.
    """
    s = np.asarray(scores, dtype=np.float64)
    beaten = s > score if is_lower_better else s < score
    return float(beaten.sum() / len(s))
