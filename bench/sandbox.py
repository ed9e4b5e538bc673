"""Sandbox overhead and throughput; prints one JSON object.

- `bare_python_s`: median wall time of `subprocess.run([python, "-c", "pass"])` (the reference).
- `warm_s` / `ratio_warm`: median latency of `acelib.sandbox.run("pass")` when the pre-started sandbox is ready,
  as in training, where the next program arrives after an LLM generation (we wait 0.3 s between calls).
- `back_to_back_s` / `ratio_back_to_back`: the same with no pause, so each call may wait for its sandbox to start.
- `cold_s` / `ratio_cold`: a sandbox started for the call itself (no warm stock): bwrap + interpreter start.
- `pool_exec_per_s`: trivial executions per second through SandboxPool.map at 1, 2 and 4 workers.
- `executor` (skip with --no-executor): the executor path (acelib.sandbox.executor: an actor on a local Ray, reached
  through ExecutorClient.submit) against the local SandboxPool, same program, warm (0.3 s between calls):
  `warm_local_s` / `warm_executor_s` for `pass`; `one_second_local_s` / `one_second_executor_s` for a 1-second
  program (sleep 1 s, write a submission), interleaved; `one_second_overhead_ratio` = executor / local (the
  issue's goal: <= 1.2) and `hop_s`, the difference; `exec_per_s`: back-to-back `pass` at 2 workers, to compare
  with `pool_exec_per_s["2"]`.
All measured in the same process, same machine, same moment.
"""
from __future__ import annotations

import argparse
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
N_ONE_SECOND = 8
ONE_SECOND = """
import time
time.sleep(1)
with open("submission/submission.csv", "w") as f:
    f.write("id,y\\n1,0\\n")
"""


def _median_s(fn, n=N, pause=0.0) -> float:
    times = []
    for _ in range(n):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _executor_rows(comp, limits: Limits) -> dict:
    """The executor path vs the local pool, same programs, interleaved so background load hits both alike."""
    import ray

    from acelib.sandbox.executor import executor_pool

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    out = {}
    try:
        with SandboxPool(workers=1, limits=limits) as pool, executor_pool(1, 1, None, limits) as client:
            client.ready()
            paths = {"local": pool, "executor": client}

            def once(path, code):
                r = paths[path].submit(code, comp).result()
                assert r.status == "ok", r.output_for_agent()

            for path in paths:  # first call: staging and the first sandbox start
                once(path, "pass")
            warm = {p: [] for p in paths}
            one = {p: [] for p in paths}
            for _ in range(N):
                for path in paths:
                    time.sleep(0.3)
                    warm[path].append(_median_s(lambda: once(path, "pass"), n=1))
            for _ in range(N_ONE_SECOND):
                for path in paths:
                    time.sleep(0.3)
                    one[path].append(_median_s(lambda: once(path, ONE_SECOND), n=1))
            for path in paths:
                out[f"warm_{path}_s"] = round(statistics.median(warm[path]), 4)
                out[f"one_second_{path}_s"] = round(statistics.median(one[path]), 4)
            out["warm_ratio"] = round(out["warm_executor_s"] / out["warm_local_s"], 3)
            out["one_second_overhead_ratio"] = round(out["one_second_executor_s"] / out["one_second_local_s"], 3)
            out["hop_s"] = round(out["one_second_executor_s"] - out["one_second_local_s"], 4)
        with executor_pool(1, 2, None, limits) as client:
            client.ready()
            [f.result() for f in [client.submit("pass", comp) for _ in range(2)]]  # warm up
            t0 = time.perf_counter()
            rs = [f.result() for f in [client.submit("pass", comp) for _ in range(60)]]
            dt = time.perf_counter() - t0
        assert all(r.status == "ok" for r in rs)
        out["exec_per_s"] = round(60 / dt, 1)
    finally:
        ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-executor", action="store_true", help="skip the executor-path rows (they start a local Ray)")
    args = ap.parse_args()
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
        if not args.no_executor:
            out["executor"] = _executor_rows(comp, limits)
        out["load_average_1m"] = round(os.getloadavg()[0], 2)   # other jobs on the machine make timings noisy
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
