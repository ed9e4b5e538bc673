"""The curriculum as one object: the Evolving Data Buffer and the Learnability sampler behind one API, in one
SQLite transaction (docs/buffer.md, docs/learnability.md).

The trainer runs it as `ray.remote(Curriculum)`: the constructor and every method take and return plain, picklable
values. Admission control (how many groups may start) is the driver's; the curriculum only needs each task's
admission index to keep the per-competition cap per learner batch.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from acelib.agent.state import State
from acelib.curriculum.buffer import EvolvingBuffer
from acelib.curriculum.config import BufferConfig, SamplerConfig
from acelib.curriculum.sampler import LearnabilitySampler


@dataclasses.dataclass
class TaskAssignment:
    """One admitted task; crosses Ray: curriculum → driver → rollout worker."""
    task_id: str
    state: State
    policy_version: int  # policy version at acquire; pass it back to report() as policy_version_started
    index: int           # admission index: the driver's count of groups started before this one


class Curriculum:
    """Owner of the buffer at `path` (created, or resumed with its sampler state) and of its sampler.

    `batch_size` (B): groups per learner batch. The group with admission index i belongs to batch i // B, and no
    competition gets more than `sampler.competition_cap(B, ...)` groups of one batch, whatever the sizes of the
    `sample` calls. `std_scaling` (GRPOConfig.std_scaling) and `reward_bounds` (RewardConfig.bounds) set the units
    of Learnability Potential (learnability.group_stats).
    """

    def __init__(self, path: str, buffer_cfg: BufferConfig, sampler_cfg: SamplerConfig, competition_ids: list[str],
                 seed_states: Sequence[State] = (), *, batch_size: int, seed: int = 0, std_scaling: bool = True,
                 reward_bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (groups per learner batch), got {batch_size}")
        self.batch_size = int(batch_size)
        self.buffer = EvolvingBuffer(path, buffer_cfg)
        self.buffer.add_roots(competition_ids, seed_states=seed_states)  # idempotent on resume (dedup by id)
        self.sampler = LearnabilitySampler(self.buffer, sampler_cfg, seed, std_scaling=std_scaling,
                                           reward_bounds=reward_bounds, state=self.buffer.meta("sampler"))
        self.buffer.lp_fn = self.sampler.lp  # eviction ranks by the sampler's LP at its policy version
        # per-competition counts of the current learner batch only: earlier batches are complete, and after a
        # resume the driver's first index says where the batch stands
        self._batch = -1
        self._taken = np.zeros(len(self.buffer.comps), dtype=np.int64)
        self._out: dict[str, list[tuple[int, int]]] = {}  # task id → (batch, competition) of its rollouts in flight

    def sample(self, k: int, policy_version: int, first_index: int) -> list[TaskAssignment]:
        """Up to k tasks for the groups with admission indices first_index, first_index + 1, … (in order), drawn
        at policy version `policy_version` and marked in flight. Fewer come back when a batch's competition caps or
        the available items do not allow more (ask again later, from the next unused index)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if first_index < 0:
            raise ValueError(f"first_index must be >= 0 (groups started before this one), got {first_index}")
        out: list[TaskAssignment] = []
        index, end = first_index, first_index + k
        while index < end:
            batch = index // self.batch_size
            if batch != self._batch:
                self._batch = batch
                self._taken[:] = 0
            n = min(end, (batch + 1) * self.batch_size) - index
            tasks = self.sampler.sample(n, policy_version, cap_batch=self.batch_size, taken=self._taken)
            for t in tasks:
                c = self.buffer.comp_index[t.competition_id]
                self._taken[c] += 1
                self._out.setdefault(t.id, []).append((batch, c))
                out.append(TaskAssignment(t.id, t.state, int(policy_version), index))
                index += 1
            if len(tasks) < n:
                break  # indices stay contiguous: the next call starts at the first one not returned
        return out

    def _landed(self, task_id: str) -> tuple[int, int]:
        """(batch, competition) of one rollout of `task_id` that came back (the oldest, if several are out)."""
        out = self._out[task_id]
        batch_comp = out.pop(0)
        if not out:
            del self._out[task_id]
        return batch_comp

    def report(self, task_id: str, rewards: list[float], masked: list[bool], policy_version_started: int,
               children: list[State], children_policy_version: int) -> list[str]:
        """Record the finished group of `task_id` (its rewards, infra-masked flags and the policy version it was
        assigned at) and insert the child states of its executed steps, produced by policy version
        `children_policy_version`. Returns the ids of the children actually inserted."""
        self.sampler.report(task_id, rewards, policy_version_started, masked)
        self._landed(task_id)
        return self.buffer.add_children(task_id, children, children_policy_version)

    def release(self, task_id: str) -> None:
        """Give back an assigned task whose rollout will not report (nothing recorded)."""
        self.sampler.release(task_id)
        batch, c = self._landed(task_id)
        if batch == self._batch:  # its place in the current batch may go to another task of its competition
            self._taken[c] -= 1

    def stats(self) -> dict:
        """The buffer's metrics (EvolvingBuffer.stats)."""
        return self.buffer.stats()

    def _meta(self) -> dict:
        self.sampler.rebuild()  # drops float drift of the incremental sums: the live sampler equals a reload's
        return {"sampler": self.sampler.state_dict()}

    def checkpoint(self, copy_to: str | None = None) -> None:
        """Commit buffer and sampler state in one SQLite transaction; with `copy_to`, also write a consistent
        single-file copy there (the buffer as of this learner step, to resume from)."""
        if copy_to:
            self.buffer.backup(copy_to, self._meta())
        else:
            self.buffer.checkpoint(self._meta())

    def dataframe(self) -> pd.DataFrame:
        """Active items with their statistics, `lp` and single-draw probability `p_sample`."""
        df = self.buffer.dataframe()
        df["p_sample"] = self.sampler.probabilities_rows(np.array([self.buffer.id_to_row[i] for i in df["id"]],
                                                                  dtype=np.int64))
        return df

    def export(self, path: str) -> str:
        """Write `dataframe()` to a .parquet or .csv file (an MLflow artifact); returns the path."""
        suffix = Path(path).suffix
        if suffix not in (".parquet", ".csv"):
            raise ValueError(f"export path must end in .parquet or .csv, got {Path(path).name!r}")
        df = self.dataframe()
        if suffix == ".parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        return str(path)

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.buffer.close(self._meta())
