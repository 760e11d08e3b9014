"""``create_loss``: the loss by name."""
from ..foundation.errors import UnknownNameError
from .cross_entropy import BinaryCrossEntropySmooth, CrossEntropySmooth

LOSSES = {
    "CE": CrossEntropySmooth,
    "BCE": BinaryCrossEntropySmooth,
}


def create_loss(name="CE", weight=None, reduction="mean", label_smoothing=0.0, aux_factor=0.0):
    """A loss Cell ``loss(logits, labels)`` for hard (class-id) or soft (N, C) labels.

    ``name``: a key of ``LOSSES`` (case-insensitive). ``weight``: per-class weights (C,).
    ``label_smoothing``: smoothing eps; leave it 0 when the loader already folded it into mixed targets.
    ``aux_factor``: weight of auxiliary logits when the model returns ``(logits, aux_logits, ...)``.
    """
    key = str(name).upper()
    if key not in LOSSES:
        raise UnknownNameError("loss", name, LOSSES)
    return LOSSES[key](label_smoothing=label_smoothing, aux_factor=aux_factor, reduction=reduction, weight=weight)
