"""``create_loader``: transforms, batching and Mixup/CutMix on a dataset from ``create_dataset``."""
import itertools
import logging

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset import transforms

from ..foundation.errors import InvalidValueError
from .dataset_factory import resolve_workers, shared_seed, source_of
from .mixup import Mixup
from .seeded_transform import SeededTransform
from .transforms_factory import create_transforms

_logger = logging.getLogger(__name__)

MIXUP_SWITCH_PROB = 0.5  # chance of CutMix rather than Mixup when both are enabled


def augmentation_seed(seed, shard_id):
    """Each rank's augmentation seed: shuffling is shared across ranks, augmentation must not be."""
    return (int(seed) + int(shard_id)) % 2 ** 32


def _map_in_runs(dataset, operations, workers, python_multiprocessing):
    """Map ``operations`` on the image column: MindSpore's ops on every worker, ``SeededTransform``s on one.

    A seeded Python transform drawing in several threads would hand its numbers to samples in scheduling order.
    """
    for seeded, run in itertools.groupby(operations, key=lambda op: isinstance(op, SeededTransform)):
        dataset = dataset.map(list(run), input_columns="image", num_parallel_workers=1 if seeded else workers,
                              python_multiprocessing=python_multiprocessing and not seeded)
    return dataset


def _equal_steps_per_rank(dataset, sampler):
    """Trim this rank's epoch to the smallest shard so every rank runs the same number of steps.

    Shards differ by at most one sample; a rank with one more batch would wait forever in the gradient
    all-reduce. With shuffling, the sample left out changes every epoch.
    """
    shortest = min(sampler.shard_length(rank) for rank in range(sampler.num_shards))
    return dataset.take(shortest) if shortest < len(sampler) else dataset


def create_loader(dataset, batch_size, drop_remainder=False, is_training=False, mixup=0.0, cutmix=0.0, cutmix_prob=0.0,
                  num_classes=1000, transform=None, target_transform=None, num_parallel_workers=None,
                  python_multiprocessing=False, separate=False, label_smoothing=0.0, seed=None):
    """Batches of ``(image NCHW float32, label)`` from ``dataset``.

    ``transform``: the per-image list from ``create_transforms`` (default: that of the dataset, for
    ``is_training``). ``target_transform``: label ops (default: cast to int32).
    With ``is_training`` and ``mixup``/``cutmix`` (Beta alphas) > 0, each batch is mixed with probability
    ``cutmix_prob`` (MindCV's meaning; CutMix or Mixup half of the time when both are on) and labels become
    soft ``(N, num_classes)`` targets with ``label_smoothing`` folded in, so the loss should then smooth
    nothing. Without mixing, labels stay class ids and smoothing is the loss's job.
    ``seed`` (default: the dataset's shuffling seed) makes the augmentation reproducible; each rank adds its
    shard id to it, so ranks augment differently. In training, every rank is trimmed to the smallest shard.
    """
    if separate:
        raise InvalidValueError("separate=True (AugMix JSD splits) is not supported: it needs a JSD loss, which "
                                "create_loss does not provide.")
    workers = resolve_workers(num_parallel_workers)
    source = source_of(dataset)
    sampler = source.sampler if source else None
    seed = augmentation_seed(seed if seed is not None else (sampler.seed if sampler else shared_seed()),
                             sampler.shard_id if sampler else 0)
    ds.config.set_seed(seed)  # MindSpore's random ops read it when the pipeline starts

    if is_training and sampler and sampler.num_shards > 1:
        dataset = _equal_steps_per_rank(dataset, sampler)
    dataset = dataset.map(target_transform or transforms.TypeCast(ms.int32), input_columns="label",
                          num_parallel_workers=workers)
    if transform is None:
        transform = create_transforms(source.name if source else "", is_training=is_training)
    transform = list(transform) if isinstance(transform, (list, tuple)) else [transform]
    for op in transform:
        if isinstance(op, SeededTransform):
            op.set_seed(seed)
    dataset = _map_in_runs(dataset, transform, workers, python_multiprocessing)

    if not (is_training and (mixup > 0 or cutmix > 0)):
        return dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_workers=workers)
    if cutmix_prob <= 0:
        _logger.warning("mixup=%s, cutmix=%s but cutmix_prob=0: no batch will be mixed (cutmix_prob is the "
                        "probability of mixing a batch; 1.0 mixes every batch).", mixup, cutmix)
    mix = Mixup(mixup, cutmix, cutmix_prob, MIXUP_SWITCH_PROB, label_smoothing, num_classes, seed)
    return dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_workers=workers, per_batch_map=mix,
                         input_columns=["image", "label"])
