"""``create_loader``: transforms, batching and Mixup/CutMix on a dataset from ``create_dataset``."""
import copy
import itertools
import logging
import warnings

import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset import transforms

from ..foundation.errors import InvalidValueError
from .dataset_factory import answer_num_classes, resolve_workers, shared_seed, source_of
from .mixup import Mixup
from .seeded_transform import SeededTransform
from .transforms_factory import create_transforms

_logger = logging.getLogger(__name__)

MIXUP_SWITCH_PROB = 0.5  # chance of CutMix rather than Mixup when both are enabled
SPLIT_COLUMNS = ("image", "image_aug1", "image_aug2")  # the clean image, then its two augmented copies


def augmentation_seed(seed, shard_id):
    """Each rank's augmentation seed: shuffling is shared across ranks, augmentation must not be."""
    return (int(seed) + int(shard_id)) % 2 ** 32


def _map_in_runs(dataset, operations, workers, python_multiprocessing, column="image"):
    """Map ``operations`` on ``column``: MindSpore's ops on every worker, ``SeededTransform``s on one.

    A seeded Python transform drawing in several threads would hand its numbers to samples in scheduling order.
    """
    for seeded, run in itertools.groupby(operations, key=lambda op: isinstance(op, SeededTransform)):
        dataset = dataset.map(list(run), input_columns=column, num_parallel_workers=1 if seeded else workers,
                              python_multiprocessing=python_multiprocessing and not seeded)
    return dataset


def _seeded(operations, seed, stream=0):
    """``operations`` with each ``SeededTransform`` seeded on its own ``stream`` (a copy unless stream 0), so
    pipeline branches that apply the same transforms draw different numbers."""
    seeded = []
    for op in operations:
        if isinstance(op, SeededTransform):
            op = copy.deepcopy(op) if stream else op
            op.set_seed(seed, stream)
        seeded.append(op)
    return seeded


def _equal_steps_per_rank(dataset, sampler):
    """Trim this rank's epoch to the smallest shard so every rank runs the same number of steps.

    Shards differ by at most one sample; a rank with one more batch would wait forever in the gradient
    all-reduce. With shuffling, the sample left out changes every epoch.
    """
    shortest = min(sampler.shard_length(rank) for rank in range(sampler.num_shards))
    return dataset.take(shortest) if shortest < len(sampler) else dataset


def _check_split_transform(transform):
    if not (isinstance(transform, tuple) and len(transform) == 3
            and all(isinstance(group, (list, tuple)) for group in transform)):
        raise InvalidValueError("separate=True needs transform=create_transforms(..., is_training=True, "
                                "separate=True): the (primary, secondary, final) groups.")
    primary, secondary, final = transform
    if not secondary or not all(isinstance(op, SeededTransform) for op in secondary):
        warnings.warn("separate=True: the two augmented splits differ only through an auto_augment policy; without "
                      "one, or with MindSpore's own random ops (colour jitter) between the groups, they come out "
                      "the same (MindSpore seeds every copy of an op alike).", stacklevel=3)
    return primary, secondary, final


def _map_splits(dataset, transform, seed, workers, python_multiprocessing):
    """The clean image (primary and final groups) and two augmented copies (all three groups), as columns."""
    primary, secondary, final = transform
    dataset = _map_in_runs(dataset, _seeded(primary, seed), workers, python_multiprocessing)
    clean, aug1, aug2 = SPLIT_COLUMNS
    dataset = dataset.map(transforms.Duplicate(), input_columns=clean, output_columns=[clean, aug1])
    dataset = dataset.map(transforms.Duplicate(), input_columns=aug1, output_columns=[aug1, aug2])
    for stream, column in enumerate((aug1, aug2), start=1):
        dataset = _map_in_runs(dataset, _seeded(secondary, seed, stream), workers, python_multiprocessing, column)
    for stream, column in enumerate(SPLIT_COLUMNS, start=len(SPLIT_COLUMNS)):
        dataset = _map_in_runs(dataset, _seeded(final, seed, stream), workers, python_multiprocessing, column)
    return dataset


