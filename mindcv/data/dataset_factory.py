"""``create_dataset``: image folders (ImageNet layout) and CIFAR-10/100, MNIST from their standard files.

Every dataset yields the columns ``image`` (encoded bytes for image folders, decoded HWC uint8 arrays for
the others) and ``label`` (int32), read in the order a ``ShardSampler`` deals out, and answers
``num_classes()`` with its class count, as MindCV's train.py asks.
"""
import copy
import gzip
import os
import shutil
import tarfile
from dataclasses import dataclass

import mindspore as ms
import mindspore.dataset as ds

from ..foundation.download import download_url
from ..foundation.errors import DownloadError, InvalidValueError, MissingPathError, UnknownNameError
from .image_folder import EncodedImageSource, scan_image_folder
from .sampler import ShardSampler

MAX_WORKERS = 8


@dataclass(frozen=True)
class DatasetSource:
    """What ``create_loader`` needs to know about a dataset ``create_dataset`` built."""

    name: str
    sampler: ShardSampler
    classes: tuple = ()  # class names, where the dataset has them (image folders)
    num_classes: int = None


SOURCE_ATTRIBUTE = "mindcv_source"


def source_of(dataset):
    """The ``DatasetSource`` of a dataset from ``create_dataset``, or ``None`` for any other dataset."""
    return getattr(dataset, SOURCE_ATTRIBUTE, None)


def get_dataset_download_root():
    """Where datasets live when ``create_dataset`` gets no root: ``~/.mindspore/datasets``, as in MindCV."""
    return os.path.join(os.path.expanduser("~"), ".mindspore", "datasets")


def answer_num_classes(dataset, num_classes):
    """Make ``dataset.num_classes()`` return ``num_classes``: MindSpore's answers only for its own folder reader
    (``None`` for a ``GeneratorDataset``, for CIFAR and MNIST, and for any pipeline built on them)."""
    dataset.num_classes = lambda: num_classes
    return dataset


def resolve_workers(num_parallel_workers):
    """A worker count this machine accepts: MindSpore refuses more workers than CPUs."""
    cpus = os.cpu_count() or 1
    return max(1, min(num_parallel_workers or MAX_WORKERS, cpus))


def shared_seed(seed=None):
    """The seed every rank agrees on: ``seed``, else ``mindspore.set_seed``'s, else the dataset engine's."""
    if seed is not None:
        return int(seed)
    global_seed = ms.get_seed()
    return int(global_seed) if global_seed is not None else int(ds.config.get_seed())


def _image_folder(root, split, sampler_args, workers, download):
    if download:
        raise DownloadError(f"Image-folder datasets (ImageNet) cannot be downloaded automatically; place the images "
                            f"at {root}/{split}/<class>/<image> and call again with download=False.")
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        raise MissingPathError(f"Split folder does not exist: {split_dir} (expected {root}/{split}/<class>/<image>)")
    classes, paths, labels = scan_image_folder(split_dir)
    sampler = ShardSampler(len(labels), **sampler_args)
    dataset = ds.GeneratorDataset(EncodedImageSource(split_dir, paths, labels), ["image", "label"], sampler=sampler,
                                  num_parallel_workers=workers, python_multiprocessing=False)
    return dataset, sampler, tuple(classes), len(classes)


_SPLIT_ALIASES = {"train": "train", "test": "test", "val": "test", "validation": "test", "all": "all"}


