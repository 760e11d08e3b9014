"""Classification losses that take hard labels (class ids) or soft labels (mixup/cutmix targets)."""
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from ..foundation.errors import InvalidValueError

REDUCTIONS = ("mean", "sum", "none")


class _AuxiliaryLoss(nn.Cell):
    """Base for losses of models that may return ``(logits, aux_logits, ...)``.

    The auxiliary heads count with ``aux_factor``; with ``aux_factor`` 0 they are ignored.
    """

    def __init__(self, label_smoothing=0.0, aux_factor=0.0, reduction="mean", weight=None):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise InvalidValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'.")
        if not 0.0 <= label_smoothing < 1.0:
            raise InvalidValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}.")
        self.label_smoothing = label_smoothing
        self.aux_factor = aux_factor
        self.reduction_name = reduction
        self.class_weight = None if weight is None else Tensor(weight, mstype.float32)

    def construct(self, logits, labels):
        if isinstance(logits, (tuple, list)):
            loss = self.head_loss(logits[0], labels)
            if self.aux_factor > 0:
                for aux_logits in logits[1:]:
                    loss = loss + self.aux_factor * self.head_loss(aux_logits, labels)
            return loss
        return self.head_loss(logits, labels)

    def head_loss(self, logits, labels):
        raise NotImplementedError


class CrossEntropySmooth(_AuxiliaryLoss):
    """Softmax cross entropy with label smoothing: the target becomes ``(1 - eps) * y + eps / num_classes``.

    ``labels`` are class ids (N,) or probabilities (N, C); ``weight`` (C,) weighs classes as in
    ``mindspore.ops.cross_entropy``.
    """

    def head_loss(self, logits, labels):
        if labels.ndim == logits.ndim:
            labels = labels.astype(logits.dtype)
        return ops.cross_entropy(logits, labels, self.class_weight, reduction=self.reduction_name,
                                 label_smoothing=self.label_smoothing)


class BinaryCrossEntropySmooth(_AuxiliaryLoss):
    """Sigmoid cross entropy per class with binary label smoothing: targets ``y * (1 - eps) + eps / 2``.

    Class ids become one-hot targets; ``weight`` (C,) weighs each class's term.
    """

    def head_loss(self, logits, labels):
        if labels.ndim != logits.ndim:
            labels = ops.one_hot(labels.astype(mstype.int32), logits.shape[-1], Tensor(1.0, logits.dtype),
                                 Tensor(0.0, logits.dtype))
        labels = labels.astype(logits.dtype)
        if self.label_smoothing > 0:
            labels = labels * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        weight = ops.ones_like(logits) if self.class_weight is None else ops.broadcast_to(self.class_weight,
                                                                                          logits.shape)
        return ops.binary_cross_entropy_with_logits(logits, labels, weight, ops.ones_like(logits),
                                                    reduction=self.reduction_name)
