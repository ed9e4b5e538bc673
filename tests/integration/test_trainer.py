"""The kit end to end with the tiny model: real Ray, real sandbox, real DeepSpeed learner, real MLflow."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _two_competitions():
    from acelib.tasks.suites import SUITES
    return list(SUITES["train"][:2])


def _papermill(nb, out, params: dict, cwd=ROOT, timeout=900):
    import papermill as pm
    return pm.execute_notebook(str(ROOT / "notebooks" / nb), str(out), parameters=params, cwd=str(cwd),
                               kernel_name="python3", progress_bar=False, execution_timeout=timeout)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{d}/mlflow.db", d


def test_train_notebook_tiny_end_to_end_logs_to_mlflow(tracking, tmp_path):
    uri, _ = tracking
    out = tmp_path / "train.ipynb"
    _papermill("train.ipynb", out, {"model": "tiny", "competitions": _two_competitions(), "tracking_uri": uri,
                                    "overrides": {"output_dir": str(tmp_path / "runs")},
                                    "last_run_file": str(tmp_path / "last_run.json")})   # not the user's outputs/
    last = json.loads((tmp_path / "last_run.json").read_text())
    run_dir = Path(last["run_dir"])
    assert run_dir.parent == tmp_path / "runs"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert (run_dir / "final_model" / "config.json").exists()
    assert (run_dir / "buffer_snapshot.parquet").exists()
    probes = [json.loads(line) for line in (run_dir / "probe.jsonl").read_text().splitlines()]
    assert [p["step"] for p in probes] == [0, 2, 3]           # before RL, every 2 steps, after the last
    assert all(p["samples"] + sum(o == "infra_error" for t in p["outcomes"] for o in t) == 2 * 2 for p in probes)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["probe_curve"] == [[p["step"], p["valid_rate"]] for p in probes]
    # every group of a step is on record, with its task (the stratified headline's input), and so are the seeds
    for r in rows:
        assert len(r["groups"]) == 2 and sum(g["samples"] for g in r["groups"]) == sum(
            r.get(f"samples/{t}", 0) for t in ("draft", "debug", "improve"))
    seeds = json.loads((run_dir / "seeds.json").read_text())
    assert sorted(v["kind"] for v in seeds.values()).count("baseline") == 2 and len(seeds) == 4
    import sqlite3
    db = sqlite3.connect(f"file:{run_dir / 'buffer.sqlite'}?mode=ro", uri=True)
    assert set(seeds) <= {r[0] for r in db.execute("SELECT id FROM items WHERE is_root = 1")}   # ids of the roots
    db.close()
    assert {"p_value_stratified", "odds_ratio_stratified", "strata"} <= set(summary)

    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(last["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "tiny"
    for key in ("reward/mean", "rate/valid_submission", "rate/format_error", "groups/zero_variance_share",
                "staleness/max", "rollout/tokens_per_s", "sandbox/latency_s", "time/learner_s", "learner/loss"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key
    assert [m.step for m in client.get_metric_history(run.info.run_id, "probe/valid_rate")] == [0, 2, 3]
    assert any(k.startswith("buffer/") for k in run.data.metrics)
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "buffer", "run"} <= arts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {"plots/reward_valid.png"}


def test_dry_run_ace30b_passes_on_cpu_and_real_run_fails_fast(tmp_path):
    from acelib.trainer import resolve, train
    plan = train(resolve("ace30b", None, {"dry_run": True}))
    assert plan["ok"] and plan["plan"]["total_gpus"] > 0 and plan["plan"]["steps"] == 400
    t0 = time.time()
    with pytest.raises(Exception, match="GPU"):
        train(resolve("ace30b", None, {"output_dir": str(tmp_path)}))
    assert time.time() - t0 < 30
    assert not any(tmp_path.iterdir())  # failed before creating anything


RESUME_SCRIPT = """
import sys
from acelib.trainer import resolve, train
cfg = resolve("tiny", None, dict(competitions={comps!r}, steps=4, tracking_uri={uri!r}, output_dir={out!r},
                                 run_name="resume-test", resume=sys.argv[1] if len(sys.argv) > 1 else ""))
