"""Curriculum: the Evolving Data Buffer (`buffer.py`), Learnability Potential (`learnability.py`, pure functions)
and the async-aware sampler (`sampler.py`). docs/buffer.md and docs/learnability.md describe them."""
from acelib.curriculum.buffer import EvolvingBuffer, Task
from acelib.curriculum.config import BufferConfig, SamplerConfig
from acelib.curriculum.sampler import LearnabilitySampler

__all__ = ["EvolvingBuffer", "Task", "BufferConfig", "SamplerConfig", "LearnabilitySampler"]
