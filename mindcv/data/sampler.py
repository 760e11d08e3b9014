"""Which samples each rank reads each epoch."""
import numpy as np

import mindspore.dataset as ds

from ..foundation.errors import InvalidValueError


class ShardSampler(ds.Sampler):
    """One rank's indices for one epoch.

    Every rank draws the same permutation (from ``seed`` and the epoch number) and takes every
    ``num_shards``-th element starting at ``shard_id``: the shards are disjoint, together they hold every
    sample once, and their sizes differ by at most one. Without ``shuffle`` the order is the dataset's own.

    With ``num_repeats`` > 1 (repeated augmentation, DeiT), each drawn index is repeated ``num_repeats``
    times before dealing, so the copies of an image land on different ranks; every rank then reads
    ``size // num_shards`` samples, keeping an epoch as long as without repeats.
    ``num_samples`` caps the number of indices per rank.
    """

    def __init__(self, size, num_shards=1, shard_id=0, shuffle=True, num_samples=None, num_repeats=1, seed=0):
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            raise InvalidValueError(f"shard_id must lie in [0, num_shards); got shard_id={shard_id}, "
                                    f"num_shards={num_shards}.")
        if num_repeats < 1:
            raise InvalidValueError(f"num_aug_repeats must be at least 1 when given, got {num_repeats}.")
        if num_samples is not None and num_samples < 1:
            raise InvalidValueError(f"num_samples must be positive, got {num_samples}.")
        self.size = size
        self.num_shards = num_shards
        self.shard_id = shard_id
        self.shuffle = shuffle
        self.cap = num_samples
        self.num_repeats = num_repeats
        self.seed = seed
        self.epoch = 0
        super().__init__()  # reads len(self), so after the attributes

    def shard_length(self, shard_id):
        if self.num_repeats > 1:
            length = self.size // self.num_shards
        else:
            length = len(range(shard_id, self.size, self.num_shards))
        return length if self.cap is None else min(length, self.cap)

    def __len__(self):
        return self.shard_length(self.shard_id)

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        self.epoch += 1
        if self.num_repeats > 1:
            order = np.repeat(order, self.num_repeats)
        return iter(order[self.shard_id::self.num_shards][:len(self)].tolist())
