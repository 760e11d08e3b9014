"""Automatic augmentation policies, named in MindCV's grammar (a superset of timm's).

``randaug-m9-mstd0.5-inc1`` (timm also spells it ``rand-...``), ``autoaug``/``autoaugr`` (the AutoAugment
paper's ImageNet policy, MindCV's names; timm's ``original``/``originalr``), ``v0``/``v0r`` (the TPU EfficientNet
policy), ``3a`` (DeiT III), ``augmix-m<M>-w<W>-d<D>-a<A>`` and ``trivialaugwide-m<M>``. Each family has MindCV's
builder, ``<family>_transform(configs, hparams)``. The ops are timm's definitions and magnitude scales on PIL
images; MindSpore's own ``RandAugment``/``AutoAugment`` follow torchvision (no magnitude noise, no per-op
probability, other op ranges), and its random ops draw the same numbers in every copy of a pipeline, which
would make AugMix's augmented splits identical.
"""
import math
import re
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from mindspore.dataset.vision import Inter

from ..foundation.errors import InvalidValueError, UnknownNameError
from .seeded_transform import SeededTransform

LEVEL_MAX = 10.0  # magnitudes run from 0 to 10, as in timm
WIDE_LEVEL_MAX = 31  # TrivialAugment's magnitudes run from 0 to 31

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
# What MindCV's hparams may name as "interpolation": PIL warps only nearest, bilinear and bicubic.
# (Inter.LINEAR and Inter.CUBIC are aliases of BILINEAR and BICUBIC.)
_INTER_FILTERS = {Inter.NEAREST: Image.NEAREST, Inter.BILINEAR: Image.BILINEAR, Inter.BICUBIC: Image.BICUBIC,
                  Inter.PILCUBIC: Image.BICUBIC}
# Without an interpolation, each warp picks one at random, as MindCV's ops do (less its AREA, which PIL's
# affine warps do not offer).
RANDOM_RESAMPLE = (Image.BILINEAR, Image.NEAREST, Image.BICUBIC)


@dataclass(frozen=True)
class AugmentParams:
    """Settings every op of a policy shares."""

    fill: tuple = (128, 128, 128)  # colour of pixels uncovered by geometric ops
    resample: object = Image.BICUBIC  # a PIL filter, or a tuple of them to draw from per application
    translate_pct: float = 0.45  # relative translations: fraction of the image side at full magnitude
    translate_const: int = 100  # absolute translations: pixels at magnitude 10
    magnitude_std: float = 0.0  # Gaussian noise on the magnitude per application; inf: uniform in [0, m]
    magnitude_max: float = LEVEL_MAX
    wide: bool = False  # TrivialAugment's wide ranges, reached at magnitude_max


def _resample(params, rng):
    if isinstance(params.resample, int):
        return params.resample
    return params.resample[int(rng.integers(len(params.resample)))]


def _affine(img, matrix, params, rng):
    return img.transform(img.size, Image.AFFINE, matrix, resample=_resample(params, rng), fillcolor=params.fill)


def _rotate(img, degrees, params, rng):
    return img.rotate(degrees, resample=_resample(params, rng), fillcolor=params.fill)


def _shear_x(img, factor, params, rng):
    return _affine(img, (1, factor, 0, 0, 1, 0), params, rng)


def _shear_y(img, factor, params, rng):
    return _affine(img, (1, 0, 0, factor, 1, 0), params, rng)


def _translate_x(img, pixels, params, rng):
    return _affine(img, (1, 0, pixels, 0, 1, 0), params, rng)


def _translate_y(img, pixels, params, rng):
    return _affine(img, (1, 0, 0, 0, 1, pixels), params, rng)


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


# TrivialAugment's wide ranges (Müller & Hutter), reached at magnitude_max rather than at 10.
def _wide_fraction(m, params):
    return m / params.magnitude_max


def _rotate_wide_level(m, params, rng):
    return _signed(_wide_fraction(m, params) * 135.0, rng)


