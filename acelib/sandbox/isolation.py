"""What the machine allows (`capabilities()`), and the command lines that start a sandbox.

bwrap mode (see docs/sandbox.md): new mount, pid, net, ipc, uts (and cgroup) namespaces. The new root is a
read-only tmpfs holding only /usr (+ /bin, /lib* links), a few /etc files, the interpreter's prefix and venv
(read-only), a fresh /proc of the new pid namespace, a minimal /dev, size-limited tmpfs for /tmp, /dev/shm and
the workspace, and the competition's public/ read-only at /workspace/input. As root we keep no user namespace and
give each sandbox a private, never-reused host uid instead: RLIMIT_NPROC is not enforced for uid 0 (the kernel
exempts INIT_USER), so a uid of its own is what makes the process limit real and per-execution. Not as root,
bwrap's user namespace does the same job (since Linux 5.14 RLIMIT_NPROC is counted per user namespace).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from acelib.sandbox.limits import MIB, Limits

WORKSPACE = "/workspace"
STUB_HOST_PATH = str(Path(__file__).with_name("_stub.py"))
STUB_SANDBOX_PATH = "/opt/acelib/sandbox_stub.py"  # the single file of the checkout mounted in the sandbox
STUB_MARK = "acelib-sandbox"  # in argv of every sandboxed process (they are forks of the stub)
# /etc entries the dynamic linker, locale, time zone and matplotlib's font lookup read; nothing with secrets.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts", "mime.types",
             "nsswitch.conf", "os-release")
SANDBOX_UID_BASE = 1_800_000_000  # private uids are drawn above this, far from any real account
SANDBOX_UID_SPAN = 200_000_000


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot be provided on this machine (the message says how to fix it)."""


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """Everything a sandbox must know before its job arrives; equal specs can reuse a warm sandbox."""

    isolation: str
    python: str          # interpreter path as the sandbox sees it (same path as on the host)
    mounts: tuple[str, ...]  # interpreter prefix, base prefix and extra read-only binds (host = sandbox path)
    public_dir: str
    workspace_mb: int
    tmp_mb: int
    threads: int
    env: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=8)
