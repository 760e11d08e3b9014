"""Jensen-Shannon divergence consistency loss of AugMix (Hendrycks et al., 2020)."""
from mindspore import ops

from .base import HeadLoss, check_smoothing
from .cross_entropy_smooth import smoothed_cross_entropy


class JSDCrossEntropy(HeadLoss):
    """In training: cross entropy of the clean split plus ``alpha`` times the Jensen-Shannon divergence between
    the predictions of the ``num_splits`` splits of the batch; in evaluation: plain cross entropy.

    The batch holds ``num_splits`` equal splits, the clean images first, then each augmented copy (AugMix's
    ``aug_splits``); ``labels`` cover the whole batch and the clean split's are used. The divergence is the mean
    over splits of ``KL(p_split || m)``, ``m`` the splits' mean prediction clamped to at least 1e-7, averaged
    over the rows of a split. Rows beyond the last whole split are left out.
    """

    def __init__(self, num_splits=3, alpha=12, smoothing=0.1, weight=None, reduction="mean", aux_factor=0.0):
        super().__init__(reduction, aux_factor, weight)
        self.num_splits = num_splits
        self.alpha = alpha
        self.smoothing = check_smoothing(smoothing)

    def head_loss(self, logits, labels):
        if not self.training:
            return smoothed_cross_entropy(logits, labels, self.class_weight, self.reduction, self.smoothing)
        rows = logits.shape[0] // self.num_splits
        loss = smoothed_cross_entropy(logits[:rows], labels[:rows], self.class_weight, self.reduction, self.smoothing)
        log_probs = ops.log_softmax(logits[:rows * self.num_splits].reshape(self.num_splits, rows, -1), -1)
        probs = ops.exp(log_probs)
        log_mixture = ops.log(ops.clamp(probs.mean(0), 1e-7, 1.0))
        divergence = (probs * (log_probs - log_mixture)).sum() / rows / self.num_splits
        return loss + self.alpha * divergence
