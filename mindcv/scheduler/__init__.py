"""Learning-rate schedules: ``create_scheduler`` returns the rate of every training step; ``dynamic_lr`` holds
the PyTorch-style schedule functions it is built from."""
from . import dynamic_lr
from .scheduler_factory import SCHEDULERS, create_scheduler

__all__ = ["SCHEDULERS", "create_scheduler", "dynamic_lr"]
