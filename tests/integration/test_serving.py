"""Serving (acelib.serve) and evaluating through an endpoint: one `vllm serve` of the tiny model for the module.

- the server answers a chat completion and a batch of 8 concurrent requests, and stops without stray processes;
- the same agent episodes (greedy decoding, fixed seeds) through the endpoint backend and through the local
  transformers engine are identical: same responses, scripts, outcomes and grader reports (the endpoint applies
  the model's chat template to the same messages: the prompt token ids match too).

Budget: one server start (~70 s on 2 busy cores) and two small evaluations."""
import concurrent.futures
import os
import time

import psutil
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from acelib.models import materialize
    from acelib.serve import serve

    log = tmp_path_factory.mktemp("serve") / "server.log"
    server = serve(str(materialize("tiny")), port=0, log_file=str(log))
    print(f"server ready in {server.info.startup_s:.1f} s")
    yield server
    group = server.info.pid
    server.stop()
    # nothing of the server (API process, engine core) survives it
    stray = [p for p in psutil.process_iter(["pid", "cmdline"])
             if p.info["pid"] != os.getpid() and _pgid(p.info["pid"]) == group]
    assert not stray, stray
    assert server.proc.poll() is not None


def _pgid(pid: int):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_chat_completion_and_eight_concurrent_requests(served):
    import openai

    info = served.info
    assert info.url.startswith("http://127.0.0.1:") and info.model == "tiny"
    client = openai.OpenAI(base_url=info.url, api_key="EMPTY")
    t0 = time.perf_counter()
    one = client.chat.completions.create(model=info.model, messages=[{"role": "user", "content": "Hello"}],
                                         max_tokens=16, temperature=0)
    single_s = time.perf_counter() - t0
    assert one.choices[0].message.content and one.usage.completion_tokens > 0

    def ask(i):
        return client.chat.completions.create(model=info.model, max_tokens=16,
                                              messages=[{"role": "user", "content": f"Question {i}"}])
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        batch = list(pool.map(ask, range(8)))
    batch_s = time.perf_counter() - t0
    assert len(batch) == 8 and all(r.choices[0].message.content for r in batch)
    print(f"one request {single_s:.2f} s, 8 concurrent {batch_s:.2f} s")


@pytest.fixture(scope="module")
def comps():
    from acelib import sandbox
    if sandbox.capabilities()["mode"] != "bwrap":
        pytest.skip(f"no bwrap isolation here: {sandbox.capabilities()['reason']}")
    from acelib.tasks.suites import SUITES, prepare_competition
    return [prepare_competition(c) for c in SUITES["lite-mini"][:2]]


def test_endpoint_engine_matches_the_local_engine_token_for_token(served):
    from acelib.models import materialize
    from acelib.rollout import RolloutConfig, SamplingParams, make_engine

    prompts = [[{"role": "system", "content": "You write Python."},
                {"role": "user", "content": f"Task {i}: read ./input/train.csv and write a submission." * 3}]
               for i in range(4)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=64)
    local = make_engine(RolloutConfig(), str(materialize("tiny")), backend="hf")
    remote = make_engine(RolloutConfig(), "", backend="openai", endpoint=served.endpoint())
    try:
        a, b = local.generate(prompts, greedy), remote.generate(prompts, greedy)
    finally:
        remote.close()
    for x, y in zip(a, b):
        x, y = x[0], y[0]
        assert (x.prompt_ids, x.token_ids, x.text, x.finish_reason) == (y.prompt_ids, y.token_ids, y.text,
                                                                         y.finish_reason)
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs)) < 1e-3
    assert remote.usage.requests == 4 and remote.usage.completion_tokens == sum(len(g[0].token_ids) for g in b)


def test_episodes_through_the_endpoint_match_the_local_engine(served, comps, tmp_path, monkeypatch):
    import mlflow

    from acelib.models import materialize
    from acelib.trainer.experiments import evaluate_policies

    secret = "sk-never-logged-42"
    monkeypatch.setenv("ACELIB_TEST_KEY", secret)  # vLLM without --api-key accepts any key
    endpoint = {"base_url": served.info.url, "model": served.info.model, "api_key_env": "ACELIB_TEST_KEY",
                "usd_per_1m_prompt_tokens": 0.5, "usd_per_1m_completion_tokens": 2.0}
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cmp = evaluate_policies([{"label": "local", "model": str(materialize("tiny")), "backend": "hf"},
                             {"label": "served", "endpoint": endpoint}],
                            competitions=[c.id for c in comps],
                            # prompts + responses within the tiny model's 2048 positions: vLLM caps a response at
                            # the context length, transformers does not
                            eval_overrides={"steps": 2, "workers": 2,
                                            "agent": {"prompt": {"description_tokens": 150, "preview_tokens": 150}}},
                            seeds=(0, 1), temperature=0.0, max_new_tokens=48, tracking_uri=uri,
                            log_file=str(tmp_path / "eval.log"))
    for protocol in ("scratch", "seeded"):
        local, remote = cmp.reports[("local", protocol)], cmp.reports[("served", protocol)]
        drop = ["duration_s"]
        assert local.nodes_dataframe().drop(columns=drop).equals(remote.nodes_dataframe().drop(columns=drop))
        for e, f in zip(local.episodes, remote.episodes):
            assert (e.key, e.final_node, e.steps_to_first_valid) == (f.key, f.final_node, f.steps_to_first_valid)
            assert {k: v for k, v in e.report.items() if k != "created_at"} == \
                   {k: v for k, v in f.report.items() if k != "created_at"}
        assert cmp.usage[("local", protocol)].prompt_tokens == cmp.usage[("served", protocol)].prompt_tokens
    seeded = cmp.reports[("served", "seeded")].episodes[0]
    assert seeded.start_node == 0 and seeded.nodes[0].step_type == "seed" and seeded.nodes[1].parent == 0

    table = cmp.table()
    u = cmp.usage[("served", "scratch")]
    assert table.loc[("served", "scratch"), "cost (usd)"] == pytest.approx(
        (u.prompt_tokens * 0.5 + u.completion_tokens * 2.0) / 1e6)
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.get_run(cmp.parent_run_id)
    assert parent.data.tags["acelib.kind"] == "eval-parent" and "local" in parent.data.tags["mlflow.note.content"]
    assert {a.path for a in client.list_artifacts(cmp.parent_run_id, "comparison")} == {
        "comparison/comparison.csv", "comparison/comparison.png"}
    child = client.get_run(cmp.child_run_ids["served"])
    assert child.data.tags["mlflow.parentRunId"] == cmp.parent_run_id
    assert child.data.metrics["scratch/tokens/prompt"] == u.prompt_tokens
    assert child.data.metrics["seeded/valid_rate_mean"] == cmp.reports[("served", "seeded")].summary()["valid_rate_mean"]
    assert child.data.params["endpoint.api_key_env"] == "ACELIB_TEST_KEY"
    everything = str(child.data.params) + str(child.data.tags) + str(parent.data.params) + str(parent.data.tags)
    assert secret not in everything and secret not in (tmp_path / "eval.log").read_text()
