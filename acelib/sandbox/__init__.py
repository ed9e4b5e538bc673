"""Run agent-written Python isolated, limited and fast (see docs/sandbox.md).

    from acelib.sandbox import run, SandboxPool, Limits
    result = run(code, competition)                 # ExecResult: status, stdout, stderr, submission, files...
    with SandboxPool(workers=4) as pool:
        results = pool.map(codes, competition)

Across machines, the executor tier (`acelib.sandbox.executor`, needs Ray) runs the same programs on executor nodes:
    client = executor_pool(n_executors=2, workers_per_executor=4, resources={"executor": 1})
    fut = client.submit(code, competition)          # like SandboxPool.submit

The program runs with cwd = a fresh workspace, the competition's public data read-only at ./input, writes
./submission/submission.csv, may use ./working/ (the AGENT PROGRAM CONTRACT in AGENTS.md).
"""
from acelib.sandbox.isolation import SandboxUnavailable, capabilities
from acelib.sandbox.limits import Limits
from acelib.sandbox.pool import SandboxPool, run
from acelib.sandbox.result import STATUSES, ExecResult

__all__ = ["ExecResult", "ExecutorClient", "Limits", "STATUSES", "SandboxPool", "SandboxUnavailable", "capabilities",
           "executor_lost", "executor_pool", "run", "start_executors"]


def executor_lost(exc: BaseException) -> bool:
    """True when `exc` (raised by a submitted run's Future) means the executor running the program died, e.g. its
    node went away: the program never finished, so its task should run again rather than count as a failure."""
    import sys
    ray = sys.modules.get("ray")   # no Ray loaded: no executor tier, so nothing of this kind can be raised
    return ray is not None and isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError))


_EXECUTOR_EXPORTS = ("ExecutorClient", "executor_pool", "start_executors")


def __getattr__(name: str):
    # Lazy: the executor tier imports Ray, which a plain sandbox run (tests, eval, the stub's host) does not need.
    if name in _EXECUTOR_EXPORTS:
        from acelib.sandbox import executor
        return getattr(executor, name)
    raise AttributeError(f"module 'acelib.sandbox' has no attribute {name!r}")
