"""MindCV-style model zoo centred on the Twins vision transformers (PCPVT, SVT)."""
from . import data, loss, models, optim, scheduler, utils
from .data import create_dataset, create_loader, create_transforms
from .loss import create_loss
from .models import create_model, list_models
from .optim import create_optimizer
from .scheduler import create_scheduler

__version__ = "0.1.0"
__all__ = [
    "create_dataset",
    "create_loader",
    "create_loss",
    "create_model",
    "create_optimizer",
    "create_scheduler",
    "create_transforms",
    "data",
    "list_models",
    "loss",
    "models",
    "optim",
    "scheduler",
    "utils",
]
