"""Learning-rate schedules: ``create_scheduler`` returns the rate of every training step."""
from .scheduler_factory import SCHEDULERS, create_scheduler

__all__ = ["SCHEDULERS", "create_scheduler"]
