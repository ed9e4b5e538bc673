"""Find competitions: our offline suites, real MLE-bench-Lite data, or any directory in the on-disk format.

`load(path_or_id)` accepts, in this order:

(a) a directory holding `competition.json` (our suites, or a hand-made competition);
(b) a directory prepared by `mlebench prepare` (`<data>/<id>/prepared/{public,private}`) whose basename is a
    Lite id: metadata from `acelib.tasks.lite`, leaderboard from the shipped data unless the dir has one;
(c) a bare Lite id: looked up under `mlebench_data_dir()/<id>` (`$MLEBENCH_DATA_DIR`, else MLE-bench's default);
(d) a bare suite competition id: `acelib.tasks.suites.prepare_competition(id)` (prepares it on first use).

This module imports neither pandas nor scikit-learn, so `import acelib.tasks` stays cheap.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from acelib.tasks import lite
from acelib.tasks.competition import COMPETITION_JSON, Competition

MLEBENCH_DATA_ENV = "MLEBENCH_DATA_DIR"


def mlebench_data_dir() -> Path:
    """Where `mlebench prepare` writes: `$MLEBENCH_DATA_DIR`, else MLE-bench's default `--data-dir`,
    `appdirs.user_cache_dir()/mle-bench/data`: `$XDG_CACHE_HOME` or ~/.cache on Linux, ~/Library/Caches on macOS."""
    env = os.environ.get(MLEBENCH_DATA_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        cache = Path.home() / "Library" / "Caches"
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "mle-bench" / "data"


def _is_prepared(root: Path) -> bool:
    return (root / "prepared" / "public").is_dir() and (root / "prepared" / "private").is_dir()


def _from_dir(root: Path) -> Competition:
    meta = root / COMPETITION_JSON
    if meta.is_file():
        return Competition.from_json(root, json.loads(meta.read_text()))
    if _is_prepared(root) and root.name in lite.LITE:
        return lite.LITE[root.name].competition(root)
    if _is_prepared(root):
        raise ValueError(f"{root} looks like MLE-bench data but '{root.name}' is not an MLE-bench-Lite id and "
                         f"there is no {COMPETITION_JSON}; add one (fields: docs/tasks.md) or rename the directory "
                         "to its competition id")
    raise ValueError(f"{root} is not a competition directory: expected {COMPETITION_JSON} or prepared/{{public,"
                     "private}} (see docs/tasks.md)")


def _suites():
    """The offline-suite module, or None while it is not installed."""
    try:
        from acelib.tasks import suites
    except ModuleNotFoundError as e:
        if e.name not in ("acelib.tasks.suites",):
            raise
        return None
    return suites


def _suite_ids() -> dict[str, str]:
    """competition id → suite name, over all offline suites."""
    suites = _suites()
    if suites is None:
        return {}
    return {cid: name for name, ids in suites.SUITES.items() for cid in ids}


def load(path_or_id: str | Path) -> Competition:
    """A `Competition` from a directory, a Lite id or a suite id (see the module docstring)."""
    if isinstance(path_or_id, Path) or os.path.exists(str(path_or_id)):
        root = Path(path_or_id).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"competition directory {root} does not exist")
        return _from_dir(root)
    name = str(path_or_id)
    if os.sep in name or name.startswith("."):
        raise FileNotFoundError(f"competition directory {name} does not exist")
    if name in lite.LITE:
        root = mlebench_data_dir() / name
        if not _is_prepared(root):
            raise FileNotFoundError(
                f"MLE-bench-Lite data for '{name}' not found at {root}. Run `mlebench prepare -c {name}` "
                f"(or `mlebench prepare --lite`), or point ${MLEBENCH_DATA_ENV} at the directory that holds "
                f"<competition-id>/prepared/")
        return _from_dir(root)
    if name in _suite_ids():
        return _suites().prepare_competition(name)
    import difflib
    known = list(lite.LITE) + list(_suite_ids())
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise KeyError(f"unknown competition '{name}'.{hint} See `python -m acelib.tasks list`.")


def grade(competition: Competition | str | Path, submission_csv_path: str | Path) -> dict:
    """Grade a submission for a `Competition`, a competition directory or an id; returns the report dict."""
    from acelib.tasks import grader  # pandas/sklearn only when grading
    comp = competition if isinstance(competition, Competition) else load(competition)
    return grader.grade(comp, submission_csv_path)


def list_competitions() -> list[dict[str, Any]]:
    """Every known competition: offline suites first (if installed), then MLE-bench-Lite.

    Each row: id, suite, metric, is_lower_better, available (data found locally), path.
    """
    rows: list[dict[str, Any]] = []
    suites = _suites()
    if suites is not None:
        cache = Path(suites.cache_dir())
        for suite, ids in suites.SUITES.items():
            for cid in ids:
                root = cache / "suites" / suite / cid  # the layout prepare_competition writes
                spec = suites.SPECS[cid]
                rows.append({"id": cid, "suite": suite, "metric": spec.metric,
                             "is_lower_better": spec.is_lower_better,
                             "available": (root / COMPETITION_JSON).is_file(), "path": str(root)})
    data = mlebench_data_dir()
    for cid in lite.LITE_IDS:
        spec = lite.LITE[cid]
        rows.append({"id": cid, "suite": lite.SUITE, "metric": spec.metric, "is_lower_better": spec.is_lower_better,
                     "available": _is_prepared(data / cid), "path": str(data / cid)})
    return rows
