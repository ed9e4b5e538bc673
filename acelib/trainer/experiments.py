"""What the eval / ablations / analysis notebooks call: each a few lines over train(), acelib.eval and MLflow.

    cmp = evaluate_policies([{"label": "base", "model": "smollm2-135m"},
                             {"label": "trained", "model": "last_run"},                    # outputs/last_run.json
                             {"label": "gpt", "endpoint": {"base_url": "https://api.openai.com/v1",
                                                           "model": "gpt-5-mini", "api_key_env": "OPENAI_API_KEY"}}],
                            seeds=(0, 1, 2), protocols=("scratch", "seeded"),
                            tracking_uri="sqlite:///outputs/mlflow.db")
    cmp.table(); cmp.plot()         # side by side: valid rate, steps to first valid, above median, any medal, tokens

Every policy runs the same scaffold, prompts, competitions, seeds and search (acelib.eval); one MLflow parent run
holds a nested run per policy. Engine output (vLLM's engine process, C-level prints, vLLM / transformers loggers
and warnings) goes to a log file, never to the notebook (`engine_logs`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from acelib.config import ConfigError, option
from acelib.rollout.openai_engine import EndpointConfig, Usage
from acelib.trainer.config import TrainConfig

PROTOCOLS = ("scratch", "seeded")
# table columns: summary metric -> column name (mean ± SEM over seeds)
TABLE_METRICS = {"valid_rate": "valid rate", "steps_to_first_valid": "steps to first valid",
                 "above_median": "above median", "any_medal": "any medal"}


def run_ablations(cfg: TrainConfig, modes=("lp", "uniform", "no_buffer"), seeds=(0,), progress: bool = True):
    """Train one run per (mode, seed) as nested MLflow runs under one parent; returns (parent_run_id, DataFrame).

    The parent's description names its children's modes, and, once they finished, each mode's headline (valid rate
    on debug + improve tasks in the first and last third of the steps; with a probe, the fixed probe tasks before RL
    and after the last step) and each mode's seeds pooled into one stratified test (`summary.pooled_summary`).
    The DataFrame has one row per step and run, plus one row per probe (column `probe/valid_rate`, step = learner
    steps done when probed)."""
    import mlflow
    import pandas as pd

    from acelib import tracking
    from acelib.trainer.loop import train
    from acelib.trainer.summary import pooled_summary

    fields = {"model": cfg.model, "modes": ", ".join(modes), "seeds": ", ".join(map(str, seeds)), "steps": cfg.steps,
              "mode": cfg.mode}
    parent = tracking.start_run(cfg.tracking_uri, cfg.experiment, run_name=f"ablation-{cfg.model}",
                                tags={"acelib.kind": "ablation-parent", "acelib.modes": ",".join(modes)})
    parent_id = parent.info.run_id
    tracking.log_params({"modes": list(modes), "seeds": list(seeds), "model": cfg.model, "steps": cfg.steps})
    tracking.set_description(tracking.describe("Ablation of task sampling (nested runs: one per mode and seed)",
                                               fields))
    mlflow.end_run()
    frames, headline, run_dirs = [], {}, {m: [] for m in modes}
    for seed in seeds:
        for mode in modes:
            child = dataclasses.replace(cfg, sampling=mode, seed=seed, parent_run_id=parent_id,
                                        run_name=f"{cfg.model}-{mode}-s{seed}", resume="")
            res = train(child, progress=progress)
            frames.append(run_frame(res.run_dir, mode, seed, res.mlflow_run_id))
            run_dirs[mode].append(res.run_dir)
            for third in ("first", "last"):
                v = res.summary.get(f"valid_rate_{third}_third")
                headline[f"{mode} s{seed}: valid rate, {third} third"] = math.nan if v is None else v
            for when in ("before", "after"):
                v = res.summary.get(f"probe_valid_rate_{when}")
                if v is not None:
                    headline[f"{mode} s{seed}: probe valid rate, {when} RL"] = v
    # each mode's seeds in one stratified test (strata kept per run: summary.pooled_summary)
    for mode, dirs in run_dirs.items():
        pooled = pooled_summary(dirs)
        for test in ("rollouts", "probe"):
            v = pooled[f"{test}_p_value"]
            headline[f"{mode}, {len(dirs)} seed(s) pooled: {test} p (CMH), excess valid"] = (
                "n/a" if v is None else f"{v:.3g}, {pooled[f'{test}_excess_valid']:+.1f}")
    tracking.set_description(tracking.describe("Ablation of task sampling (nested runs: one per mode and seed)",
                                               fields, headline), run_id=parent_id, tracking_uri=cfg.tracking_uri)
    return parent_id, pd.concat(frames, ignore_index=True)


def run_frame(run_dir: str | Path, sampling: str, seed: int, run_id: str = ""):
    """One run's rows for an ablation table: a row per learner step (metrics.jsonl) and a row per probe
    (`probe/valid_rate`, step = learner steps done when probed), tagged with its sampling mode, seed and run id."""
    import pandas as pd

    from acelib.trainer.run_dir import RunDir
    run = RunDir(run_dir)
    probes = pd.DataFrame([{"step": p["step"], "probe/valid_rate": p["valid_rate"]} for p in run.probes()],
                          columns=["step", "probe/valid_rate"])
    df = pd.concat([pd.DataFrame(run.metrics()), probes], ignore_index=True)
    df["sampling"], df["seed"], df["run_id"], df["run_dir"] = sampling, seed, run_id, str(run.path)
    return df


def ablation_plot(df, path: str | Path, metrics=("probe/valid_rate", "rate/valid_submission",
                                                 "groups/zero_variance_share")) -> Path:
    """Each metric over learner steps, a line per sampling mode (mean over seeds), saved to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import seaborn as sns

    metrics = [m for m in metrics if m in df]
    long = df.melt(id_vars=["step", "sampling", "seed"], value_vars=metrics, var_name="metric",
                   value_name="value").dropna(subset=["value"])
    g = sns.relplot(data=long, x="step", y="value", hue="sampling", col="metric", kind="line", marker="o",
                    height=3.2, facet_kws={"sharey": False})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g.figure.savefig(path, dpi=110)
    return path


