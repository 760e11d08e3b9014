"""Automatic augmentation policies named in timm's grammar.

``rand-m9-mstd0.5-inc1`` (also spelled ``randaug-...``), ``autoaug``/``v0``, ``autoaugr``/``v0r``,
``original``, ``originalr``, ``3a`` (optionally ``-mstd<S>``), ``augmix-m<M>-w<W>-d<D>-a<A>`` and
``trivialaugwide``. MindSpore's own ``RandAugment``/``AutoAugment`` follow torchvision (no magnitude noise,
no per-op probability, other op ranges), so the timm policies are written here on PIL images, with timm's
op definitions and magnitude scales; ``trivialaugwide`` is MindSpore's ``TrivialAugmentWide``.
"""
import math
import re
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

import mindspore.dataset.vision as vision

from ..foundation.errors import InvalidValueError, UnknownNameError
from .seeded_transform import SeededTransform

LEVEL_MAX = 10.0  # magnitudes run from 0 to 10, as in timm

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


@dataclass(frozen=True)
class AugmentParams:
    """Settings every op of a policy shares."""

    fill: tuple = (128, 128, 128)  # colour of pixels uncovered by geometric ops
    resample: int = Image.BICUBIC
    translate_pct: float = 0.45  # relative translations: fraction of the image side at magnitude 10
    translate_const: int = 100  # absolute translations: pixels at magnitude 10
    magnitude_std: float = 0.0  # Gaussian noise on the magnitude per application; inf: uniform in [0, m]
    magnitude_max: float = LEVEL_MAX


def _affine(img, matrix, params):
    return img.transform(img.size, Image.AFFINE, matrix, resample=params.resample, fillcolor=params.fill)


def _rotate(img, degrees, params, rng):
    return img.rotate(degrees, resample=params.resample, fillcolor=params.fill)


def _shear_x(img, factor, params, rng):
    return _affine(img, (1, factor, 0, 0, 1, 0), params)


def _shear_y(img, factor, params, rng):
    return _affine(img, (1, 0, 0, factor, 1, 0), params)


def _translate_x(img, pixels, params, rng):
    return _affine(img, (1, 0, pixels, 0, 1, 0), params)


def _translate_y(img, pixels, params, rng):
    return _affine(img, (1, 0, 0, 0, 1, pixels), params)


def _translate_x_rel(img, fraction, params, rng):
    return _translate_x(img, fraction * img.size[0], params, rng)


def _translate_y_rel(img, fraction, params, rng):
    return _translate_y(img, fraction * img.size[1], params, rng)


def _posterize(img, bits, params, rng):
    if bits >= 8:
        return img
    if bits <= 0:  # keeping no bit is black; recent Pillow refuses bits=0
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits)


def _solarize(img, threshold, params, rng):
    return ImageOps.solarize(img, threshold)


def _solarize_add(img, added, params, rng):
    lut = [min(255, i + added) if i < 128 else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _enhance(enhancer):
    return lambda img, factor, params, rng: enhancer(img).enhance(factor)


def _desaturate(img, factor, params, rng):
    return ImageEnhance.Color(img).enhance(min(1.0, max(0.0, 1.0 - factor)))


def _gaussian_blur(img, radius, params, rng):
    return img.filter(ImageFilter.GaussianBlur(radius=radius))


def _gaussian_blur_rand(img, factor, params, rng):
    return img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.1, 2.0 * factor)))


def _no_argument(operation):
    return lambda img, _, params, rng: operation(img)


# Magnitude (0..10) -> op argument. Geometric ops and the "Increasing" enhancements go either way at random.
def _signed(value, rng):
    return -value if rng.random() > 0.5 else value


def _rotate_level(m, params, rng):
    return _signed(m / LEVEL_MAX * 30.0, rng)


def _shear_level(m, params, rng):
    return _signed(m / LEVEL_MAX * 0.3, rng)


def _translate_rel_level(m, params, rng):
    return _signed(m / LEVEL_MAX * params.translate_pct, rng)


def _translate_abs_level(m, params, rng):
    return _signed(m / LEVEL_MAX * params.translate_const, rng)


def _enhance_level(m, params, rng):
    return m / LEVEL_MAX * 1.8 + 0.1


def _enhance_increasing_level(m, params, rng):
    return max(0.1, 1.0 + _signed(m / LEVEL_MAX * 0.9, rng))


def _posterize_level(m, params, rng):
    return int(m / LEVEL_MAX * 4)


def _posterize_increasing_level(m, params, rng):
    return 4 - _posterize_level(m, params, rng)


def _posterize_original_level(m, params, rng):
    return _posterize_level(m, params, rng) + 4


def _solarize_level(m, params, rng):
    return min(256, int(m / LEVEL_MAX * 256))


def _solarize_increasing_level(m, params, rng):
    return 256 - _solarize_level(m, params, rng)


def _solarize_add_level(m, params, rng):
    return min(128, int(m / LEVEL_MAX * 110))


def _range_level(low, high):
    return lambda m, params, rng: low + (high - low) * min(1.0, max(0.0, m / LEVEL_MAX))


