"""MLflow tracking: one place that knows run ids, parameter flattening, metric-key rules and artifacts.

Default store: `sqlite:///outputs/mlflow.db` with artifacts under `outputs/mlartifacts` (see README for
`make mlflow-ui`). A run's id is written to its run directory (`run.json`) so `resume` continues the SAME run.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from acelib.config import flatten

_KEY_OK = re.compile(r"[^0-9A-Za-z_\-./: ]")


def sanitize_key(key: str) -> str:
    """MLflow keys allow only alphanumerics, `_ - . / :` and space (e.g. `acc@32` is rejected)."""
    return _KEY_OK.sub("_", key)


def default_artifact_root(tracking_uri: str) -> str | None:
    """For a local sqlite store, keep artifacts next to it (outputs/mlartifacts), not in ./mlruns."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):]).resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


def setup(tracking_uri: str, experiment: str) -> str:
    """Point mlflow at the store and make sure the experiment exists; returns its id."""
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).resolve().parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(experiment, artifact_location=default_artifact_root(tracking_uri))


def start_run(tracking_uri: str, experiment: str, run_name: str = "", run_id: str | None = None,
              parent_run_id: str | None = None, tags: dict | None = None):
    """Start (or, with run_id, continue) an MLflow run; nested under parent_run_id when given."""
    import mlflow

    exp_id = setup(tracking_uri, experiment)
    if run_id:
        return mlflow.start_run(run_id=run_id)
    tags = dict(tags or {})
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return mlflow.start_run(experiment_id=exp_id, run_name=run_name or None, tags=tags)


def log_params(params: dict[str, Any]) -> None:
    """Flattened, stringified params; MLflow caps a value at 6000 chars."""
    import mlflow

    flat = {sanitize_key(k): str(v)[:6000] for k, v in flatten(params).items()}
    items = list(flat.items())
    for i in range(0, len(items), 100):  # log_params takes at most 100 per call
        mlflow.log_params(dict(items[i:i + 100]))


def log_metrics(metrics: dict[str, Any], step: int) -> None:
    """Finite numeric metrics only (MLflow rejects NaN in some stores; None means 'not measured this step')."""
    import mlflow

    clean = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            v = float(v)
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            clean[sanitize_key(k)] = float(v)
    if clean:
        mlflow.log_metrics(clean, step=step)


def search_runs(tracking_uri: str, experiment: str, filter_string: str = ""):
    """DataFrame of runs of an experiment (empty DataFrame if the experiment does not exist)."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    return mlflow.search_runs([exp.experiment_id], filter_string=filter_string)


def metric_history(tracking_uri: str, run_id: str, keys: list[str]):
    """Long DataFrame (run_id, key, step, value) of the given metrics of one run."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    rows = []
    for key in keys:
        for m in client.get_metric_history(run_id, sanitize_key(key)):
            rows.append({"run_id": run_id, "key": key, "step": m.step, "value": m.value})
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])


def log_executed_notebook(notebook_path: str, last_run_json: str = "outputs/last_run.json") -> None:
    """Attach an executed notebook to the MLflow run it produced (papermill writes it only after the last cell)."""
    import json

    import mlflow

    info = json.loads(Path(last_run_json).read_text())
    mlflow.set_tracking_uri(info["tracking_uri"])
    with mlflow.start_run(run_id=info["mlflow_run_id"]):
        mlflow.log_artifact(notebook_path, artifact_path="notebook")


if __name__ == "__main__":  # python -m acelib.tracking NOTEBOOK  (used by `make train`)
    import sys

    log_executed_notebook(sys.argv[1])