# ------------------------------------------------------------------------------------------ evaluation
@dataclasses.dataclass
class PolicySpec:
    """One policy of an evaluation: a local model on a rollout engine, or an OpenAI-compatible endpoint."""

    label: str = option("", "its name in tables, plots and MLflow (unique)")
    model: str = option("", "a local model: registry name, HF directory, models:/<name>/<version>, "
                            "runs:/<run id>/<path>, or 'last_run' (the final model of outputs/last_run.json)")
    backend: str = option("auto", "engine of a local model (auto = vLLM when installed, else transformers)",
                          choices=("auto", "hf", "vllm"))
    endpoint: EndpointConfig | None = option(None, "an OpenAI-compatible endpoint instead of a local model "
                                                   "(base_url, model, api_key_env, prices, ...)")

    def validate(self) -> None:
        if not self.label:
            raise ConfigError("policy.label is empty: name the policy (it labels tables, plots and MLflow runs)")
        if bool(self.model) == (self.endpoint is not None):
            raise ConfigError(f"policy {self.label!r}: give exactly one of `model` (a local model) and `endpoint`")

    def __post_init__(self) -> None:
        self.validate()


def training_scaffold(preset: str) -> dict:
    """The agent scaffold of a training preset (prompt budgets, response format, reward) as EvalConfig `agent`
    overrides: a policy is evaluated with the prompts it was trained on (the CPU preset's are ~3x shorter than
    AgentConfig's defaults), and every policy of a comparison gets the same ones."""
    from acelib.config import to_dict
    from acelib.trainer.config import resolve
    return to_dict(resolve(preset).agent)


def last_run_model(last_run_json: str = "outputs/last_run.json") -> str:
    """The final model of the last training run: its registered version (models:/...) when the run registered one,
    else `<run_dir>/final_model`."""
    path = Path(last_run_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: train first (make train), or name the trained model "
                                "explicitly (a final_model directory or a models:/<name>/<version> URI)")
    info = json.loads(path.read_text())
    if info.get("registered_model"):
        return info["registered_model"]
    final = Path(info["run_dir"]) / "final_model"
    if not (final / "config.json").is_file():
        raise FileNotFoundError(f"{final} (from {path}) holds no model: the run did not finish; name the trained "
                                "model explicitly")
    return str(final)


