"""MLflow tracking: one place that knows run ids, parameter flattening, metric-key rules and artifacts.

Default store: `sqlite:///outputs/mlflow.db` with artifacts under `outputs/mlartifacts` (see README for
`make mlflow-ui`). A run's id is written to its run directory (`run.json`) so `resume` continues the SAME run.

Models and checkpoints (docs/trainer.md, "Models and checkpoints in MLflow"):
- `log_policy_model` logs a trained policy directory as an MLflow model (transformers flavour, tokenizer and chat
  template included) and registers it in the store's model registry;
- `log_checkpoint` records intermediate DeepSpeed checkpoints (by reference, or copied with a retention);
- `download_model` turns a `models:/...` or `runs:/...` URI back into a local Hugging Face directory (what
  `acelib.models.resolve_model_dir` calls, so every place that names a model accepts these URIs);
- `describe` / `set_description` write the run description the MLflow UI shows (`mlflow.note.content`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acelib.config import flatten

_KEY_OK = re.compile(r"[^0-9A-Za-z_\-./: ]")
DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"
DESCRIPTION_TAG = "mlflow.note.content"  # the run's "Description" in the MLflow UI
# MLflow 3 opens an experiment without this tag in its GenAI view (traces, prompts) or asks which kind it is;
# "custom_model_development" is the model-training view (runs, metrics, models). Values from MLflow 3.17's UI.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
CHECKPOINT_MODES = ("none", "reference", "copy")


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
    """Point mlflow at the store and make sure the experiment exists, in the UI's model-training view; returns
    its id. An experiment whose kind a user already chose keeps it."""
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).resolve().parent.mkdir(parents=True, exist_ok=True)
    # a new SQLite store announces its schema migration at INFO ("Creating initial MLflow database tables..."):
    # bookkeeping, not part of the run's report
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return mlflow.create_experiment(experiment, artifact_location=default_artifact_root(tracking_uri),
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
    if EXPERIMENT_KIND_TAG not in exp.tags:
        mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return exp.experiment_id


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


# ------------------------------------------------------------------------------------------ run descriptions
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def describe(title: str, fields: Mapping[str, Any], headline: Mapping[str, Any] | None = None) -> str:
    """Markdown for a run description: a bold title, `name value` pairs (empty values skipped) and an optional
    table of headline numbers (floats to 4 significant digits, NaN as n/a)."""
    pairs = " · ".join(f"{k} `{_fmt(v)}`" for k, v in fields.items() if v is not None and v != "")
    lines = [f"**{title}**", "", pairs]
    if headline:
        lines += ["", "| headline | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in headline.items())]
    return "\n".join(lines)


def set_description(text: str, run_id: str | None = None, tracking_uri: str | None = None) -> None:
    """Set a run's description (the `mlflow.note.content` tag the UI shows): the active run, or `run_id`."""
    import mlflow

    if run_id:
        mlflow.MlflowClient(tracking_uri=tracking_uri).set_tag(run_id, DESCRIPTION_TAG, text)
    else:
        _active_run("set_description")
        mlflow.set_tag(DESCRIPTION_TAG, text)


def _active_run(what: str):
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(f"{what} logs into the active MLflow run: call it inside `with tracking.start_run(...)` "
                           "(the trainer calls it before its run ends)")
    return run


# ------------------------------------------------------------------------------------------ models
@dataclasses.dataclass(frozen=True)
class LoggedPolicy:
    """Where a logged policy lives: the MLflow model (`models:/m-...`) and, if registered, its registry version."""

    model_uri: str            # the logged model, models:/<model id>
    run_id: str
    registered_name: str = ""  # "" when not registered
    version: str = ""

    @property
    def uri(self) -> str:
        """The URI to pass as `model` anywhere (train, eval, serving): the registry version when registered."""
        return f"models:/{self.registered_name}/{self.version}" if self.registered_name else self.model_uri


