"""Hostile programs an agent could emit, run through the real sandbox (bwrap).

For each: the sandbox survives, the result says why, the host is untouched, no process of the execution is left
(scanned in /proc by the sandbox id every sandboxed process carries in argv or env), and the next execution works.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import time
from pathlib import Path

import pytest

from acelib import sandbox
from acelib.sandbox import Limits, SandboxPool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sandbox.capabilities()["mode"] != "bwrap",
                       reason=f"no bwrap isolation here: {sandbox.capabilities()['reason']}"),
]

SECRET = "SECRET-" + secrets.token_hex(8)
LIMITS = Limits(timeout_s=4, memory_mb=1024, max_processes=64, workspace_mb=64, tmp_mb=32, max_output_mb=8)


@pytest.fixture
def comp(fake_competition):
    return fake_competition({"train.csv": "id,x,y\n1,0.5,0\n"}, {"test.csv": f"id,y\n3,{SECRET}\n"})


def _processes_of(marker: str) -> list[int]:
    """Host pids whose argv or environment mention `marker` (a sandbox id or a token a test program sets)."""
    found, needle = [], marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if needle in Path(f"/proc/{name}/{part}").read_bytes():
                    found.append(int(name))
                    break
            except OSError:
                continue
    return found


def _assert_no_leftovers(*markers: str) -> None:
    deadline = time.monotonic() + 3  # the kernel tears the pid namespace down right after bwrap dies
    while True:
        left = [p for m in markers for p in _processes_of(m)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes of the execution survived: {left}"


def _run(code: str, comp, limits: Limits = LIMITS, token: str = ""):
    r = sandbox.run(code, comp, limits)
    assert r.status != "infra_error", r.reason
    _assert_no_leftovers(r.sandbox_id, *([token] if token else []))
    nxt = sandbox.run("print('alive')", comp, LIMITS)  # the next execution still works
    assert (nxt.status, nxt.stdout) == ("ok", "alive\n"), nxt.output_for_agent()
    return r


def _no_secret(r) -> None:
    for text in (r.stdout, r.stderr, (r.submission or b"").decode("latin1"), " ".join(r.files)):
        assert SECRET not in text


def test_cannot_connect_to_host_loopback(comp):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    code = f"""
import socket
for host in ("127.0.0.1", "localhost", "::1"):
    try:
        socket.create_connection((host, {port}), timeout=2)
        print("CONNECTED", host)
    except OSError as e:
        print("refused", host, type(e).__name__)
"""
    r = _run(code, comp)
    assert r.status == "ok" and "CONNECTED" not in r.stdout and r.stdout.count("refused") == 3
    with pytest.raises(BlockingIOError):
        srv.accept()  # nothing ever reached the host's listener
    srv.close()


def test_cannot_resolve_or_fetch_public_host(comp):
    code = """
import socket, urllib.request
try:
    print("RESOLVED", socket.gethostbyname("pypi.org"))
except OSError as e:
    print("no dns", e)
for url in ("https://pypi.org/simple/", "http://1.1.1.1/"):
    try:
        urllib.request.urlopen(url, timeout=3); print("FETCHED", url)
    except OSError as e:
        print("no fetch", url, e)
import subprocess
devs = subprocess.run(["cat", "/proc/net/dev"], capture_output=True, text=True).stdout.splitlines()[2:]
print("INTERFACES", sorted(line.split(":")[0].strip() for line in devs))
"""
    r = _run(code, comp)
    assert r.status == "ok", r.output_for_agent()
    assert "RESOLVED" not in r.stdout and "FETCHED" not in r.stdout and r.stdout.count("no fetch") == 2
    assert "INTERFACES ['lo']" in r.stdout  # a new network namespace: only its own loopback


def test_cannot_read_private_answers(comp, tmp_path):
    private = str(comp.private_dir)
    code = f"""
import os, glob
private = {private!r}
found = []
def tryread(p):
    try:
        with open(p) as f:
            found.append((p, f.read()))
    except OSError as e:
        print("denied", p, type(e).__name__)
paths = ["../private/test.csv", "../../private/test.csv", "input/../../private/test.csv",
         "/proc/self/cwd/../private/test.csv", "/proc/self/root" + private + "/test.csv",
         private + "/test.csv", {str(comp.root)!r} + "/prepared/private/test.csv"]
paths += [f"/proc/{{p}}/root{{private}}/test.csv" for p in os.listdir("/proc") if p.isdigit()]
paths += [f"/proc/{{p}}/cwd/../private/test.csv" for p in os.listdir("/proc") if p.isdigit()]
for i, target in enumerate([private + "/test.csv", private, "/proc/1/root" + private, "../private"]):
    os.symlink(target, f"working/link{{i}}")
    tryread(f"working/link{{i}}")
    tryread(f"working/link{{i}}/test.csv")
os.symlink(private + "/test.csv", "submission/submission.csv")  # ask the supervisor to read it for us
for p in paths:
    tryread(p)
