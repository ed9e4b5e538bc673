"""The learner as a group of Ray actors that form one torch.distributed process group (DeepSpeed ZeRO across them).

`LearnerGroup(n, ...)` starts n `LearnerRank` actors (one GPU each on a GPU cluster; CPU processes otherwise, gloo),
lets rank 0 pick the rendezvous address, and builds one `acelib.learner.Learner` per rank. Every call goes to every
rank with the same arguments (the batch is sent once through the object store); each rank trains its deterministic
share of the micro-batches, rank 0 writes exported weights, and checkpoints hold every rank's ZeRO partition.

Start-up never hangs silently: each phase (actor start, rendezvous + model load) has a timeout whose error names
what it waited for.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any


def redirect_output(log_file: str | None) -> None:
    """Send this actor process's stdout and stderr (and those of processes it starts, e.g. vLLM's engine core) to
    `log_file`, so engine, DeepSpeed and transformers logs land in the run directory, not in the notebook."""
    if not log_file:
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)


def set_torch_threads(n: int | None) -> int:
    """Give this process's torch `n` intra-op threads (None = every core); returns the number set."""
    import torch
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


class LearnerRank:
    """One rank of the learner group (a plain class; `ray.remote` is applied by `LearnerGroup`)."""

    def __init__(self, rank: int, world_size: int, weights_root: str, torch_threads: int | None = None,
                 log_file: str | None = None):
        redirect_output(log_file)
        self.rank, self.world_size = rank, world_size
        self.weights_root = Path(weights_root)
        self.learner = None
        set_torch_threads(torch_threads)

    def rendezvous_address(self) -> tuple[str, int]:
        """This node's address and a free port on it (asked of rank 0 only)."""
        import ray
        ip = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind(("", 0))
            return ip, s.getsockname()[1]

    def setup(self, master: tuple[str, int], model_dir: str, learner_cfg, grpo_cfg, temperature: float,
              seed: int) -> int:
        """Join the process group and build the Learner; returns the rank. All ranks must call it concurrently."""
        import torch
        os.environ.update({"MASTER_ADDR": master[0], "MASTER_PORT": str(master[1]), "RANK": str(self.rank),
                           "WORLD_SIZE": str(self.world_size),
                           # Ray gives each GPU actor its own CUDA_VISIBLE_DEVICES: the device is always index 0.
                           "LOCAL_RANK": "0" if torch.cuda.is_available() else str(self.rank)})
        from acelib.learner.engine import Learner
        self.learner = Learner(model_dir, learner_cfg, grpo_cfg, temperature=temperature, seed=seed)
        self.weights_root.mkdir(parents=True, exist_ok=True)
        return self.rank

    def policy_version(self) -> int:
        return self.learner.policy_version

    def train_step(self, groups: list) -> dict[str, Any]:
        return self.learner.train_step(groups)

    def step(self, groups: list) -> tuple[dict[str, Any], str | None]:
        """One GRPO step, then (when it changed the weights) the export for the engines, in one call so the driver
        never blocks between them: (metrics, weights directory or None)."""
        before = self.learner.policy_version
        metrics = self.learner.train_step(groups)
        return metrics, (self.export_weights() if self.learner.policy_version != before else None)

    def export_weights(self) -> str:
        """Write the current weights for the engines (rank 0 writes; every rank gathers under ZeRO-3); keeps the
        newest two versions on disk, since an engine may still be reading the previous one."""
        d = self.weights_root / f"v{self.learner.policy_version:06d}"
        self.learner.export_weights(d)
        if self.rank == 0:
            for old in sorted(self.weights_root.glob("v*"))[:-2]:
                shutil.rmtree(old, ignore_errors=True)
        return str(d)

    def save_checkpoint(self, path: str) -> None:
        self.learner.save_checkpoint(path)

    def load_checkpoint(self, path: str) -> int:
        self.learner.load_checkpoint(path)
        return self.learner.policy_version

    def export_hf(self, path: str) -> str:
        self.learner.export_hf(path)
        return path

    def close(self) -> None:
        if self.learner is not None:
            self.learner.close()


class LearnerGroup:
    """Driver-side handle of the learner ranks. `submit(method, *args)` returns one ObjectRef per rank (rank 0's
    result first: it is the group's result once every ref is done); `call` blocks and returns rank 0's result."""

    def __init__(self, ranks: int, model_dir: str, learner_cfg, grpo_cfg, *, temperature: float, seed: int,
                 weights_root: str, gpus_per_rank: float = 0.0, resources: dict[str, float] | None = None,
                 torch_threads: int | None = None, start_timeout_s: float = 600.0, log_dir: str | None = None,
                 scheduling_strategy=None):
        import ray
        if ranks < 1:
            raise ValueError(f"a learner group needs ≥ 1 rank, got {ranks}")
        actor = ray.remote(num_cpus=0, num_gpus=gpus_per_rank, resources=resources or None,
                           scheduling_strategy=scheduling_strategy)(LearnerRank)
        self.ranks = [actor.remote(r, ranks, weights_root, torch_threads,
                                   f"{log_dir}/learner_rank_{r}.log" if log_dir else None) for r in range(ranks)]
        self.weights_root = weights_root
        t0 = time.monotonic()
        master = _get(self.ranks[0].rendezvous_address.remote(), start_timeout_s,
                      f"learner rank 0 to start (Ray could not place a learner actor with {gpus_per_rank} GPU(s)"
                      f"{' and ' + str(resources) if resources else ''}: is the cluster missing those resources?)")
        left = max(1.0, start_timeout_s - (time.monotonic() - t0))
        _get([a.setup.remote(master, model_dir, learner_cfg, grpo_cfg, temperature, seed) for a in self.ranks], left,
             f"{ranks} learner rank(s) to join the process group at {master[0]}:{master[1]} and load the model "
             "(a rank that cannot reach rank 0, or a DeepSpeed op build stuck on a stale lock in "
             "$TORCH_EXTENSIONS_DIR, ends here)")

    def submit(self, method: str, *args) -> list:
        import ray
        refs = [ray.put(a) if isinstance(a, list) else a for a in args]   # a batch crosses the object store once
        return [getattr(r, method).remote(*refs) for r in self.ranks]

    def call(self, method: str, *args, timeout_s: float | None = None):
        return _get(self.submit(method, *args), timeout_s, f"learner.{method}")[0]

    def close(self, timeout_s: float = 60.0) -> None:
        import ray
        try:
            ray.get([r.close.remote() for r in self.ranks], timeout=timeout_s)
        finally:
            for r in self.ranks:
                ray.kill(r)


def _get(refs, timeout_s: float | None, what: str):
    """ray.get with a timeout whose error says what was awaited (an actor start-up must not hang silently)."""
    import ray
    try:
        return ray.get(refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}") from None
