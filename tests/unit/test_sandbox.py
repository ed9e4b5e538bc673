"""acelib.sandbox: config, output truncation, status mapping (pure), and normal executions through real bwrap."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from acelib import sandbox
from acelib.config import ConfigError, from_dict
from acelib.sandbox import ExecResult, Limits, SandboxPool, SandboxUnavailable
from acelib.sandbox import isolation
from acelib.sandbox.result import HeadTail, classify

needs_bwrap = pytest.mark.skipif(sandbox.capabilities()["mode"] != "bwrap",
                                 reason=f"no bwrap isolation here: {sandbox.capabilities()['reason']}")


@pytest.fixture
def comp(fake_competition):
    return fake_competition({"train.csv": "id,x,y\n1,0.5,0\n2,1.5,1\n", "test.csv": "id,x\n3,0.7\n4,1.9\n"},
                            {"test.csv": "id,y\n3,SECRET-ANSWER\n"})


FAST = Limits(timeout_s=20)

# ---------------------------------------------------------------- pure parts


def test_limits_defaults_and_validation():
    lim = Limits()
    assert lim.isolation == "bwrap" and lim.memory_mb == 4096 and lim.timeout_s == 600
    assert lim.effective_cpu_time_s == int(600 * lim.effective_threads) + 1
    with pytest.raises(ConfigError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ConfigError, match="memory_mb"):
        Limits(memory_mb=64)
    with pytest.raises(ConfigError, match="max_processes"):
        Limits(max_processes=1)
    with pytest.raises(ConfigError, match="isolation"):
        Limits(isolation="none")
    with pytest.raises(ConfigError, match="ro_binds"):
        Limits(ro_binds=("relative/path",))
    with pytest.raises(ConfigError, match="output_keep_bytes"):
        Limits(output_keep_bytes=2 * 1024 * 1024, max_output_mb=1)
    with pytest.raises(ConfigError, match="Did you mean 'memory_mb'"):
        from_dict(Limits, {"memory_mbs": 100})
    lim = from_dict(Limits, {"timeout_s": 5, "ro_binds": ["/opt/models"], "env": {"A": "1"}})
    assert lim.timeout_s == 5.0 and lim.ro_binds == ("/opt/models",) and lim.env == {"A": "1"}


def test_head_tail_math():
    ht = HeadTail(10)
    for chunk in (b"abc", b"defghijklmnop", b"qrstuvwxyz"):  # 26 bytes in uneven chunks
        ht.feed(chunk)
    assert ht.total == 26 and bytes(ht.head) == b"abcde" and bytes(ht.tail) == b"vwxyz" and ht.cut == 16
    assert ht.text() == "abcde\n[... 16 bytes cut ...]\nvwxyz"
    small = HeadTail(10)
    small.feed(b"0123456789")
    assert small.cut == 0 and small.text() == "0123456789"
    odd = HeadTail(5)  # head 2, tail 3
    odd.feed(b"x" * 1000)
    assert odd.cut == 995 and len(odd.head) == 2 and len(odd.tail) == 3


@pytest.mark.parametrize("kw,expected", [
    (dict(exit_code=0), "ok"),
    (dict(exit_code=1), "error"),
    (dict(exit_code=1, stderr_tail="Traceback...\nMemoryError\n"), "memory"),
    (dict(exit_code=1, stderr_tail="numpy._core._exceptions._ArrayMemoryError: Unable to allocate"), "memory"),
    (dict(exit_code=-6, stderr_tail="terminate called after throwing an instance of 'std::bad_alloc'"), "memory"),
    (dict(exit_code=-24), "timeout"),  # SIGXCPU: CPU-time limit
    (dict(exit_code=-9), "killed"),
    (dict(exit_code=-11), "killed"),
    (dict(exit_code=None, timed_out=True), "timeout"),
    (dict(exit_code=None, output_flood=True), "killed"),
])
def test_status_mapping(kw, expected):
    status, reason = classify(**kw)
    assert status == expected
    assert (reason == "") == (expected == "ok")


def test_exec_result_output_for_agent():
    r = ExecResult("error", 1, "line\n" * 1000, "Traceback\nValueError: boom\n", 0.1, reason="exit code 1")
    text = r.output_for_agent(500)
    assert len(text) <= 500
    assert text.startswith("line") and text.endswith("[execution error] exit code 1")
    assert "ValueError: boom" in text and "characters cut" in text
    assert ExecResult("ok", 0, "hi\n", "", 0.1).output_for_agent() == "hi"
    with pytest.raises(ValueError, match="status"):
        ExecResult("weird", 0, "", "", 0.0)


def test_refuses_without_namespaces(comp, monkeypatch):
    monkeypatch.setattr(isolation, "capabilities", lambda: {"mode": None, "reason": "no namespaces (test)"})
    with pytest.raises(SandboxUnavailable, match=r"isolation='rlimits'"):
        sandbox.run("print(1)", comp)
    with pytest.raises(SandboxUnavailable, match="no namespaces"):
        SandboxPool(workers=1)


def test_competition_argument_is_checked(fake_competition):
    with pytest.raises(TypeError, match="public_dir"):
        sandbox.run("print(1)", object(), FAST)
    with pytest.raises(FileNotFoundError, match="prepare"):
        sandbox.run("print(1)", fake_competition(None, name="missing"), FAST)


def test_capabilities_report():
    caps = sandbox.capabilities()
    for key in ("mode", "bwrap", "root", "uid_strategy", "user_namespaces", "reason"):
        assert key in caps
    assert (caps["mode"] == "bwrap") == (caps["reason"] == "")

# ---------------------------------------------------------------- real executions


@needs_bwrap
def test_normal_execution_writes_submission(comp):
    code = """
