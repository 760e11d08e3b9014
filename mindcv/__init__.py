"""MindCV-style model zoo centred on the Twins vision transformers (PCPVT, SVT).

As MindCV's, the package top level re-exports the builders' public names (``mindcv.create_model``,
``mindcv.is_model``, ``mindcv.create_loader``, ...) and ``mindcv.utils``'s."""
from . import data, loss, models, optim, scheduler, utils
from .data import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .scheduler import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403

__version__ = "0.1.0"
__all__ = ["data", "loss", "models", "optim", "scheduler", "utils"]
for _package in (data, loss, models, optim, scheduler):
    __all__ += _package.__all__
