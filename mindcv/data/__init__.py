"""Data: ``create_dataset``, ``create_transforms`` and ``create_loader`` with MindCV's signatures."""
from .auto_augment import (POLICY_FAMILIES, AugMixAugment, AutoAugment, RandAugment, TrivialAugmentWide,
                           augment_and_mix_transform, auto_augment_transform, rand_augment_transform,
                           trivial_augment_wide_transform)
from .constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .dataset_factory import (DATASETS, DatasetSource, create_dataset, dataset_for_epoch, get_dataset_download_root,
                              source_of)
from .image_folder import SkippedImagesWarning
from .loader import create_loader
from .mixup import Mixup
from .random_erasing import RandomErasing
from .sampler import ShardSampler
from .transforms_factory import INTERPOLATIONS, TRANSFORMS, create_transforms

__all__ = [
    "AugMixAugment",
    "AutoAugment",
    "DATASETS",
    "DEFAULT_CROP_PCT",
    "DatasetSource",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "INTERPOLATIONS",
    "Mixup",
    "POLICY_FAMILIES",
    "RandAugment",
    "RandomErasing",
    "ShardSampler",
    "SkippedImagesWarning",
    "TRANSFORMS",
    "TrivialAugmentWide",
    "augment_and_mix_transform",
    "auto_augment_transform",
    "create_dataset",
    "create_loader",
    "create_transforms",
    "dataset_for_epoch",
    "get_dataset_download_root",
    "rand_augment_transform",
    "source_of",
    "trivial_augment_wide_transform",
]
