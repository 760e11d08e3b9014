"""Optimizers: ``create_optimizer`` with MindCV's names, weight-decay filters and layer-wise lr decay."""
from .adamw import AdamW
from .adan import Adan
from .lamb import Lamb
from .lion import Lion
from .nadam import NAdam
from .optim_factory import OPTIMIZERS, create_optimizer, optimizer_state, restore_optimizer_state
from .param_groups import WEIGHT_DECAY_FILTERS

__all__ = [
    "AdamW",
    "Adan",
    "Lamb",
    "Lion",
    "NAdam",
    "OPTIMIZERS",
    "WEIGHT_DECAY_FILTERS",
    "create_optimizer",
    "optimizer_state",
    "restore_optimizer_state",
]
