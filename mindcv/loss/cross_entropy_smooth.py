"""Softmax cross entropy with label smoothing, for hard labels (class ids) or soft labels (mixup/cutmix targets)."""
from mindspore import ops

from .base import HeadLoss, check_smoothing


def smoothed_cross_entropy(logits, labels, weight, reduction, smoothing):
    """Softmax cross entropy against ``(1 - smoothing) * y + smoothing / C``, for class ids or soft labels."""
    if labels.ndim == logits.ndim:
        labels = labels.astype(logits.dtype)
    return ops.cross_entropy(logits, labels, weight, reduction=reduction, label_smoothing=smoothing)


class CrossEntropySmooth(HeadLoss):
    """Softmax cross entropy with label smoothing: the target becomes ``(1 - smoothing) * y + smoothing / C``.

    ``labels`` are class ids (N,) or probabilities (N, C); ``weight`` (C,) weighs classes as in
    ``mindspore.ops.cross_entropy`` (a weighted mean divides by the weights of the samples' classes).
    """

    def __init__(self, smoothing=0.0, aux_factor=0.0, reduction="mean", weight=None):
        super().__init__(reduction, aux_factor, weight)
        self.smoothing = check_smoothing(smoothing)

    def head_loss(self, logits, labels):
        return smoothed_cross_entropy(logits, labels, self.class_weight, self.reduction, self.smoothing)