def log_policy_model(model_dir: str | Path, registered_model_name: str = "", name: str = "policy",
                     description: str = "") -> LoggedPolicy:
    """Log a trained policy directory (HF: config, safetensors, tokenizer with chat template) to the active run as
    an MLflow model (transformers flavour, task llm/v1/chat) and register it as `registered_model_name` in the
    run's tracking store ("" = log only). The weights are copied into the artifact store, so the run alone
    reproduces the policy; `download_model(result.uri)` gives the directory back."""
    import huggingface_hub
    import mlflow
    import torch
    import transformers

    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d} is not a Hugging Face model directory (no config.json); pass the directory "
                                "the learner exported (a run's final_model)")
    run = _active_run("log_policy_model")
    if not transformers.AutoTokenizer.from_pretrained(str(d)).chat_template:
        raise ValueError(f"{d}: the tokenizer has no chat template; save the training tokenizer (with its template) "
                         "next to the weights, or servers and evaluators would format prompts differently")
    # Explicit requirements: MLflow's inference would load the model in a subprocess just to list packages.
    reqs = [f"transformers=={transformers.__version__}", f"torch=={torch.__version__.split('+')[0]}"]
    card = huggingface_hub.ModelCard(f"# {registered_model_name or name}\n\n{description}\n")
    info = mlflow.transformers.log_model(str(d), name=name, task="llm/v1/chat", model_card=card,
                                         registered_model_name=registered_model_name or None, pip_requirements=reqs)
    version = str(info.registered_model_version or "")
    if registered_model_name:
        client = mlflow.MlflowClient()
        if description:
            client.update_model_version(registered_model_name, version, description=description)
        client.set_model_version_tag(registered_model_name, version, "acelib.source_dir", str(d.resolve()))
        mlflow.set_tag("acelib.registered_model", f"models:/{registered_model_name}/{version}")
    return LoggedPolicy(model_uri=info.model_uri, run_id=run.info.run_id,
                        registered_name=registered_model_name, version=version)


def _store_key(tracking_uri: str) -> str:
    """The store's identity for cache keys (a relative sqlite path means the same file from any cwd)."""
    if tracking_uri.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(tracking_uri[len("sqlite:///"):]).resolve())
    return tracking_uri


def _pinned(uri: str, client) -> str:
    """`uri` with an alias or 'latest' replaced by the concrete registry version (the cache key must not move)."""
    if not uri.startswith("models:/"):
        return uri
    rest = uri[len("models:/"):]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return f"models:/{name}/{client.get_model_version_by_alias(name, alias).version}"
    name, _, version = rest.partition("/")
    if version and version != "latest":
        return uri
    found = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"], max_results=1)
    if found:
        return f"models:/{name}/{found[0].version}"
    if version == "latest":
        raise ValueError(f"{uri}: no registered model named {name!r} in this store")
    return uri  # a logged model id (models:/m-...)


def _hf_dir(path: Path, uri: str) -> Path:
    """The Hugging Face directory inside a downloaded artifact: an MLflow transformers model's weights, or the
    directory itself."""
    import yaml

    if (path / "MLmodel").is_file():
        flavors = yaml.safe_load((path / "MLmodel").read_text()).get("flavors", {})
        if "transformers" not in flavors:
            raise ValueError(f"{uri} is an MLflow model without the transformers flavour ({sorted(flavors)}); "
                             "log policies with acelib.tracking.log_policy_model")
        path = path / flavors["transformers"].get("model_binary", "model")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{uri} holds no Hugging Face model directory (no config.json in {path}); point "
                                "the URI at a logged model or at a directory with config.json")
    return path