class StackSplits:
    """``per_batch_map`` for split augmentation: one batch of the clean images followed by each augmented copy
    (MindCV's layout for ``JSDCrossEntropy``), labels repeated to match; then mixed by ``mix`` if given.

    Mixing the stacked batch pairs row ``i`` of every split with row ``B - 1 - i`` of another split at the same
    ratio, so the splits stay copies of one mixed batch.
    """

    def __init__(self, mix=None):
        self.mix = mix

    def __call__(self, clean, aug1, aug2, labels, batch_info):
        images = np.concatenate([np.stack(clean), np.stack(aug1), np.stack(aug2)])
        labels = np.concatenate([np.stack(labels)] * len(SPLIT_COLUMNS))
        return (images, labels) if self.mix is None else self.mix(images, labels, batch_info)


def create_loader(dataset, batch_size, drop_remainder=False, is_training=False, mixup=0.0, cutmix=0.0, cutmix_prob=0.0,
                  num_classes=1000, transform=None, target_transform=None, num_parallel_workers=None,
                  python_multiprocessing=False, separate=False, label_smoothing=0.0, seed=None):
    """Batches of ``(image NCHW float32, label)`` from ``dataset``.

    ``transform``: the per-image list from ``create_transforms`` (default: the evaluation transforms of the
    dataset's kind, as in MindCV, with a warning when training). ``target_transform``: label ops (default: cast
    to int32).
    With ``is_training``, a batch size above 1 and ``mixup``/``cutmix`` (Beta alphas) > 0, each batch is mixed
    with probability ``cutmix_prob`` (MindCV's meaning; CutMix or Mixup half of the time when both are on) and
    labels become soft ``(N, num_classes)`` targets with ``label_smoothing`` folded in, so the loss should then
    smooth nothing. Without mixing, labels stay as they are and smoothing is the loss's job.
    ``separate`` (training only; AugMix's ``aug_splits``): ``transform`` is ``create_transforms(...,
    separate=True)``'s three groups, and each batch of ``batch_size`` images becomes ``3 * batch_size`` rows:
    the clean images, then two differently augmented copies, labels repeated (see ``StackSplits``).
    ``seed`` (default: the dataset's shuffling seed) makes the augmentation reproducible; each rank adds its
    shard id to it, so ranks augment differently. In training, every rank is trimmed to the smallest shard.
    The result's ``num_classes()`` is the dataset's class count.
    """
    if separate and not is_training:
        raise InvalidValueError("separate=True builds the clean and augmented splits of AugMix's JSD loss, for "
                                "training; pass is_training=True, or separate=False to evaluate.")
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
        if is_training:
            warnings.warn("create_loader without a transform uses the evaluation transforms (no augmentation), as "
                          "MindCV does; pass transform=create_transforms(..., is_training=True) to augment.",
                          stacklevel=2)
        transform = create_transforms(source.name if source else "", is_training=False)

    mix = None
    if is_training and (mixup > 0 or cutmix > 0) and batch_size > 1:
        if cutmix_prob <= 0:
            _logger.warning("mixup=%s, cutmix=%s but cutmix_prob=0: no batch will be mixed (cutmix_prob is the "
                            "probability of mixing a batch; 1.0 mixes every batch).", mixup, cutmix)
        mix = Mixup(mixup, cutmix, cutmix_prob, MIXUP_SWITCH_PROB, label_smoothing, num_classes, seed)

    if separate:
        dataset = _map_splits(dataset, _check_split_transform(transform), seed, workers, python_multiprocessing)
        loader = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_workers=workers,
                               per_batch_map=StackSplits(mix), input_columns=[*SPLIT_COLUMNS, "label"],
                               output_columns=["image", "label"])
    else:
        if isinstance(transform, tuple) and any(isinstance(group, (list, tuple)) for group in transform):
            raise InvalidValueError("transform holds the separate groups of create_transforms(..., separate=True); "
                                    "pass separate=True to create_loader too, or build one list with separate=False.")
        transform = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        dataset = _map_in_runs(dataset, _seeded(transform, seed), workers, python_multiprocessing)
        if mix is None:
            loader = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_workers=workers)
        else:
            loader = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_workers=workers,
                                   per_batch_map=mix, input_columns=["image", "label"])
    if source is not None and source.num_classes is not None:
        answer_num_classes(loader, source.num_classes)
    return loader
