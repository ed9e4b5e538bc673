"""Starting, driving and killing sandboxes; warm stock; `run` and `SandboxPool`.

Speed comes from warm sandboxes: bwrap + the interpreter start *before* the job is known (a sandbox is bound to
one competition's public/ dir and to the launch-time limits), and the job is just the code written to the
supervisor's stdin. After each job the pool starts the next sandbox for the same competition in the background, so
a GRPO group (G rollouts of one task) mostly hits warm ones. Every sandbox serves exactly one job and is then
killed, so nothing an execution leaves behind can reach the next.

Host-side decisions only: the status comes from what the host saw (its deadline, output volume, the exit status
reported by the supervisor); `infra_error` is only set when the sandbox failed to start or its supervisor,
which the program cannot signal, vanished. The program cannot make its own failure look like an infra error.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import json
import logging
import os
import queue
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Iterable

from acelib.sandbox import isolation
from acelib.sandbox.limits import MIB, Limits
from acelib.sandbox.result import ExecResult, HeadTail, classify

log = logging.getLogger(__name__)


class _InfraError(Exception):
    """The sandbox failed (not the program): the result becomes status infra_error."""


def _new_uid() -> int:
    return isolation.SANDBOX_UID_BASE + secrets.randbelow(isolation.SANDBOX_UID_SPAN)


class _Sandbox:
    """One started sandbox: a supervisor waiting for exactly one job."""

    def __init__(self, spec: isolation.LaunchSpec):
        self.spec = spec
        self.id = secrets.token_hex(6)
        self.proc: subprocess.Popen | None = None
        self.workspace: str | None = None  # host dir (rlimits mode only)
        self.ready = False
        self._writer: threading.Thread | None = None  # owns (and closes) the job pipe once started
        self._ctl_r = self._job_w = self._out_r = self._err_r = -1
        try:
            self._start()
        except Exception:
            self.kill()
            raise

    def _start(self) -> None:
        spec = self.spec
        job_r, self._job_w = os.pipe()
        self._ctl_r, ctl_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self._err_r, err_w = os.pipe()
        child_fds = [job_r, ctl_w, out_w, err_w]
        try:
            if spec.isolation == "bwrap":
                uid = _new_uid() if os.geteuid() == 0 else None
                self.protected = uid is not None  # the supervisor runs as another uid than the program
                data_fds = {}
                for dest, data in isolation.etc_data(uid).items():
                    r, w = os.pipe()
                    os.write(w, data)  # a few hundred bytes: fits in the pipe buffer
                    os.close(w)
                    data_fds[dest] = r
                    child_fds.append(r)
                argv = (isolation.bwrap_argv(spec, self.id, uid, data_fds)
                        + isolation.stub_argv(spec, self.id, isolation.WORKSPACE, uid, ctl_w))
                env, cwd, new_session = {"PATH": "/usr/bin:/bin"}, "/", False
            else:
                self.protected = False
                self.workspace = tempfile.mkdtemp(prefix=f"acelib-ws-{self.id}-")
                os.symlink(spec.public_dir, os.path.join(self.workspace, "input"))
                argv = isolation.stub_argv(spec, self.id, self.workspace, None, ctl_w)
                env = isolation.program_env(spec, self.workspace, self.id)
                # Without a pid namespace the only handle on the tree is its process group.
                cwd, new_session = self.workspace, True
            self.proc = subprocess.Popen(argv, stdin=job_r, stdout=out_w, stderr=err_w, pass_fds=child_fds[1:],
                                         env=env, cwd=cwd, start_new_session=new_session)
        finally:
            for fd in child_fds:
                os.close(fd)
        for fd in (self._ctl_r, self._out_r, self._err_r):
            os.set_blocking(fd, False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the supervisor says READY; _InfraError (with bwrap's own message) if it never does."""
        if self.ready:
            return
        deadline = time.monotonic() + timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._ctl_r, selectors.EVENT_READ)
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _InfraError(f"sandbox did not start within {timeout_s:g} s")
                if sel.select(left):
                    chunk = os.read(self._ctl_r, 64)
                    if not chunk:
                        break
                    buf += chunk
        if buf != b"READY\n":
            try:  # it is exiting: its stderr (bwrap's message) is complete afterwards
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass  # alive but spoke garbage: killed below, reported as infra_error all the same
            err = _drain(self._err_r, 4000).decode("utf-8", "replace").strip()
            self.kill()
            raise _InfraError(f"sandbox failed to start (exit {self.proc.returncode}): {err or 'no message'}")
        self.ready = True

    def execute(self, code: str, limits: Limits) -> ExecResult:
        """Hand the job over, supervise it (deadline, output flood), collect the report, kill everything."""
        try:
            self.wait_ready(limits.start_timeout_s)
            return self._supervise(code, limits)
        except _InfraError as e:
            return ExecResult("infra_error", None, "", "", 0.0, reason=str(e), isolation=self.spec.isolation,
                              sandbox_id=self.id)
        finally:
            self.kill()

    def _supervise(self, code: str, limits: Limits) -> ExecResult:
        data = code.encode("utf-8", "surrogatepass")
        job = {"code_len": len(data), "as": limits.memory_mb * MIB, "cpu": limits.effective_cpu_time_s,
               "fsize": limits.file_size_mb * MIB, "nproc": limits.max_processes, "nofile": limits.max_open_files,
               "sub_max": limits.submission_max_mb * MIB, "max_files": limits.max_files}
        out, err = HeadTail(limits.output_keep_bytes), HeadTail(limits.output_keep_bytes)
        streams = {self._out_r: out, self._err_r: err}
        flood_at = limits.max_output_mb * MIB
        ctl = bytearray()
        report = None
        timed_out = flood = False
        t0 = time.monotonic()
        deadline = t0 + limits.timeout_s
        with selectors.DefaultSelector() as sel:
            for fd in (self._ctl_r, self._out_r, self._err_r):
                sel.register(fd, selectors.EVENT_READ)
            # The job goes in from a helper thread: a large program would fill the pipe before the supervisor reads.
            writer = self._writer = threading.Thread(target=self._send_job, daemon=True,
                                                     args=(json.dumps(job).encode() + b"\n" + data,))
            writer.start()
            while report is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(min(left, 1.0)):
                    chunk = _read_some(key.fd)
                    if chunk is None:
                        continue
                    if key.fd == self._ctl_r:
                        if not chunk:
                            sel.unregister(key.fd)
                            report = self._lost_supervisor()
                            break
                        ctl += chunk
                        report = _parse_report(ctl)
                    elif not chunk:
                        sel.unregister(key.fd)
                    else:
                        streams[key.fd].feed(chunk)
                if out.total + err.total > flood_at:
                    flood = True
                    break
            duration = time.monotonic() - t0
        peak = None
        if report is None or isinstance(report, str):
            peak = _tree_peak_mb(self.proc.pid)
        self.kill()
        writer.join()  # returns at once: the job pipe's reader is dead, so a pending write fails with EPIPE
        # Everything the program wrote before it exited is in the pipes; drain it now that all writers are dead.
        if not flood:
            out.feed(_drain(self._out_r, limits.output_keep_bytes * 4))
            err.feed(_drain(self._err_r, limits.output_keep_bytes * 4))
        if isinstance(report, str):  # the supervisor vanished mid-job
            if self.protected:
                raise _InfraError(report)
            return self._result("killed", None, out, err, duration, peak, reason=report)
        if report is None:
            status, reason = classify(None, timed_out=timed_out, output_flood=flood, timeout_s=limits.timeout_s,
                                      max_output_mb=limits.max_output_mb)
            return self._result(status, None, out, err, duration, peak, reason=reason)
        head, sub = report
        status, reason = classify(head["exit"], stderr_tail=err.text()[-4000:])
        if head["sub_note"]:
            reason = "; ".join(r for r in (reason, head["sub_note"]) if r)
        if head["files_dropped"]:
            reason = "; ".join(r for r in (reason, f"{head['files_dropped']} more files not listed") if r)
        return self._result(status, head["exit"], out, err, head["run_s"], head["maxrss_kb"] / 1024, reason=reason,
                            submission=sub, files=head["files"])

    def _send_job(self, payload: bytes) -> None:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(self._job_w, view):]
        except OSError:
            pass  # the sandbox died or was killed; the supervising loop reports why
        finally:
            os.close(self._job_w)
            self._job_w = -1

    def _lost_supervisor(self) -> str:
        code = self.proc.poll()
        return (f"the sandbox supervisor exited without a report (sandbox exit {code}); "
                + ("sandbox failure" if self.protected else "the program probably killed its supervisor"))

    def _result(self, status, exit_code, out, err, duration, peak, reason="", submission=None, files=None):
        return ExecResult(status, exit_code, out.text(), err.text(), round(duration, 4),
                          None if peak is None else round(peak, 1), submission, files or [], out.cut + err.cut,
                          reason, self.spec.isolation, self.id)

    def kill(self) -> None:
        """SIGKILL the sandbox: bwrap's death kills the pid namespace's init (--die-with-parent), which takes
        every process of the execution with it. rlimits mode can only kill the process group."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                if self.spec.isolation == "rlimits":
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self._writer is None and self._job_w >= 0:  # never used (evicted, failed to start)
            os.close(self._job_w)
            self._job_w = -1
        for name in ("_ctl_r", "_out_r", "_err_r"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)
        if self.workspace is not None:
            shutil.rmtree(self.workspace, ignore_errors=True)
            self.workspace = None


def _read_some(fd: int) -> bytes | None:
    """b"" at end of file, None when a wake-up found nothing to read."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None


