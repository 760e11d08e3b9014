"""What every loss here shares: validated options, auxiliary heads, class-id labels turned into targets."""
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from ..foundation.errors import InvalidValueError

REDUCTIONS = ("mean", "sum", "none")


def check_smoothing(smoothing):
    if not 0.0 <= smoothing <= 1.0:
        raise InvalidValueError(f"label_smoothing must lie in [0, 1], got {smoothing}.")
    return smoothing


def class_targets(logits, labels):
    """``labels`` as per-class targets of ``logits``' shape and dtype: class ids (N,) become one-hot rows,
    probability or multi-hot rows (N, C) are cast."""
    if labels.ndim == logits.ndim:
        return labels.astype(logits.dtype)
    return ops.one_hot(labels.astype(mstype.int32), logits.shape[-1], Tensor(1.0, logits.dtype),
                       Tensor(0.0, logits.dtype))


class HeadLoss(nn.Cell):
    """A loss of the logits of one head, summed over the heads of models that return ``(logits, aux_logits, ...)``.

    The auxiliary heads count with ``aux_factor``; with ``aux_factor`` 0 only the first head counts.
    ``weight`` (C,) weighs classes; ``reduction`` is one of ``REDUCTIONS``.
    """

    def __init__(self, reduction="mean", aux_factor=0.0, weight=None):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise InvalidValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'.")
        self.reduction = reduction
        self.aux_factor = aux_factor
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

    def weighted(self, per_class):
        """``per_class`` (N, C) terms times the class weights, when there are any."""
        if self.class_weight is None:
            return per_class
        return per_class * self.class_weight.astype(per_class.dtype)

    def reduced(self, loss):
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss
