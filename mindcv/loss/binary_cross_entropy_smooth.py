"""Sigmoid binary cross entropy with label smoothing, for class ids, multi-hot or soft labels."""
from mindspore import Tensor, ops
from mindspore import dtype as mstype

from .base import HeadLoss, check_smoothing, class_targets


class BinaryCrossEntropySmooth(HeadLoss):
    """Sigmoid cross entropy per class, against targets ``(1 - smoothing) * y + smoothing / C`` (MindCV's
    smoothing, the same targets as mixup's).

    Class ids become one-hot targets; ``weight`` (C,) weighs each class's term and ``pos_weight`` (C,) the
    positive part of it, as in ``mindspore.ops.binary_cross_entropy_with_logits``.
    """

    def __init__(self, smoothing=0.0, aux_factor=0.0, reduction="mean", weight=None, pos_weight=None):
        super().__init__(reduction, aux_factor, weight)
        self.smoothing = check_smoothing(smoothing)
        self.pos_weight = None if pos_weight is None else Tensor(pos_weight, mstype.float32)

    def head_loss(self, logits, labels):
        targets = class_targets(logits, labels)
        if self.smoothing > 0:
            targets = targets * (1.0 - self.smoothing) + self.smoothing / logits.shape[-1]
        ones = ops.ones_like(logits)
        weight = ones if self.class_weight is None else ops.broadcast_to(self.class_weight, logits.shape)
        pos_weight = ones if self.pos_weight is None else ops.broadcast_to(self.pos_weight, logits.shape)
        return ops.binary_cross_entropy_with_logits(logits, targets, weight.astype(logits.dtype),
                                                    pos_weight.astype(logits.dtype), reduction=self.reduction)
