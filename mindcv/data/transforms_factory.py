"""``create_transforms``: per-image transform lists for training and evaluation, MindCV's options."""
import logging
import math

import mindspore.dataset.vision as vision
from mindspore.dataset.vision import Inter

from ..foundation.errors import InvalidValueError, UnknownNameError
from .auto_augment import create_augment_policy
from .constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .random_erasing import RandomErasing

_logger = logging.getLogger(__name__)

CIFAR_DEFAULT_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_DEFAULT_STD = (0.2023, 0.1994, 0.2010)
MNIST_DEFAULT_MEAN = (0.1307,)
MNIST_DEFAULT_STD = (0.3081,)

# interpolation name -> (for decoded arrays: training crops and CIFAR/MNIST, for PIL images: evaluation).
# PILCUBIC is Pillow's bicubic, antialiased when shrinking, as timm's training crops are. The aliases are the
# other names of these filters in MindSpore's Inter, which MindCV accepts; AREA and ANTIALIAS each work on only
# one of the two image kinds, so they are not offered.
INTERPOLATIONS = {
    "bilinear": (Inter.BILINEAR, Inter.BILINEAR),
    "linear": (Inter.BILINEAR, Inter.BILINEAR),
    "bicubic": (Inter.PILCUBIC, Inter.BICUBIC),
    "cubic": (Inter.PILCUBIC, Inter.BICUBIC),
    "pilcubic": (Inter.PILCUBIC, Inter.BICUBIC),
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
    """``RandomColorAdjust`` arguments from a number (brightness = contrast = saturation) or 3 or 4 numbers
    (brightness, contrast, saturation[, hue])."""
    if isinstance(color_jitter, (int, float)):
        return dict(brightness=float(color_jitter), contrast=float(color_jitter), saturation=float(color_jitter))
    values = tuple(color_jitter)
    if len(values) not in (3, 4):
        raise InvalidValueError(f"color_jitter must be a number or 3 or 4 numbers (brightness, contrast, saturation"
                                f"[, hue]), got {color_jitter!r}.")
    return dict(zip(("brightness", "contrast", "saturation", "hue"), values))


def _policy_hparams(auto_augment, size, mean, interpolation):
    """MindCV's hparams of an auto-augment policy for ``size`` images: fill with the mean colour."""
    hparams = dict(translate_const=int(min(size) * 0.45), img_mean=[255.0 * m for m in unit_scale(mean)],
                   interpolation=interpolation)
    if str(auto_augment).startswith("augmix"):
        hparams["translate_pct"] = 0.3  # AugMix's own, milder than RandAugment's 0.45
    return hparams


def transforms_imagenet_train(image_resize=224, scale=(0.08, 1.0), ratio=(0.75, 1.333), hflip=0.5, vflip=0.0,
                              color_jitter=None, auto_augment=None, interpolation="bilinear",
                              mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, re_prob=0.0, re_scale=(0.02, 0.33),
                              re_ratio=(0.3, 3.3), re_value=0, re_max_attempts=10, separate=False):
    """Decode, random-resized crop and flips; an auto-augment policy, else colour jitter; normalise, CHW, random
    erasing. MindCV's defaults: no colour jitter, no erasing.

    ``color_jitter`` (a number, or 3 or 4 numbers) applies only without ``auto_augment``, as in MindCV.
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
        secondary.append(create_augment_policy(auto_augment, _policy_hparams(auto_augment, size, mean,
                                                                             interpolation)))
    elif color_jitter:
        secondary.append(vision.RandomColorAdjust(**_jitter_strengths(color_jitter)))
    final = [_normalize(mean, std), vision.HWC2CHW()]
    if re_prob > 0:
        final.append(RandomErasing(re_prob, re_scale, re_ratio, re_value, re_max_attempts))
    return (primary, secondary, final) if separate else primary + secondary + final


def transforms_imagenet_eval(image_resize=224, crop_pct=DEFAULT_CROP_PCT, mean=IMAGENET_DEFAULT_MEAN,
                             std=IMAGENET_DEFAULT_STD, interpolation="bilinear"):
    """Resize to ``image_resize / crop_pct`` (shorter side for square crops), centre-crop, normalise, CHW.

    ``crop_pct`` above 1 makes the crop larger than the resized image: the border is black (zero) pixels, as
    MindCV's (MindSpore's ``CenterCrop`` pads). Decoding and resizing run in Pillow, so the pixels are those of
    timm's evaluation for every interpolation.
    """
    if not crop_pct > 0:
        raise InvalidValueError(f"crop_pct must be positive, got {crop_pct}.")
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
    return transforms_imagenet_eval(image_resize, **kwargs)  # augmentation and its splits are for training only


def _decoded(family):
    def build(image_resize, is_training, auto_augment, separate, **kwargs):
        if is_training and (auto_augment or separate):
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
    """The transform list for ``dataset_name`` (a key of ``TRANSFORMS``, any case) in training or evaluation.

    ImageNet-style options (``kwargs``): training ``scale, ratio, hflip, vflip, color_jitter, interpolation, mean,
    std, re_prob, re_scale, re_ratio, re_value, re_max_attempts``; evaluation ``crop_pct, mean, std,
    interpolation``. ``auto_augment``: a policy in MindCV's grammar (see ``mindcv.data.auto_augment``); evaluation
    ignores it and ``separate``, as MindCV does. ``mean``/``std`` may be on the 0-1 or the 0-255 scale.
    ``image_resize``: any size, an int or ``(height, width)``.
    """
    name = dataset_name.lower() if isinstance(dataset_name, str) else dataset_name
    if name not in TRANSFORMS:
        raise UnknownNameError("dataset", dataset_name, TRANSFORMS)
    return TRANSFORMS[name](image_resize, is_training, auto_augment, separate, **kwargs)
