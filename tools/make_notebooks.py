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
sampling**, rollout workers and learner running on Ray. On the CPU default (`model = "cpu"`, SmolLM2-135M) a run is:

1. an optional **warm start** (a few minutes, cached): supervised imitation of expert repairs of *some* bug kinds;
2. **seed tasks**: each training competition's compact baseline (improve) and mutations of it (debug), run once in
   the sandbox and cached;
3. **RL**: one line per learner step below; engine, DeepSpeed and Ray logs go to `<run directory>/logs/`.

Metrics, parameters and artifacts go to MLflow (`make mlflow-ui`). Headless: `make train`, or
`papermill notebooks/train.ipynb outputs/train.ipynb -p model ace30b` on a cluster.
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
last_run_file = "outputs/last_run.json"  # the run's outcome (run dir, MLflow run) for make train and eval.ipynb
"""),
        code(SETUP),
        code("""
import json
import pandas as pd
from acelib.trainer import resolve, train
from acelib.trainer.config import parse_list, parse_mapping
from acelib.trainer.plan import resource_plan
# papermill passes what a user types with -p as strings: mappings and lists may come as JSON/YAML text
cfg = resolve(model, params_file, {**parse_mapping(overrides, "overrides"),
                                   **dict(steps=steps, seed=seed, sampling=sampling, mode=mode,
                                          competitions=parse_list(competitions, "competitions") or None,
                                          resume=resume, dry_run=dry_run, tracking_uri=tracking_uri)})
plan = resource_plan(cfg)
print(f"{cfg.model}: {cfg.steps} steps of {cfg.tasks_per_step} group(s) x {cfg.group_size}, {cfg.mode}, "
      f"sampling {cfg.sampling}, warm start {'on' if cfg.warm_start.enabled else 'off'}")
display(pd.DataFrame(plan["actors"]).set_index("actor"))
"""),
        code("""
result = train(cfg)
"""),
        md("## Learning curves"),
        code("""
if not cfg.dry_run:
    df = result.dataframe()
    cols = [c for c in ["step", "reward/mean", "rate/valid_submission", "rate/valid/debug", "rate/valid/improve",
                        "rate/format_error", "groups/zero_variance_share", "learner/logprob_diff_max",
                        "time/step_s"] if c in df]
    display(df[cols].round(3))
    for png in sorted((result.run_dir / "plots").glob("*.png")):
        display(Image(filename=str(png)))
"""),
        md("""
## Did the policy get better?

Two measurements, each with a two-sided two-proportion z-test:

- **the probe** (`probe.*` in the preset): the same fixed debug tasks, never trained on, answered before RL, every
  `probe.every` steps and after the last step: the learning curve proper;