def interpreter_paths(python: str | None) -> tuple[str, str, str]:
    """(executable, sys.prefix, sys.base_prefix) of `python` (None = the running interpreter)."""
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        return sys.executable, sys.prefix, sys.base_prefix
    out = subprocess.run([python, "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
    return python, out[0], out[1]


def launch_spec(limits: Limits, competition) -> LaunchSpec:
    public = getattr(competition, "public_dir", None)
    if public is None:
        raise TypeError(f"competition must have .public_dir (a Competition), got {type(competition).__name__}")
    public = os.path.realpath(public)  # bind the real directory, never a link someone could repoint
    if not os.path.isdir(public):
        raise FileNotFoundError(f"competition public dir {public} does not exist; prepare the competition first")
    exe, prefix, base = interpreter_paths(limits.python)
    mounts = tuple(dict.fromkeys(p for p in (base, prefix, *limits.ro_binds) if not p.startswith("/usr/")))
    return LaunchSpec(limits.isolation, exe, mounts, public, limits.workspace_mb, limits.tmp_mb,
                      limits.effective_threads, tuple(sorted(limits.env.items())))


def program_env(spec: LaunchSpec, workspace: str, sandbox_id: str) -> dict[str, str]:
    """The allow-listed environment of the program: nothing from the host's environment leaks in."""
    exe_dir = os.path.dirname(spec.python)
    t = str(spec.threads)
    env = {
        "PATH": f"{exe_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": workspace, "USER": "agent", "LOGNAME": "agent",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
        "XDG_CACHE_HOME": "/tmp/.cache", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "NUMEXPR_MAX_THREADS": t,
        "VECLIB_MAXIMUM_THREADS": t, "ACELIB_SANDBOX_ID": sandbox_id,
    }
    if os.path.exists(os.path.join(os.path.dirname(exe_dir), "pyvenv.cfg")):
        env["VIRTUAL_ENV"] = os.path.dirname(exe_dir)
    if spec.isolation == "rlimits":
        env["TMPDIR"] = os.path.join(workspace, "working")  # no private /tmp without namespaces
        env["MPLCONFIGDIR"] = env["XDG_CACHE_HOME"] = os.path.join(workspace, "working", ".cache")
    env.update(spec.env)
    return env


def stub_argv(spec: LaunchSpec, sandbox_id: str, workspace: str, uid: int | None, ctl_fd: int) -> list[str]:
    cfg = json.dumps({"workspace": workspace, "uid": uid, "ctl": ctl_fd})
    stub = STUB_HOST_PATH if spec.isolation == "rlimits" else STUB_SANDBOX_PATH
    # -s: no user site-packages (HOME is the workspace anyway); site itself must run so the venv is on sys.path.
    return [spec.python, "-s", stub, STUB_MARK, sandbox_id, cfg]


def _dirs_with_parents(path: str) -> list[str]:
    parts, p = [], Path(path)
    for parent in reversed(p.parents):
        if str(parent) != "/":
            parts.append(str(parent))
    return parts


def bwrap_argv(spec: LaunchSpec, sandbox_id: str, uid: int | None, data_fds: dict[str, int]) -> list[str]:
    """The bwrap prefix (everything before the stub's argv). `data_fds`: sandbox path → readable fd with its bytes."""
    caps = capabilities()
    a = [caps["bwrap"], "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
         "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    if uid is not None:
        # Root without a user namespace: keep only what the supervisor needs to hand the program its own uid.
        a += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        a += ["--unshare-user", "--disable-userns"]
    a += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            a += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            a += ["--ro-bind", top, top]
    a += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for dest, fd in data_fds.items():
        a += ["--perms", "0644", "--ro-bind-data", str(fd), dest]
    # Private /tmp and /dev/shm BEFORE the interpreter binds: a venv that lives under /tmp (a CI clone, say) must be
    # bound on top of the tmpfs, not hidden underneath it.
    a += ["--proc", "/proc", "--dev", "/dev",
          "--perms", "1777", "--size", str(spec.tmp_mb * MIB), "--tmpfs", "/tmp",
          "--perms", "1777", "--size", str(spec.tmp_mb * MIB), "--tmpfs", "/dev/shm"]
    created: set[str] = {"/etc", "/tmp", "/dev", "/dev/shm", "/proc"}
    for m in spec.mounts:
        # bwrap would create missing parents 0700 (e.g. /root), which the program's uid could not traverse.
        for d in _dirs_with_parents(m):
            if d not in created and d not in ("/usr",):
                a += ["--perms", "0755", "--dir", d]
                created.add(d)
        a += ["--ro-bind", m, m]
    a += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", "/opt/acelib",
          "--ro-bind", STUB_HOST_PATH, STUB_SANDBOX_PATH]
    a += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]  # core count for BLAS/torch
    a += ["--perms", "0777", "--size", str(spec.workspace_mb * MIB), "--tmpfs", WORKSPACE,
          "--ro-bind", spec.public_dir, f"{WORKSPACE}/input",
          "--remount-ro", "/", "--chdir", WORKSPACE, "--clearenv"]
    for k, v in program_env(spec, WORKSPACE, sandbox_id).items():
        a += ["--setenv", k, v]
    return a + ["--"]


def etc_data(uid: int | None) -> dict[str, bytes]:
    """Synthetic /etc/passwd, group and hosts: the program's uid has a name and localhost resolves."""
    u = uid if uid is not None else os.getuid()
    return {
        "/etc/passwd": f"root:x:0:0:root:/:/usr/sbin/nologin\nagent:x:{u}:{u}:agent:{WORKSPACE}:/bin/sh\n".encode(),
        "/etc/group": f"root:x:0:\nagent:x:{u}:\n".encode(),
        "/etc/hosts": b"127.0.0.1 localhost sandbox\n::1 localhost\n",
    }


def _probe_bwrap(bwrap: str, root: bool) -> tuple[bool, str]:
    """Start a real sandbox with the namespaces, cap handling and sized tmpfs we use; (ok, error text)."""
    a = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    a += (["--cap-drop", "ALL", "--cap-add", "CAP_SETUID"] if root else ["--unshare-user", "--disable-userns"])
    a += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib64"):
        if os.path.islink(top):
            a += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            a += ["--ro-bind", top, top]
    a += ["--proc", "/proc", "--dev", "/dev", "--size", str(MIB), "--tmpfs", "/tmp", "--", "/bin/sh", "-c",
          "test -w /tmp && test -d /proc/1"]
    try:
        p = subprocess.run(a, capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return p.returncode == 0, p.stderr.strip()


@functools.lru_cache(maxsize=1)
def capabilities() -> dict:
    """What isolation this machine allows, probed once by starting a real sandbox.

    Keys: mode ("bwrap" or None), bwrap (path), bwrap_version, root, uid_strategy ("private-uid" as root,
    "user-namespace" otherwise), user_namespaces (kernel allows them), unshare (path of util-linux unshare),
    cgroup_v2, reason (why bwrap is unusable, empty if usable).
    """
    root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    info = {"mode": None, "bwrap": bwrap, "bwrap_version": None, "root": root,
            "uid_strategy": "private-uid" if root else "user-namespace", "unshare": shutil.which("unshare"),
            "user_namespaces": _read_int("/proc/sys/user/max_user_namespaces") > 0,
            "cgroup_v2": os.path.exists("/sys/fs/cgroup/cgroup.controllers"), "reason": ""}
    if bwrap is None:
        info["reason"] = "bubblewrap is not installed (apt-get install -y bubblewrap)"
        return info
    info["bwrap_version"] = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    ok, err = _probe_bwrap(bwrap, root)
    if ok:
        info["mode"] = "bwrap"
    else:
        info["reason"] = f"bwrap cannot create namespaces here: {err or 'probe failed'}"
    return info


def _read_int(path: str) -> int:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return 0


def require(isolation: str) -> None:
    """Refuse (SandboxUnavailable) when `isolation` cannot be provided; never falls back silently."""
    if isolation == "rlimits":
        return
    caps = capabilities()
    if caps["mode"] != "bwrap":
        raise SandboxUnavailable(
            f"acelib.sandbox: no namespace isolation on this machine ({caps['reason']}). Install bubblewrap "
            "(`apt-get install -y bubblewrap`, done by tools/setup_env.py) on a kernel that allows namespaces, "
            "or accept running agent code WITHOUT isolation with Limits(isolation='rlimits').")
