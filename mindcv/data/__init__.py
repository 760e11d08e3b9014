"""Data: ``create_dataset``, ``create_transforms`` and ``create_loader`` with MindCV's signatures."""
from .auto_augment import POLICY_FAMILIES, auto_augment_transform
from .dataset_factory import DATASETS, DatasetSource, create_dataset, dataset_for_epoch, source_of
from .image_folder import SkippedImagesWarning
from .loader import create_loader
from .mixup import Mixup
from .random_erasing import RandomErasing
from .sampler import ShardSampler
from .transforms_factory import INTERPOLATIONS, TRANSFORMS, create_transforms

__all__ = [
    "DATASETS",
    "DatasetSource",
    "INTERPOLATIONS",
    "Mixup",
    "POLICY_FAMILIES",
    "RandomErasing",
    "ShardSampler",
    "SkippedImagesWarning",
    "TRANSFORMS",
    "auto_augment_transform",
    "create_dataset",
    "create_loader",
    "create_transforms",
    "dataset_for_epoch",
    "source_of",
]