def download_model(uri: str, tracking_uri: str | None, cache_dir: str | Path) -> Path:
    """The local Hugging Face directory of a `models:/<name>/<version>` (also `@alias`, `latest`, `models:/m-<id>`)
    or `runs:/<run id>/<path>` URI, downloaded once into `cache_dir` (acelib.models passes
    `$ACELIB_CACHE_DIR/models/mlflow/`).

    tracking_uri: the store holding it; None = $MLFLOW_TRACKING_URI, else the kit's default store."""
    import mlflow

    if not uri.startswith(("models:/", "runs:/")):
        raise ValueError(f"{uri!r} is not an MLflow model URI (models:/<name>/<version> or runs:/<run id>/<path>)")
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    pinned = _pinned(uri, client)
    key = hashlib.sha256(f"{_store_key(tracking_uri)}\0{pinned}".encode()).hexdigest()[:20]
    final = Path(cache_dir) / key
    if not (final / ".complete").is_file():
        tmp = final.with_name(f".{key}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=str(tmp),
                                                       tracking_uri=tracking_uri, registry_uri=tracking_uri))
        (tmp / ".complete").write_text(json.dumps({"uri": pinned, "path": str(got.relative_to(tmp))}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # atomic: readers see no download or a complete one
    rel = json.loads((final / ".complete").read_text())["path"]
    return _hf_dir(final / rel, uri)


# ------------------------------------------------------------------------------------------ checkpoints
def log_checkpoint(checkpoint_dir: str | Path, step: int, mode: str = "reference", keep: int = 1) -> dict:
    """Record a committed training checkpoint (`<run_dir>/checkpoints/step-N/`) in the active run.

    mode "reference": only `checkpoints/index.json` (host, absolute paths, sizes of the checkpoints still on
    disk), so `checkpoint_location(run_id)` finds them; "copy": also upload the directory as artifacts
    `checkpoints/step-N/`, keeping the newest `keep` copies (older ones are deleted from the artifact store);
    "none": nothing. Returns the index (docs/trainer.md says why reference is the default)."""
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"checkpoint mode {mode!r} is not one of {list(CHECKPOINT_MODES)}")
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (copies of checkpoints kept in the artifact store), got {keep}")
    if mode == "none":
        return {}
    run = _active_run("log_checkpoint")
    d = Path(checkpoint_dir).resolve()
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {d} does not exist")
    copied: list[str] = []
    if mode == "copy":
        mlflow.log_artifacts(str(d), artifact_path=f"checkpoints/{d.name}")
        client = mlflow.MlflowClient()
        copied = sorted(Path(a.path).name for a in client.list_artifacts(run.info.run_id, "checkpoints") if a.is_dir)
        repo = get_artifact_repository(run.info.artifact_uri)
        for old in copied[:-keep]:
            repo.delete_artifacts(f"checkpoints/{old}")
        copied = copied[-keep:]
    local = sorted(p.parent.name for p in d.parent.glob("step-*/done")) + [d.name]
    entries = []
    for cname in sorted(set(local) | set(copied)):
        path = d.parent / cname
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else None
        entries.append({"name": cname, "step": int(cname.split("-")[-1]),
                        "path": str(path) if path.is_dir() else None, "bytes": size,
                        "artifact_path": f"checkpoints/{cname}" if cname in copied else None})
    index = {"mode": mode, "host": socket.gethostname(), "root": str(d.parent), "latest_step": int(step),
             "checkpoints": entries}
    mlflow.log_dict(index, "checkpoints/index.json")
    mlflow.set_tag("acelib.checkpoints", str(d.parent))
    return index


def checkpoint_location(run_id: str, step: int | None = None, tracking_uri: str | None = None) -> Path:
    """A local directory holding a run's checkpoint (`step`, default the newest): the run's own directory when
    this machine sees it, else the copy in the artifact store (downloaded)."""
    import mlflow

    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    index = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="checkpoints/index.json", tracking_uri=tracking_uri)).read_text())
    entries = sorted(index["checkpoints"], key=lambda e: e["step"])
    if not entries:
        raise FileNotFoundError(f"run {run_id} recorded no checkpoint")
    chosen = entries[-1] if step is None else next((e for e in entries if e["step"] == step), None)
    if chosen is None:
        raise FileNotFoundError(f"run {run_id} has no checkpoint of step {step}; it has {[e['step'] for e in entries]}")
    if chosen["path"] and Path(chosen["path"]).is_dir():
        return Path(chosen["path"])
    if chosen["artifact_path"]:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=chosen["artifact_path"],
                                                        tracking_uri=tracking_uri))
    raise FileNotFoundError(f"checkpoint {chosen['name']} of run {run_id} was kept by reference at "
                            f"{index['host']}:{chosen['path']}, which this machine does not see; resume there, or "
                            "train with checkpoint artifacts copied (docs/trainer.md)")


def log_executed_notebook(notebook_path: str, last_run_json: str = "outputs/last_run.json") -> None:
    """Attach an executed notebook to the MLflow run it produced (papermill writes it only after the last cell)."""
    import json

    import mlflow

    info = json.loads(Path(last_run_json).read_text())
    mlflow.set_tracking_uri(info["tracking_uri"])
    with mlflow.start_run(run_id=info["mlflow_run_id"]):
        mlflow.log_artifact(notebook_path, artifact_path="notebook")


if __name__ == "__main__":  # python -m acelib.tracking NOTEBOOK [LAST_RUN_JSON]  (used by `make train`)
    import sys

    log_executed_notebook(*sys.argv[1:3])