def _shear_wide_level(m, params, rng):
    return _signed(_wide_fraction(m, params) * 0.99, rng)


def _translate_rel_wide_level(m, params, rng):
    return _signed(_wide_fraction(m, params) * params.translate_pct, rng)


def _enhance_wide_level(m, params, rng):
    return _wide_fraction(m, params) * 1.99 + 0.01


def _posterize_wide_level(m, params, rng):
    return int(_wide_fraction(m, params) * 6) + 2


def _solarize_wide_level(m, params, rng):
    return int(_wide_fraction(m, params) * 255)


# op name -> its argument under ``AugmentParams.wide``; ops not listed keep their level.
WIDE_LEVELS = {
    "Rotate": _rotate_wide_level,
    "ShearX": _shear_wide_level,
    "ShearY": _shear_wide_level,
    "TranslateXRel": _translate_rel_wide_level,
    "TranslateYRel": _translate_rel_wide_level,
    "Color": _enhance_wide_level,
    "Contrast": _enhance_wide_level,
    "Brightness": _enhance_wide_level,
    "Sharpness": _enhance_wide_level,
    "Posterize": _posterize_wide_level,
    "Solarize": _solarize_wide_level,
}


class AugmentOp:
    """One op at a nominal magnitude, applied with probability ``prob``; the magnitude gets the policy's noise."""

    def __init__(self, name, prob, magnitude, params):
        self.operation, self.level = OPS[name]
        if params.wide:
            self.level = WIDE_LEVELS.get(name, self.level)
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
    """``num_layers`` ops drawn uniformly with replacement, or by ``choice_weights`` without, each applied with
    its own probability."""

    def __init__(self, ops, num_layers=2, choice_weights=None):
        self.ops, self.num_layers, self.choice_weights = ops, num_layers, choice_weights

    def apply(self, img, rng):
        if self.choice_weights is None:
            chosen = rng.integers(0, len(self.ops), self.num_layers)
        else:
            chosen = rng.choice(len(self.ops), self.num_layers, replace=False, p=self.choice_weights)
        for index in chosen:
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


class TrivialAugmentWide(_PilPolicy):
    """TrivialAugment (Müller & Hutter): one op drawn uniformly, always applied, at a magnitude drawn uniformly."""

    def __init__(self, ops):
        self.ops = ops

    def apply(self, img, rng):
        return self.ops[rng.integers(len(self.ops))](img, rng)


class AugMixAugment(_PilPolicy):
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
# RandAugment's "w0" op weights (timm's, from the relative gains the paper reports); a variant weighs as its base op.
_RAND_CHOICE_WEIGHTS = {"Rotate": 0.3, "ShearX": 0.2, "ShearY": 0.2, "TranslateXRel": 0.1, "TranslateYRel": 0.1,
                        "Color": 0.025, "Sharpness": 0.025, "AutoContrast": 0.025, "Solarize": 0.005,
                        "SolarizeAdd": 0.005, "Contrast": 0.005, "Brightness": 0.005, "Equalize": 0.005,
                        "Posterize": 0.0, "Invert": 0.0}
_AUGMIX_OPS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
               "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY", "TranslateXRel",
               "TranslateYRel")
# MindCV's TrivialAugment op set (torchvision's, with Invert in place of Identity).
_TRIVIAL_WIDE_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
                     "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
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
    "autoaug": _POLICY_ORIGINAL,
    "autoaugr": _with_increasing_posterize(_POLICY_ORIGINAL),
    "original": _POLICY_ORIGINAL,
    "originalr": _with_increasing_posterize(_POLICY_ORIGINAL),
    "v0": _POLICY_V0,
    "v0r": _with_increasing_posterize(_POLICY_V0),
    "3a": _POLICY_3A,
}

# MindCV's spellings of these families put Gaussian noise of std 0.5 on every magnitude unless the config sets
# mstd; timm's spellings (rand, original, v0, ...) put none.
_NOISY_BY_DEFAULT = ("randaug", "autoaug", "autoaugr", "3a")
MINDCV_MAGNITUDE_STD = 0.5

