"""The endpoint backend against a fake OpenAI-compatible server (stdlib http.server): retries, timeouts, the
concurrency limit, n samples, token ids / log-probs when returned, usage and cost, and the API key kept out of
configs, logs and reprs. The real thing (vLLM serving the tiny model) is tests/integration/test_serving.py."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acelib.config import ConfigError, from_dict, to_dict
from acelib.rollout.base import SamplingParams
from acelib.rollout.openai_engine import EndpointConfig, EndpointEngine, Usage

PROMPT = [{"role": "user", "content": "hi"}]


class Fake:
    """Behaviour and observations of the fake server."""

    def __init__(self):
        self.fail_first = 0        # answer 503 to this many requests first
        self.delay_s = 0.0
        self.with_ids = False
        self.requests: list[dict] = []
        self.auth: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()


@pytest.fixture()
def fake():
    state = Fake()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append(body)
                state.auth.append(self.headers.get("Authorization", ""))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                fail = state.fail_first > 0
                state.fail_first -= fail
            try:
                time.sleep(state.delay_s)
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "overloaded"}}')
                    return
                n = body.get("n", 1)
                choices = []
                for i in range(n):
                    c = {"index": i, "finish_reason": "length" if i == 1 else "stop",
                         "message": {"role": "assistant", "content": f"answer {i} to {body['messages'][-1]['content']}"},
                         "logprobs": {"content": [{"token": "a", "logprob": -0.5, "bytes": None, "top_logprobs": []},
                                                  {"token": "b", "logprob": -1.5, "bytes": None, "top_logprobs": []}]}
                         if body.get("logprobs") else None}
                    if state.with_ids:
                        c["token_ids"] = [7, 8]
                    choices.append(c)
                resp = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": 2 * n,
                                                      "total_tokens": 10 + 2 * n}}
                if state.with_ids:
                    resp["prompt_token_ids"] = [1, 2, 3]
                data = json.dumps(resp).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                with state.lock:
                    state.in_flight -= 1

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_n_samples_usage_cost_ids_and_logprobs(fake):
    fake.with_ids = True
    cfg = EndpointConfig(base_url=fake.url, model="m", logprobs=True, token_ids=True,
                         usd_per_1m_prompt_tokens=1.0, usd_per_1m_completion_tokens=4.0)
    engine = EndpointEngine(cfg)
    out = engine.generate([PROMPT, [{"role": "user", "content": "yo"}]], SamplingParams(temperature=0.7), n=2)
    assert [[s.text for s in g] for g in out] == [["answer 0 to hi", "answer 1 to hi"],
                                                  ["answer 0 to yo", "answer 1 to yo"]]
    s = out[0][1]
    assert (s.prompt_ids, s.token_ids, s.logprobs, s.finish_reason) == ([1, 2, 3], [7, 8], [-0.5, -1.5], "length")
    assert len(fake.requests) == 2 and all(r["n"] == 2 and r["return_token_ids"] for r in fake.requests)
    assert engine.usage == Usage(requests=2, reported=2, prompt_tokens=20, completion_tokens=8,
                                 cost_usd=pytest.approx((20 * 1.0 + 8 * 4.0) / 1e6))
    engine.close()


def test_greedy_sends_one_request_per_sample_and_no_ids_means_empty(fake):
    engine = EndpointEngine(EndpointConfig(base_url=fake.url, model="m"))
    out = engine.generate([PROMPT], SamplingParams(temperature=0.0, max_new_tokens=5), n=3)
    assert len(out[0]) == 3 and all(s.token_ids == [] and s.logprobs == [] and s.prompt_ids == [] for s in out[0])
    assert len(fake.requests) == 3 and all(r["n"] == 1 and r["max_tokens"] == 5 for r in fake.requests)
    assert "logprobs" not in fake.requests[0] and "top_p" not in fake.requests[0]
    assert engine.usage.cost_usd != engine.usage.cost_usd  # NaN: no price configured
    with pytest.raises(RuntimeError, match="evaluation only"):
        engine.sync_weights("/tmp", 1)
    engine.close()


def test_retries_with_backoff_then_succeeds(fake):
    fake.fail_first = 2
    engine = EndpointEngine(EndpointConfig(base_url=fake.url, model="m", max_retries=3))
    out = engine.generate([PROMPT], SamplingParams(temperature=1.0), n=1)
    assert out[0][0].text == "answer 0 to hi" and len(fake.requests) == 3 and engine.usage.requests == 1
    engine.close()
    fake.fail_first = 5
    engine = EndpointEngine(EndpointConfig(base_url=fake.url, model="m", max_retries=1))
    import openai
    with pytest.raises(openai.InternalServerError):
        engine.generate([PROMPT], SamplingParams(), n=1)
    engine.close()


def test_timeout_and_concurrency_limit(fake):
    fake.delay_s = 0.3
    engine = EndpointEngine(EndpointConfig(base_url=fake.url, model="m", concurrency=3))
    out = engine.generate([PROMPT] * 9, SamplingParams(), n=1)
    assert len(out) == 9 and fake.max_in_flight == 3
    engine.close()
    fake.delay_s = 2.0
    engine = EndpointEngine(EndpointConfig(base_url=fake.url, model="m", timeout_s=0.5, max_retries=0))
    import openai
    with pytest.raises(openai.APITimeoutError):
        engine.generate([PROMPT], SamplingParams(), n=1)
    engine.close()


def test_api_key_from_the_environment_only(fake, monkeypatch, caplog):
    secret = "sk-test-0123456789"
    monkeypatch.setenv("ACELIB_TEST_KEY", secret)
    cfg = from_dict(EndpointConfig, {"base_url": fake.url, "model": "m", "api_key_env": "ACELIB_TEST_KEY"})
    with caplog.at_level("DEBUG"):
        engine = EndpointEngine(cfg)
        engine.generate([PROMPT], SamplingParams(), n=1)
    assert fake.auth == [f"Bearer {secret}"]
    assert secret not in repr(engine) and secret not in json.dumps(to_dict(cfg)) and secret not in caplog.text
    engine.close()
    monkeypatch.delenv("ACELIB_TEST_KEY")
    with pytest.raises(ConfigError, match="export ACELIB_TEST_KEY"):
        EndpointEngine(cfg)
    with pytest.raises(ConfigError, match="environment variable, not the key"):
        EndpointConfig(base_url=fake.url, model="m", api_key_env=secret)
    for bad in ({"base_url": "127.0.0.1:8000", "model": "m"}, {"base_url": fake.url, "model": ""},
                {"base_url": fake.url, "model": "m", "concurrency": 0}):
        with pytest.raises(ConfigError):
            from_dict(EndpointConfig, bad)


def test_make_engine_registers_the_backend_and_training_refuses_it(fake):
    from acelib.rollout import choose_backend, make_engine
    from acelib.rollout.config import RolloutConfig
    from acelib.trainer.config import TrainConfig

    assert choose_backend("openai") == "openai" and choose_backend("auto") in ("vllm", "hf")
    engine = make_engine(RolloutConfig(), "", backend="openai", endpoint=EndpointConfig(base_url=fake.url, model="m"))
    assert engine.backend == "openai" and engine.trainable is False
    engine.close()
    with pytest.raises(ValueError, match="needs endpoint"):
        make_engine(RolloutConfig(), "", backend="openai")
    with pytest.raises(ConfigError, match="backend"):
        from_dict(TrainConfig, {"backend": "openai"})
