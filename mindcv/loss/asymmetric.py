"""Asymmetric loss (Ben-Baruch et al., "Asymmetric Loss For Multi-Label Classification", 2021): focal weights with a
stronger focus (``gamma_neg``) on the easy negatives than on the positives (``gamma_pos``)."""
from mindspore import ops

from .base import HeadLoss, check_smoothing, class_targets


class AsymmetricLossSingleLabel(HeadLoss):
    """Softmax cross entropy with asymmetric focusing, for one class per sample.

    With ``p`` the softmax probabilities and ``y`` the one-hot target, the term of class ``c`` is
    ``-y_s * log(p_c) * w_c`` with ``w_c = (1 - p_c) ** gamma_pos`` for the target class and
    ``p_c ** gamma_neg`` for the others, and ``y_s = (1 - smoothing) * y + smoothing / C``. Terms are summed
    over classes, then reduced over samples. Soft labels (N, C) take the place of ``y`` in both.
    """

    def __init__(self, gamma_pos=1, gamma_neg=4, reduction="mean", smoothing=0.1, aux_factor=0.0, weight=None):
        super().__init__(reduction, aux_factor, weight)
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.smoothing = check_smoothing(smoothing)

    def head_loss(self, logits, labels):
        targets = class_targets(logits, labels)
        log_probs = ops.log_softmax(logits, -1)
        probs = ops.exp(log_probs)
        # 1 - p for the target, p for the others.
        distance = 1 - probs * targets - (1 - probs) * (1 - targets)
        focus = ops.pow(distance, self.gamma_pos * targets + self.gamma_neg * (1 - targets))
        smoothed = targets * (1 - self.smoothing) + self.smoothing / logits.shape[-1]
        per_class = self.weighted(-smoothed * log_probs * focus)
        return self.reduced(per_class.sum(-1))


class AsymmetricLossMultilabel(HeadLoss):
    """Sigmoid binary cross entropy per label with asymmetric focusing and probability shifting.

    With ``p = sigmoid(logits)``, a positive label adds ``-log(p) * (1 - p) ** gamma_pos``; a negative one
    ``-log(p_m) * (1 - p_m) ** gamma_neg`` with the shifted ``p_m = min(1 - p + clip, 1)``, so negatives with
    ``p < clip`` count nothing; probabilities are clamped to at least ``eps`` inside the logarithms.
    ``reduction``: ``'sum'`` (MindCV's and the paper's loss) over samples and labels, ``'mean'`` over them,
    ``'none'`` the (N, C) terms. Labels: multi-hot (N, C), or class ids (N,).
    """

    def __init__(self, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8, reduction="sum", aux_factor=0.0, weight=None):
        super().__init__(reduction, aux_factor, weight)
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip
        self.eps = eps

    def head_loss(self, logits, labels):
        targets = class_targets(logits, labels)
        p_pos = ops.sigmoid(logits)
        p_neg = 1 - p_pos
        if self.clip > 0:
            p_neg = ops.clamp(p_neg + self.clip, max=1.0)
        log_likelihood = (targets * ops.log(ops.clamp(p_pos, min=self.eps))
                          + (1 - targets) * ops.log(ops.clamp(p_neg, min=self.eps)))
        p_true = p_pos * targets + p_neg * (1 - targets)
        focus = ops.pow(1 - p_true, self.gamma_pos * targets + self.gamma_neg * (1 - targets))
        return self.reduced(self.weighted(-log_likelihood * focus))