def _drain(fd: int, cap: int) -> bytes:
    """Read what is buffered in a non-blocking pipe (at most `cap` bytes kept; the rest is read and dropped)."""
    if fd < 0:
        return b""
    buf = bytearray()
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        if len(buf) < cap:
            buf += chunk
    return bytes(buf)


def _parse_report(ctl: bytearray):
    nl = ctl.find(b"\n")
    if nl < 0:
        return None
    head = json.loads(ctl[:nl])
    n = head["sub_len"]
    if n < 0:
        return head, None
    if len(ctl) - nl - 1 < n:
        return None
    return head, bytes(ctl[nl + 1:nl + 1 + n])


def _tree_peak_mb(root: int) -> float | None:
    """Largest VmHWM among `root`'s descendants (read before killing a tree that never reported)."""
    children = collections.defaultdict(list)
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            children[ppid].append(int(name))
    peak, todo = None, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        peak = max(peak or 0.0, kb / 1024)
        except OSError:
            continue
    return peak


class _Stock:
    """Warm sandboxes by launch spec. A dedicated long-lived thread starts them: bwrap's --die-with-parent follows
    the *thread* that forked it, so they must not be children of short-lived caller threads."""

    def __init__(self, per_spec: int, max_total: int):
        self.per_spec = per_spec
        self.max_total = max_total
        self._warm: dict[isolation.LaunchSpec, collections.deque] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._launcher, name="acelib-sandbox-launcher", daemon=True)
        self._thread.start()

    def take(self, spec: isolation.LaunchSpec) -> _Sandbox:
        """A warm sandbox for `spec` if one is alive, else a fresh one; asks for a replacement either way."""
        sb = None
        with self._lock:
            dq = self._warm.get(spec)
            while dq:
                cand = dq.popleft()
                if cand.alive():
                    sb = cand
                    break
                cand.kill()  # died while waiting (e.g. its launcher was gone): never hand out a dead one
        self._requests.put(spec)
        return sb if sb is not None else _Sandbox(spec)

    def _launcher(self) -> None:
        while True:
            spec = self._requests.get()
            if spec is None:
                return
            with self._lock:
                if self._closed or len(self._warm.get(spec, ())) >= self.per_spec:
                    continue
            try:
                sb = _Sandbox(spec)
            except OSError as e:  # e.g. out of fds/processes; the next take() starts a cold one and reports it
                log.warning("could not pre-start a sandbox: %s", e)
                continue
            evicted = []
            with self._lock:
                if self._closed:
                    evicted.append(sb)
                else:
                    self._warm.setdefault(spec, collections.deque()).append(sb)
                    self._warm.move_to_end(spec)
                    while sum(len(d) for d in self._warm.values()) > self.max_total:
                        oldest = next(iter(self._warm))
                        evicted.append(self._warm[oldest].popleft())
                        if not self._warm[oldest]:
                            del self._warm[oldest]
            for e in evicted:
                e.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            warm = [sb for d in self._warm.values() for sb in d]
            self._warm.clear()
        self._requests.put(None)
        self._thread.join(timeout=10)
        for sb in warm:
            sb.kill()