# Search the whole visible tree, except the big read-only system/interpreter mounts and pseudo-filesystems.
skip = ("/usr", "/proc", "/sys", "/dev", os.environ["VIRTUAL_ENV"], os.path.realpath(os.__file__).rsplit("/lib/", 1)[0])
for root, dirs, names in os.walk("/"):
    dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(skip)]
    for n in names:
        if n == "test.csv" or "private" in root:
            tryread(os.path.join(root, n))
print("FOUND", found)
"""
    r = _run(code, comp)
    assert r.status == "ok", r.output_for_agent()
    assert "FOUND []" in r.stdout
    assert r.submission is None and "submission/submission.csv unreadable" in r.reason
    _no_secret(r)


def test_only_the_needed_paths_are_visible(comp, tmp_path):
    (tmp_path / "other-competition").mkdir()
    probes = [str(tmp_path), "/work/main/outputs", "/work/main/acelib", "/root/.bashrc", "/root/.cache",
              "/home", os.path.expanduser("~/.ssh"), "/etc/shadow", "/etc/resolv.conf", "/sys/fs/cgroup",
              str(Path(__file__).resolve())]
    code = f"""
import os
for p in {probes!r}:
    print("VISIBLE" if os.path.exists(p) else "absent", p)
print("root:", sorted(os.listdir("/")))
print("input:", sorted(os.listdir("input")))
"""
    r = _run(code, comp)
    assert r.status == "ok" and "VISIBLE" not in r.stdout, r.stdout
    assert "input: ['train.csv']" in r.stdout


def test_cannot_write_outside_workspace_or_into_input(comp, tmp_path):
    host_target = tmp_path / "pwned.txt"
    code = f"""
import os
ok = []
for p in ["input/train.csv", "input/new.csv", "/usr/pwned", "/etc/pwned", "/pwned", {str(host_target)!r},
          os.environ["VIRTUAL_ENV"] + "/pwned", "/proc/1/root/pwned", "/dev/pwned"]:
    try:
        with open(p, "a") as f:
            f.write("x")
        ok.append(p)
    except OSError as e:
        print("denied", p, e.strerror)
try:
    os.remove("input/train.csv"); ok.append("rm input")
except OSError as e:
    print("denied rm", e.strerror)
open("/tmp/private-tmp.txt", "w").write("fine")  # a private tmpfs: allowed, gone afterwards
print("WROTE", ok)
"""
    before = (comp.public_dir / "train.csv").read_bytes()
    r = _run(code, comp)
    assert r.status == "ok" and "WROTE []" in r.stdout, r.output_for_agent()
    assert (comp.public_dir / "train.csv").read_bytes() == before
    assert sorted(os.listdir(comp.public_dir)) == ["train.csv"]
    assert not host_target.exists() and not Path("/tmp/private-tmp.txt").exists()


def test_workspace_size_and_file_size_are_real_limits(comp):
    lim = Limits(timeout_s=10, workspace_mb=16, file_size_mb=4, tmp_mb=8)
    code = """
import errno
def fill(path, chunks):
    try:
        with open(path, "wb") as f:
            for _ in range(chunks):
                f.write(b"x" * (1 << 20)); f.flush()
        return "no limit"
    except OSError as e:
        return errno.errorcode[e.errno]
print("big file:", fill("working/big", 8))
print("workspace:", [fill(f"working/part{i}", 3) for i in range(8)])
print("tmp:", [fill(f"/tmp/part{i}", 3) for i in range(4)])
print("shm:", [fill(f"/dev/shm/part{i}", 3) for i in range(4)])
"""
    r = _run(code, comp, lim)
    assert r.status == "ok", r.output_for_agent()
    assert "big file: EFBIG" in r.stdout
    for line in ("workspace:", "tmp:", "shm:"):
        assert "ENOSPC" in next(ln for ln in r.stdout.splitlines() if ln.startswith(line)), r.stdout


def test_fork_bomb(comp):
    # First count what the limit lets through, then the real bomb.
    count = _run("""
import os, time
n = 0
try:
    while n < 10_000:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print("forks", n, e.strerror)
