"""Losses: ``create_loss`` builds them by MindCV's names (``CE``, ``BCE``, ``asl_single_label``,
``asl_multi_label``, ``jsd``)."""
from .asymmetric import AsymmetricLossMultilabel, AsymmetricLossSingleLabel
from .binary_cross_entropy_smooth import BinaryCrossEntropySmooth
from .cross_entropy_smooth import CrossEntropySmooth
from .jsd import JSDCrossEntropy
from .loss_factory import LOSSES, create_loss

__all__ = ["AsymmetricLossMultilabel", "AsymmetricLossSingleLabel", "BinaryCrossEntropySmooth", "CrossEntropySmooth",
           "JSDCrossEntropy", "LOSSES", "create_loss"]