def _execute(stock: _Stock, code: str, competition, limits: Limits) -> ExecResult:
    if limits.isolation == "rlimits":
        log.warning("acelib.sandbox: isolation='rlimits' runs agent code WITHOUT namespaces: it can read the "
                    "private answers, use the network and outlive its timeout via setsid")
    isolation.require(limits.isolation)
    spec = isolation.launch_spec(limits, competition)
    try:
        sb = stock.take(spec)
    except OSError as e:
        return ExecResult("infra_error", None, "", "", 0.0, reason=f"could not start a sandbox: {e}",
                          isolation=limits.isolation)
    return sb.execute(code, limits)


_shared_lock = threading.Lock()
_shared: _Stock | None = None


def _shared_stock() -> _Stock:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _Stock(per_spec=2, max_total=4)
            atexit.register(_shared.close)
        return _shared


def run(code: str, competition, limits: Limits | None = None) -> ExecResult:
    """Run `code` (a Python script) in a fresh sandbox for `competition` and return what it produced.

    `competition`: a Competition or anything with `.public_dir` (mounted read-only at ./input). Raises
    SandboxUnavailable if the isolation asked for (default: bwrap) is impossible here; sandbox failures during the
    run come back as status "infra_error".
    """
    return _execute(_shared_stock(), code, competition, limits or Limits())


