"""The asynchronous GRPO trainer: `train(resolve(...))`. See loop.py for the loop, actors.py for the Ray actors."""
from acelib.trainer.config import ResourcesConfig, TrainConfig, resolve  # noqa: F401


def train(cfg, progress: bool = True, rollout_worker_cls=None):
    """Lazy wrapper of `acelib.trainer.loop.train` (importing the package must not load Ray or torch)."""
    from acelib.trainer.loop import train as _train
    return _train(cfg, progress=progress, rollout_worker_cls=rollout_worker_cls)
