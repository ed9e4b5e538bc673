"""Run agent-written Python isolated, limited and fast (see docs/sandbox.md).

    from acelib.sandbox import run, SandboxPool, Limits
    result = run(code, competition)                 # ExecResult: status, stdout, stderr, submission, files...
    with SandboxPool(workers=4) as pool:
        results = pool.map(codes, competition)

The program runs with cwd = a fresh workspace, the competition's public data read-only at ./input, writes
./submission/submission.csv, may use ./working/ (the AGENT PROGRAM CONTRACT in AGENTS.md).
"""
from acelib.sandbox.isolation import SandboxUnavailable, capabilities
from acelib.sandbox.limits import Limits
from acelib.sandbox.pool import SandboxPool, run
from acelib.sandbox.result import STATUSES, ExecResult

__all__ = ["ExecResult", "Limits", "STATUSES", "SandboxPool", "SandboxUnavailable", "capabilities", "run"]
