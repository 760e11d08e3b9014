"""Mixup and CutMix over a batch, producing soft targets (timm's batch mode)."""
import numpy as np

from ..foundation.errors import InvalidValueError


def one_hot(labels, num_classes, smoothing=0.0):
    """Smoothed one-hot targets: ``1 - smoothing + smoothing / C`` on the label, ``smoothing / C`` elsewhere."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InvalidValueError(f"Label {labels.max() if labels.max() >= num_classes else labels.min()} is outside "
                                f"num_classes={num_classes}.")
    off = smoothing / num_classes
    targets = np.full((labels.size, num_classes), off, np.float32)
    targets[np.arange(labels.size), labels] = 1.0 - smoothing + off
    return targets


class Mixup:
    """Mix each image with the batch's mirror image (sample ``i`` with sample ``B - 1 - i``).

    Per batch, with probability ``prob``: CutMix (a box of area ``1 - lam``, ``lam ~ Beta(cutmix_alpha)``, pasted
    from the partner; ``lam`` then corrected to the box actually pasted) or Mixup (``lam ~ Beta(mixup_alpha)``,
    a pixel blend); when both are enabled CutMix is chosen with ``switch_prob``. Targets are the same blend
    of the two smoothed one-hot labels, so each row sums to 1.

    Used as a ``batch`` ``per_batch_map``: the random draws depend only on ``seed`` and the batch's epoch and
    index, so they do not depend on worker scheduling.
    """

    def __init__(self, mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, label_smoothing=0.0,
                 num_classes=1000, seed=0):
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing, self.num_classes, self.seed = label_smoothing, num_classes, seed

    def cut_box(self, lam, height, width, rng):
        """``(top, bottom, left, right)`` of a box of about ``1 - lam`` of the image, centred anywhere."""
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        return int(top), int(bottom), int(left), int(right)

    def mix(self, images, targets, rng):
        if rng.random() >= self.prob:
            return images, targets
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        partner = images[::-1]
        if use_cutmix:
            lam = rng.beta(self.cutmix_alpha, self.cutmix_alpha)
            height, width = images.shape[-2:]
            top, bottom, left, right = self.cut_box(lam, height, width, rng)
            images = images.copy()
            images[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
            lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        else:
            lam = rng.beta(self.mixup_alpha, self.mixup_alpha)
            images = (lam * images + (1.0 - lam) * partner).astype(images.dtype)
        return images, (lam * targets + (1.0 - lam) * targets[::-1]).astype(np.float32)

    def targets(self, labels):
        """Smoothed one-hot targets from class ids, or smoothed float targets from per-class rows (a one-hot
        ``target_transform``)."""
        labels = np.stack(labels)
        if labels.ndim == 1 or labels.shape[1:] == (1,):
            return one_hot(labels, self.num_classes, self.label_smoothing)
        if labels.ndim != 2 or labels.shape[1] != self.num_classes:
            raise InvalidValueError(f"Labels of shape {labels.shape[1:]} per sample: Mixup takes class ids or rows "
                                    f"of num_classes={self.num_classes} values.")
        return (labels * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes).astype(np.float32)

    def __call__(self, images, labels, batch_info):
        rng = np.random.default_rng([self.seed, batch_info.get_epoch_num(), batch_info.get_batch_num()])
        return self.mix(np.stack(images), self.targets(labels), rng)