@contextlib.contextmanager
def engine_logs(log_file: str | Path):
    """Send engine output to `log_file` while the block runs: file descriptors 1 and 2 (C-level prints and every
    process started inside, e.g. vLLM's engine core), the `vllm`, `transformers` and `torch` loggers, Python
    warnings and transformers' progress bars. The caller's own prints and tqdm bars still show: `sys.stdout` and
    `sys.stderr` keep writing where they did (a notebook's streams are not descriptors 1 and 2; a terminal's are
    re-pointed at the original descriptors)."""
    path = Path(log_file).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # vLLM configures its loggers from this file when first imported (here or in its engine process)
    cfg_fd, cfg_name = tempfile.mkstemp(prefix="acelib-vllm-logging-", suffix=".json")
    os.close(cfg_fd)
    cfg_path = Path(cfg_name)
    cfg_path.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(asctime)s %(name)s: %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}}}))
    env_before = os.environ.get("VLLM_LOGGING_CONFIG_PATH")
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(cfg_path)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(asctime)s %(name)s: %(message)s"))
    names = ("vllm", "transformers", "torch", "py.warnings")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    for n in names:
        logging.getLogger(n).handlers = [handler]
        logging.getLogger(n).propagate = False
    logging.captureWarnings(True)
    import transformers.utils.logging as hf_logging
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    sys.stdout.flush()
    sys.stderr.flush()
    fds = {fd: os.dup(fd) for fd in (1, 2)}
    with open(path, "ab") as f:
        for fd in fds:
            os.dup2(f.fileno(), fd)
    # In a terminal sys.stdout/sys.stderr ARE descriptors 1 and 2: point them at the originals, so that the
    # caller's prints and progress bars stay on screen while the engines' output goes to the file.
    swapped = {}
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper) and stream.fileno() == fd:
            swapped[name] = stream
            setattr(sys, name, open(os.dup(fds[fd]), "w", buffering=1, encoding=stream.encoding,
                                    errors=stream.errors))
    try:
        yield path
    finally:
        for name, stream in swapped.items():
            getattr(sys, name).close()
            setattr(sys, name, stream)
        for fd, copy in fds.items():
            os.dup2(copy, fd)
            os.close(copy)
        if bars:
            hf_logging.enable_progress_bar()
        logging.captureWarnings(False)
        for n, (handlers, propagate) in saved.items():
            logging.getLogger(n).handlers, logging.getLogger(n).propagate = handlers, propagate
        handler.close()
        cfg_path.unlink()
        if env_before is None:
            os.environ.pop("VLLM_LOGGING_CONFIG_PATH")
        else:
            os.environ["VLLM_LOGGING_CONFIG_PATH"] = env_before


class MeteredPolicy:
    """A policy that counts what it spends: the endpoint's usage reports, else the samples' token ids (local
    engines: prompt tokens once per prompt, completion tokens per sample; no price, so the cost is NaN)."""

    def __init__(self, policy, engine):
        self.policy = policy
        self.engine = engine
        self.usage = Usage()

    def __call__(self, prompts, n: int = 1, contexts=None):
        before = getattr(self.engine, "usage", None)
        out = self.policy(prompts, n=n, contexts=contexts)
        if before is not None:
            self.usage = self.usage.add(self.engine.usage.minus(before))
        else:
            p = sum(len(group[0].sample.prompt_ids) for group in out)
            c = sum(len(r.sample.token_ids) for group in out for r in group)
            self.usage = self.usage.add(Usage(requests=len(prompts), reported=len(prompts), prompt_tokens=p,
                                              completion_tokens=c, cost_usd=math.nan))
        return out