# op name -> (operation(img, argument, params, rng), magnitude -> argument or None)
OPS = {
    "AutoContrast": (_no_argument(ImageOps.autocontrast), None),
    "Equalize": (_no_argument(ImageOps.equalize), None),
    "Invert": (_no_argument(ImageOps.invert), None),
    "Rotate": (_rotate, _rotate_level),
    "Posterize": (_posterize, _posterize_level),
    "PosterizeIncreasing": (_posterize, _posterize_increasing_level),
    "PosterizeOriginal": (_posterize, _posterize_original_level),
    "Solarize": (_solarize, _solarize_level),
    "SolarizeIncreasing": (_solarize, _solarize_increasing_level),
    "SolarizeAdd": (_solarize_add, _solarize_add_level),
    "Color": (_enhance(ImageEnhance.Color), _enhance_level),
    "ColorIncreasing": (_enhance(ImageEnhance.Color), _enhance_increasing_level),
    "Contrast": (_enhance(ImageEnhance.Contrast), _enhance_level),
    "ContrastIncreasing": (_enhance(ImageEnhance.Contrast), _enhance_increasing_level),
    "Brightness": (_enhance(ImageEnhance.Brightness), _enhance_level),
    "BrightnessIncreasing": (_enhance(ImageEnhance.Brightness), _enhance_increasing_level),
    "Sharpness": (_enhance(ImageEnhance.Sharpness), _enhance_level),
    "SharpnessIncreasing": (_enhance(ImageEnhance.Sharpness), _enhance_increasing_level),
    "ShearX": (_shear_x, _shear_level),
    "ShearY": (_shear_y, _shear_level),
    "TranslateX": (_translate_x, _translate_abs_level),
    "TranslateY": (_translate_y, _translate_abs_level),
    "TranslateXRel": (_translate_x_rel, _translate_rel_level),
    "TranslateYRel": (_translate_y_rel, _translate_rel_level),
    "Desaturate": (_desaturate, _range_level(0.5, 1.0)),
    "GaussianBlur": (_gaussian_blur, _range_level(0.1, 2.0)),
    "GaussianBlurRand": (_gaussian_blur_rand, _range_level(0.0, 1.0)),
}


class AugmentOp:
    """One op at a nominal magnitude, applied with probability ``prob``; the magnitude gets the policy's noise."""

    def __init__(self, name, prob, magnitude, params):
        self.operation, self.level = OPS[name]
        self.name, self.prob, self.magnitude, self.params = name, prob, magnitude, params

    def __call__(self, img, rng):
        if self.prob < 1.0 and rng.random() > self.prob:
            return img
        magnitude = self.magnitude
        if math.isinf(self.params.magnitude_std):
            magnitude = rng.uniform(0.0, magnitude)
        elif self.params.magnitude_std > 0:
            magnitude = rng.normal(magnitude, self.params.magnitude_std)
        magnitude = min(max(magnitude, 0.0), self.params.magnitude_max)
        argument = self.level(magnitude, self.params, rng) if self.level else None
        return self.operation(img, argument, self.params, rng)


class _PilPolicy(SeededTransform):
    """Runs ``apply`` on an HWC uint8 array through PIL."""

    def __call__(self, image):
        return np.asarray(self.apply(Image.fromarray(image), self.rng))

    def apply(self, img, rng):
        raise NotImplementedError


class RandAugment(_PilPolicy):
    """``num_layers`` ops drawn uniformly with replacement, each applied with its own probability."""

    def __init__(self, ops, num_layers=2):
        self.ops, self.num_layers = ops, num_layers

    def apply(self, img, rng):
        for index in rng.integers(0, len(self.ops), self.num_layers):
            img = self.ops[index](img, rng)
        return img


class AutoAugment(_PilPolicy):
    """One sub-policy drawn uniformly; its ops run in order, each with its own probability."""

    def __init__(self, policy):
        self.policy = policy

    def apply(self, img, rng):
        for op in self.policy[rng.integers(len(self.policy))]:
            img = op(img, rng)
        return img


class AugMix(_PilPolicy):
    """AugMix (Hendrycks et al.): ``width`` chains of 1-3 (or ``depth``) ops mixed with Dirichlet weights, then
    blended with the original by a Beta(alpha, alpha) factor."""

    def __init__(self, ops, alpha=1.0, width=3, depth=-1):
        self.ops, self.alpha, self.width, self.depth = ops, alpha, width, depth

    def apply(self, img, rng):
        weights = rng.dirichlet([self.alpha] * self.width)
        blend = float(rng.beta(self.alpha, self.alpha))
        mixed = np.zeros(np.asarray(img).shape, np.float32)
        for weight in weights:
            depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
            chain = img
            for index in rng.integers(0, len(self.ops), depth):
                chain = self.ops[index](chain, rng)
            mixed += weight * np.asarray(chain, np.float32)
        return Image.blend(img, Image.fromarray(np.clip(mixed, 0, 255).astype(np.uint8)), blend)


_RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
             "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_RAND_OPS_INCREASING = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                        "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                        "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_AUGMIX_OPS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
               "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY", "TranslateXRel",
               "TranslateYRel")

