"""A competition as MLE-bench prepares it, plus the metadata our grader needs.

On disk (the layout `mlebench prepare` writes, so real MLE-bench data loads unchanged)::

    <root>/                         e.g. ~/.cache/mle-bench/data/spooky-author-identification
      prepared/public/              what the agent sees: description.md, train.csv, test.csv,
                                    sample_submission.csv, any other files (images, ...)
      prepared/private/             hidden answers (test.csv or answers.csv); never shown to the agent
      competition.json              our metadata (see `Competition`); optional for MLE-bench-Lite
                                    directories, whose metadata comes from `acelib.tasks.lite`
      leaderboard.csv               MLE-bench `leaderboard.csv` columns, best row first
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

COMPETITION_JSON = "competition.json"
LEADERBOARD_CSV = "leaderboard.csv"


@dataclasses.dataclass(frozen=True)
class Competition:
    """Everything the kit knows about one competition. Paths are absolute."""

    id: str
    root: Path
    metric: str                      # key of acelib.tasks.metrics.METRICS, e.g. "auc", "multiclass_log_loss"
    is_lower_better: bool
    id_column: str                   # submission/answers id column ("id", "image", "rec_id_species" ...)
    target_columns: tuple[str, ...]  # submission columns the metric reads, in order
    suite: str = "mlebench"          # "train", "lite-mini", "mlebench-lite", or "custom"
    name: str = ""
    namesake: str | None = None      # for lite-mini: the MLE-bench-Lite competition it miniaturises
    answers_file: str = "test.csv"   # inside prepared/private/
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)  # grader options (see grader.py)
    source: str = ""                 # where the data comes from (package + dataset), for docs
    reference_solution: str | None = None  # file name under the competition root, if any

    @property
    def public_dir(self) -> Path:
        return self.root / "prepared" / "public"

    @property
    def private_dir(self) -> Path:
        return self.root / "prepared" / "private"

    @property
    def answers_path(self) -> Path:
        return self.private_dir / self.answers_file

    @property
    def description_path(self) -> Path:
        return self.public_dir / "description.md"

    @property
    def leaderboard_path(self) -> Path:
        return self.root / LEADERBOARD_CSV

    @property
    def description(self) -> str:
        return self.description_path.read_text()

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("root")
        d["target_columns"] = list(self.target_columns)
        return d

    def save_metadata(self) -> None:
        (self.root / COMPETITION_JSON).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, root: Path, data: dict) -> "Competition":
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in fields and k != "root"}
        kw["target_columns"] = tuple(kw.get("target_columns", ()))
        return cls(root=Path(root).resolve(), **kw)
