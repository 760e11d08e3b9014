"""Losses: ``create_loss`` builds cross entropy (``CE``) or binary cross entropy (``BCE``)."""
from .cross_entropy import BinaryCrossEntropySmooth, CrossEntropySmooth
from .loss_factory import LOSSES, create_loss

__all__ = ["BinaryCrossEntropySmooth", "CrossEntropySmooth", "LOSSES", "create_loss"]
