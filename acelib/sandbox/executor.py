"""The executor tier: sandbox pools on executor nodes, reached through Ray (docs/sandbox.md, "Executor tier").

    client = executor_pool(n_executors=2, workers_per_executor=4, resources={"executor": 1}, limits=Limits())
    fut = client.submit(code, competition)      # concurrent.futures.Future[ExecResult], as SandboxPool.submit
    client.close()

An `Executor` (a plain class; `start_executors` applies `ray.remote`) owns one `SandboxPool` on its node. An
`ExecutorClient` has the interface `step_batch` uses (`submit`, `close`), so a rollout worker swaps its local pool
for it. A competition's PUBLIC directory travels once per competition as a content-hashed tar in the object store;
the executor unpacks it into its node-local cache. The private answers never leave the caller, which also grades.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import ray

from acelib.sandbox.limits import Limits
from acelib.sandbox.pool import SandboxPool
from acelib.sandbox.result import ExecResult
from acelib.tasks.competition import Competition

log = logging.getLogger(__name__)

CACHE_SUBDIR = "executor"   # under $ACELIB_CACHE_DIR of the executor's node


def default_cache_dir() -> Path:
    """`$ACELIB_CACHE_DIR/executor` (default `~/.cache/acelib/executor`), resolved on the executor's node."""
    return Path(os.environ.get("ACELIB_CACHE_DIR") or Path.home() / ".cache" / "acelib") / CACHE_SUBDIR


# ------------------------------------------------------------------------------------------ public data


@dataclasses.dataclass(frozen=True)
class PublicData:
    """A competition's public side as it travels to executors.

    `tar` is the bytes of an uncompressed tar of `public_dir` (from `pack_public`), or, once the client put it in the
    object store, the ObjectRef of those bytes: nested in this dataclass, Ray does not resolve it at the call, so an
    executor fetches it only when its node has not staged `key` yet.
    """

    key: str                  # "<competition id>-<sha256 of tar + metadata>": the executor cache directory name
    tar: bytes | ray.ObjectRef
    metadata: dict | None     # Competition.to_json() (no paths, no answers); None for a bare object with .public_dir
    nbytes: int               # size of the tar, for logs


@dataclasses.dataclass(frozen=True)
class PublicDir:
    """What an executor runs a program for when the caller passed a bare object with `.public_dir` (not a
    Competition): the staged public directory and nothing else."""

    public_dir: Path


def pack_public(competition) -> PublicData:
    """Tar `competition.public_dir` (only it; never the private answers) with its metadata, content-hashed.

    Deterministic (sorted entries, zeroed owners and times, fixed modes), so the same data packed by two rollout
    workers gets the same key and is staged once per executor node. Refuses symbolic links: a link could point at
    the private answers, which the local sandbox cannot follow but a copied tar would carry.
    """
    public = getattr(competition, "public_dir", None)
    if public is None:
        raise TypeError(f"competition must have .public_dir (a Competition), got {type(competition).__name__}")
    public = Path(public)
    if not public.is_dir():
        raise FileNotFoundError(f"competition public dir {public} does not exist; prepare the competition first")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(public):
            dirs.sort()   # os.walk descends in this order
            for name in dirs + sorted(files):
                path = Path(root) / name
                if path.is_symlink():
                    raise ValueError(f"{path} is a symbolic link; executors receive regular files only: replace it "
                                     "with a copy of its target in prepared/public/")
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(public)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.mode = 0o755 if info.isdir() else 0o644   # readable by the sandbox's private uid
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                elif info.isdir():
                    tar.addfile(info)
                else:
                    raise ValueError(f"{path} is neither a file nor a directory; remove it from prepared/public/")
    data = buf.getvalue()
    metadata = competition.to_json() if isinstance(competition, Competition) else None
    digest = hashlib.sha256(data)
    digest.update(json.dumps(metadata, sort_keys=True).encode())
    name = getattr(competition, "id", None) or public.parent.parent.name or "public"
    key = f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)[:64]}-{digest.hexdigest()[:24]}"
    return PublicData(key, data, metadata, len(data))


def stage_public(data: PublicData, cache_dir: str | Path) -> Competition | PublicDir:
    """The competition an executor runs programs for: `data` unpacked (once per node) under `cache_dir/<key>`.

    Its root holds `prepared/public/` only, so its `private_dir` does not exist on this node. `data.tar` must be
    bytes unless the key is staged already. The unpack goes to a temporary sibling renamed into place, so
    concurrent executors on one node and a crash mid-unpack never leave a half-written directory under the key.
    """
    root = Path(cache_dir) / data.key
    if not root.is_dir():
        if not isinstance(data.tar, bytes):
            raise TypeError("stage_public needs the tar bytes (ray.get the ObjectRef first)")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{data.key}.partial-", dir=root.parent))
        public = tmp / "prepared" / "public"
        public.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data.tar), mode="r:") as tar:
            tar.extractall(public, filter="data")   # refuses absolute paths, `..` and links out of the tree
        tmp.chmod(0o755)   # mkdtemp makes it 0700; keep it like any prepared competition directory
        try:
            os.rename(tmp, root)
        except OSError:   # another executor of this node staged the same content first
            if not root.is_dir():
                raise
            shutil.rmtree(tmp)
    if data.metadata is None:
        return PublicDir(root / "prepared" / "public")
    return Competition.from_json(root, data.metadata)