import os, pandas as pd
train = pd.read_csv("input/train.csv"); test = pd.read_csv("input/test.csv")
pd.DataFrame({"id": test.id, "y": (test.x > 1).astype(int)}).to_csv("submission/submission.csv", index=False)
open("working/notes.txt", "w").write("scratch")
print("rows", len(train), "cwd", os.getcwd(), "home", os.environ["HOME"])
print("VALIDATION_SCORE: 0.75")
"""
    r = sandbox.run(code, comp, FAST)
    assert r.status == "ok", r.output_for_agent()
    assert r.exit_code == 0 and r.isolation == "bwrap"
    assert r.submission == b"id,y\n3,0\n4,1\n"
    assert r.files == ["submission/submission.csv", "working/notes.txt"]
    assert "rows 2 cwd /workspace home /workspace" in r.stdout and "VALIDATION_SCORE: 0.75" in r.stdout
    assert r.peak_memory_mb is not None and r.peak_memory_mb > 20  # pandas was imported
    assert 0 < r.duration_s < 20 and r.cut_bytes == 0


@needs_bwrap
def test_errors_exit_codes_and_tracebacks(comp):
    r = sandbox.run("x = 1\nraise ValueError('boom')\n", comp, FAST)
    assert (r.status, r.exit_code) == ("error", 1)
    assert 'File "/workspace/solution.py", line 2' in r.stderr and "ValueError: boom" in r.stderr
    assert "_stub" not in r.stderr and "_run_program" not in r.stderr  # supervisor frames hidden
    r = sandbox.run("import sys\nprint('partial')\nsys.exit(3)\n", comp, FAST)
    assert (r.status, r.exit_code, r.stdout) == ("error", 3, "partial\n")
    r = sandbox.run("def f(:\n", comp, FAST)
    assert r.status == "error" and "SyntaxError" in r.stderr
    r = sandbox.run("import atexit\natexit.register(print, 'bye')\n", comp, FAST)
    assert (r.status, r.stdout) == ("ok", "bye\n")  # atexit handlers of the program still run


@needs_bwrap
def test_output_truncation_end_to_end(comp):
    lim = Limits(timeout_s=20, output_keep_bytes=1000)
    r = sandbox.run("import sys\nsys.stdout.write('a' * 100_000 + 'END')\nsys.stderr.write('e' * 10)\n", comp, lim)
    assert r.status == "ok"
    assert r.cut_bytes == 100_003 - 1000
    assert r.stdout.startswith("a" * 500) and r.stdout.endswith("END")
    assert f"[... {100_003 - 1000} bytes cut ...]" in r.stdout and r.stderr == "e" * 10


@needs_bwrap
def test_submission_cap_and_file_listing(comp):
    lim = Limits(timeout_s=20, submission_max_mb=1, max_files=3)
    code = ("open('submission/submission.csv', 'w').write('x' * 2_000_000)\n"
            "for i in range(5): open(f'working/f{i}', 'w').write('1')\n")
    r = sandbox.run(code, comp, lim)
    assert r.status == "ok" and r.submission is None
    assert "over the 1048576 cap" in r.reason and "3 more files not listed" in r.reason
    assert len(r.files) == 3


@needs_bwrap
def test_program_sees_scrubbed_env_and_its_sandbox_id(comp, monkeypatch):
    monkeypatch.setenv("ACELIB_UNIT_LEAK", "leaked-value")
    r = sandbox.run("import os, json\nprint(json.dumps(dict(os.environ)))\n", comp, FAST)
    import json
    env = json.loads(r.stdout)
    assert "ACELIB_UNIT_LEAK" not in env and env["HOME"] == "/workspace"
    assert env["ACELIB_SANDBOX_ID"] == r.sandbox_id and env["PYTHONHASHSEED"] == "0"
    assert set(env) <= set(isolation.program_env(isolation.launch_spec(FAST, comp), "/workspace", "x")) | {"PWD"}


@needs_bwrap
def test_infra_error_is_distinct(comp, tmp_path):
    # bwrap itself fails (a mount source that does not exist): the sandbox's fault, not the program's.
    lim = Limits(timeout_s=20, ro_binds=(str(tmp_path / "does-not-exist"),))
    r = sandbox.run("print('never runs')", comp, lim)
    assert r.status == "infra_error" and r.infra_error
    assert "does-not-exist" in r.reason and r.stdout == ""


def test_rlimits_mode_runs_and_warns_every_time(comp, caplog):
    lim = Limits(isolation="rlimits", timeout_s=20)
    with caplog.at_level(logging.WARNING, logger="acelib.sandbox.pool"):
        for _ in range(2):
            r = sandbox.run("open('submission/submission.csv','w').write('id\\n1\\n')\nprint('hi')", comp, lim)
            assert r.status == "ok" and r.submission == b"id\n1\n" and r.isolation == "rlimits"
    assert sum("WITHOUT namespaces" in rec.message for rec in caplog.records) == 2


@needs_bwrap
def test_pool_map_submit_async_and_concurrency(comp):
    with SandboxPool(workers=2, limits=FAST) as pool:
        results = pool.map([f"print({i})" for i in range(6)], comp)
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
        assert all(r.status == "ok" for r in results)
        assert pool.submit("print('f')", comp).result().stdout == "f\n"
        assert asyncio.run(pool.run_async("print('a')", comp)).stdout == "a\n"
        t0 = time.monotonic()
        slow = pool.map(["import time; time.sleep(1.5)"] * 2, [comp, comp])
        assert all(r.status == "ok" for r in slow)
        assert time.monotonic() - t0 < 2.9  # the two ran side by side
        with pytest.raises(ValueError, match="2 codes but 1 competitions"):
            pool.map(["1", "2"], [comp])
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit("print(1)", comp)


@needs_bwrap
def test_no_fd_or_process_leak_across_many_runs(comp, tmp_path):
    import os
    before = len(os.listdir("/proc/self/fd"))
    bad = Limits(timeout_s=20, ro_binds=(str(tmp_path / "missing"),))  # infra_error path
    with SandboxPool(workers=2, limits=FAST) as pool:
        rs = pool.map(["print(1)"] * 8 + ["while True: pass"], comp, Limits(timeout_s=1))
        assert [r.status for r in rs] == ["ok"] * 8 + ["timeout"]
        assert pool.submit("print(1)", comp, bad).result().status == "infra_error"
    assert len(os.listdir("/proc/self/fd")) <= before


def test_limits_pickle_for_ray():
    import pickle
    lim = Limits(timeout_s=3, env={"A": "b"})
    assert pickle.loads(pickle.dumps(lim)) == lim
