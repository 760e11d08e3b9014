"""Random erasing (Zhong et al.) with timm's sampling, on normalised CHW images."""
import math

import numpy as np

from ..foundation.errors import InvalidValueError
from .seeded_transform import SeededTransform


class RandomErasing(SeededTransform):
    """With probability ``prob``, fill one rectangle of a CHW float image.

    The rectangle covers a fraction of the image drawn uniformly from ``scale``, with an aspect ratio drawn
    log-uniformly from ``ratio`` (up to ``max_attempts`` draws until it fits). ``value``: a number or one
    number per channel (in normalised units), or ``'random'`` for per-pixel standard-normal noise (timm's
    "pixel" mode). MindSpore's ``RandomErasing`` draws the ratio uniformly and from Python's global
    generator, hence this one.
    """

    def __init__(self, prob=0.5, scale=(0.02, 1 / 3), ratio=(0.3, 3.3), value=0, max_attempts=10):
        if isinstance(value, str) and value != "random":
            raise InvalidValueError(f"re_value must be a number, one number per channel or 'random', got '{value}'.")
        self.prob, self.scale, self.max_attempts = prob, tuple(scale), max_attempts
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.value = value

    def _fill(self, shape):
        if isinstance(self.value, str):
            return self.rng.standard_normal(shape, dtype=np.float32)
        return np.broadcast_to(np.asarray(self.value, np.float32).reshape(-1, 1, 1), shape)

    def __call__(self, image):
        if self.prob <= 0 or self.rng.random() >= self.prob:
            return image
        channels, height, width = image.shape
        for _ in range(self.max_attempts):
            area = self.rng.uniform(*self.scale) * height * width
            aspect = math.exp(self.rng.uniform(*self.log_ratio))
            erase_h, erase_w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if erase_h < height and erase_w < width:
                top = int(self.rng.integers(0, height - erase_h + 1))
                left = int(self.rng.integers(0, width - erase_w + 1))
                image = np.array(image)
                image[:, top:top + erase_h, left:left + erase_w] = self._fill((channels, erase_h, erase_w))
                return image
        return image