""", comp)
    assert count.status == "ok", count.output_for_agent()
    n = int(count.stdout.split()[1])
    assert 0 < n < LIMITS.max_processes, count.stdout
    t0 = time.monotonic()
    r = _run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", comp)
    assert r.status == "timeout" and "whole process tree was killed" in r.reason
    assert time.monotonic() - t0 < LIMITS.timeout_s + 5


def test_memory_far_beyond_the_limit(comp):
    # Filling the address space page by page costs ~1.5 s of kernel time per GiB on a loaded 2-core box, so this
    # test uses a smaller limit and a generous clock: it is about the memory limit, not the wall clock.
    lim = dataclasses.replace(LIMITS, memory_mb=512, timeout_s=30)
    r = _run("import numpy as np\nx = np.ones((1 << 30,))  # 8 GiB\nprint('ALLOCATED')\n", comp, lim)
    assert r.status == "memory" and "ALLOCATED" not in r.stdout
    assert "Unable to allocate" in r.stderr and "memory" in r.reason
    r = _run("chunks = []\nwhile True:\n    chunks.append(bytearray(50 << 20))\n", comp, lim)
    assert r.status == "memory" and r.exit_code == 1
    assert r.peak_memory_mb is not None and r.peak_memory_mb < lim.memory_mb


def test_infinite_loop_is_killed_on_time(comp):
    t0 = time.monotonic()
    r = _run("print('started', flush=True)\nwhile True:\n    pass\n", comp)
    assert r.status == "timeout" and r.exit_code is None and r.stdout == "started\n"
    assert LIMITS.timeout_s <= r.duration_s < LIMITS.timeout_s + 1.5
    assert time.monotonic() - t0 < LIMITS.timeout_s + 5


def test_daemon_does_not_outlive_the_execution(comp):
    token = "daemon-" + secrets.token_hex(6)
    code = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        # exec a fresh interpreter with the token in argv, without our environment: only argv can find it
        os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", {token!r}], {{}})
    os._exit(0)
time.sleep(0.3)
print("parent done")
"""
    r = _run(code, comp, token=token)
    assert r.status == "ok" and r.stdout == "parent done\n"


def test_daemon_that_ignores_signals_on_timeout(comp):
    token = "stubborn-" + secrets.token_hex(6)
    code = f"""
import os, signal, sys, time
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()
    os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", {token!r}], {{}})
while True:
    time.sleep(1)
"""
    r = _run(code, comp, token=token)
    assert r.status == "timeout"


def test_printing_gigabytes(comp):
    t0 = time.monotonic()
    r = _run("import sys\nb = 'x' * (1 << 20)\nfor _ in range(4096):\n    sys.stdout.write(b)\n", comp)
    assert r.status == "killed" and "printed more than 8 MiB" in r.reason
    assert r.cut_bytes >= 8 * 2**20 - LIMITS.output_keep_bytes and len(r.stdout) < LIMITS.output_keep_bytes + 100
    assert time.monotonic() - t0 < 10


def test_cannot_read_parent_environment(comp, monkeypatch):
    secret = "env-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("ACELIB_TEST_SECRET", secret)
    code = """
import os
print(dict(os.environ))
for p in os.listdir("/proc"):
    if p.isdigit() or p == "self":
        for part in ("environ", "cmdline"):
            try:
                print(p, part, open(f"/proc/{p}/{part}", "rb").read())
            except OSError as e:
                print(p, part, "denied", e.strerror)
"""
    r = _run(code, comp)
    assert r.status == "ok", r.output_for_agent()
    assert "1 environ" in r.stdout  # it really tried pid 1 (bwrap's init)
    assert secret not in r.stdout + r.stderr and "ACELIB_TEST_SECRET" not in r.stdout


def test_cannot_touch_a_concurrent_execution(comp):
    marker = "victim-" + secrets.token_hex(6)
    victim = f"""
import time, os
open("working/victim.txt", "w").write({marker!r})
open("/tmp/victim.txt", "w").write({marker!r})
time.sleep(2.5)
print("intact:", open("working/victim.txt").read() == {marker!r})
open("submission/submission.csv", "w").write("id\\n1\\n")
"""
    attacker = f"""
import os, signal, glob, time
time.sleep(0.5)
hits = []
for pattern in ["/proc/*/root/workspace/working/*", "/proc/*/cwd/working/*", "/workspace/working/*",
                "/tmp/*", "/proc/*/root/tmp/*", "/dev/shm/*"]:
    for p in glob.glob(pattern):
        try:
            if {marker!r} in open(p).read():
                hits.append(p)
                open(p, "w").write("overwritten")
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGKILL)  # everything this uid may signal; must not include the victim
except OSError as e:
    print("kill", e.strerror)
print("HITS", hits, "visible pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
"""
    with SandboxPool(workers=2, limits=LIMITS) as pool:
        fv = pool.submit(victim, comp)
        time.sleep(0.2)
        fa = pool.submit(attacker, comp)
        rv, ra = fv.result(), fa.result()
    assert "HITS []" in ra.stdout, ra.output_for_agent()
    assert rv.status == "ok" and "intact: True" in rv.stdout and rv.submission == b"id\n1\n"
    _assert_no_leftovers(rv.sandbox_id, ra.sandbox_id)


def test_pool_survives_a_burst_of_hostile_programs(comp):
    codes = ["while True: pass", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
             "x = bytearray(1 << 34)", "print('fine')"]
    with SandboxPool(workers=2, limits=Limits(timeout_s=2, memory_mb=1024, max_processes=64)) as pool:
        rs = pool.map(codes, comp)
    assert [r.status for r in rs] == ["timeout", "timeout", "memory", "ok"]
    _assert_no_leftovers(*(r.sandbox_id for r in rs))
