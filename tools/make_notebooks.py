"""Write notebooks/*.ipynb with nbformat (stored without outputs; papermill needs the tagged `parameters` cell).

Run after editing a notebook's cells here: `python tools/make_notebooks.py`. tests check the stored notebooks
match this script, so the two never drift.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def params(src: str):
    c = new_code_cell(src.strip())
    c.metadata["tags"] = ["parameters"]
    return c


def code(src: str):
    return new_code_cell(src.strip())


def md(src: str):
    return new_markdown_cell(src.strip())


SETUP = """
import os, sys
os.environ.setdefault("MPLBACKEND", "Agg")
from pathlib import Path
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
os.chdir(ROOT)  # outputs/ and params/ are relative to the repository root
from IPython.display import Image, display
"""

NOTEBOOKS = {
    "train.ipynb": [
        md("""
# Train an MLE agent with AceGRPO

GRPO on single agent steps (draft / debug / improve) with the **Evolving Data Buffer** and **Learnability-Potential
sampling**, rollout workers and learner running asynchronously on Ray. Metrics, parameters and artifacts go to MLflow
(`make mlflow-ui`). Headless: `papermill notebooks/train.ipynb outputs/train.ipynb -p model ace30b`.

`model` names a preset in `params/` (`cpu` = SmolLM2-135M on CPU, `tiny`, `ace30b`) or a model of `acelib.models`.
"""),
        params("""
model = "cpu"            # preset name (params/<model>.yaml) or a model name from acelib.models
params_file = ""         # a YAML preset path; replaces the preset chosen by `model`
steps = None             # learner steps (None: the preset's)
seed = None
sampling = None          # "lp" | "uniform" | "no_buffer"
mode = None              # "async" | "sync"
competitions = None      # list of training competition ids (None: the preset's)
resume = ""              # a run directory or MLflow run id to continue
dry_run = False          # validate the configuration and print the resource plan only
tracking_uri = None      # MLflow store; None: sqlite:///outputs/mlflow.db
overrides = {}           # any other TrainConfig field, dotted for components, e.g. {"learner.lr": 1e-5} (or JSON text)
"""),
        code(SETUP),
        code("""
from acelib.trainer import resolve, train
from acelib.trainer.config import parse_list, parse_mapping
from acelib.trainer.plan import resource_plan
# papermill passes what a user types with -p as strings: mappings and lists may come as JSON/YAML text
cfg = resolve(model, params_file, {**parse_mapping(overrides, "overrides"),
                                   **dict(steps=steps, seed=seed, sampling=sampling, mode=mode,
                                          competitions=parse_list(competitions, "competitions") or None,
                                          resume=resume, dry_run=dry_run, tracking_uri=tracking_uri)})
import json; print(json.dumps(resource_plan(cfg), indent=2))
"""),
        code("""
result = train(cfg)
"""),
        md("## Learning curves"),
        code("""
if not cfg.dry_run:
    df = result.dataframe()
    cols = [c for c in ["step", "reward/mean", "rate/valid_submission", "rate/format_error", "groups/zero_variance_share",
                        "staleness/max", "learner/loss", "time/step_s"] if c in df]
    display(df[cols])
    for png in sorted((result.run_dir / "plots").glob("*.png")):
        display(Image(filename=str(png)))
    (ROOT / "outputs").mkdir(exist_ok=True)
    (ROOT / "outputs" / "last_run.json").write_text(json.dumps({"run_dir": str(result.run_dir),
        "mlflow_run_id": result.mlflow_run_id, "tracking_uri": cfg.tracking_uri}))
    print("run directory:", result.run_dir, "| MLflow run:", result.mlflow_run_id)
else:
    (ROOT / "outputs" / "last_run.json").unlink(missing_ok=True)  # a dry run produces no MLflow run
    print("dry run OK:", result["ok"])
"""),
    ],
    "eval.ipynb": [
        md("""
# Evaluate an agent on a suite (MLE-bench rules)

AIDE-like episodes (drafts, then debug the buggy / improve the best) with a step budget per competition; the final
submission is the node with the best *validation* score; the MLE-bench grader scores it. Compares the base model with
a trained checkpoint (`final_model` of a run).
"""),
        params("""
model = "smollm2-135m"   # base model (acelib.models name)
checkpoint = ""          # a trained policy directory (a run's final_model); empty: evaluate the base model only
suite = "lite-mini"
competitions = None      # subset of ids (None: the whole suite)
steps = 4                # agent steps per competition
seeds = [0]
backend = "auto"
max_new_tokens = 384
tracking_uri = "sqlite:///outputs/mlflow.db"
"""),
        code(SETUP),
        code("""