@dataclasses.dataclass
class PolicyComparison:
    """Reports of every policy × protocol, the tokens each spent, and where MLflow holds them."""

    reports: dict            # (label, protocol) -> EvalReport
    usage: dict              # (label, protocol) -> Usage
    models: dict             # label -> what was evaluated (model directory / URI, or endpoint base_url + model)
    parent_run_id: str = ""
    child_run_ids: dict = dataclasses.field(default_factory=dict)   # label -> MLflow run id
    log_file: str = ""

    def table(self):
        """One row per policy × protocol: mean ± SEM over seeds of the headline metrics, tokens and cost."""
        import pandas as pd

        rows = []
        for (label, protocol), report in self.reports.items():
            s, u = report.summary(), self.usage[(label, protocol)]
            row = {"policy": label, "protocol": protocol}
            for key, name in TABLE_METRICS.items():
                row[name] = s[f"{key}_mean"]
                row[f"{name} (sem)"] = s[f"{key}_sem"]
            row.update({"episodes": int(s["episodes"]), "prompt tokens": u.prompt_tokens,
                        "completion tokens": u.completion_tokens, "cost (usd)": u.cost_usd})
            rows.append(row)
        return pd.DataFrame(rows).set_index(["policy", "protocol"])

    def plot(self, path: str | Path | None = None):
        """Bars (mean over seeds, SEM error bars) per metric, policies side by side, one panel row per protocol."""
        import matplotlib.pyplot as plt

        table = self.table()
        protocols = list(dict.fromkeys(p for _, p in table.index))
        labels = list(dict.fromkeys(label for label, _ in table.index))
        fig, axes = plt.subplots(len(protocols), len(TABLE_METRICS), squeeze=False,
                                 figsize=(3.2 * len(TABLE_METRICS), 2.8 * len(protocols)))
        for i, protocol in enumerate(protocols):
            for j, name in enumerate(TABLE_METRICS.values()):
                ax = axes[i][j]
                means = [table.loc[(label, protocol), name] for label in labels]
                sems = [table.loc[(label, protocol), f"{name} (sem)"] for label in labels]
                ax.bar(labels, [0 if math.isnan(m) else m for m in means],
                       yerr=[0 if math.isnan(e) else e for e in sems], color=[f"C{k}" for k in range(len(labels))],
                       capsize=3)
                ax.set_title(f"{name} ({protocol})", fontsize=9)
                if name != "steps to first valid":
                    ax.set_ylim(0, 1)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


def _start_states(comp_ids: list[str], seeds, config, pool) -> dict:
    """The seeded protocol's start states: held-out (split 'eval') broken compact baselines, one per seed and
    competition, run in the sandbox once (cached by acelib.agent.seeds)."""
    from acelib.agent.seeds import seed_states

    states = seed_states(comp_ids, split="eval", per_competition=len(seeds), improve=False, config=config.agent,
                         limits=config.sandbox_limits(), sandbox=pool)
    out: dict = {}
    for s in states:
        out.setdefault(s.competition_id, []).append(s)
    return out