class SandboxPool:
    """Run many programs at once: `workers` threads, each driving one sandbox at a time, with warm sandboxes
    started ahead for the competitions just used. Plain threads + subprocesses, so it works inside Ray actors."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None):
        if workers is not None and workers <= 0:
            raise ValueError(f"workers must be > 0 (or None for os.cpu_count()), got {workers}")
        self.workers = workers or os.cpu_count() or 1
        self.limits = limits or Limits()
        isolation.require(self.limits.isolation)  # refuse now, not at the first job
        self._stock = _Stock(per_spec=self.workers, max_total=2 * self.workers)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="acelib-sandbox")
        self._closed = False

    def submit(self, code: str, competition, limits: Limits | None = None) -> concurrent.futures.Future:
        """Future[ExecResult] of running `code` for `competition` (limits default to the pool's)."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        return self._executor.submit(_execute, self._stock, code, competition, limits or self.limits)

    def map(self, codes: Iterable[str], competition, limits: Limits | None = None) -> list[ExecResult]:
        """Results in order. `competition`: one for all codes, or a list with one per code."""
        codes = list(codes)
        comps = [competition] * len(codes) if hasattr(competition, "public_dir") else list(competition)
        if len(comps) != len(codes):
            raise ValueError(f"{len(codes)} codes but {len(comps)} competitions")
        futures = [self.submit(c, comp, limits) for c, comp in zip(codes, comps)]
        return [f.result() for f in futures]

    async def run_async(self, code: str, competition, limits: Limits | None = None) -> ExecResult:
        return await asyncio.wrap_future(self.submit(code, competition, limits))

    def close(self) -> None:
        """Wait for running executions, then kill the warm sandboxes."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=True)
            self._stock.close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
