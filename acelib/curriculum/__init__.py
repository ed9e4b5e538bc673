"""Curriculum: the Evolving Data Buffer (`buffer.py`), Learnability Potential (`learnability.py`, pure functions),
the async-aware sampler (`sampler.py`) and `Curriculum` (`curriculum.py`), the one object the trainer uses.
docs/buffer.md and docs/learnability.md describe them.

The configs import eagerly; everything else loads on first use (PEP 562), so `acelib.curriculum.config` (read by
the trainer's config) does not pull numpy and pandas in through this package.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from acelib.curriculum.config import BufferConfig, SamplerConfig

if TYPE_CHECKING:
    from acelib.curriculum.buffer import EvolvingBuffer, RowListener, Task
    from acelib.curriculum.curriculum import Curriculum, TaskAssignment
    from acelib.curriculum.sampler import LearnabilitySampler

_LAZY = {"Curriculum": "curriculum", "TaskAssignment": "curriculum", "EvolvingBuffer": "buffer",
         "RowListener": "buffer", "Task": "buffer", "LearnabilitySampler": "sampler"}

__all__ = ["Curriculum", "TaskAssignment", "BufferConfig", "SamplerConfig", "EvolvingBuffer", "RowListener", "Task",
           "LearnabilitySampler"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'acelib.curriculum' has no attribute {name!r}")
    return getattr(importlib.import_module(f"acelib.curriculum.{module}"), name)
