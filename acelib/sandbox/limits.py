"""`Limits`: the sandbox's config (isolation mode + resource limits). Importable without torch, picklable (Ray)."""
from __future__ import annotations

import dataclasses
import os

from acelib.config import ConfigError, option

ISOLATION_MODES = ("bwrap", "rlimits")
MIB = 1024 * 1024


@dataclasses.dataclass
class Limits:
    """Isolation mode and per-execution limits. Defaults fit one ML script of an agent step on a CPU box."""

    isolation: str = option("bwrap", "'bwrap': Linux namespaces via bubblewrap (refused if the machine cannot); "
                            "'rlimits': NO isolation, only resource limits (explicit opt-in, warns on every run)",
                            choices=ISOLATION_MODES)
    timeout_s: float = option(600.0, "wall-clock limit of one execution; the whole process tree is killed after it")
    cpu_time_s: float | None = option(None, "CPU seconds per process (RLIMIT_CPU, then SIGXCPU); "
                                      "None = timeout_s x threads (can never bind before the wall clock)")
    memory_mb: int = option(4096, "address space per process (RLIMIT_AS). `import torch` reserves ~0.7 GiB, "
                            "sklearn ~0.6 GiB of virtual memory, so keep >= 2048")
    max_processes: int = option(256, "processes + threads of one execution (RLIMIT_NPROC of its private uid): "
                                "stops fork bombs")
    max_open_files: int = option(1024, "open file descriptors per process (RLIMIT_NOFILE)")
    file_size_mb: int = option(1024, "largest file the program may write (RLIMIT_FSIZE)")
    workspace_mb: int = option(2048, "size of the workspace tmpfs (submission/, working/, everything the script "
                               "writes under its cwd); RAM-backed, so it counts against host memory when full")
    tmp_mb: int = option(512, "size of each of the /tmp and /dev/shm tmpfs (RAM-backed)")
    threads: int | None = option(None, "OMP/MKL/OpenBLAS/torch thread count exported to the program; "
                                 "None = os.cpu_count() of the host")
    output_keep_bytes: int = option(64 * 1024, "bytes of stdout and of stderr kept in the result "
                                    "(half from the head, half from the tail; the middle is cut and counted)")
    max_output_mb: int = option(64, "total stdout+stderr after which the execution is killed (status 'killed')")
    submission_max_mb: int = option(100, "largest submission.csv returned in the result (bigger: submission=None)")
    max_files: int = option(2000, "at most this many produced paths are listed in ExecResult.files")
    start_timeout_s: float = option(30.0, "how long a sandbox may take to start before the run is an infra_error")
    python: str | None = option(None, "interpreter that runs the program (its prefix and venv are mounted "
                                "read-only); None = the interpreter running acelib")
    ro_binds: tuple[str, ...] = option((), "extra host paths mounted read-only at the same path "
                                       "(e.g. a shared model cache); never mount private answers")
    env: dict = option(default_factory=dict, help="extra environment variables for the program "
                       "(everything else is scrubbed to an allow-list)")

    def __post_init__(self) -> None:
        self.ro_binds = tuple(self.ro_binds)
        self.env = dict(self.env)
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the field and the fix."""
        if self.isolation not in ISOLATION_MODES:
            raise ConfigError(f"isolation: {self.isolation!r} is not one of {list(ISOLATION_MODES)}")
        positive = ("timeout_s", "memory_mb", "max_processes", "max_open_files", "file_size_mb", "workspace_mb",
                    "tmp_mb", "output_keep_bytes", "max_output_mb", "submission_max_mb", "max_files",
                    "start_timeout_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if self.cpu_time_s is not None and self.cpu_time_s <= 0:
            raise ConfigError(f"cpu_time_s: must be > 0 or None (auto), got {self.cpu_time_s!r}")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"threads: must be > 0 or None (host cores), got {self.threads!r}")
        # Python itself needs a few processes/threads and ~100 MiB of address space just to start.
        if self.max_processes < 4:
            raise ConfigError(f"max_processes: {self.max_processes} cannot even start Python; use >= 4")
        if self.memory_mb < 256:
            raise ConfigError(f"memory_mb: {self.memory_mb} MiB cannot start Python with numpy; use >= 256")
        if self.output_keep_bytes > self.max_output_mb * MIB:
            raise ConfigError("output_keep_bytes: larger than max_output_mb; lower it or raise max_output_mb")
        for k, v in self.env.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k or "=" in k:
                raise ConfigError(f"env: {k!r}={v!r} is not a NAME=string pair")
        for p in self.ro_binds:
            if not os.path.isabs(p):
                raise ConfigError(f"ro_binds: {p!r} must be an absolute host path")

    @property
    def effective_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    @property
    def effective_cpu_time_s(self) -> int:
        # RLIMIT_CPU counts all threads of a process, so N busy threads burn N CPU-seconds per second.
        return int(self.cpu_time_s or self.timeout_s * self.effective_threads) + 1
