"""The endpoint backend: any OpenAI-compatible chat-completions API as an `Engine` (evaluation only).

A served policy (`acelib.serve`), a vLLM server elsewhere, OpenAI, or any provider with the same API runs through
the same agent scaffold and prompts as the local engines (`EnginePolicy`, `acelib.eval`): the endpoint applies
its model's chat template to the same messages. Retries (connection errors, 408/409/429, 5xx; exponential backoff
with jitter, honouring Retry-After) and timeouts are the `openai` client's own; `concurrency` bounds requests in
flight. The API key is read from the environment variable the config names, at construction, and is never stored
in the config, logged, or sent anywhere but the endpoint.

Token ids and log-probs are filled only when the endpoint returns them (vLLM with `token_ids=True`, log-probs
with `logprobs=True`), else left empty: nothing can train on these samples, and `sync_weights` refuses.
Importable without torch or the `openai` package (imported by `EndpointEngine`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from acelib.config import ConfigError, option
from acelib.rollout.base import Messages, Sample, SamplingParams, validate_request


@dataclasses.dataclass
class EndpointConfig:
    """An OpenAI-compatible endpoint (the `openai` backend of `make_engine`)."""

    base_url: str = option("", "API root, e.g. http://127.0.0.1:8000/v1 (acelib.serve) or https://api.openai.com/v1")
    model: str = option("", "model name the endpoint serves (the request's `model` field)")
    api_key_env: str = option("", "name of the environment variable holding the API key ('' = the endpoint needs "
                                  "none); the key itself never enters a config, a log or MLflow")
    timeout_s: float = option(600.0, "seconds one request may take (a long response on a slow server included)")
    max_retries: int = option(5, "retries of a failed request (connection errors, 408/409/429, 5xx) with "
                                 "exponential backoff and jitter (the openai client's)")
    concurrency: int = option(8, "most requests in flight at once")
    n_per_request: bool = option(True, "ask for n samples in one request (`n`); False = n requests of one sample "
                                       "(for endpoints without `n`). Greedy requests are always sent one by one")
    logprobs: bool = option(False, "ask for the sampled tokens' log-probs (vLLM and OpenAI chat models return "
                                   "them; many reasoning endpoints refuse the field)")
    token_ids: bool = option(False, "vLLM endpoints: ask for prompt and completion token ids (`return_token_ids`)")
    max_tokens_field: str = option("max_tokens", "request field for the response budget: 'max_tokens', or "
                                                 "'max_completion_tokens' (OpenAI reasoning models)",
                                   choices=("max_tokens", "max_completion_tokens"))
    usd_per_1m_prompt_tokens: float | None = option(None, "price of a million prompt tokens (None = unknown: cost "
                                                          "is NaN)")
    usd_per_1m_completion_tokens: float | None = option(None, "price of a million completion tokens (reasoning "
                                                              "tokens included, as providers bill them)")
    extra_body: dict = option(default_factory=dict, help="extra request fields sent verbatim, e.g. {'top_k': 20} "
                              "(vLLM) or {'reasoning_effort': 'low'}")

    def validate(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint.base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got "
                              f"{self.base_url!r}")
        if not self.model:
            raise ConfigError("endpoint.model is empty: set the model name the endpoint serves (GET <base_url>/models "
                              "lists them)")
        if self.api_key_env and self.api_key_env.startswith(("sk-", "Bearer ")):
            raise ConfigError("endpoint.api_key_env names an environment variable, not the key itself: export the "
                              "key (e.g. OPENAI_API_KEY=...) and set api_key_env='OPENAI_API_KEY'")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.concurrency < 1:
            raise ConfigError("endpoint: timeout_s must be > 0, max_retries >= 0 and concurrency >= 1")

    def __post_init__(self) -> None:
        self.validate()


@dataclasses.dataclass
class Usage:
    """Tokens and money an engine spent, as the endpoint reported them (counts of requests without usage are
    missing, so `reported` < `requests` means the totals are lower bounds)."""

    requests: int = 0
    reported: int = 0              # requests whose response carried `usage`
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0          # NaN when a price is unknown

    def add(self, other: "Usage") -> "Usage":
        return Usage(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def minus(self, other: "Usage") -> "Usage":
        return Usage(*(a - b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


class EndpointEngine:
    """`acelib.rollout.base.Engine` over an OpenAI-compatible chat-completions endpoint (see module docstring)."""

    backend = "openai"
    trainable = False

    def __init__(self, cfg: EndpointConfig, seed: int = 0):
        import openai

        cfg.validate()
        self.cfg = cfg
        self.seed = seed
        self.policy_version = 0
        if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
            raise ConfigError(f"endpoint.api_key_env={cfg.api_key_env!r} but that environment variable is not set: "
                              f"export {cfg.api_key_env}=<your key> before starting")
        # A local server without --api-key accepts any key; the client insists on one, so send a placeholder.
        key = os.environ[cfg.api_key_env] if cfg.api_key_env else "EMPTY"
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=key, timeout=cfg.timeout_s,
                                    max_retries=cfg.max_retries)
        self.pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="endpoint")
        self._lock = threading.Lock()
        self.usage = Usage()

    def __repr__(self) -> str:  # never the client (it holds the key)
        return f"EndpointEngine(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    def _request(self, messages: Messages, sampling: SamplingParams, n: int) -> list[Sample]:
        cfg = self.cfg
        greedy = sampling.temperature == 0
        body = dict(cfg.extra_body)
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k  # not an OpenAI field; vLLM and several providers accept it
        if cfg.token_ids:
            body["return_token_ids"] = True
        kwargs = {"model": cfg.model, "messages": messages, "n": n, "temperature": sampling.temperature,
                  cfg.max_tokens_field: sampling.max_new_tokens, "extra_body": body or None}
        if not greedy and sampling.top_p < 1.0:
            kwargs["top_p"] = sampling.top_p
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if cfg.logprobs:
            kwargs["logprobs"] = True
        resp = self.client.chat.completions.create(**kwargs)
        self._count(resp.usage)
        prompt_ids = list(getattr(resp, "prompt_token_ids", None) or [])
        samples = []
        for choice in sorted(resp.choices, key=lambda c: c.index):
            lp = choice.logprobs.content if choice.logprobs is not None and choice.logprobs.content else []
            samples.append(Sample(prompt_ids=prompt_ids, token_ids=list(getattr(choice, "token_ids", None) or []),
                                  logprobs=[t.logprob for t in lp], text=choice.message.content or "",
                                  policy_version=self.policy_version,
                                  finish_reason="length" if choice.finish_reason == "length" else "stop"))
        if len(samples) != n:
            raise RuntimeError(f"{cfg.base_url} returned {len(samples)} choices for n={n}; set "
                               "endpoint.n_per_request=False if it does not support `n`")
        return samples

    def _count(self, usage) -> None:
        cfg = self.cfg
        got = Usage(requests=1)
        if usage is not None:
            p, c = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
            prices = (cfg.usd_per_1m_prompt_tokens, cfg.usd_per_1m_completion_tokens)
            cost = math.nan if None in prices else (p * prices[0] + c * prices[1]) / 1e6
            got = Usage(requests=1, reported=1, prompt_tokens=p, completion_tokens=c, cost_usd=cost)
        with self._lock:
            self.usage = self.usage.add(got)

    def generate(self, prompts: list[Messages], sampling: SamplingParams, n: int = 1) -> list[list[Sample]]:
        """n samples per prompt; result[i][j] is sample j of prompt i (see base.Engine). Requests run concurrently
        (at most `concurrency`); an error that survives the retries raises here."""
        validate_request(prompts, sampling, n)
        split = sampling.temperature == 0 or not self.cfg.n_per_request
        jobs = [(i, self.pool.submit(self._request, m, sampling, 1 if split else n))
                for i, m in enumerate(prompts) for _ in range(n if split else 1)]
        out: list[list[Sample]] = [[] for _ in prompts]
        for i, fut in jobs:
            out[i].extend(fut.result())
        return out

    def sync_weights(self, weights_dir: str, version: int) -> None:
        raise RuntimeError("the openai endpoint backend is for evaluation only: it cannot load new weights, and "
                           "training needs token ids and behaviour log-probs from a local engine (backend hf or "
                           "vllm)")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
