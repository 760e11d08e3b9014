"""``create_transforms``: per-image transform lists for training and evaluation, MindCV's options."""
import logging
import math

import mindspore.dataset.vision as vision
from mindspore.dataset.vision import Inter

from ..foundation.errors import InvalidValueError, UnknownNameError
from .auto_augment import auto_augment_transform
from .random_erasing import RandomErasing

_logger = logging.getLogger(__name__)

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
CIFAR_DEFAULT_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_DEFAULT_STD = (0.2023, 0.1994, 0.2010)
MNIST_DEFAULT_MEAN = (0.1307,)
MNIST_DEFAULT_STD = (0.3081,)

# interpolation name -> (for decoded arrays: training crops and CIFAR/MNIST, for PIL images: evaluation).
# PILCUBIC is Pillow's bicubic, antialiased when shrinking, as timm's training crops are.
INTERPOLATIONS = {
    "bilinear": (Inter.BILINEAR, Inter.BILINEAR),
    "bicubic": (Inter.PILCUBIC, Inter.BICUBIC),
    "nearest": (Inter.NEAREST, Inter.NEAREST),
}


def _interpolation(name):
    if name not in INTERPOLATIONS:
        raise UnknownNameError("interpolation", name, INTERPOLATIONS)
    return INTERPOLATIONS[name]


def unit_scale(values):
    """Mean/std on the 0-1 scale, whether given that way (timm) or on the 0-255 scale (MindCV)."""
    values = tuple(float(v) for v in values)
    return tuple(v / 255.0 for v in values) if max(values) > 1.0 else values


def _normalize(mean, std):
    return vision.Normalize([255.0 * m for m in unit_scale(mean)], [255.0 * s for s in unit_scale(std)])


def _size(image_resize):
    """``(height, width)`` from an int or a pair."""
    return (int(image_resize),) * 2 if isinstance(image_resize, (int, float)) else tuple(int(s) for s in image_resize)


def _jitter_strengths(color_jitter):
    """``RandomColorAdjust`` arguments from a number (brightness = contrast = saturation) or a 3/4-tuple."""
    values = (float(color_jitter),) * 3 if isinstance(color_jitter, (int, float)) else tuple(color_jitter)
    return dict(zip(("brightness", "contrast", "saturation", "hue"), values))


def transforms_imagenet_train(image_resize=224, scale=(0.08, 1.0), ratio=(0.75, 1.333), hflip=0.5, vflip=0.0,
                              color_jitter=0.4, interpolation="bilinear", auto_augment=None,
                              mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, re_prob=0.0, re_scale=(0.02, 0.33),
                              re_ratio=(0.3, 3.3), re_value=0, re_max_attempts=10, separate=False):
    """Decode, random-resized crop and flips; auto-augment or colour jitter; normalise, CHW, random erasing.

    Colour jitter is skipped when an auto-augment policy is given (except DeiT III's ``3a``), as in timm.
    ``separate=True`` returns the three groups (primary, secondary, final) instead of one list.
    """
    size = _size(image_resize)
    primary = [vision.Decode(), vision.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(ratio),
                                                         interpolation=_interpolation(interpolation)[0])]
    if hflip > 0:
        primary.append(vision.RandomHorizontalFlip(prob=hflip))
    if vflip > 0:
        primary.append(vision.RandomVerticalFlip(prob=vflip))
    secondary = []
    if auto_augment:
        secondary.append(auto_augment_transform(auto_augment, size, unit_scale(mean), interpolation))
    if color_jitter and (not auto_augment or str(auto_augment).startswith("3a")):
        secondary.append(vision.RandomColorAdjust(**_jitter_strengths(color_jitter)))
    final = [_normalize(mean, std), vision.HWC2CHW()]
    if re_prob > 0:
        final.append(RandomErasing(re_prob, re_scale, re_ratio, re_value, re_max_attempts))
    return (primary, secondary, final) if separate else primary + secondary + final


