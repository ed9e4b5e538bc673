"""`ExecResult` (what one execution produced) and the pure helpers behind it: head+tail output capture and the
mapping from how the process ended to a status."""
from __future__ import annotations

import dataclasses
import re
import signal

STATUSES = ("ok", "error", "timeout", "memory", "killed", "infra_error")

# Last lines of stderr that mean "ran out of memory": Python, numpy (_ArrayMemoryError), torch's CPU allocator,
# C++ std::bad_alloc, pandas/pyarrow ENOMEM messages.
_MEMORY_PATTERNS = re.compile(
    r"MemoryError|std::bad_alloc|Cannot allocate memory|can't allocate memory|out of memory|OutOfMemoryError",
    re.IGNORECASE)


@dataclasses.dataclass
class ExecResult:
    """The outcome of one sandboxed execution.

    `status`: ok | error (non-zero exit) | timeout (wall clock or CPU time) | memory | killed (signal, output
    flood) | infra_error (the sandbox itself failed: not the program's fault; the learner masks these samples).
    """

    status: str
    exit_code: int | None          # the program's exit code; -N = killed by signal N; None = never finished
    stdout: str                    # head + tail, the cut middle replaced by a marker saying how many bytes
    stderr: str
    duration_s: float              # wall time of the program (code handed over → program exited)
    peak_memory_mb: float | None = None   # max RSS of the largest process of the program's tree
    submission: bytes | None = None       # ./submission/submission.csv if produced (and within the size cap)
    files: list[str] = dataclasses.field(default_factory=list)  # produced paths relative to the workspace
    cut_bytes: int = 0             # output bytes dropped from stdout + stderr (head+tail kept)
    reason: str = ""               # one line: why this status (limit hit, signal, sandbox failure...)
    isolation: str = ""            # the mode that ran it: "bwrap" or "rlimits"
    sandbox_id: str = ""           # also in the program's env (ACELIB_SANDBOX_ID) and its processes' argv

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def infra_error(self) -> bool:
        """True when the sandbox failed (mask the sample: the policy is not to blame)."""
        return self.status == "infra_error"

    def output_for_agent(self, max_chars: int = 4000) -> str:
        """stdout, stderr and (unless ok) the status line in one compact text of at most `max_chars` characters.

        The tail is favoured (60 %) because tracebacks and final scores are printed last.
        """
        parts = []
        if self.stdout.strip():
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.status != "ok":
            parts.append(f"[execution {self.status}] {self.reason}".rstrip())
        text = "\n".join(parts)
        if len(text) <= max_chars:
            return text
        marker = "\n[... {} characters cut ...]\n"
        budget = max(max_chars - len(marker.format(len(text))), 0)
        head = budget * 2 // 5
        tail = budget - head
        return text[:head] + marker.format(len(text) - head - tail) + (text[len(text) - tail:] if tail else "")


class HeadTail:
    """Keeps the first `keep // 2` and the last `keep - keep // 2` bytes of a stream, counting what it drops."""

    def __init__(self, keep: int):
        self.head_cap = keep // 2
        self.tail_cap = keep - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap:
            self.tail += data
            if len(self.tail) > self.tail_cap:
                del self.tail[:len(self.tail) - self.tail_cap]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.cut:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        return (self.head.decode("utf-8", "replace") + f"\n[... {self.cut} bytes cut ...]\n"
                + self.tail.decode("utf-8", "replace"))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def classify(exit_code: int | None, *, timed_out: bool = False, output_flood: bool = False,
             stderr_tail: str = "", timeout_s: float = 0.0, max_output_mb: int = 0) -> tuple[str, str]:
    """(status, reason) of a finished or killed program; infra failures are decided by the caller, never here.

    exit_code < 0 means killed by signal -exit_code (SIGXCPU = CPU-time limit, SIGKILL = e.g. the OOM killer).
    """
    if timed_out:
        return "timeout", f"wall-clock limit of {timeout_s:g} s exceeded; the whole process tree was killed"
    if output_flood:
        return "killed", f"printed more than {max_output_mb} MiB; the whole process tree was killed"
    if exit_code == 0:
        return "ok", ""
    memory = bool(_MEMORY_PATTERNS.search(stderr_tail[-4000:]))
    if exit_code is not None and exit_code < 0:
        sig = -exit_code
        if sig == signal.SIGXCPU:
            return "timeout", "CPU-time limit exceeded (SIGXCPU)"
        if memory:
            return "memory", f"out of memory (memory limit hit, then {signal_name(sig)})"
        return "killed", f"killed by {signal_name(sig)}"
    if memory:
        return "memory", f"out of memory (memory limit hit), exit code {exit_code}"
    return "error", f"exit code {exit_code}"