# ------------------------------------------------------------------------------------------ the actor


@dataclasses.dataclass(frozen=True)
class ExecutorInfo:
    """Where an executor runs (its `ready()` answer)."""

    node_id: str
    hostname: str
    pid: int
    workers: int
    isolation: str
    cache_dir: str


class Executor:
    """One node's sandbox pool behind a Ray actor (`start_executors` applies `ray.remote`).

    An async actor: each `run` awaits its execution on the pool's threads, so the actor's event loop serves as many
    concurrent calls as its callers send while the pool bounds how many programs run at once (`workers`).
    """

    def __init__(self, workers: int | None = None, limits: Limits | None = None, cache_dir: str | None = None):
        self.pool = SandboxPool(workers=workers, limits=limits)   # refuses here if the node lacks bwrap
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._staged: dict[str, asyncio.Future] = {}

    async def run(self, code: str, data: PublicData, limits: Limits | None = None) -> ExecResult:
        """Run `code` for the competition `data` describes; the ExecResult carries the submission bytes."""
        comp = await self._competition(data)
        return await self.pool.run_async(code, comp, limits)

    async def _competition(self, data: PublicData):
        staged = self._staged.get(data.key)
        if staged is None:
            # One staging per key and actor; concurrent runs of the same competition await the same task.
            staged = self._staged[data.key] = asyncio.ensure_future(self._stage(data))
            staged.add_done_callback(lambda t: self._forget_failed(data.key, t))
        return await staged

    def _forget_failed(self, key: str, task: asyncio.Future) -> None:
        # A failed staging (e.g. the object was lost with its owner) must not poison the key: the next run retries.
        if task.cancelled() or task.exception() is not None:
            self._staged.pop(key, None)

    async def _stage(self, data: PublicData):
        if not (self.cache_dir / data.key).is_dir() and isinstance(data.tar, ray.ObjectRef):
            data = dataclasses.replace(data, tar=await data.tar)
        return await asyncio.to_thread(stage_public, data, self.cache_dir)

    async def ready(self) -> ExecutorInfo:
        """Where this executor runs; answered once the actor (re)started."""
        return ExecutorInfo(ray.get_runtime_context().get_node_id(), socket.gethostname(), os.getpid(),
                            self.pool.workers, self.pool.limits.isolation, str(self.cache_dir))

    async def watch(self, period_s: float) -> None:
        """Return after `period_s`. A client keeps one such call pending per executor: it fails as soon as this
        actor dies, which is how clients learn of a death while they have no work on it."""
        await asyncio.sleep(period_s)

    def close(self) -> None:
        """Wait for running executions and kill the warm sandboxes (rlimits-mode sandboxes outlive a killed actor)."""
        self.pool.close()


def start_executors(n_executors: int, workers_per_executor: int | None = None,
                    resources: dict[str, float] | None = None, limits: Limits | None = None, *,
                    num_cpus: float = 0, cache_dir: str | None = None) -> list:
    """Create `n_executors` executor actors (handles; they start in the background, `ExecutorClient.ready` waits).

    resources: custom Ray resources each executor asks for, e.g. {"executor": 1}: only nodes started with
    `ray start --resources '{"executor": N}'` get executors (N per node at most); None = any node (one machine).
    Executors are spread over the nodes that qualify and restarted by Ray whenever they die (max_restarts=-1),
    also on another node with the resource. A call in flight on a dying executor is not retried (its Future
    fails): a program may have side effects and its time limit has been spent.
    num_cpus: Ray CPUs each executor reserves (0 = none: like a rollout worker's own pool, the sandboxes' CPU use is
    bounded by `workers_per_executor` and `Limits.threads`, not by Ray).
    """
    if n_executors < 1:
        raise ValueError(f"n_executors must be >= 1, got {n_executors}; with no executors use a local SandboxPool")
    if workers_per_executor is not None and workers_per_executor < 1:
        raise ValueError(f"workers_per_executor must be >= 1 (or None for the node's cores), got "
                         f"{workers_per_executor}")
    actor = ray.remote(Executor).options(num_cpus=num_cpus, resources=resources or None, max_restarts=-1,
                                         max_task_retries=0, scheduling_strategy="SPREAD")
    return [actor.remote(workers_per_executor, limits or Limits(), cache_dir) for _ in range(n_executors)]