res = train(cfg, progress=False)
print("DONE", res.steps_done, res.mlflow_run_id)
"""


ORDER_SCRIPT = """
import sys
from acelib.trainer import resolve, train
from acelib.trainer.actors import RolloutWorker

class Recorder(RolloutWorker):
    # what the engine does, in order, to a file (the worker is a Ray actor in another process)
    def _note(self, what):
        with open({log!r}, "a") as f:
            f.write(what + "\\n")
    def sync_weights(self, weights_dir, policy_version):
        self._note(f"sync {{policy_version}}")
        return super().sync_weights(weights_dir, policy_version)
    def evaluate(self, states, n):
        self._note("probe")
        return super().evaluate(states, n)
    def _generate(self, messages):
        self._note("rollout")
        return super()._generate(messages)

cfg = resolve("tiny", None, dict(competitions={comps!r}, steps=1, tasks_per_step=1, mode="sync", max_staleness=0,
                                 tracking_uri={uri!r}, output_dir={out!r}, run_name=sys.argv[1],
                                 learner=dict(dtype="bf16"), **{extra!r}))
res = train(cfg, progress=False, rollout_worker_cls=Recorder)
print("DONE", res.steps_done)
"""


def _recorded_run(tmp_path, uri, run_name, extra=None, env=None):
    """One sync step of the tiny preset whose engine calls are noted in order (ORDER_SCRIPT): the events."""
    log = tmp_path / f"{run_name}.log"
    script = tmp_path / "run.py"
    script.write_text(ORDER_SCRIPT.format(comps=_two_competitions()[:1], uri=uri, out=str(tmp_path / "runs"),
                                          log=str(log), extra=extra or {}))
    r = subprocess.run([sys.executable, str(script), run_name], cwd=ROOT, capture_output=True, text=True,
                       timeout=900, env={**os.environ, **(env or {})})
    assert r.returncode == 0 and "DONE 1" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    return log.read_text().split("\n")[:-1], r.stdout


def test_engines_sample_the_learners_weights_from_the_first_probe_and_rollout(tracking, tmp_path):
    # The engines load the checkpoint file (fp32), the learner holds it in its own dtype (bf16 here): two different
    # policies. The probe before step 1 and the first rollouts must come from the learner's weights, or the first
    # sync is counted as learning (docs/trainer.md, "Probe").
    uri, _ = tracking
    events, _ = _recorded_run(tmp_path, uri, "order")
    assert events[0] == "sync 0" and {"probe", "rollout"} <= set(events)      # weights first, then any sampling
    assert events.index("sync 1") > events.index("rollout")                     # the step's update came after


def test_a_second_run_from_the_same_warm_start_reuses_its_probe_before_rl(tracking, tmp_path):
    # acelib/trainer/probe_cache.py: the probe before RL of a cached warm start is measured once; the probe after
    # the last step is measured by every run
    uri, _ = tracking
    warm = {"warm_start": {"enabled": True, "kinds": ["file_name"], "examples_per_competition": 1, "epochs": 1,
                           "max_length": 4096}}
    env = {"ACELIB_CACHE_DIR": str(tmp_path / "cache")}
    first, _ = _recorded_run(tmp_path, uri, "first", warm, env)
    second, out = _recorded_run(tmp_path, uri, "second", warm, env)
    assert first.count("probe") == 2 and second.count("probe") == 1           # before and after RL; after only
    assert second.index("probe") > second.index("sync 1")                       # the one measured: after the step
    assert "cached: measured by an earlier run from this warm start" in out
    rows = {name: [json.loads(line) for line in (tmp_path / "runs" / name / "probe.jsonl").read_text().splitlines()]
            for name in ("first", "second")}
    assert [r["cached"] for r in rows["first"]] == [False, False] and [r["cached"] for r in rows["second"]] == [True, False]
    assert rows["second"][0]["outcomes"] == rows["first"][0]["outcomes"]
    assert len(list((tmp_path / "cache" / "probes").iterdir())) == 1   # what else changes the key: test_probe_cache


def test_resume_after_sigkill_is_continuous(tracking, tmp_path, private_ray):
    uri, _ = tracking
    out = tmp_path / "runs"
    script = tmp_path / "run.py"
    script.write_text(RESUME_SCRIPT.format(comps=_two_competitions(), uri=uri, out=str(out)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **private_ray.env}
    p = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_json = out / "resume-test" / "run.json"
    deadline = time.time() + 600
    while time.time() < deadline:
        if run_json.exists() and json.loads(run_json.read_text()).get("step", 0) >= 2:
            break
        assert p.poll() is None, p.stdout.read()
        time.sleep(0.5)
    else:
        pytest.fail("the run did not reach step 2")
    os.killpg(p.pid, signal.SIGKILL)  # the driver
    p.wait()
    private_ray.kill()                # and what it started (raylet, actors, sandboxes), nothing else on this machine
    before = json.loads(run_json.read_text())
    r = subprocess.run([sys.executable, str(script), str(out / "resume-test")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    done = [line for line in r.stdout.splitlines() if line.startswith("DONE")][-1].split()
    assert done[1] == "4" and done[2] == before["mlflow_run_id"]       # same MLflow run continues
    rows = [json.loads(line) for line in (out / "resume-test" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]                  # no step lost or repeated
    probes = [json.loads(line) for line in (out / "resume-test" / "probe.jsonl").read_text().splitlines()]
    assert [p["step"] for p in probes] == [0, 2, 4]                    # nor a probe
    from mlflow.tracking import MlflowClient
    hist = MlflowClient(tracking_uri=uri).get_metric_history(before["mlflow_run_id"], "train/step")
    assert sorted(m.step for m in hist) == [1, 2, 3, 4]
    assert (out / "resume-test" / "buffer.sqlite").exists()


def test_eval_ablations_analysis_notebooks_run_tiny(tracking, tmp_path):
    uri, _ = tracking
    from acelib.tasks.suites import SUITES
    from acelib.models import materialize
    lite = list(SUITES["lite-mini"][:1])
    # base vs "trained" (a directory; the default would be outputs/last_run.json), both protocols, 3 seeds
    _papermill("eval.ipynb", tmp_path / "eval.ipynb", {"model": "tiny", "trained": str(materialize("tiny")),
                                                       "competitions": lite, "steps": 1, "backend": "hf",
                                                       "max_new_tokens": 32, "tracking_uri": uri})
    from acelib import tracking as tr
    runs = tr.search_runs(uri, "acelib")
    evals = runs[runs["tags.acelib.kind"] == "eval-parent"]
    assert len(evals) == 1
    kids = runs[runs["tags.mlflow.parentRunId"] == evals["run_id"].iloc[0]]
    assert sorted(kids["tags.acelib.policy"]) == ["base", "trained"]
    assert {"metrics.scratch/valid_rate_mean", "metrics.seeded/valid_rate_mean", "metrics.seeded/tokens/prompt"} \
        <= set(kids.columns)
    _papermill("ablations.ipynb", tmp_path / "ablations.ipynb",
               {"model": "tiny", "steps": 1, "competitions": _two_competitions(), "tracking_uri": uri,
                "overrides": {"output_dir": str(tmp_path / "runs")}})
    _papermill("analysis.ipynb", tmp_path / "analysis.ipynb", {"tracking_uri": uri})
    from acelib import tracking as tr
    runs = tr.search_runs(uri, "acelib")
    parents = runs[runs["tags.acelib.kind"] == "ablation-parent"]
    assert len(parents) == 1
    children = runs[runs["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    assert sorted(children["tags.acelib.sampling"]) == ["lp", "no_buffer", "uniform"]
    note = parents["tags.mlflow.note.content"].iloc[0]   # the parent's description names its children's modes
    assert "lp, uniform, no_buffer" in note and "uniform s0: valid rate, last third" in note
    assert "no_buffer, 1 seed(s) pooled: probe p (CMH), excess valid" in note