# MindCV's hparams: what every op of a policy shares.
HPARAMS = ("img_mean", "interpolation", "translate_const", "translate_pct", "magnitude_std", "magnitude_max")


def _family(configs, accepted, policy):
    name, *options = str(configs).split("-")
    if name not in accepted:
        raise UnknownNameError(f"{policy} policy", name, accepted)
    return name, options


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


def _magnitude_noise(options, family, default=0.0):
    if "mstd" not in options:
        return MINDCV_MAGNITUDE_STD if family in _NOISY_BY_DEFAULT else default
    return math.inf if options["mstd"] > 100 else options["mstd"]


def _pil_filter(interpolation):
    if isinstance(interpolation, (list, tuple)):
        return tuple(_pil_filter(each) for each in interpolation)
    if isinstance(interpolation, Inter):
        if interpolation not in _INTER_FILTERS:
            raise UnknownNameError("auto_augment interpolation", interpolation.name,
                                   [inter.name for inter in _INTER_FILTERS])
        return _INTER_FILTERS[interpolation]
    if isinstance(interpolation, str):
        if interpolation not in PIL_FILTERS:
            raise UnknownNameError("auto_augment interpolation", interpolation, PIL_FILTERS)
        return PIL_FILTERS[interpolation]
    if interpolation not in PIL_FILTERS.values():
        raise InvalidValueError(f"auto_augment interpolation must be a name ({', '.join(PIL_FILTERS)}), a "
                                f"mindspore Inter or a PIL filter, got {interpolation!r}.")
    return interpolation


def _params(hparams, **policy_values):
    """``AugmentParams`` from MindCV's ``hparams``, which override the policy's own ``policy_values``.

    ``img_mean``: fill colour on the 0-255 scale; ``interpolation``: a name, a mindspore ``Inter``, a PIL filter,
    or several to draw from (default: drawn from ``RANDOM_RESAMPLE``); ``translate_const``, ``translate_pct``,
    ``magnitude_std``, ``magnitude_max``: as in ``AugmentParams``.
    """
    hparams = dict(hparams or {})
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise InvalidValueError(f"Unknown auto_augment hparams {', '.join(unknown)}; accepted: {', '.join(HPARAMS)}.")
    values = dict(policy_values, resample=_pil_filter(hparams.pop("interpolation", RANDOM_RESAMPLE)))
    if "img_mean" in hparams:
        values["fill"] = tuple(min(255, max(0, int(round(v)))) for v in hparams.pop("img_mean"))
    values.update(hparams)
    return AugmentParams(**values)


def _choice_weights(config, names, index):
    if index is None:
        return None
    if index != 0:
        raise InvalidValueError(f"auto_augment '{config}': the only op weighting is w0, got w{index:g}.")
    weights = np.array([_RAND_CHOICE_WEIGHTS[name.replace("Increasing", "")] for name in names])
    return weights / weights.sum()


def rand_augment_transform(configs, hparams=None):
    """RandAugment from ``rand[aug]-m<M>-n<N>-mstd<S>-mmax<X>-inc<0|1>-w0-p<P>``.

    ``n`` ops (default 2) per image, drawn uniformly with replacement (``w0``: by timm's weights, without), each
    applied with probability ``p`` (0.5) at magnitude ``m`` (10) plus Gaussian noise of std ``mstd`` (above 100:
    uniform in [0, m]; default 0.5 for ``randaug``, 0 for ``rand``), capped at ``mmax`` (10). ``inc1``: the
    variants whose strength grows with the magnitude. ``hparams``: see ``HPARAMS``.
    """
    name, options = _family(configs, ("rand", "randaug"), "RandAugment")
    opts = _parse_options(configs, options, {"m": "magnitude", "n": "ops per image", "mstd": "magnitude std",
                                             "mmax": "magnitude cap", "inc": "0|1 increasing ops",
                                             "w": "0: weighted op choice", "p": "op prob"})
    params = _params(hparams, magnitude_std=_magnitude_noise(opts, name), magnitude_max=opts.get("mmax", LEVEL_MAX))
    names = _RAND_OPS_INCREASING if opts.get("inc", 0) else _RAND_OPS
    ops = [AugmentOp(op, opts.get("p", 0.5), opts.get("m", LEVEL_MAX), params) for op in names]
    return RandAugment(ops, int(opts.get("n", 2)), _choice_weights(configs, names, opts.get("w")))


