"""The GRPO update box (docs/learner.md).

- `config.py`: `LearnerConfig`, `GRPOConfig` (torch-free)
- `batch.py`: `RolloutGroup` (what the trainer hands over) and `TrainSeq` (torch-free)
- `grpo.py`: advantages, losses, temperature-scaled log-probs and entropies as pure tensor functions
- `packing.py`: micro-batches, naive (padded) or shared-prompt (one prompt forward per group)
- `engine.py`: `Learner`, the DeepSpeed engine on one rank or several

Importing the package loads no torch: `Learner` is imported on first use.
"""
from acelib.learner.batch import RolloutGroup, TrainSeq
from acelib.learner.config import GRPOConfig, LearnerConfig

__all__ = ["GRPOConfig", "Learner", "LearnerConfig", "RolloutGroup", "TrainSeq"]


def __getattr__(name: str):
    if name == "Learner":
        from acelib.learner.engine import Learner
        return Learner
    raise AttributeError(f"module 'acelib.learner' has no attribute {name!r}")