@dataclass(frozen=True)
class _BinaryDataset:
    """A dataset shipped as fixed binary files that MindSpore reads natively; called like ``_image_folder``."""

    name: str
    reader: type
    urls: tuple
    folder: str  # where the archive unpacks, relative to root ("" when the files sit in root)
    files: dict  # usage -> files it needs
    num_classes: int
    label_column: str = "label"

    def layout(self, root):
        where = os.path.join(root, self.folder) if self.folder else root
        return f"{where}/{{{', '.join(f for files in self.files.values() for f in files)}}}"

    def data_dir(self, root):
        nested = os.path.join(root, self.folder)
        return nested if self.folder and os.path.isdir(nested) else root

    def missing_files(self, root, usage):
        needed = self.files["train"] + self.files["test"] if usage == "all" else self.files[usage]
        return [f for f in needed if not os.path.isfile(os.path.join(self.data_dir(root), f))]

    def download(self, root):
        os.makedirs(root, exist_ok=True)
        for url in self.urls:
            try:
                archive = download_url(url, cache_dir=root)
            except DownloadError as err:
                raise DownloadError(f"Could not download {self.name} from {url}. Without network access, place the "
                                    f"files yourself as {self.layout(root)} and pass download=False.") from err
            if archive.endswith(".tar.gz"):
                with tarfile.open(archive) as tar:
                    tar.extractall(root, filter="data")
            elif archive.endswith(".gz"):
                with gzip.open(archive) as packed, open(archive[:-3], "wb") as out:
                    shutil.copyfileobj(packed, out)

    def __call__(self, root, split, sampler_args, workers, download):
        usage = _SPLIT_ALIASES.get(split)
        if usage is None:
            raise UnknownNameError(f"{self.name} split", split, _SPLIT_ALIASES)
        if download and self.missing_files(root, usage):
            self.download(root)
        missing, data_dir = self.missing_files(root, usage), self.data_dir(root)
        if missing:
            raise MissingPathError(f"{self.name} files missing in {data_dir}: {', '.join(missing)} (expected "
                                   f"{self.layout(root)}; download=True fetches them)")
        size = self.reader(data_dir, usage=usage).get_dataset_size()
        sampler = ShardSampler(size, **sampler_args)
        dataset = self.reader(data_dir, usage=usage, sampler=sampler, num_parallel_workers=workers)
        if self.label_column != "label":
            dataset = dataset.rename(self.label_column, "label").project(["image", "label"])
        return dataset, sampler, (), self.num_classes


_MNIST_FILES = {"train": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
                "test": ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]}
_CIFAR10 = _BinaryDataset(
    "cifar10", ds.Cifar10Dataset, ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",), "cifar-10-batches-bin",
    {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}, 10)
_CIFAR100 = _BinaryDataset(
    "cifar100", ds.Cifar100Dataset, ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",), "cifar-100-binary",
    {"train": ["train.bin"], "test": ["test.bin"]}, 100, label_column="fine_label")
_MNIST = _BinaryDataset(
    "mnist", ds.MnistDataset,
    tuple(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}.gz" for files in _MNIST_FILES.values() for f in files),
    "", _MNIST_FILES, 10)

# name -> reader(root, split, sampler arguments, workers, download) -> (dataset, sampler, classes, num_classes)
DATASETS = {
    "": _image_folder,
    "imagenet": _image_folder,
    "cifar10": _CIFAR10,
    "cifar100": _CIFAR100,
    "mnist": _MNIST,
}


def create_dataset(name="", root=None, split="train", shuffle=True, num_samples=None, num_shards=None, shard_id=None,
                   num_parallel_workers=None, download=False, num_aug_repeats=0, seed=None):
    """A ``mindspore.dataset`` of ``(image, label)`` rows whose ``num_classes()`` is the class count.

    ``name``: a key of ``DATASETS``, any case; ``''``/``'imagenet'`` read ``root/split/<class>/<image>``
    (classes sorted, label ids in that order; undecodable files skipped with a warning). ``root`` defaults to
    ``get_dataset_download_root()/name``, as in MindCV. ``num_shards``/``shard_id``: this rank's disjoint part
    (see ``ShardSampler``). ``num_samples``: at most this many samples per rank. ``num_aug_repeats`` > 0:
    repeated augmentation with that many copies of each image. ``seed``: the shuffling seed, which must be the
    same on every rank (default: ``mindspore.set_seed``'s).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    name = key
    if root is None:
        root = os.path.join(get_dataset_download_root(), name)
    if not download and not os.path.isdir(root):
        raise MissingPathError(f"Dataset root does not exist: {root}")
    if (num_shards is None) != (shard_id is None):
        raise InvalidValueError(f"Pass num_shards and shard_id together (got {num_shards} and {shard_id}).")
    sampler_args = dict(num_shards=num_shards or 1, shard_id=shard_id or 0, shuffle=shuffle, num_samples=num_samples,
                        num_repeats=num_aug_repeats or 1, seed=shared_seed(seed))
    dataset, sampler, classes, num_classes = DATASETS[name](root, split, sampler_args,
                                                            resolve_workers(num_parallel_workers), download)
    setattr(dataset, SOURCE_ATTRIBUTE, DatasetSource(name, sampler, classes, num_classes))
    return answer_num_classes(dataset, num_classes)


def dataset_for_epoch(dataset, epoch):
    """A fresh copy of ``dataset`` (a pipeline is consumed once) whose sampler draws epoch ``epoch``'s order
    (0-based): the order depends only on the shuffling seed and the epoch, so a resumed run reads exactly
    what an uninterrupted run would have read."""
    fresh = copy.deepcopy(dataset)
    source = source_of(fresh)
    if source is not None and source.sampler is not None:
        source.sampler.epoch = epoch
    return fresh
