"""Run a reference solution the way the agent program contract says, and place its score on the leaderboard.

Used by the integration test and by `calibrate` (which picks each tabular reference solution's model). The
real sandbox lives in `acelib.sandbox`; this is a plain subprocess with a timeout, enough for our own code.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from acelib.tasks.competition import Competition


@dataclasses.dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    submission: Path | None
    validation_score: float | None


def run_solution(comp: Competition, code: str, workspace: Path, timeout: float = 60.0) -> RunResult:
    """Run `code` with cwd = `workspace`, `./input` -> the public data, and collect ./submission/submission.csv."""
    import time

    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "input").symlink_to(comp.public_dir, target_is_directory=True)
    (workspace / "working").mkdir()
    (workspace / "solution.py").write_text(code)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "solution.py"], cwd=workspace, capture_output=True, text=True,
                       timeout=timeout)
    seconds = time.perf_counter() - t
    scores = [line.split(":", 1)[1] for line in r.stdout.splitlines() if line.startswith("VALIDATION_SCORE:")]
    sub = workspace / "submission" / "submission.csv"
    return RunResult(r.returncode, r.stdout, r.stderr, seconds, sub if sub.is_file() else None,
                     float(scores[-1]) if scores else None)


def hidden_score(comp: Competition, submission: Path) -> float:
    """Hidden-test score of a submission, rounded to 5 decimals (the ladder's own scorer)."""
    from acelib.tasks.suites import get_spec
    from acelib.tasks.suites.ladder import score_submission

    spec = get_spec(comp.id)
    return round(score_submission(spec, pd.read_csv(comp.answers_path), pd.read_csv(submission)), 5)


def rank(comp: Competition, score: float) -> int:
    """1-based rank the score would take on the competition's leaderboard (ties rank with the tied rows)."""
    from acelib.tasks.leaderboard import read_scores

    scores = read_scores(comp.leaderboard_path)
    better = scores < score if comp.is_lower_better else scores > score
    return int(better.sum()) + 1


def reference_report(comp: Competition, code: str | None = None, timeout: float = 60.0) -> dict:
    """Run the (reference) solution in a temporary workspace; score, rank and medal position on the board."""
    from acelib.tasks.leaderboard import read_scores, thresholds
    from acelib.tasks.suites import reference_solution

    with tempfile.TemporaryDirectory(prefix=f"acelib-{comp.id}-") as tmp:
        res = run_solution(comp, code if code is not None else reference_solution(comp.id), Path(tmp) / "ws",
                           timeout)
        if res.returncode != 0 or res.submission is None:
            raise RuntimeError(f"{comp.id}: solution failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
        score = hidden_score(comp, res.submission)
    th = thresholds(read_scores(comp.leaderboard_path), comp.is_lower_better)
    lower = comp.is_lower_better
    return {
        "id": comp.id, "score": score, "validation_score": res.validation_score, "seconds": round(res.seconds, 2),
        "rank": rank(comp, score), **th,
        "gold": score <= th["gold_threshold"] if lower else score >= th["gold_threshold"],
        "above_median": score < th["median_threshold"] if lower else score > th["median_threshold"],
    }