# AutoAugment sub-policies as (op, probability, magnitude): the ImageNet policy of the TPU EfficientNet code
# ("v0") and the one of the AutoAugment paper ("original").
_POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateYRel", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
_POLICY_ORIGINAL = (
    (("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)), (("PosterizeOriginal", 0.6, 7), ("PosterizeOriginal", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)), (("PosterizeOriginal", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, 8), ("PosterizeOriginal", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)), (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)), (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)
# DeiT III's "3-augment": one of solarize, grayscale, blur.
_POLICY_3A = ((("Solarize", 1.0, 5),), (("Desaturate", 1.0, 10),), (("GaussianBlurRand", 1.0, 10),))


def _with_increasing_posterize(policy):
    """The "r" variants: posterize keeps fewer bits as the magnitude grows."""
    rename = {"Posterize": "PosterizeIncreasing", "PosterizeOriginal": "PosterizeIncreasing"}
    return tuple(tuple((rename.get(name, name), p, m) for name, p, m in sub) for sub in policy)


_AUTOAUGMENT_POLICIES = {
    "autoaug": _POLICY_V0,
    "v0": _POLICY_V0,
    "autoaugr": _with_increasing_posterize(_POLICY_V0),
    "v0r": _with_increasing_posterize(_POLICY_V0),
    "original": _POLICY_ORIGINAL,
    "originalr": _with_increasing_posterize(_POLICY_ORIGINAL),
    "3a": _POLICY_3A,
}


def _parse_options(config, options, accepted):
    """``{'m': 9.0, ...}`` from tokens like ``m9``, ``mstd0.5``; ``accepted`` maps option -> meaning."""
    parsed = {}
    for token in options:
        match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d*)?)", token)
        if not match or match.group(1) not in accepted:
            listed = ", ".join(f"{key}<{meaning}>" for key, meaning in accepted.items()) or "no options"
            raise InvalidValueError(f"Unknown option '{token}' in auto_augment '{config}'; this policy takes: "
                                    f"{listed}.")
        parsed[match.group(1)] = float(match.group(2))
    return parsed


def _magnitude_noise(options, default=0.0):
    std = options.get("mstd", default)
    return math.inf if std > 100 else std


def _rand_augment(config, options, params):
    opts = _parse_options(config, options, {"m": "magnitude", "n": "ops per image", "mstd": "magnitude std",
                                            "mmax": "magnitude cap", "inc": "0|1 increasing ops", "p": "op prob"})
    params = replace(params, magnitude_std=_magnitude_noise(opts), magnitude_max=opts.get("mmax", LEVEL_MAX))
    names = _RAND_OPS_INCREASING if opts.get("inc", 0) else _RAND_OPS
    ops = [AugmentOp(name, opts.get("p", 0.5), opts.get("m", LEVEL_MAX), params) for name in names]
    return RandAugment(ops, int(opts.get("n", 2)))


def _auto_augment(config, options, params):
    opts = _parse_options(config, options, {"mstd": "magnitude std"})
    params = replace(params, magnitude_std=_magnitude_noise(opts))
    policy = _AUTOAUGMENT_POLICIES[config.split("-")[0]]
    return AutoAugment([[AugmentOp(name, p, m, params) for name, p, m in sub] for sub in policy])


def _augmix(config, options, params):
    opts = _parse_options(config, options, {"m": "severity", "w": "chains", "d": "chain depth (-1 random)",
                                            "a": "alpha", "mstd": "magnitude std"})
    params = replace(params, translate_pct=0.3, magnitude_std=_magnitude_noise(opts, default=math.inf))
    ops = [AugmentOp(name, 1.0, opts.get("m", 3), params) for name in _AUGMIX_OPS]
    return AugMix(ops, alpha=opts.get("a", 1.0), width=int(opts.get("w", 3)), depth=int(opts.get("d", -1)))


def _trivial_augment_wide(config, options, params):
    _parse_options(config, options, {})
    resample_to_inter = {Image.BILINEAR: vision.Inter.BILINEAR, Image.BICUBIC: vision.Inter.BICUBIC,
                         Image.NEAREST: vision.Inter.NEAREST}
    return vision.TrivialAugmentWide(interpolation=resample_to_inter[params.resample], fill_value=params.fill)


# policy name (the part before the first '-') -> builder(config, options, params)
POLICY_FAMILIES = {
    "rand": _rand_augment,
    "randaug": _rand_augment,
    **{name: _auto_augment for name in _AUTOAUGMENT_POLICIES},
    "augmix": _augmix,
    "trivialaugwide": _trivial_augment_wide,
}


def auto_augment_transform(config, image_size, mean, interpolation="bicubic"):
    """The augmentation named by ``config`` for ``image_size`` images; ``mean`` (0-1) fills uncovered pixels."""
    name, *options = str(config).split("-")
    if name not in POLICY_FAMILIES:
        raise UnknownNameError("auto_augment policy", name, POLICY_FAMILIES)
    params = AugmentParams(fill=tuple(min(255, round(255 * m)) for m in mean), resample=PIL_FILTERS[interpolation],
                           translate_const=int(min(image_size) * 0.45))
    return POLICY_FAMILIES[name](config, options, params)
