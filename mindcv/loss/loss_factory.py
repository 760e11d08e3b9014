"""``create_loss``: the loss by MindCV's name."""
import logging

from ..foundation.errors import UnknownNameError
from ..foundation.jit import compile_construct
from .asymmetric import AsymmetricLossMultilabel, AsymmetricLossSingleLabel
from .binary_cross_entropy_smooth import BinaryCrossEntropySmooth
from .cross_entropy_smooth import CrossEntropySmooth
from .jsd import JSDCrossEntropy

_logger = logging.getLogger(__name__)


def _asl_multi_label(weight, reduction, label_smoothing, aux_factor):
    # MindCV builds this loss with its own settings whatever create_loss is told: its value is the sum over
    # samples and labels, unsmoothed. Kept, so that the same call gives the same loss (and lr scale) here.
    unused = ([f"reduction='{reduction}'"] if reduction != "sum" else []) + (
        [f"label_smoothing={label_smoothing}"] if label_smoothing > 0 else [])
    if unused:
        _logger.warning("asl_multi_label sums its terms over samples and labels and takes no label smoothing, as "
                        "MindCV's does: %s not applied (AsymmetricLossMultilabel(reduction=...) reduces otherwise).",
                        " and ".join(unused))
    return AsymmetricLossMultilabel(aux_factor=aux_factor, weight=weight)


def _smoothed(loss_class):
    """The builder of a loss that takes every create_loss option, label smoothing as ``smoothing``."""
    def build(weight, reduction, label_smoothing, aux_factor):
        return loss_class(smoothing=label_smoothing, aux_factor=aux_factor, reduction=reduction, weight=weight)

    return build


# name -> builder(weight, reduction, label_smoothing, aux_factor)
LOSSES = {
    "CE": _smoothed(CrossEntropySmooth),
    "BCE": _smoothed(BinaryCrossEntropySmooth),
    "asl_single_label": _smoothed(AsymmetricLossSingleLabel),
    "asl_multi_label": _asl_multi_label,
    "jsd": _smoothed(JSDCrossEntropy),
}

_BY_LOWER_NAME = {name.lower(): builder for name, builder in LOSSES.items()}


def create_loss(name="CE", weight=None, reduction="mean", label_smoothing=0.0, aux_factor=0.0):
    """A loss Cell ``loss(logits, labels)``; labels are class ids (N,) or per-class targets (N, C).

    ``name``: a key of ``LOSSES`` (case-insensitive): ``CE`` softmax cross entropy, ``BCE`` sigmoid binary cross
    entropy, ``asl_single_label`` / ``asl_multi_label`` asymmetric losses, ``jsd`` AugMix's Jensen-Shannon loss.
    ``weight``: per-class weights (C,). ``reduction``: ``'mean'``, ``'sum'`` or ``'none'`` over the batch
    (``asl_multi_label`` always sums, as MindCV's). ``label_smoothing``: smoothing eps (not taken by
    ``asl_multi_label``); leave it 0 when the loader already folded it into mixed targets. ``aux_factor``: weight
    of the auxiliary logits when the model returns ``(logits, aux_logits, ...)``; with 0 they are ignored.

    In PYNATIVE mode the loss runs compiled (see ``compile_construct``), as the models do.
    """
    builder = _BY_LOWER_NAME.get(str(name).lower())
    if builder is None:
        raise UnknownNameError("loss", name, LOSSES)
    return compile_construct(builder(weight, reduction, label_smoothing, aux_factor))
