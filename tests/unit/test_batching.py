"""BatchedGenerator: concurrent requests share one engine call, each gets its own samples, a failing prompt fails
alone. The engine here records its calls and answers with the prompt's text, so every thread can check that it got
its own samples (the real engines are exercised in tests/integration/test_rollout_worker.py)."""
from __future__ import annotations

import threading
import time

import pytest

from acelib.rollout import BatchedGenerator
from acelib.rollout.base import Sample, SamplingParams


class RecordingEngine:
    policy_version = 0

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None):
        self.calls: list[tuple[list[str], int]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on

    def generate(self, prompts, sampling, n=1):
        texts = [p[0]["content"] for p in prompts]
        self.calls.append((texts, n))
        time.sleep(self.delay_s)
        if self.fail_on in texts:
            raise ValueError(f"prompt {self.fail_on!r} is too long")
        return [[Sample([], [], [], f"{t}#{j}", self.policy_version) for j in range(n)] for t in texts]


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def concurrently(gen: BatchedGenerator, prompts: list[str], n: int = 2, stagger_s: float = 0.0) -> dict:
    """Each prompt asked from its own thread; returns prompt -> texts or the exception."""
    out: dict = {}

    def ask(p: str) -> None:
        try:
            out[p] = [s.text for s in gen.generate(chat(p), SamplingParams(), n)]
        except Exception as e:  # noqa: BLE001 - the test inspects it
            out[p] = e

    threads = []
    for p in prompts:
        threads.append(threading.Thread(target=ask, args=(p,)))
        threads[-1].start()
        time.sleep(stagger_s)
    for t in threads:
        t.join(10)
    return out


def test_requests_within_the_window_share_one_engine_call():
    engine = RecordingEngine()
    gen = BatchedGenerator(engine, window_s=1.0, max_requests=3)
    out = concurrently(gen, ["a", "b", "c"], n=2, stagger_s=0.02)
    assert out == {"a": ["a#0", "a#1"], "b": ["b#0", "b#1"], "c": ["c#0", "c#1"]}
    assert len(engine.calls) == 1 and sorted(engine.calls[0][0]) == ["a", "b", "c"] and engine.calls[0][1] == 2
    assert (gen.engine_calls, gen.requests) == (1, 3)


def test_a_full_batch_does_not_wait_for_the_window():
    gen = BatchedGenerator(RecordingEngine(), window_s=30.0, max_requests=2)
    t0 = time.monotonic()
    concurrently(gen, ["a", "b"])
    assert time.monotonic() - t0 < 5.0


def test_requests_queued_while_the_engine_is_busy_form_the_next_call():
    engine = RecordingEngine(delay_s=0.3)
    gen = BatchedGenerator(engine, window_s=0.0, max_requests=3)
    out = concurrently(gen, ["first", "b", "c"], stagger_s=0.05)
    assert all(isinstance(v, list) for v in out.values())
    assert [sorted(texts) for texts, _ in engine.calls] == [["first"], ["b", "c"]]


def test_a_failing_prompt_fails_alone():
    engine = RecordingEngine(fail_on="too long")
    gen = BatchedGenerator(engine, window_s=1.0, max_requests=2)
    out = concurrently(gen, ["ok", "too long"])
    assert out["ok"] == ["ok#0", "ok#1"]
    assert isinstance(out["too long"], ValueError) and "too long" in str(out["too long"])
    # the batched call, then each request alone
    assert len(engine.calls) == 3 and sorted(len(texts) for texts, _ in engine.calls) == [1, 1, 2]


def test_requests_with_different_n_get_their_own_calls():
    engine = RecordingEngine()
    gen = BatchedGenerator(engine, window_s=1.0, max_requests=2)
    out: dict = {}
    threads = [threading.Thread(target=lambda p=p, n=n: out.__setitem__(p, gen.generate(chat(p), SamplingParams(), n)))
               for p, n in (("a", 2), ("b", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(out["a"]) == 2 and len(out["b"]) == 3
    assert sorted(n for _, n in engine.calls) == [2, 3]


def test_exclusive_holds_generation_back():
    engine = RecordingEngine()
    gen = BatchedGenerator(engine, window_s=0.0, max_requests=1)
    with gen.exclusive():
        t = threading.Thread(target=gen.generate, args=(chat("a"), SamplingParams(), 1))
        t.start()
        time.sleep(0.2)
        assert engine.calls == []          # a weight sync in progress: nobody generates
    t.join(10)
    assert len(engine.calls) == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_requests"):
        BatchedGenerator(RecordingEngine(), max_requests=0)


def test_each_request_is_charged_its_share_of_the_engine_call():
    gen = BatchedGenerator(RecordingEngine(delay_s=0.4), window_s=1.0, max_requests=2)
    costs: dict = {}
    threads = [threading.Thread(target=lambda p=p: costs.__setitem__(p, gen.generate_with_cost(
        chat(p), SamplingParams(), 1)[1])) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert costs["a"] == costs["b"] and 0.2 <= costs["a"] < 0.4   # one 0.4 s call, shared by two requests


def test_an_engine_that_returns_too_few_results_fails_each_request_cleanly():
    class Short(RecordingEngine):
        def generate(self, prompts, sampling, n=1):
            return super().generate(prompts, sampling, n)[:-1]    # one result short (0 for a single prompt)

    gen = BatchedGenerator(Short(), window_s=1.0, max_requests=2)
    out = concurrently(gen, ["a", "b"])
    assert all(isinstance(v, RuntimeError) and "0 results for 1 prompts" in str(v) for v in out.values())