# ------------------------------------------------------------------------------------------ the client


@dataclasses.dataclass
class ExecutorSlot:
    """The client's view of one executor (`ExecutorClient.status()`)."""

    index: int
    handle: object            # the actor handle
    up: bool = True           # False from a detected death until the restarted actor answers `ready`
    inflight: int = 0         # this client's calls not finished yet
    deaths: int = 0           # deaths this client saw


@dataclasses.dataclass
class _Job:
    code: str
    data: PublicData
    limits: Limits
    future: concurrent.futures.Future   # what `submit` returned
    since: float                        # time.monotonic() of the submit


def pick_slot(slots: Sequence[ExecutorSlot], start: int) -> ExecutorSlot | None:
    """The least-loaded live executor, ties broken round-robin from index `start`; None if none is live."""
    live = [s for s in slots if s.up]
    n = len(slots)
    return min(live, key=lambda s: (s.inflight, (s.index - start) % n)) if live else None


class ExecutorClient:
    """`SandboxPool.submit`/`close` over executor actors, for `step_batch` and `RolloutWorker`.

    Load: each call goes to the live executor with the fewest of THIS client's calls in flight (round-robin on
    ties); clients do not see each other's load. Deaths: a monitor thread keeps one `watch` call pending per
    executor; when it fails, the executor is marked down (new work goes to the others) until its restarted actor
    answers `ready`. Calls in flight on a dying executor fail their Future with a `ray.exceptions.RayActorError`
    (Ray also rejects calls to a restarting actor at once). Work submitted while no executor is live waits in the
    client, up to `wait_for_executor_s`, and goes to the first one back.
    """

    def __init__(self, executors: Sequence, limits: Limits | None = None, *, owns_executors: bool = False,
                 wait_for_executor_s: float = 600.0, watch_period_s: float = 30.0, retry_s: float = 1.0):
        """executors: actor handles from `start_executors` (several clients may share them).
        owns_executors: `close()` also closes and kills them (what `executor_pool` sets).
        wait_for_executor_s: how long a submission may wait for a live executor before its Future raises
        TimeoutError. watch_period_s / retry_s: how often a live executor's watch call is renewed / a down
        executor is asked whether it is back."""
        if not executors:
            raise ValueError("no executors: create them with start_executors(n_executors, ...) (n_executors >= 1)")
        self.limits = limits or Limits()
        self.slots = [ExecutorSlot(i, h) for i, h in enumerate(executors)]
        self.owns_executors = owns_executors
        self.wait_for_executor_s = wait_for_executor_s
        self.watch_period_s = watch_period_s
        self.retry_s = retry_s
        self._public: dict[tuple[str, str], PublicData] = {}
        self._waiting: list[_Job] = []
        self._lock = threading.Lock()
        self._pack_lock = threading.Lock()
        self._next = 0
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._watch_loop, name="acelib-executor-monitor", daemon=True)
        self._monitor.start()

    # ---- the SandboxPool interface
    def submit(self, code: str, competition, limits: Limits | None = None) -> concurrent.futures.Future:
        """Future[ExecResult] of running `code` for `competition` on an executor (limits default to the client's).

        The Future raises a `ray.exceptions.RayActorError` if the executor dies while running it, TimeoutError if
        no executor was live for `wait_for_executor_s`.
        """
        if self._closed.is_set():
            raise RuntimeError("ExecutorClient is closed")
        job = _Job(code, self.public_data(competition), limits or self.limits, concurrent.futures.Future(),
                   time.monotonic())
        with self._lock:
            slot = self._take_slot()
            if slot is None:
                self._waiting.append(job)
        if slot is not None:
            self._dispatch(slot, job)
        return job.future

    def public_data(self, competition) -> PublicData:
        """The competition's packed public data, put in the object store on first use (then reused).

        Packed once per public directory and metadata for the client's lifetime: data changed under a running
        client is not re-sent (prepare competitions before training)."""
        metadata = competition.to_json() if isinstance(competition, Competition) else None
        key = (os.path.realpath(getattr(competition, "public_dir", "")), json.dumps(metadata, sort_keys=True))
        with self._pack_lock:
            if key not in self._public:
                packed = pack_public(competition)
                # The caller owns the object: it lives as long as this client holds the reference.
                self._public[key] = dataclasses.replace(packed, tar=ray.put(packed.tar))
            return self._public[key]

    def close(self) -> None:
        """Stop watching (waiting submissions fail); with `owns_executors`, close the executors (waiting for their
        runs) and kill them."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._monitor.join()
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for job in waiting:
            job.future.set_exception(RuntimeError("ExecutorClient closed before an executor was live"))
        if self.owns_executors:
            handles = [s.handle for s in self.slots]
            # Bounded: a dead executor answers at once (with an error), a stuck one is killed anyway.
            ray.wait([h.close.remote() for h in handles], num_returns=len(handles), timeout=60)
            for h in handles:
                ray.kill(h, no_restart=True)
        self._public.clear()

    def __enter__(self) -> "ExecutorClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- state
    def ready(self, timeout_s: float = 300.0) -> list[ExecutorInfo]:
        """Wait until every executor has started; TimeoutError naming the likely cause if they do not."""
        refs = [s.handle.ready.remote() for s in self.slots]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        if pending:
            raise TimeoutError(
                f"{len(pending)} of {len(refs)} executor(s) did not start within {timeout_s:g} s: no node has the "
                "resources they ask for (start one with `ray start --address ... --resources '{\"executor\": N}'`, "
                "or create them with resources=None on one machine), or the cluster is out of them")
        return ray.get(refs)

    def status(self) -> list[ExecutorSlot]:
        """A snapshot of each executor's state as this client sees it."""
        with self._lock:
            return [dataclasses.replace(s) for s in self.slots]

    # ---- dispatch
    def _take_slot(self) -> ExecutorSlot | None:
        """Under self._lock: the executor for the next call, its in-flight count already raised."""
        slot = pick_slot(self.slots, self._next)
        if slot is not None:
            self._next = (slot.index + 1) % len(self.slots)
            slot.inflight += 1
        return slot

    def _dispatch(self, slot: ExecutorSlot, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():   # cancelled while it waited
            self._release(slot)
            return
        ref = slot.handle.run.remote(job.code, job.data, job.limits)
        ref.future().add_done_callback(lambda f: self._finished(slot, job, f))

    def _finished(self, slot: ExecutorSlot, job: _Job, f: concurrent.futures.Future) -> None:
        self._release(slot)
        if f.exception() is not None:
            job.future.set_exception(f.exception())
        else:
            job.future.set_result(f.result())

    def _release(self, slot: ExecutorSlot) -> None:
        with self._lock:
            slot.inflight -= 1

    def _drain_waiting(self) -> None:
        """Hand waiting submissions to live executors; fail those that waited longer than wait_for_executor_s."""
        now, ready, expired = time.monotonic(), [], []
        with self._lock:
            while self._waiting:
                if now - self._waiting[0].since > self.wait_for_executor_s:
                    expired.append(self._waiting.pop(0))
                    continue
                slot = self._take_slot()
                if slot is None:
                    break
                ready.append((slot, self._waiting.pop(0)))
        for slot, job in ready:
            self._dispatch(slot, job)
        for job in expired:
            job.future.set_exception(TimeoutError(
                f"no executor was live for {self.wait_for_executor_s:g} s: their nodes are gone; start a node with "
                "the executor resource (`ray start --address ... --resources '{\"executor\": N}'`)"))

    def _watch_loop(self) -> None:
        """Keep one `watch` (while up) or `ready` (while down) call pending per executor and react to answers.
        One thread with `ray.wait`, so no Ray call is made from Ray's own callback threads."""
        pending: dict = {s.handle.watch.remote(self.watch_period_s): s for s in self.slots}
        retry: list[tuple[float, ExecutorSlot]] = []   # down executors asked again later (Ray rejects calls to a
        # restarting actor at once, so asking right away would spin)
        while not self._closed.is_set() and ray.is_initialized():
            now = time.monotonic()
            for item in [r for r in retry if r[0] <= now]:
                retry.remove(item)
                pending[item[1].handle.ready.remote()] = item[1]
            if pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            else:
                done = []
                self._closed.wait(0.5)
            for ref in done:
                slot = pending.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    if slot.up:
                        with self._lock:
                            slot.up, slot.deaths = False, slot.deaths + 1
                        log.warning("executor %d died (%s); its work goes to the others until it is back",
                                    slot.index, type(e).__name__)
                    retry.append((time.monotonic() + self.retry_s, slot))
                    continue
                if not slot.up:
                    with self._lock:
                        slot.up = True
                    log.warning("executor %d is back", slot.index)
                pending[slot.handle.watch.remote(self.watch_period_s)] = slot
            if self._waiting:
                self._drain_waiting()


def executor_pool(n_executors: int, workers_per_executor: int | None = None,
                  resources: dict[str, float] | None = None, limits: Limits | None = None, *,
                  num_cpus: float = 0, cache_dir: str | None = None) -> ExecutorClient:
    """Start `n_executors` executors (see `start_executors`) and return a client that owns them (`close()` kills
    them). For several rollout workers sharing executors, call `start_executors` once and give each worker an
    `ExecutorClient(handles, limits)`."""
    handles = start_executors(n_executors, workers_per_executor, resources, limits, num_cpus=num_cpus,
                              cache_dir=cache_dir)
    return ExecutorClient(handles, limits, owns_executors=True)
