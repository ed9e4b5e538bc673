"""The three Ray actors of the asynchronous trainer.

- `CurriculumActor`: the single owner of task state (Evolving Data Buffer + Learnability sampler + admission
  control). Workers never touch SQLite; every state change goes through this actor, so it stays consistent.
- `RolloutWorker`: drives one engine (vLLM or transformers) and a sandbox pool: for a task it samples G responses,
  executes and grades each (acelib.agent), and returns the finished group with behaviour log-probs + version.
  Two rollouts may be in flight per worker: while one executes code in the sandbox, the other generates.
- `LearnerActor`: the DeepSpeed GRPO learner; exports weights for the engines after each step.

The classes are plain Python; `ray.remote(...)` is applied in `acelib.trainer.loop` with the preset's resources,
so the same classes run in-process in unit tests.
"""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from acelib.agent.state import State
from acelib.trainer.staleness import AdmissionControl


def set_torch_threads(n: int | None) -> int:
    """Give this actor's torch `n` intra-op threads (None = every core); returns the number set."""
    import os

    import torch
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


class CurriculumActor:
    def __init__(self, buffer_path: str, buffer_cfg, sampler_cfg, competition_ids: list[str],
                 seed_states: list[State], groups_per_step: int, max_staleness: int, seed: int,
                 admission_state: dict | None = None):
        from acelib.curriculum import EvolvingBuffer, LearnabilitySampler

        self.buffer = EvolvingBuffer(buffer_path, buffer_cfg)
        self.buffer.add_roots(competition_ids, seed_states=seed_states)  # idempotent on resume (dedup by id)
        self.sampler = LearnabilitySampler(self.buffer, sampler_cfg, seed=seed)
        self.admission = (AdmissionControl.from_state_dict(admission_state) if admission_state
                          else AdmissionControl(groups_per_step, max_staleness))

    def acquire(self, steps_done: int, version: int, wanted: int) -> list[dict]:
        """Admit (after `steps_done` learner steps) and sample up to `wanted` tasks at policy version `version`."""
        n = self.admission.admit(steps_done, wanted)
        if n == 0:
            return []
        tasks = self.sampler.sample(n, policy_version=version)
        if len(tasks) < n:
            self.admission.cancel(n - len(tasks))
        return [{"task_id": t.id, "state": t.state, "version": version} for t in tasks]

    def report(self, task_id: str, rewards: list[float], masked: list[bool], version_started: int,
               children: list[State], policy_version: int) -> list[str]:
        self.sampler.report(task_id, rewards, policy_version_started=version_started, masked=masked)
        return self.buffer.add_children(task_id, children, policy_version)

    def release(self, task_id: str) -> None:
        self.sampler.release(task_id)
        self.admission.cancel(1)

    def stats(self) -> dict:
        return self.buffer.stats()

    def checkpoint(self, copy_to: str | None = None) -> dict:
        """Flush to SQLite; with copy_to, also write a consistent copy (the buffer as of this learner step)."""
        if copy_to:
            self.buffer.backup(copy_to)  # flushes the sampler's statistics too
        else:
            self.sampler.checkpoint()
        return self.admission.state_dict()

    def export(self, path: str) -> str:
        self.buffer.export(path)
        return path

    def dataframe(self):
        return self.buffer.dataframe()

    def close(self) -> None:
        self.sampler.checkpoint()
        self.buffer.close()


