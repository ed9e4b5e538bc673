"""Sandbox overhead and throughput; prints one JSON object.

- `bare_python_s`: median wall time of `subprocess.run([python, "-c", "pass"])` (the reference).
- `warm_s` / `ratio_warm`: median latency of `acelib.sandbox.run("pass")` when the pre-started sandbox is ready,
  as in training, where the next program arrives after an LLM generation (we wait 0.3 s between calls).
- `back_to_back_s` / `ratio_back_to_back`: the same with no pause, so each call may wait for its sandbox to start.
- `cold_s` / `ratio_cold`: a sandbox started for the call itself (no warm stock): bwrap + interpreter start.
- `pool_exec_per_s`: trivial executions per second through SandboxPool.map at 1, 2 and 4 workers.
All measured in the same process, same machine, same moment.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from acelib import sandbox
from acelib.sandbox import Limits, SandboxPool
from acelib.sandbox import isolation
from acelib.sandbox.pool import _Sandbox

N = 30


def _median_s(fn, n=N, pause=0.0) -> float:
    times = []
    for _ in range(n):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        comp = SimpleNamespace(public_dir=Path(tmp) / "public")
        comp.public_dir.mkdir()
        (comp.public_dir / "train.csv").write_text("id,x\n1,2\n")
        limits = Limits(timeout_s=30)

        def sandboxed():
            r = sandbox.run("pass", comp, limits)
            assert r.status == "ok", r.output_for_agent()

        def cold():
            r = _Sandbox(isolation.launch_spec(limits, comp)).execute("pass", limits)
            assert r.status == "ok", r.output_for_agent()

        bare = lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)  # noqa: E731
        sandboxed()  # first call: capability probe and first start
        out = {"machine_cpus": os.cpu_count(), "isolation": sandbox.capabilities()["mode"]}
        # Interleave the measurements so background load hits them alike.
        out["bare_python_s"] = _median_s(bare)
        out["warm_s"] = _median_s(sandboxed, pause=0.3)
        out["back_to_back_s"] = _median_s(sandboxed)
        out["cold_s"] = _median_s(cold)
        out["bare_python_s_again"] = _median_s(bare)
        ref = (out["bare_python_s"] + out["bare_python_s_again"]) / 2
        for k in ("warm", "back_to_back", "cold"):
            out[f"ratio_{k}"] = round(out[f"{k}_s"] / ref, 3)
        for k in list(out):
            if k.endswith("_s") or k.endswith("_again"):
                out[k] = round(out[k], 4)
        out["pool_exec_per_s"] = {}
        for workers in (1, 2, 4):
            with SandboxPool(workers=workers, limits=limits) as pool:
                pool.map(["pass"] * workers, comp)  # warm up
                t0 = time.perf_counter()
                rs = pool.map(["pass"] * 60, comp)
                dt = time.perf_counter() - t0
            assert all(r.status == "ok" for r in rs)
            out["pool_exec_per_s"][str(workers)] = round(60 / dt, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
