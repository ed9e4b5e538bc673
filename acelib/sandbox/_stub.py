# The supervisor that runs INSIDE the sandbox (this one file is mounted read-only at /opt/acelib/sandbox_stub.py).
# It starts before the job is known (a warm sandbox), says READY, reads one job from stdin, forks the program as
# the sandbox's private uid with rlimits, waits for it, then reports the exit status, peak RSS, the produced files
# and the submission bytes on the control fd. It stays root (only CAP_SETUID/SETGID, no DAC override) in bwrap
# mode so the program, another uid, can neither signal nor ptrace it.
# argv: <this file> acelib-sandbox <sandbox id> <json config>; fds: 0 = job in, 1/2 = program output, cfg.ctl = report.
import atexit
import json
import os
import resource
import stat
import sys
import threading
import time
import traceback
import types

_SID, _CFG = sys.argv[2], json.loads(sys.argv[3])
_WS = _CFG["workspace"]
_UID = _CFG["uid"]
_CTL = _CFG["ctl"]
_PROGRAM = os.path.join(_WS, "solution.py")

if _UID is not None:
    import ctypes
    _LIBC = ctypes.CDLL(None, use_errno=True)


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("host closed the job pipe")
        buf += chunk
    return bytes(buf)


def _read_line(fd):
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            raise EOFError("host closed the job pipe")
        buf += chunk
    return bytes(buf)


def _exit_program(code):
    """Leave like the interpreter would (SystemExit semantics, atexit, joining non-daemon threads, flushing) but
    skip the full interpreter teardown, which costs ~20 ms and serves nothing in a process about to vanish."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        traceback.print_exc()
        code = code or 1
    os._exit(code & 0xFF)


def _run_program(job, code):
    """Runs in the forked child; returns the program's exit code (or SystemExit argument)."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, 1 << 16)  # the job and report pipes must not be reachable from the program
    if _UID is not None:
        os.setgroups([])
        os.setgid(_UID)
        os.setuid(_UID)  # drops every capability
        _LIBC.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: setuid cleared it, and /proc/self/* would turn root-owned
    lim = [(resource.RLIMIT_AS, job["as"]), (resource.RLIMIT_FSIZE, job["fsize"]),
           (resource.RLIMIT_NPROC, job["nproc"]), (resource.RLIMIT_NOFILE, job["nofile"]),
           (resource.RLIMIT_CORE, 0)]
    for res, val in lim:
        resource.setrlimit(res, (val, val))
    # Soft CPU limit sends SIGXCPU (reported as a timeout); the hard one SIGKILLs a program that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (job["cpu"], job["cpu"] + 5))
    os.chdir(_WS)
    for d in ("submission", "working"):
        os.makedirs(d, exist_ok=True)
    with open(_PROGRAM, "w") as f:
        f.write(code)
    # Line buffering: a program killed on timeout still shows what it printed so far.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    sys.argv = [_PROGRAM]
    sys.path[0] = _WS
    main = types.ModuleType("__main__")
    main.__file__ = _PROGRAM
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    try:
        exec(compile(code, _PROGRAM, "exec"), main.__dict__)
    except SystemExit as e:
        return e.code
    except BaseException as e:  # print like the interpreter, without the supervisor's own frames
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        traceback.print_exception(type(e), e, tb)
        return 1
    return 0


def _harvest(job):
    files, dropped = [], 0
    for root, dirs, names in os.walk(_WS):
        rel = os.path.relpath(root, _WS)
        if rel == ".":
            dirs[:] = [d for d in dirs if d != "input"]
            names = [n for n in names if n != "solution.py"]
        dirs.sort()
        for n in sorted(names) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            if len(files) < job["max_files"]:
                files.append(os.path.normpath(os.path.join(rel, n)))
            else:
                dropped += 1
    sub, note = None, ""
    # O_NOFOLLOW on both components and a regular-file check: never read through a link or block on a FIFO.
    try:
        dfd = os.open(os.path.join(_WS, "submission"), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open("submission.csv", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        finally:
            os.close(dfd)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                note = "submission/submission.csv is not a regular file"
            elif st.st_size > job["sub_max"]:
                note = f"submission/submission.csv is {st.st_size} bytes, over the {job['sub_max']} cap"
            else:
                sub = f.read(job["sub_max"] + 1)[:job["sub_max"]]
    except FileNotFoundError:
        pass
    except OSError as e:
        note = f"submission/submission.csv unreadable: {e.strerror}"
    return files, dropped, sub, note


def _serve():
    os.write(_CTL, b"READY\n")
    job = json.loads(_read_line(0))
    code = _read_exact(0, job["code_len"]).decode("utf-8", "replace")
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        return _run_program(job, code)
    _, status, ru = os.wait4(pid, 0)
    run_s = time.monotonic() - t0
    files, dropped, sub, note = _harvest(job)
    head = {"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": ru.ru_maxrss, "run_s": run_s,
            "files": files, "files_dropped": dropped, "sub_len": -1 if sub is None else len(sub), "sub_note": note}
    payload = json.dumps(head).encode() + b"\n" + (sub or b"")
    view = memoryview(payload)
    while view:
        view = view[os.write(_CTL, view):]
    os._exit(0)


_exit_program(_serve())
