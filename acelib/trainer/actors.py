"""The rollout worker actor (the curriculum actor is `ray.remote(acelib.curriculum.Curriculum)`, the learner a
`acelib.trainer.learner_group.LearnerGroup`).

`RolloutWorker` drives one engine (vLLM or transformers) and a sandbox pool: for a task it samples G responses,
executes and grades each (acelib.agent), and returns a `FinishedGroup` with behaviour log-probs and the policy
version. `resources.rollouts_per_worker` rollouts may be in flight per worker: their generation requests are merged
into one engine call when they coincide (`acelib.rollout.BatchedGenerator`), and one group's code runs in the sandbox
while another generates. Weight syncs run in their own concurrency group and wait only for the engine, never for a
rollout's sandbox runs. A fault in one sample (generation, execution or grading raising) masks that sample as an
infrastructure error and keeps its traceback; the group and the run go on.

The class is plain Python; `ray.remote(...)` is applied by the trainer with the preset's resources, so it also
runs in-process (benchmarks, tests).
"""
from __future__ import annotations

import time
import traceback

import ray

from acelib.agent.state import State, normalise_code
from acelib.trainer.learner_group import redirect_output, set_torch_threads
from acelib.trainer.payloads import FinishedGroup, ProbeResult


def concurrency_groups(rollouts_per_worker: int) -> dict[str, int]:
    """The worker's Ray concurrency groups: its rollouts (and the probe) in threads, weight syncs beside them."""
    return {"rollout": rollouts_per_worker, "io": 1}