def evaluate_policies(policies, suite: str = "lite-mini", competitions: list[str] | None = None,
                      eval_overrides: dict | None = None, seeds=(0, 1, 2), protocols=PROTOCOLS,
                      temperature: float = 0.7, max_new_tokens: int = 384, tracking_uri: str = "",
                      experiment: str = "acelib", run_name: str = "", log_file: str = "",
                      seed_states: dict | None = None) -> PolicyComparison:
    """Evaluate several policies on the same competitions, seeds and protocols, side by side.

    policies: `PolicySpec`s or dicts of their fields (label, model | endpoint, backend).
    protocols: "scratch" (the paper's: draft, debug, improve) and/or "seeded" (each episode starts from a held-out
      mutated compact baseline of its competition: `seed_states`, default `acelib.agent.seeds.seed_states(ids,
      split="eval", per_competition=len(seeds), improve=False)`).
    tracking_uri: '' = no MLflow; else one parent run (`run_name`) with a nested run per policy: its summary per
      protocol (`<protocol>/<metric>`), token counts and cost, the full reports as artifacts; the parent holds the
      comparison table and plot.
    log_file: where engine output goes ('' = outputs/logs/eval-<time>.log).
    """
    from acelib import tracking
    from acelib.agent import EnginePolicy
    from acelib.config import from_dict, to_dict
    from acelib.eval import EvalConfig, evaluate
    from acelib.rollout import RolloutConfig, make_engine
    from acelib.rollout.base import SamplingParams
    from acelib.sandbox import SandboxPool
    from acelib.tasks import load
    from acelib.tasks.suites import SUITES

    specs = [p if isinstance(p, PolicySpec) else from_dict(PolicySpec, p, prefix=f"policies[{i}].")
             for i, p in enumerate(policies)]
    labels = [s.label for s in specs]
    if not specs or len(set(labels)) != len(labels):
        raise ConfigError(f"evaluate_policies needs policies with distinct labels, got {labels}")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if not protocols or unknown:
        raise ConfigError(f"protocols must be a non-empty subset of {list(PROTOCOLS)}, got {list(protocols)}")
    seeds = tuple(int(s) for s in seeds)
    config = from_dict(EvalConfig, eval_overrides or {})
    # suite ids, MLE-bench Lite ids (data from `mlebench prepare`) or competition directories
    comps = [load(c) for c in (competitions or SUITES[suite])]
    log_path = Path(log_file or f"outputs/logs/eval-{time.strftime('%Y%m%d-%H%M%S')}.log").resolve()
    sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens)
    models = {s.label: (f"{s.endpoint.base_url} {s.endpoint.model}" if s.endpoint else
                        (last_run_model() if s.model == "last_run" else s.model)) for s in specs}
    print(f"engine logs: {log_path}")

    parent_id = ""
    if tracking_uri:
        fields = {"suite": suite, "competitions": len(comps), "seeds": ", ".join(map(str, seeds)),
                  "protocols": ", ".join(protocols), "steps": config.steps, "temperature": temperature,
                  "policies": ", ".join(labels)}
        with tracking.start_run(tracking_uri, experiment, run_name=run_name or f"eval-{suite}",
                                tags={"acelib.kind": "eval-parent", "acelib.policies": ",".join(labels)}) as run:
            parent_id = run.info.run_id
            tracking.log_params({**fields, "models": models, "eval": to_dict(config)})
            tracking.set_description(tracking.describe("Policy comparison (nested runs: one per policy)", fields))

    reports, usage, child_ids = {}, {}, {}
    with SandboxPool(workers=config.workers, limits=config.sandbox_limits()) as pool:
        starts = None
        if "seeded" in protocols:
            starts = seed_states or _start_states([c.id for c in comps], seeds, config, pool)
        for spec in specs:
            with engine_logs(log_path):
                engine = make_engine(RolloutConfig(), models[spec.label] if spec.endpoint is None else "",
                                     backend="openai" if spec.endpoint else spec.backend, seed=seeds[0],
                                     endpoint=spec.endpoint)
                try:
                    policy = MeteredPolicy(EnginePolicy(engine, sampling), engine)
                    for protocol in protocols:
                        before = policy.usage
                        reports[(spec.label, protocol)] = evaluate(
                            policy, comps, config, seeds=seeds, sandbox=pool,
                            start_states=starts if protocol == "seeded" else None, desc=f"{spec.label}/{protocol}")
                        usage[(spec.label, protocol)] = policy.usage.minus(before)
                        r = reports[(spec.label, protocol)]
                        # a plain line per block of work: papermill's terminal shows no tqdm widget updates
                        print(f"{spec.label}/{protocol}: {sum(bool(e.report['valid_submission']) for e in r.episodes)} of "
                              f"{len(r.episodes)} episodes ended with a valid submission ({r.wall_s:.0f} s)",
                              flush=True)
                finally:
                    engine.close()
            if tracking_uri:
                child_ids[spec.label] = _log_policy_run(spec, models[spec.label], reports, usage, protocols, seeds,
                                                        sampling, suite, tracking_uri, experiment, parent_id)
    result = PolicyComparison(reports, usage, models, parent_id, child_ids, str(log_path))
    if tracking_uri:
        _log_comparison(result, tracking_uri, experiment)
    return result


