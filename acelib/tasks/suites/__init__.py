"""Offline suites of mini-competitions, prepared deterministically from package-shipped data.

- `SUITES`: {"train": [...], "lite-mini": [...]} competition ids. "train" feeds GRPO; "lite-mini" holds one
  miniature per MLE-bench-Lite competition (same modality, metric and submission format) for cheap evaluation.
  The two never share a source dataset.
- `prepare_competition(id)` / `prepare_suite(name)`: build (or reuse from the cache) the MLE-bench layout
  under `<cache_dir()>/suites/<suite>/<id>/`; see `acelib.tasks.competition` for the layout.
- `reference_solution(id)`: a solution script following the agent program contract (AGENTS.md), rendered on
  demand from the competition's `Spec.solution`; `compact_baseline(id)`: a short one (≤ 30 lines) that seeds the
  curriculum; `acelib.tasks.suites.mutations` breaks it in realistic ways (debug seeds).

See docs/suites.md for the competitions, the leaderboard ladder and how to add one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from acelib.files import atomic_write
from acelib.tasks import leaderboard as leaderboard_file
from acelib.tasks.competition import COMPETITION_JSON, Competition
from acelib.tasks.suites import images, tabular, text
from acelib.tasks.suites.base import SUITES_VERSION, Spec, description_md, to_csv_bytes, write_bytes
from acelib.tasks.suites.ladder import leaderboard
from acelib.tasks.suites.solutions import compact_baseline, render_reference

BUILD_JSON = "build.json"        # builder version stamp; written last, so its presence means "complete"
SOLUTION_FILE = "reference_solution.py"

SPECS: dict[str, Spec] = {}
for _module in (tabular, text, images):
    for _spec in _module.SPECS:
        if _spec.id in SPECS:
            raise ValueError(f"duplicate mini-competition id {_spec.id!r}")
        SPECS[_spec.id] = _spec

SUITES: dict[str, list[str]] = {
    suite: sorted(s.id for s in SPECS.values() if s.suite == suite) for suite in ("train", "lite-mini")
}


def cache_dir() -> Path:
    """`$ACELIB_CACHE_DIR`, else `~/.cache/acelib`."""
    return Path(os.environ.get("ACELIB_CACHE_DIR") or Path.home() / ".cache" / "acelib")


_default_cache_dir = cache_dir  # the prepare functions' `cache_dir` argument shadows the function


def get_spec(comp_id: str) -> Spec:
    if comp_id not in SPECS:
        import difflib
        close = difflib.get_close_matches(comp_id, list(SPECS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Known: {sorted(SPECS)}."
        raise KeyError(f"unknown mini-competition {comp_id!r}.{hint}")
    return SPECS[comp_id]


def reference_solution(comp_id: str) -> str:
    """The reference solution's code (reads ./input/, writes ./submission/submission.csv), rendered from its
    template and `Spec.solution`."""
    return render_reference(comp_id)


def _competition(spec: Spec, root: Path) -> Competition:
    return Competition(
        id=spec.id, root=Path(root).resolve(), metric=spec.metric, is_lower_better=spec.is_lower_better,
        id_column=spec.id_column, target_columns=tuple(spec.target_columns), suite=spec.suite, name=spec.title,
        namesake=spec.namesake, answers_file="test.csv", rules=dict(spec.rules), source=spec.source,
        reference_solution=SOLUTION_FILE,
    )


# Stamp fields of files rendered from the spec alone (no data build): a change rewrites just those files.
_RENDERED = ("reference_solution_sha256", "metadata_sha256")


def _stamp(spec: Spec) -> dict:
    meta = json.dumps(_competition(spec, Path(".")).to_json(), sort_keys=True)   # grader rules, columns, metric
    return {"id": spec.id, "builder_version": spec.version, "suites_version": SUITES_VERSION,
            "reference_solution_sha256": hashlib.sha256(reference_solution(spec.id).encode()).hexdigest(),
            "metadata_sha256": hashlib.sha256(meta.encode()).hexdigest()}


def _read_stamp(root: Path) -> dict | None:
    stamp = root / BUILD_JSON
    return json.loads(stamp.read_text()) if stamp.is_file() else None


def is_prepared(spec: Spec, root: Path) -> bool:
    return _read_stamp(root) == _stamp(spec)


def build_into(spec: Spec, root: Path) -> Competition:
    """Build every file of one competition into `root` (which must be empty or absent)."""
    built = spec.build(spec)
    comp = _competition(spec, root)
    pub, priv = comp.public_dir, comp.private_dir
    if built.train_csv:
        write_bytes(pub / "train.csv", to_csv_bytes(built.train))
    write_bytes(pub / "test.csv", to_csv_bytes(built.test))
    write_bytes(pub / "sample_submission.csv", to_csv_bytes(built.sample))
    for rel, data in sorted(built.files.items()):
        write_bytes(pub / rel, data)
    write_bytes(comp.description_path, description_md(spec, built).encode())
    write_bytes(comp.answers_path, to_csv_bytes(built.answers))
    board = leaderboard(spec, built)
    leaderboard_file.write(comp.leaderboard_path, [score for _, score in board], spec.is_lower_better)
    write_bytes(root / SOLUTION_FILE, reference_solution(spec.id).encode())
    comp.save_metadata()
    write_bytes(root / BUILD_JSON, (json.dumps(_stamp(spec), sort_keys=True) + "\n").encode())
    return comp


def prepare_competition(comp_id: str, cache_dir: Path | str | None = None, force: bool = False) -> Competition:
    """Prepare one mini-competition under `<cache>/suites/<suite>/<id>/` and return it.

    Reuses a complete directory built by the same builder version unless `force`. The build goes into a
    temporary sibling directory that is renamed into place, so an interrupted prepare never leaves a
    half-written competition behind.
    """
    spec = get_spec(comp_id)
    base = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    root = base / "suites" / spec.suite / spec.id
    stamp, want = _read_stamp(root), _stamp(spec)
    if not force and stamp == want:
        return _competition(spec, root)
    unrendered = lambda d: {k: v for k, v in d.items() if k not in _RENDERED}  # noqa: E731
    if not force and stamp is not None and unrendered(stamp) == unrendered(want):
        # Only the reference solution or the metadata (e.g. a grader rule) changed: data and leaderboard hold.
        atomic_write(root / SOLUTION_FILE, reference_solution(spec.id).encode())
        comp = _competition(spec, root)
        atomic_write(root / COMPETITION_JSON,
                     (json.dumps(comp.to_json(), indent=2, sort_keys=True) + "\n").encode())
        atomic_write(root / BUILD_JSON, (json.dumps(want, sort_keys=True) + "\n").encode())
        return comp
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.id}.", dir=root.parent))
    try:
        build_into(spec, tmp / "c")
        if root.exists():  # stale version or forced: move aside first so the rename below is atomic
            old = Path(tempfile.mkdtemp(prefix=f".{spec.id}.old.", dir=root.parent))
            os.rename(root, old / "c")
        os.rename(tmp / "c", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for old in root.parent.glob(f".{spec.id}.old.*"):
            shutil.rmtree(old, ignore_errors=True)
    return _competition(spec, root)


def prepare_suite(name: str, cache_dir: Path | str | None = None, force: bool = False) -> list[Competition]:
    """Prepare every competition of a suite ("train" or "lite-mini")."""
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; choose one of {sorted(SUITES)}")
    return [prepare_competition(c, cache_dir=cache_dir, force=force) for c in SUITES[name]]


__all__ = ["SUITES", "SPECS", "cache_dir", "compact_baseline", "get_spec", "prepare_competition", "prepare_suite",
           "reference_solution"]