from acelib.trainer.experiments import compare_table, evaluate_model
ev = {"steps": steps}
reports = {"base": evaluate_model(model, suite, competitions, ev, seeds, backend, max_new_tokens, label="base",
                                  tracking_uri=tracking_uri)}
if checkpoint:
    reports["trained"] = evaluate_model(checkpoint, suite, competitions, ev, seeds, backend, max_new_tokens,
                                        label="trained", tracking_uri=tracking_uri)
table = compare_table(reports)
display(table)
"""),
        code("""
import seaborn as sns, matplotlib.pyplot as plt
cols = [c for c in table.columns if c.endswith("_mean") and not c.startswith(("steps", "oracle"))]
long = table[cols].reset_index().melt(id_vars="model", var_name="metric", value_name="value")
ax = sns.barplot(data=long, x="metric", y="value", hue="model"); ax.tick_params(axis="x", rotation=45)
plt.tight_layout(); plt.show()
for label, r in reports.items():
    display(r.dataframe())
"""),
    ],
    "ablations.ipynb": [
        md("""
# Ablations: full AceGRPO vs uniform sampling vs no evolving buffer

The paper's two ablations, same seeds, as nested MLflow runs under one parent (compare them in the MLflow UI).
"""),
        params("""
model = "cpu"
params_file = ""
steps = None
seeds = [0]
modes = ["lp", "uniform", "no_buffer"]
competitions = None
tracking_uri = None
overrides = {}
"""),
        code(SETUP),
        code("""
from acelib.trainer import resolve
from acelib.trainer.config import parse_list, parse_mapping
from acelib.trainer.experiments import run_ablations
cfg = resolve(model, params_file, {**parse_mapping(overrides, "overrides"),
                                   **dict(steps=steps, competitions=parse_list(competitions, "competitions") or None,
                                          tracking_uri=tracking_uri)})
parent_id, df = run_ablations(cfg, modes=parse_list(modes, "modes"), seeds=parse_list(seeds, "seeds"))
print("MLflow parent run:", parent_id)
"""),
        code("""
import seaborn as sns, matplotlib.pyplot as plt
metrics = [m for m in ["reward/mean", "rate/valid_submission", "groups/zero_variance_share"] if m in df]
long = df.melt(id_vars=["step", "sampling", "seed"], value_vars=metrics, var_name="metric", value_name="value")
g = sns.relplot(data=long, x="step", y="value", hue="sampling", col="metric", kind="line", facet_kws={"sharey": False})
plt.show()
"""),
    ],
    "analysis.ipynb": [
        md("# Analysis: compare runs from MLflow"),
        params("""
tracking_uri = "sqlite:///outputs/mlflow.db"
experiment = "acelib"
metrics = ["reward/mean", "rate/valid_submission", "groups/zero_variance_share"]
max_runs = 20
"""),
        code(SETUP),
        code("""
from acelib import tracking
runs = tracking.search_runs(tracking_uri, experiment)
train_runs = runs[runs.get("tags.acelib.sampling", "").notna()] if len(runs) else runs
display(train_runs[[c for c in ["run_id", "tags.mlflow.runName", "tags.acelib.sampling", "status"] if c in train_runs]].head(max_runs))
"""),
        code("""
import pandas as pd, seaborn as sns, matplotlib.pyplot as plt
hist = pd.concat([tracking.metric_history(tracking_uri, rid, metrics).assign(
            run=name, sampling=s) for rid, name, s in zip(train_runs["run_id"], train_runs["tags.mlflow.runName"],
            train_runs["tags.acelib.sampling"])][:max_runs] or [pd.DataFrame(columns=["run","sampling","key","step","value"])],
        ignore_index=True)
if len(hist):
    sns.relplot(data=hist, x="step", y="value", hue="sampling", style="run", col="key", kind="line",
                facet_kws={"sharey": False}); plt.show()
else:
    print("no training runs with these metrics yet in", tracking_uri)
"""),
    ],
}


def build() -> dict[str, str]:
    out = {}
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"},
                                                  "language_info": {"name": "python"}})
        for i, c in enumerate(nb.cells):  # stable ids → byte-identical regeneration
            c["id"] = f"{Path(name).stem}-{i}"
        out[name] = nbformat.writes(nb) + "\n"
    return out


if __name__ == "__main__":
    check = "--check" in sys.argv
    stale = []
    for name, text in build().items():
        p = ROOT / "notebooks" / name
        if check:
            if not p.exists() or p.read_text() != text:
                stale.append(name)
        else:
            p.write_text(text)
    if stale:
        sys.exit(f"notebooks out of date: {stale}; run python tools/make_notebooks.py")