def auto_augment_transform(configs, hparams=None):
    """AutoAugment from ``<policy>-mstd<S>``: ``autoaug`` (the paper's ImageNet policy), ``autoaugr`` (with
    posterize growing with the magnitude), ``3a`` (DeiT III), and timm's ``original``, ``originalr``, ``v0``,
    ``v0r``. Magnitude noise ``mstd``: default 0.5 for MindCV's names, 0 for timm's."""
    name, options = _family(configs, _AUTOAUGMENT_POLICIES, "AutoAugment")
    opts = _parse_options(configs, options, {"mstd": "magnitude std"})
    params = _params(hparams, magnitude_std=_magnitude_noise(opts, name))
    return AutoAugment([[AugmentOp(op, p, m, params) for op, p, m in sub] for sub in _AUTOAUGMENT_POLICIES[name]])


def trivial_augment_wide_transform(configs, hparams=None):
    """TrivialAugmentWide from ``trivialaugwide-m<M>``: per image one op, at a magnitude uniform in [0, M]
    (default 31) on the wide ranges; translations reach ``translate_pct`` (0.15) of the side."""
    _, options = _family(configs, ("trivialaugwide",), "TrivialAugmentWide")
    magnitude = _parse_options(configs, options, {"m": "magnitude range"}).get("m", WIDE_LEVEL_MAX)
    if magnitude <= 0:
        raise InvalidValueError(f"auto_augment '{configs}': the magnitude range m must be positive.")
    params = replace(_params(hparams, translate_pct=0.15), magnitude_std=math.inf, magnitude_max=magnitude,
                     wide=True)
    return TrivialAugmentWide([AugmentOp(op, 1.0, magnitude, params) for op in _TRIVIAL_WIDE_OPS])


def augment_and_mix_transform(configs, hparams=None):
    """AugMix from ``augmix-m<M>-w<W>-d<D>-a<A>-mstd<S>``: ``w`` chains (3) of ``d`` ops (-1: 1 to 3 at random)
    at severity ``m`` (3, sampled uniformly in [0, m] unless ``mstd`` is given), mixed with Dirichlet(``a``)
    weights and blended with the image by Beta(``a``, ``a``), ``a`` = 1 by default."""
    _, options = _family(configs, ("augmix",), "AugMix")
    opts = _parse_options(configs, options, {"m": "severity", "w": "chains", "d": "chain depth (-1 random)",
                                             "a": "alpha", "mstd": "magnitude std"})
    params = _params(hparams, magnitude_std=_magnitude_noise(opts, "augmix", default=math.inf))
    ops = [AugmentOp(name, 1.0, opts.get("m", 3), params) for name in _AUGMIX_OPS]
    return AugMixAugment(ops, alpha=opts.get("a", 1.0), width=int(opts.get("w", 3)), depth=int(opts.get("d", -1)))


# policy name (the part before the first '-') -> its family's builder(configs, hparams)
POLICY_FAMILIES = {
    "rand": rand_augment_transform,
    "randaug": rand_augment_transform,
    **{name: auto_augment_transform for name in _AUTOAUGMENT_POLICIES},
    "augmix": augment_and_mix_transform,
    "trivialaugwide": trivial_augment_wide_transform,
}


def create_augment_policy(configs, hparams=None):
    """The policy ``configs`` names, of any family: what ``create_transforms``' ``auto_augment`` accepts."""
    name = str(configs).split("-")[0]
    if name not in POLICY_FAMILIES:
        raise UnknownNameError("auto_augment policy", name, POLICY_FAMILIES)
    return POLICY_FAMILIES[name](configs, hparams)
