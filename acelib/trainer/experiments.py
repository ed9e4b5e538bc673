"""What the eval / ablations / analysis notebooks call: each a few lines over train(), acelib.eval and MLflow."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from acelib.trainer.config import TrainConfig


def run_ablations(cfg: TrainConfig, modes=("lp", "uniform", "no_buffer"), seeds=(0,), progress: bool = True):
    """Train one run per (mode, seed) as nested MLflow runs under one parent; returns (parent_run_id, DataFrame)."""
    import mlflow
    import pandas as pd

    from acelib import tracking
    from acelib.trainer.loop import train

    parent = tracking.start_run(cfg.tracking_uri, cfg.experiment, run_name=f"ablation-{cfg.model}",
                                tags={"acelib.kind": "ablation-parent"})
    parent_id = parent.info.run_id
    tracking.log_params({"modes": list(modes), "seeds": list(seeds), "model": cfg.model, "steps": cfg.steps})
    mlflow.end_run()
    frames = []
    for seed in seeds:
        for mode in modes:
            child = dataclasses.replace(cfg, sampling=mode, seed=seed, parent_run_id=parent_id,
                                        run_name=f"{cfg.model}-{mode}-s{seed}", resume="")
            res = train(child, progress=progress)
            df = res.dataframe()
            df["sampling"], df["seed"], df["run_id"] = mode, seed, res.mlflow_run_id
            frames.append(df)
    return parent_id, pd.concat(frames, ignore_index=True)


def evaluate_model(model: str, suite: str = "lite-mini", competitions: list[str] | None = None,
                   eval_overrides: dict | None = None, seeds=(0,), backend: str = "auto", max_new_tokens: int = 384,
                   temperature: float = 0.7, label: str = "", tracking_uri: str = "", experiment: str = "acelib",
                   parent_run_id: str = ""):
    """Evaluate a model (registry name, or a trained `final_model` directory) on a suite with the AIDE-like agent.

    Logs the flat summary to MLflow (nested under parent_run_id if given) and returns the EvalReport.
    """
    from acelib.agent import EnginePolicy
    from acelib.config import from_dict
    from acelib.eval import EvalConfig, evaluate
    from acelib.models import materialize
    from acelib.rollout import make_engine
    from acelib.rollout.base import SamplingParams
    from acelib.rollout.config import RolloutConfig
    from acelib.tasks.suites import SUITES, prepare_competition

    path = Path(model)
    model_dir = str(path) if (path / "config.json").exists() else str(materialize(model))
    comps = [prepare_competition(c) for c in (competitions or SUITES[suite])]
    engine = make_engine(RolloutConfig(), model_dir, backend=backend, seed=seeds[0])
    try:
        policy = EnginePolicy(engine, SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens))
        report = evaluate(policy, comps, from_dict(EvalConfig, eval_overrides or {}), seeds=tuple(seeds))
    finally:
        engine.close()
    if tracking_uri:
        import mlflow

        from acelib import tracking
        with tracking.start_run(tracking_uri, experiment, run_name=f"eval-{label or path.name}",
                                parent_run_id=parent_run_id or None, tags={"acelib.kind": "eval"}):
            tracking.log_params({"model": model, "suite": suite, "seeds": list(seeds), "label": label})
            tracking.log_metrics(report.summary(), step=0)
            out = Path(tempfile_dir()) / f"eval-{label or path.name}.json"
            out.write_text(report.to_json())
            mlflow.log_artifact(str(out), artifact_path="eval")
    return report


def tempfile_dir() -> str:
    import tempfile
    return tempfile.mkdtemp(prefix="acelib-eval-")


def compare_table(reports: dict):
    """{label: EvalReport} → one row per label of the suite aggregates (for the base-vs-trained table)."""
    import pandas as pd
    return pd.DataFrame([{"model": k, **r.summary()} for k, r in reports.items()]).set_index("model")
