"""Base of the augmentations written in Python: each owns a seeded random generator."""
import zlib

import numpy as np

import mindspore.dataset as ds


class SeededTransform:
    """A Python-side random transform whose draws replay exactly for a given seed.

    MindSpore's C++ random ops are reproducible per worker; a Python op drawing from a shared generator in
    several worker threads is not (the order of draws follows thread scheduling), so ``create_loader`` runs
    these in a single worker and seeds them per rank with ``set_seed``. Unseeded, the first call seeds from
    ``mindspore.dataset.config.get_seed()``.
    """

    _rng = None

    def set_seed(self, seed, stream=0):
        """Draw from ``seed``; copies of one transform on different ``stream``s draw differently."""
        salt = zlib.crc32(type(self).__name__.encode())  # distinct streams for distinct transforms
        self._rng = np.random.default_rng([int(seed), salt] + ([int(stream)] if stream else []))

    @property
    def rng(self):
        if self._rng is None:
            self.set_seed(ds.config.get_seed())
        return self._rng
