"""A run directory: the durable record of one training run, and what `resume` reads.

    <output_dir>/<run_name>/
      run.json          config, MLflow run id, last committed step (written atomically)
      buffer.sqlite     the Evolving Data Buffer + sampler state (SQLite WAL)
      checkpoints/step-000003/   learner checkpoint (model, optimizer, scheduler, every rank's RNG) + buffer copy
                                 after step 3; its `done` marker, written last, makes it the resume point
      metrics.jsonl     one line per completed step (the source for re-logging MLflow after a crash)
      probe.jsonl       one line per probe of the policy on the fixed probe tasks (the learning curve)
      seeds.json        the seed tasks by state id: competition, step type, mutation kind
      infra_errors.log  tracebacks of samples masked as infrastructure errors
      logs/             each actor's output: rollout_worker_<i>.log (engine, vLLM), learner_rank_<r>.log (DeepSpeed)
      summary.json      the run's headline numbers (acelib.trainer.summary)
      plots/, buffer_snapshot.parquet, final_model/
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from acelib.files import atomic_write


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    @classmethod
    def create(cls, output_dir: str | Path, run_name: str) -> "RunDir":
        base = Path(output_dir).resolve() / run_name
        path, i = base, 1
        while path.exists():  # never reuse (and so never overwrite) an existing run's directory
            i += 1
            path = base.with_name(f"{base.name}-{i}")
        path.mkdir(parents=True)
        (path / "checkpoints").mkdir()
        return cls(path)

    @classmethod
    def find(cls, output_dir: str | Path, resume: str) -> "RunDir":
        """`resume` is a run directory or an MLflow run id of a run under output_dir."""
        p = Path(resume)
        if (p / "run.json").exists():
            return cls(p)
        root = Path(output_dir)
        if root.exists():
            for rj in sorted(root.glob("*/run.json")):
                if json.loads(rj.read_text()).get("mlflow_run_id") == resume:
                    return cls(rj.parent)
        raise FileNotFoundError(f"cannot resume '{resume}': it is neither a run directory (with run.json) nor the MLflow "
                                f"run id of a run under {root.resolve()}. Pass the run directory printed at the start of the run.")

    # -- files ------------------------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def buffer_path(self) -> Path:
        return self.path / "buffer.sqlite"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoint_dir(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step-{step:06d}"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def infra_errors_path(self) -> Path:
        return self.path / "infra_errors.log"

    def log_infra_errors(self, step: int, task_id: str, errors: list[str]) -> None:
        with open(self.infra_errors_path, "a") as f:
            for e in errors:
                f.write(f"=== step {step}, task {task_id}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n{e.rstrip()}\n")

    def read(self) -> dict:
        return json.loads(self.run_json.read_text()) if self.run_json.exists() else {}

    def write(self, **fields) -> dict:
        data = {**self.read(), **fields, "updated_at": time.time()}
        atomic_write_json(self.run_json, data)
        return data

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """The newest COMPLETE checkpoint (a `done` marker is written last)."""
        done = sorted((self.path / "checkpoints").glob("step-*/done"))
        if not done:
            return None
        d = done[-1].parent
        return int(d.name.split("-")[1]), d

    def mark_done(self, step: int) -> None:
        """Commit step `step`: its checkpoint becomes the resume point, run.json records the step."""
        (self.checkpoint_dir(step) / "done").write_text(str(step))
        self.write(step=step)

    def checkpoint_failed(self, step: int, cause: BaseException) -> str:
        """Remove step `step`'s incomplete checkpoint (resume ignores it anyway; a full disk needs the room) and
        say what failed, how much disk is free, what is kept and how to go on."""
        shutil.rmtree(self.checkpoint_dir(step), ignore_errors=True)
        lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()]
        why = lines[-1] if lines else type(cause).__name__
        last = self.latest_checkpoint()
        if last:
            size = sum(p.stat().st_size for p in last[1].rglob("*") if p.is_file())
            kept = (f"the newest complete checkpoint is step {last[0]} ({size / 2**20:.0f} MiB), and the buffer and "
                    "metrics up to it are intact")
        else:
            kept = "no step was committed yet, so a new run starts from scratch"
        free = shutil.disk_usage(self.path).free
        return (f"saving the checkpoint of step {step} to {self.checkpoint_dir(step)} failed: {why}. "
                f"{free / 2**20:.0f} MiB are free on that disk. Nothing committed is lost: {kept}. Free disk space "
                f"(older runs' checkpoints/ are the large files; `keep_checkpoints` sets how many a run keeps), then "
                f"continue with resume='{self.path}' (make train ARGS=\"-p resume {self.path}\").")

    def prune_checkpoints(self, keep: int) -> None:
        complete = sorted((self.path / "checkpoints").glob("step-*/done"))
        for marker in complete[:-keep] if keep > 0 else []:
            shutil.rmtree(marker.parent, ignore_errors=True)

    @property
    def probe_path(self) -> Path:
        return self.path / "probe.jsonl"

    @property
    def seeds_path(self) -> Path:
        return self.path / "seeds.json"

    def write_seeds(self, seeds: dict[str, dict]) -> None:
        atomic_write_json(self.seeds_path, seeds)

    def seeds(self) -> dict[str, dict]:
        """seeds.json ({} for a run from before it was written)."""
        return json.loads(self.seeds_path.read_text()) if self.seeds_path.is_file() else {}

    def append_metrics(self, step: int, metrics: dict) -> None:
        _append_line(self.metrics_path, {"step": step, **metrics})

    def append_probe(self, row: dict) -> None:
        _append_line(self.probe_path, row)

    def probes(self, up_to_step: int | None = None) -> list[dict]:
        """Probe rows (those after `up_to_step` learner steps belong to steps a resume redoes)."""
        rows = _read_lines(self.probe_path)
        return [r for r in rows if up_to_step is None or r["step"] <= up_to_step]

    def rewrite_probes(self, rows: list[dict]) -> None:
        atomic_write(self.probe_path, "".join(json.dumps(r, default=float) + "\n" for r in rows))

    def rewrite_metrics(self, rows: list[dict]) -> None:
        """Keep only `rows` (steps after the last checkpoint are redone on resume, never counted twice)."""
        atomic_write(self.metrics_path, "".join(json.dumps(r, default=float) + "\n" for r in rows))

    def metrics(self) -> list[dict]:
        return _read_lines(self.metrics_path)


def _append_line(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill mid-write: what it belongs to is redone
            break
    return rows