- **the training rollouts**: valid submissions on debug and improve tasks, first third of the steps against the last
  third (a valid copy of an improve task's parent script does not count). The curriculum keeps moving these tasks to
  where the policy half-succeeds, so they need not rise when the policy gets better.
"""),
        code("""
from acelib.trainer.summary import before_after, probe_before_after, report
last_run_path = ROOT / last_run_file
if not cfg.dry_run:
    print(report(result.summary))
    last_run_path.parent.mkdir(parents=True, exist_ok=True)
    last_run_path.write_text(json.dumps({"run_dir": str(result.run_dir),
        "mlflow_run_id": result.mlflow_run_id, "tracking_uri": cfg.tracking_uri,
        "registered_model": result.summary.get("registered_model")}))
else:
    last_run_path.unlink(missing_ok=True)  # a dry run produces no MLflow run
    print("dry run OK:", result["ok"])
"""),
        md("""
## Before and after, on the same task

The first response to a fixed probe task before RL and after the last step (without a probe: the policy's earliest
and latest attempt at a buffer task).
"""),
        code("""
if not cfg.dry_run:
    pairs = probe_before_after(result.run_dir, pairs=2)
    for pair in pairs:
        print(f"=== probe task: {pair['competition_id']}, bug kind {pair['bug_kind']}")
        for when in ("before", "after"):
            print(f"--- after {pair[when + '_step']} steps: {pair[when + '_outcome']}")
            print(pair[when + "_response"])
    for pair in ([] if pairs else before_after(result.run_dir, pairs=2)):
        print(f"=== {pair['competition_id']} ({pair['task_kind']} task)")
        for when in ("before", "after"):
            print(f"--- {when}: policy version {pair[when + '_policy_version']}, "
                  f"{'valid' if pair[when + '_valid'] else 'not valid'}: {pair[when + '_verdict']}")
            print(pair[when + "_code"])
"""),
    ],
    "eval.ipynb": [
        md("""
# Held-out evaluation: base vs trained (and any endpoint), MLE-bench rules

Each policy plays the same AIDE-like episodes (same scaffold, prompts, competitions, seeds and search) on the
**lite-mini** suite, which training never sees, in two protocols:

- **scratch** (the paper's): the episode starts empty; draft, then debug the failed / improve the best;
- **seeded**: the episode starts from a *held-out* broken compact baseline of its competition (mutations of the
  `eval` split, disjoint from the ones training uses); the agent debugs it first.

The final submission of an episode is its node with the best *validation* score; the MLE-bench grader scores it.
Reported: valid rate, steps to first valid, above median and any medal, mean ± SEM over seeds. One MLflow parent run
holds a nested run per policy (`make mlflow-ui`). Engine output (vLLM, transformers) goes to a log file whose path
the next cells print; a policy served elsewhere is an `endpoint` (any OpenAI-compatible API, `make serve`):

```
-p endpoints '[{"label": "gpt-5-mini", "endpoint": {"base_url": "https://api.openai.com/v1", "model": "gpt-5-mini",
               "api_key_env": "OPENAI_API_KEY", "usd_per_1m_prompt_tokens": 0.25, "usd_per_1m_completion_tokens": 2}}]'
```
"""),
        params("""
model = "smollm2-135m"   # the base model: a registry name, a directory or a models:/<name>/<version> URI
trained = "last_run"     # the trained policy: last_run (from outputs/last_run.json), a directory or a models URI
endpoints = []           # more policies served elsewhere (OpenAI-compatible API), see the example below
policies = None          # the full list instead of the three above (label, model or endpoint, backend)
suite = "lite-mini"      # held out: never trained on
competitions = None      # subset of ids (None: the whole suite)
protocols = ["scratch", "seeded"]
steps = 4                # agent steps per episode
seeds = [0, 1, 2]        # one episode per competition and seed
backend = "auto"         # engine of local models: auto (vLLM if installed), hf, vllm
temperature = 0.7
max_new_tokens = 512      # as the CPU preset trains
scaffold = "cpu"          # every policy gets this training preset's prompts (budgets, format); empty: defaults
tracking_uri = "sqlite:///outputs/mlflow.db"
experiment = "acelib"
"""),
        code(SETUP),
        code("""
from acelib.trainer.config import parse_list
from acelib.trainer.experiments import evaluate_policies, last_run_model, training_scaffold
pols = parse_list(policies, "policies")
if not pols:
    pols = [{"label": "base", "model": model, "backend": backend}]
    if trained == "last_run" and not (ROOT / "outputs" / "last_run.json").is_file():
        print("no outputs/last_run.json (no training run yet): evaluating the base model only")
    elif trained:
        pols.append({"label": "trained", "model": last_run_model() if trained == "last_run" else trained,
                     "backend": backend})
    pols += parse_list(endpoints, "endpoints")
for p in pols:
    print(f"{p['label']:>12}: {p.get('model') or p['endpoint']['base_url'] + ' ' + p['endpoint']['model']}")
"""),
        code("""
eval_overrides = {"steps": steps, **({"agent": training_scaffold(scaffold)} if scaffold else {})}
cmp = evaluate_policies(pols, suite, parse_list(competitions, "competitions") or None, eval_overrides,
                        parse_list(seeds, "seeds"), parse_list(protocols, "protocols"), temperature, max_new_tokens,
                        tracking_uri=tracking_uri, experiment=experiment)
print("MLflow parent run:", cmp.parent_run_id or "(not tracked)")
"""),
        md("## Held-out results (mean ± SEM over seeds)"),
        code("""
import math
import pandas as pd
t = cmp.table()
shown = pd.DataFrame(index=t.index)
for name in ["valid rate", "steps to first valid", "above median", "any medal"]:
    shown[name] = [f"{m:.2f} ± {s:.2f}" if not math.isnan(s) else ("n/a" if math.isnan(m) else f"{m:.2f}")
                   for m, s in zip(t[name], t[f"{name} (sem)"])]
shown[["episodes", "prompt tokens", "completion tokens", "cost (usd)"]] = t[["episodes", "prompt tokens",
                                                                             "completion tokens", "cost (usd)"]]
display(shown)
(ROOT / "outputs").mkdir(exist_ok=True)
import matplotlib.pyplot as plt
plt.close(cmp.plot(ROOT / "outputs" / "eval_comparison.png"))
display(Image(filename=str(ROOT / "outputs" / "eval_comparison.png")))
"""),
        md("## Episodes"),
        code("""
cols = ["competition_id", "seed", "valid_submission", "steps_to_first_valid", "above_median", "any_medal", "score",
        "format_errors", "failed_nodes", "valid_nodes"]
display(pd.concat([r.dataframe()[cols].assign(policy=label, protocol=protocol)
                   for (label, protocol), r in cmp.reports.items()]).set_index(["policy", "protocol"]))
"""),
        md("## The same task, each policy's first response"),
        code("""
for protocol in parse_list(protocols, "protocols"):
    for (label, proto), r in cmp.reports.items():
        if proto == protocol:
            ep = r.episodes[0]
            node = ep.nodes[ep.start_node + 1 if ep.start_node is not None else 0]
            print(f"=== {label} / {protocol} / {ep.key}: {node.step_type} -> {node.outcome}: "
                  f"{node.validity_message[:100]}")
            print((node.plan + "\\n" + node.code)[:600])
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
        md("""
The probe (fixed tasks, never trained on, same for every mode) is the comparison that counts: the rollouts' own valid
rate depends on which tasks each sampler chose.
"""),
        code("""
from acelib.trainer.experiments import ablation_plot
display(Image(filename=str(ablation_plot(df, ROOT / "outputs" / "ablations.png"))))
"""),
        md("""
Each mode's seeds in one test (Cochran-Mantel-Haenszel, every stratum kept per run: the rollouts' first vs last third
within task and root bug kind, the probe before vs after RL within bug kind; docs/trainer.md, "Several seeds, one
test"):
"""),
        code("""
from acelib.trainer.summary import pooled_report, pooled_summary
for mode, runs in df.groupby("sampling", sort=False)["run_dir"]:
    print(f"--- {mode}")
    print(pooled_report(pooled_summary(list(runs.unique()))))
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