def _log_policy_run(spec: PolicySpec, model: str, reports: dict, usage: dict, protocols, seeds, sampling, suite: str,
                    tracking_uri: str, experiment: str, parent_id: str) -> str:
    """The nested run of one policy: params (never an API key), `<protocol>/<metric>` summaries, tokens, cost and
    the full reports."""
    import mlflow

    from acelib import tracking

    params = {"label": spec.label, "model": model, "backend": "openai" if spec.endpoint else spec.backend,
              "suite": suite, "seeds": list(seeds), "protocols": list(protocols),
              "temperature": sampling.temperature, "max_new_tokens": sampling.max_new_tokens}
    if spec.endpoint is not None:  # the key's variable name at most, never its value
        e = spec.endpoint
        params.update({"endpoint.base_url": e.base_url, "endpoint.model": e.model,
                       "endpoint.api_key_env": e.api_key_env or "none",
                       "endpoint.usd_per_1m_prompt_tokens": e.usd_per_1m_prompt_tokens,
                       "endpoint.usd_per_1m_completion_tokens": e.usd_per_1m_completion_tokens})
    with tracking.start_run(tracking_uri, experiment, run_name=f"eval-{spec.label}", parent_run_id=parent_id,
                            tags={"acelib.kind": "eval", "acelib.policy": spec.label}) as run:
        tracking.log_params(params)
        headline = {}
        # MLflow copies an artifact into its store: the local file is only needed until log_artifact returns
        with tempfile.TemporaryDirectory(prefix="acelib-eval-") as tmp:
            for protocol in protocols:
                report, u = reports[(spec.label, protocol)], usage[(spec.label, protocol)]
                s = report.summary()
                tracking.log_metrics({f"{protocol}/{k}": v for k, v in s.items()}, step=0)
                tracking.log_metrics({f"{protocol}/tokens/prompt": u.prompt_tokens,
                                      f"{protocol}/tokens/completion": u.completion_tokens,
                                      f"{protocol}/requests": u.requests, f"{protocol}/cost_usd": u.cost_usd}, step=0)
                out = Path(tmp) / f"eval-{spec.label}-{protocol}.json"
                out.write_text(report.to_json())
                mlflow.log_artifact(str(out), artifact_path="eval")
                headline[f"{protocol}: valid rate"] = s["valid_rate_mean"]
                headline[f"{protocol}: any medal"] = s["any_medal_mean"]
        tracking.set_description(tracking.describe(f"Evaluation of {spec.label}", {"model": model, "suite": suite},
                                                   headline))
        return run.info.run_id


def _log_comparison(result: PolicyComparison, tracking_uri: str, experiment: str) -> None:
    """The parent run: the comparison table (csv), the plot, and a description with the valid rates."""
    import matplotlib.pyplot as plt
    import mlflow

    from acelib import tracking

    table = result.table()
    headline = {f"{label} / {protocol}: valid rate": row["valid rate"]
                for (label, protocol), row in table.iterrows()}
    with tracking.start_run(tracking_uri, experiment, run_id=result.parent_run_id), \
            tempfile.TemporaryDirectory(prefix="acelib-eval-") as tmp_name:
        tmp = Path(tmp_name)
        table.to_csv(tmp / "comparison.csv")
        plt.close(result.plot(tmp / "comparison.png"))
        for name in ("comparison.csv", "comparison.png"):
            mlflow.log_artifact(str(tmp / name), artifact_path="comparison")
        old = mlflow.get_run(result.parent_run_id).data.tags.get(tracking.DESCRIPTION_TAG, "")
        tracking.set_description(old + "\n\n" + tracking.describe("Results (mean over seeds)", {}, headline))


def evaluate_model(model: str, suite: str = "lite-mini", competitions: list[str] | None = None,
                   eval_overrides: dict | None = None, seeds=(0,), backend: str = "auto", max_new_tokens: int = 384,
                   temperature: float = 0.7, label: str = "", tracking_uri: str = "", experiment: str = "acelib"):
    """One local model (registry name, directory, models:/ or runs:/ URI) from scratch on a suite: its EvalReport
    (`evaluate_policies` with a single policy and the scratch protocol)."""
    label = label or Path(model).name
    cmp = evaluate_policies([PolicySpec(label=label, model=model, backend=backend)], suite, competitions,
                            eval_overrides, seeds, ("scratch",), temperature, max_new_tokens, tracking_uri,
                            experiment)
    return cmp.reports[(label, "scratch")]