class RolloutWorker:
    def __init__(self, worker_index: int, model: str, backend: str, rollout_cfg, sampling, group_size: int,
                 competitions: dict[str, str], sandbox_limits, sandbox_workers: int | None, agent_cfg, seed: int,
                 torch_threads: int | None = None):
        from acelib.rollout import make_engine
        from acelib.sandbox import SandboxPool
        from acelib.tasks import load

        set_torch_threads(torch_threads)  # the hf engine's generate; rollout.hf_threads, when set, wins
        self.index = worker_index
        self.engine = make_engine(rollout_cfg, model, backend=backend, seed=seed + 1000 * worker_index)
        self.pool = SandboxPool(workers=sandbox_workers, limits=sandbox_limits)
        self.competitions = {cid: load(root) for cid, root in competitions.items()}
        self.sampling = sampling
        self.group_size = group_size
        self.agent_cfg = agent_cfg
        self.limits = sandbox_limits
        # generate() and weight loading must not interleave; sandbox execution runs outside the lock so a second
        # rollout can generate while the first one's code runs.
        self._engine_lock = threading.Lock()

    def ready(self) -> dict:
        return {"worker": self.index, "engine": type(self.engine).__name__, "policy_version": self.engine.policy_version}

    def sync_weights(self, weights_dir: str, version: int) -> float:
        t0 = time.perf_counter()
        with self._engine_lock:
            self.engine.sync_weights(weights_dir, version)
        return time.perf_counter() - t0

    def responses(self, state: State, samples: list) -> list[str]:
        """The texts the agent step parses and executes: the samples' own. Subclasses may substitute (the pipeline
        benchmark runs reference solutions to get real execution latency from a model that cannot write code)."""
        return [s.text for s in samples]

    def rollout(self, task: dict) -> dict:
        """Sample G responses for one task, execute + grade them, return the finished group."""
        from acelib.agent import build_messages, step_batch

        state: State = task["state"]
        comp = self.competitions[state.competition_id]
        hint = self.agent_cfg.time_limit_hint_s
        messages = build_messages(state, comp, self.agent_cfg.prompt,
                                  time_limit_s=hint if hint is not None else self.limits.timeout_s)
        t0 = time.perf_counter()
        with self._engine_lock:
            samples = self.engine.generate([messages], self.sampling, n=self.group_size)[0]
        gen_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = step_batch([state] * len(samples), self.responses(state, samples), comp, self.pool, self.agent_cfg)
        exec_s = time.perf_counter() - t1
        version = samples[0].policy_version
        children = []
        for r in results:
            if not r.masked:
                r.child.policy_version = version  # the child was produced by this policy version
                children.append(r.child)
        return {
            "task_id": task["task_id"],
            "competition_id": state.competition_id,
            "step_type": state.step_type,
            "version_started": task["version"],
            "policy_version": version,
            "prompt_ids": samples[0].prompt_ids,
            "samples": samples,
            "rewards": [float(r.reward) for r in results],
            "masked": [bool(r.masked) for r in results],
            "children": children,
            "outcomes": [r.info.get("outcome", "") for r in results],
            "gen_s": gen_s,
            "exec_s": exec_s,
            "gen_tokens": sum(len(s.token_ids) for s in samples),
            "sandbox_latency_s": [float(r.info.get("duration_s") or 0.0) for r in results],
        }

    def close(self) -> None:
        self.pool.close()
        self.engine.close()


class LearnerActor:
    def __init__(self, model_dir: str, learner_cfg, grpo_cfg, seed: int, weights_root: str,
                 torch_threads: int | None = None):
        import dataclasses

        from acelib.learner import Learner

        set_torch_threads(torch_threads)

        # The preset's learner/grpo sections are separate config blocks; the run's model and seed win over them.
        self.learner = Learner(dataclasses.replace(learner_cfg, model=model_dir, grpo=grpo_cfg, seed=seed))
        self.weights_root = Path(weights_root)
        self.weights_root.mkdir(parents=True, exist_ok=True)

    @property
    def version(self) -> int:
        return self.learner.version

    def get_version(self) -> int:
        return self.learner.version

    def train_step(self, groups: list[dict]) -> dict[str, Any]:
        from acelib.learner_config import RolloutGroup

        batch = [RolloutGroup(prompt_ids=g["prompt_ids"], samples=g["samples"], rewards=g["rewards"], masked=g["masked"])
                 for g in groups]
        return self.learner.train_step(batch)

    def export_weights(self) -> str:
        """Write the current weights for the engines; keep only the newest two versions on disk."""
        d = self.weights_root / f"v{self.learner.version:06d}"
        self.learner.export_weights(d)
        for old in sorted(self.weights_root.glob("v*"))[:-2]:
            shutil.rmtree(old, ignore_errors=True)
        return str(d)

    def save_checkpoint(self, path: str) -> None:
        self.learner.save_checkpoint(path)

    def load_checkpoint(self, path: str) -> int:
        self.learner.load_checkpoint(path)
        return self.learner.version

    def export_hf(self, path: str) -> str:
        self.learner.export_hf(path)
        return path

    def close(self) -> None:
        close = getattr(self.learner, "close", None)
        if callable(close):
            close()