def transforms_imagenet_eval(image_resize=224, crop_pct=0.875, interpolation="bilinear", mean=IMAGENET_DEFAULT_MEAN,
                             std=IMAGENET_DEFAULT_STD):
    """Resize to ``image_resize / crop_pct`` (shorter side for square crops), centre-crop, normalise, CHW.

    Decoding and resizing run in Pillow, so the pixels are those of timm's evaluation for every interpolation.
    """
    if not 0 < crop_pct <= 1:
        raise InvalidValueError(f"crop_pct must lie in (0, 1], got {crop_pct}.")
    height, width = _size(image_resize)
    scaled = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    resize_to = scaled[0] if height == width else scaled
    return [vision.Decode(to_pil=True), vision.Resize(resize_to, _interpolation(interpolation)[1]),
            vision.CenterCrop((height, width)), vision.ToNumpy(), _normalize(mean, std), vision.HWC2CHW()]


def _warn_ignored(family, ignored):
    if ignored:
        _logger.warning("%s transforms ignore: %s", family, ", ".join(sorted(ignored)))


def transforms_cifar(image_resize=224, is_training=False, hflip=0.5, interpolation="bilinear",
                     mean=CIFAR_DEFAULT_MEAN, std=CIFAR_DEFAULT_STD, **ignored):
    """CIFAR (decoded 32x32 arrays): padded random crop and flip when training; resize, normalise, CHW."""
    _warn_ignored("CIFAR", ignored)
    augment = [vision.RandomCrop((32, 32), (4, 4, 4, 4)), vision.RandomHorizontalFlip(prob=hflip)]
    resize = vision.Resize(_size(image_resize), _interpolation(interpolation)[0])
    return (augment if is_training else []) + [resize, _normalize(mean, std), vision.HWC2CHW()]


def transforms_mnist(image_resize=224, is_training=False, interpolation="bilinear", mean=MNIST_DEFAULT_MEAN,
                     std=MNIST_DEFAULT_STD, **ignored):
    """MNIST (decoded 28x28x1 arrays): resize, normalise, CHW; no augmentation."""
    _warn_ignored("MNIST", ignored)
    return [vision.Resize(_size(image_resize), _interpolation(interpolation)[0]), _normalize(mean, std),
            vision.HWC2CHW()]


def _imagenet(image_resize, is_training, auto_augment, separate, **kwargs):
    if is_training:
        return transforms_imagenet_train(image_resize, auto_augment=auto_augment, separate=separate, **kwargs)
    if separate:
        raise InvalidValueError("separate=True splits training transforms; evaluation transforms are one list.")
    return transforms_imagenet_eval(image_resize, **kwargs)


def _decoded(family):
    def build(image_resize, is_training, auto_augment, separate, **kwargs):
        if auto_augment or separate:
            raise InvalidValueError(f"{family.__name__} supports neither auto_augment nor separate.")
        return family(image_resize, is_training, **kwargs)
    return build


# dataset name -> builder(image_resize, is_training, auto_augment, separate, **options)
TRANSFORMS = {
    "": _imagenet,
    "imagenet": _imagenet,
    "cifar10": _decoded(transforms_cifar),
    "cifar100": _decoded(transforms_cifar),
    "mnist": _decoded(transforms_mnist),
}


def create_transforms(dataset_name="", image_resize=224, is_training=False, auto_augment=None, separate=False,
                      **kwargs):
    """The transform list for ``dataset_name`` (a key of ``TRANSFORMS``) in training or evaluation.

    ImageNet-style options (``kwargs``): training ``scale, ratio, hflip, vflip, color_jitter, interpolation, mean,
    std, re_prob, re_scale, re_ratio, re_value, re_max_attempts``; evaluation ``crop_pct, interpolation, mean,
    std``. ``auto_augment``: a policy in timm's grammar (see ``mindcv.data.auto_augment``). ``mean``/``std`` may be
    on the 0-1 or the 0-255 scale. ``image_resize``: any size, an int or ``(height, width)``.
    """
    if dataset_name not in TRANSFORMS:
        raise UnknownNameError("dataset", dataset_name, TRANSFORMS)
    return TRANSFORMS[dataset_name](image_resize, is_training, auto_augment, separate, **kwargs)