class RolloutWorker:
    def __init__(self, worker_index: int, model: str, backend: str, rollout_cfg, sampling, group_size: int,
                 competitions: dict[str, str], sandbox_limits, sandbox_workers: int | None, agent_cfg, seed: int,
                 torch_threads: int | None = None, log_file: str | None = None, executors: list | None = None,
                 rollouts_per_worker: int = 2):
        redirect_output(log_file)
        from acelib.rollout import BatchedGenerator, make_engine
        from acelib.sandbox import SandboxPool
        from acelib.sandbox.executor import ExecutorClient
        from acelib.tasks import load

        set_torch_threads(torch_threads)  # the hf engine's generate; rollout.hf_threads, when set, wins
        self.index = worker_index
        self.engine = make_engine(rollout_cfg, model, backend=backend, seed=seed)
        # Programs run on the executor tier (other nodes) when there is one, else in this worker's own pool.
        self.pool = (ExecutorClient(executors, limits=sandbox_limits) if executors
                     else SandboxPool(workers=sandbox_workers, limits=sandbox_limits))
        self.competitions = {cid: load(root) for cid, root in competitions.items()}
        self.sampling = sampling
        self.group_size = group_size
        self.agent_cfg = agent_cfg
        self.limits = sandbox_limits
        # Generation and weight loading never interleave (the generator's engine lock); sandbox execution runs
        # outside it, so a rollout can generate while another one's code runs.
        self.generator = BatchedGenerator(self.engine, window_s=rollout_cfg.batch_window_s,
                                          max_requests=rollouts_per_worker)

    @ray.method(concurrency_group="io")
    def ready(self) -> dict:
        return {"worker": self.index, "engine": type(self.engine).__name__, "policy_version": self.engine.policy_version}

    @ray.method(concurrency_group="io")
    def sync_weights(self, weights_dir: str, policy_version: int) -> float:
        """Load new weights between two generations; returns the seconds spent loading (the driver measures the
        wait including the queueing)."""
        with self.generator.exclusive() as engine:
            t0 = time.perf_counter()
            engine.sync_weights(weights_dir, policy_version)
            return time.perf_counter() - t0

    def responses(self, state: State, samples: list) -> list[str]:
        """The texts the agent step parses and executes: the samples' own. Subclasses may substitute (the pipeline
        benchmark runs reference solutions to get real execution latency from a model that cannot write code)."""
        return [s.text for s in samples]

    def _generate(self, messages) -> tuple[list, list[str], float]:
        """G samples (batched with the worker's other rollouts) and the group's share of engine seconds, or G masked
        placeholders with the error when generation raises (e.g. a prompt over the engine's max_model_len)."""
        from acelib.rollout.base import Sample, chat_prompt_ids
        try:
            samples, engine_s = self.generator.generate_with_cost(messages, self.sampling, self.group_size)
            return samples, [], engine_s
        except Exception:
            error = traceback.format_exc()
        prompt = chat_prompt_ids(self.engine.tokenizer, messages)
        blank = Sample(prompt_ids=prompt, token_ids=[], logprobs=[], text="", policy_version=self.engine.policy_version)
        return [blank] * self.group_size, [f"generation failed:\n{error}"] * self.group_size, 0.0

    @ray.method(concurrency_group="rollout")
    def rollout(self, task) -> FinishedGroup:
        """Sample G responses for one task (a curriculum TaskAssignment), execute + grade them."""
        from acelib.agent import agent_messages, step_batch

        state: State = task.state
        comp = self.competitions[state.competition_id]
        messages = agent_messages(state, comp, self.agent_cfg, self.limits.timeout_s)
        t0 = time.perf_counter()
        samples, gen_errors, engine_s = self._generate(messages)
        gen_s, t1 = time.perf_counter() - t0, time.perf_counter()
        policy_version = samples[0].policy_version
        if gen_errors:
            results, errors = [], gen_errors
        else:
            results = step_batch([state] * len(samples), self.responses(state, samples), comp, self.pool,
                                 self.agent_cfg)   # a sample whose execution or grading raises comes back masked
            errors = [r.info["error"] for r in results if r.masked and "error" in r.info]
        exec_s = time.perf_counter() - t1
        masked = [True] * len(samples) if gen_errors else [bool(r.masked) for r in results]
        parent_code = normalise_code(state.code) if state.code.strip() else None
        children = []
        for r in results:
            if not r.masked:
                r.child.policy_version = policy_version   # the child was produced by these weights
                children.append(r.child)
        return FinishedGroup(
            task_id=task.task_id, index=task.index, competition_id=state.competition_id, step_type=state.step_type,
            policy_version_started=task.policy_version, policy_version=policy_version,
            prompt_ids=samples[0].prompt_ids, samples=samples,
            rewards=[0.0] * len(samples) if gen_errors else [float(r.reward) for r in results], masked=masked,
            outcomes=(["infra_error"] * len(samples) if gen_errors else
                      [("infra_error" if r.masked else r.info.get("outcome", "")) for r in results]),
            children=children,
            identical_to_parent=([False] * len(samples) if gen_errors or parent_code is None else
                                 [normalise_code(r.child.code) == parent_code and not r.masked for r in results]),
            gen_s=gen_s, gen_engine_s=engine_s, exec_s=exec_s, gen_tokens=sum(len(s.token_ids) for s in samples),
            sandbox_latency_s=[float(r.info.get("duration_s") or 0.0) for r in results], errors=errors,
            executor_lost=any(r.info.get("executor_lost", False) for r in results))

    @ray.method(concurrency_group="rollout")
    def evaluate(self, states: list[State], n: int) -> ProbeResult:
        """`n` responses to each of `states`, executed and graded, nothing trained or reported: the probe. All
        prompts go to the engine in one call (a larger batch than a group: the engine's per-token cost is shared)."""
        from acelib.agent import agent_messages, step_batch

        messages = [agent_messages(s, self.competitions[s.competition_id], self.agent_cfg, self.limits.timeout_s)
                    for s in states]
        t0 = time.perf_counter()
        try:
            with self.generator.exclusive() as engine:
                samples = engine.generate(messages, self.sampling, n=n)
                version = engine.policy_version
        except Exception:   # a probe that cannot generate is not counted; the run goes on
            print(f"probe: generation failed:\n{traceback.format_exc()}", flush=True)
            return ProbeResult(self.engine.policy_version, [["infra_error"] * n for _ in states],
                               [[False] * n for _ in states], [""] * len(states), time.perf_counter() - t0, 0.0)
        gen_s, t1 = time.perf_counter() - t0, time.perf_counter()
        texts = [t for s, per in zip(states, samples) for t in self.responses(s, per)]
        results = step_batch([s for s in states for _ in range(n)], texts,
                             [self.competitions[s.competition_id] for s in states for _ in range(n)], self.pool,
                             self.agent_cfg)
        outcomes, same = [], []
        for k, s in enumerate(states):
            parent = normalise_code(s.code)
            part = results[k * n:(k + 1) * n]
            outcomes.append([("infra_error" if r.masked else r.info.get("outcome", "")) for r in part])
            same.append([normalise_code(r.child.code) == parent and not r.masked for r in part])
        return ProbeResult(version, outcomes, same, [texts[k * n] for k in range(len(states))], gen_s,
                           time.perf_counter() - t1)

    def close(self) -> None:
        self.pool.close()
        self.engine.close()
