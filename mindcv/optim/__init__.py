"""Optimizers: ``create_optimizer`` with MindCV's names, weight-decay filters and layer-wise lr decay."""
from .hand_written import AdamW, Lamb, Lion, NAdam
from .optim_factory import OPTIMIZERS, create_optimizer, optimizer_state, restore_optimizer_state
from .param_groups import WEIGHT_DECAY_FILTERS

__all__ = [
    "AdamW",
    "Lamb",
    "Lion",
    "NAdam",
    "OPTIMIZERS",
    "WEIGHT_DECAY_FILTERS",
    "create_optimizer",
    "optimizer_state",
    "restore_optimizer_state",
]
