"""A MindCV user's calls into ``mindcv.data`` work unchanged and give MindCV's values.

The calls are those of MindCV's tests/modules/test_dataset.py, test_transforms.py, test_loader.py, its
train.py and its tutorials; each test names the case it stands for. What cannot carry over:
- MindCV downloads the Canidae zip and CIFAR-10 in its tests; without network access, small image folders
  and CIFAR/MNIST files written here stand in, laid out as the downloads unpack.
- MindCV runs each case in graph and in PyNative mode; the data pipeline does not depend on the mode.
- MindCV's batches of 32-128 become batches of 4, which exercise the same code.
"""
import inspect
import math
import os
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageOps

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset.transforms import OneHot
from mindspore.dataset.vision import Inter

from mindcv.data import (DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, AugMixAugment, AutoAugment,
                         RandAugment, TrivialAugmentWide, augment_and_mix_transform, auto_augment_transform,
                         create_dataset, create_loader, create_transforms, dataset_for_epoch,
                         get_dataset_download_root, rand_augment_transform, source_of,
                         trivial_augment_wide_transform)
from mindcv.data import transforms_factory
from mindcv.data.auto_augment import AugmentOp, AugmentParams
from mindcv.foundation.errors import InvalidValueError, UnknownNameError

from .conftest import write_image

MINDCV_POLICIES = ["autoaug", "autoaugr", "3a", "randaug", "augmix", "trivialaugwide"]
IMAGENET_MEAN_255 = [123.675, 116.28, 103.53]
IMAGENET_STD_255 = [58.395, 57.12, 57.375]
NO_TRANSFORM_WARNING = "ignore:create_loader without a transform"


def _types(transforms):
    return [type(t).__name__ for t in transforms]


def _apply(transforms, data):
    for transform in transforms:
        data = transform(data)
    return data


def _batches(loader):
    return list(loader.create_tuple_iterator(output_numpy=True, num_epochs=1))


def _write_cifar(folder, name, label_bytes, labels_mod):
    """A CIFAR binary file as the archive unpacks it; MindSpore's reader wants all 10000 records."""
    records = np.zeros((10000, label_bytes + 3 * 32 * 32), np.uint8)
    records[:, label_bytes - 1] = np.arange(10000) % labels_mod
    records[:, label_bytes:] = (np.arange(10000) % 256)[:, None]
    os.makedirs(folder, exist_ok=True)
    records.tofile(os.path.join(folder, name))


def _write_mnist(folder, count=4):
    os.makedirs(folder, exist_ok=True)
    for prefix in ("train", "t10k"):
        with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(np.array([2051, count, 28, 28], ">u4").tobytes() + bytes(count * 28 * 28))
        with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(np.array([2049, count], ">u4").tobytes() + bytes(range(count)))


@pytest.fixture
def canidae(image_folder):
    """Stands in for MindCV's Canidae download: train and val splits, 2 classes (dogs, wolves)."""
    image_folder({"dogs": 6, "wolves": 6}, split="val", size=(60, 80))
    return image_folder({"dogs": 7, "wolves": 5}, split="train", size=(60, 80))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder, so the default dataset root lies under tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --- names MindCV's docs and tests import ---------------------------------------------------------------------

def test_constants_have_mindcv_values_on_its_0_255_scale():
    assert DEFAULT_CROP_PCT == 0.875
    assert IMAGENET_DEFAULT_MEAN == pytest.approx(IMAGENET_MEAN_255)
    assert IMAGENET_DEFAULT_STD == pytest.approx(IMAGENET_STD_255)
    # either scale gives the same normalisation
    on_255 = create_transforms("", 32, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)[-2]
    on_unit = create_transforms("", 32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))[-2]
    assert on_255.mean == pytest.approx(on_unit.mean) and on_255.std == pytest.approx(on_unit.std)
    assert on_255.mean == pytest.approx(IMAGENET_MEAN_255)


def test_dataset_download_root_is_mindcv_default_root(home):
    """MindCV's tests place their downloads under get_dataset_download_root(); create_dataset without a root
    reads <that root>/<name>, as MindCV's README call ``create_dataset('cifar10', download=True)`` does."""
    assert get_dataset_download_root() == os.path.join(str(home), ".mindspore", "datasets")
    _write_cifar(os.path.join(get_dataset_download_root(), "cifar10", "cifar-10-batches-bin"), "test_batch.bin", 1, 10)
    dataset = create_dataset(name="CIFAR10", split="test", shuffle=True, num_samples=2, num_parallel_workers=2,
                             download=True)  # the files are there: nothing to fetch
    assert type(dataset) is ds.Cifar10Dataset  # MindCV's test_create_dataset_standalone_mc
    assert dataset.get_dataset_size() == 2 and dataset.num_classes() == 10
    with pytest.raises(FileNotFoundError, match=r"\.mindspore.datasets.mnist"):
        create_dataset("mnist")


# --- create_dataset (test_dataset.py) ---------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("num_samples", [2, None])
def test_create_dataset_standalone_imagenet(canidae, split, shuffle, num_samples):
    """MindCV asserts an ImageFolderDataset; ours is a GeneratorDataset over the screened file list (corrupt
    images are left out, shards are dealt by our sampler), so the test checks what both give instead."""
    dataset = create_dataset(name="ImageNet", root=canidae, split=split, shuffle=shuffle, num_samples=num_samples,
                             num_parallel_workers=2, download=False)
    assert isinstance(dataset, ms.dataset.Dataset)
    assert dataset.get_col_names() == ["image", "label"]
    assert dataset.get_dataset_size() == (num_samples or 12)
    assert dataset.num_classes() == 2
    assert source_of(dataset).classes == ("dogs", "wolves")
    labels = [int(label) for _, label in _batches(dataset)]
    assert len(labels) == (num_samples or 12) and set(labels) <= {0, 1}


def test_num_classes_answers_for_every_dataset_and_survives_copies_and_loaders(image_folder, tmp_path):
    """MindCV's train.py reads ``dataset_train.num_classes()`` when num_classes is not given."""
    folder = create_dataset("", image_folder({"a": 2, "b": 1, "c": 1}))
    assert folder.num_classes() == 3
    copy = dataset_for_epoch(folder, 2)
    assert copy.num_classes() == 3 and source_of(copy).sampler.epoch == 2 and source_of(copy).num_classes == 3
    assert len(_batches(copy)) == 4
    loader = create_loader(copy, 2, transform=create_transforms("", 16))
    assert loader.num_classes() == 3 and len(_batches(loader)) == 2

    _write_cifar(str(tmp_path / "c10" / "cifar-10-batches-bin"), "test_batch.bin", 1, 10)
    _write_cifar(str(tmp_path / "c100"), "test.bin", 2, 100)
    _write_mnist(str(tmp_path / "mnist"))
    assert create_dataset("cifar10", str(tmp_path / "c10"), "test").num_classes() == 10
    cifar100 = create_dataset("cifar100", str(tmp_path / "c100"), "test", num_samples=3)
    assert cifar100.num_classes() == 100 and dataset_for_epoch(cifar100, 1).num_classes() == 100
    assert create_dataset("mnist", str(tmp_path / "mnist"), "train").num_classes() == 10


# --- create_transforms (test_transforms.py, transforms_factory defaults) ----------------------------------------

# MindCV's defaults, keyword by keyword.
MINDCV_DEFAULTS = {
    create_transforms: dict(dataset_name="", image_resize=224, is_training=False, auto_augment=None, separate=False),
    transforms_factory.transforms_imagenet_train: dict(
        image_resize=224, scale=(0.08, 1.0), ratio=(0.75, 1.333), hflip=0.5, vflip=0.0, color_jitter=None,
        auto_augment=None, interpolation="bilinear", mean=IMAGENET_MEAN_255, std=IMAGENET_STD_255, re_prob=0.0,
        re_scale=(0.02, 0.33), re_ratio=(0.3, 3.3), re_value=0, re_max_attempts=10, separate=False),
    transforms_factory.transforms_imagenet_eval: dict(
        image_resize=224, crop_pct=0.875, mean=IMAGENET_MEAN_255, std=IMAGENET_STD_255, interpolation="bilinear"),
    create_loader: dict(
        drop_remainder=False, is_training=False, mixup=0.0, cutmix=0.0, cutmix_prob=0.0, num_classes=1000,
        transform=None, target_transform=None, num_parallel_workers=None, python_multiprocessing=False,
        separate=False),
    create_dataset: dict(name="", root=None, split="train", shuffle=True, num_samples=None, num_shards=None,
                         shard_id=None, num_parallel_workers=None, download=False, num_aug_repeats=0),
}


@pytest.mark.parametrize("function", MINDCV_DEFAULTS, ids=lambda f: f.__name__)
def test_defaults_and_positional_order_are_mindcv(function):
    parameters = inspect.signature(function).parameters
    names = [name for name in parameters if parameters[name].default is not inspect.Parameter.empty]
    expected = MINDCV_DEFAULTS[function]
    assert names[:len(expected)] == list(expected)  # positional calls land on the same parameters
    for name, value in expected.items():
        default = parameters[name].default
        if isinstance(value, list):
            assert default == pytest.approx(value), name
        else:
            assert default == value, name


def test_training_defaults_build_mindcv_pipeline():
    """``create_transforms(is_training=True)``: crop, flip, normalise; no colour jitter, no erasing."""
    transforms = create_transforms("ImageNet", is_training=True)
    assert _types(transforms) == ["Decode", "RandomResizedCrop", "RandomHorizontalFlip", "Normalize", "HWC2CHW"]
    crop, flip, normalize = transforms[1], transforms[2], transforms[3]
    assert crop.size == (224, 224) and crop.scale == (0.08, 1.0) and crop.ratio == (0.75, 1.333)
    assert crop.interpolation == Inter.BILINEAR and flip.prob == 0.5
    assert normalize.mean == pytest.approx(IMAGENET_MEAN_255) and normalize.std == pytest.approx(IMAGENET_STD_255)


def test_evaluation_defaults_resize_to_256_and_crop_224():
    transforms = create_transforms(dataset_name="imagenet", is_training=False)
    resize, crop = transforms[1], transforms[2]
    assert (type(resize).__name__, resize.py_size, resize.interpolation) == ("Resize", 256, Inter.BILINEAR)
    assert (type(crop).__name__, crop.size) == ("CenterCrop", (224, 224))
    assert transforms[-2].mean == pytest.approx(IMAGENET_MEAN_255)


@pytest.mark.parametrize("image_resize", [224, 256])
def test_transforms_standalone_imagenet_is_training(image_resize):
    train = create_transforms(dataset_name="ImageNet", image_resize=image_resize, is_training=True)
    val = create_transforms(dataset_name="ImageNet", image_resize=image_resize, is_training=False)
    assert type(train) is list and type(val) is list
    assert _types(train) != _types(val)


@pytest.mark.parametrize("is_training", [True, False])
@pytest.mark.parametrize("image_resize", [224, 256])
@pytest.mark.parametrize("auto_augment", [None] + MINDCV_POLICIES)
def test_transforms_standalone_imagenet(canidae, is_training, image_resize, auto_augment):
    dataset = create_dataset(name="ImageNet", root=canidae, split="train", shuffle=True, num_parallel_workers=2)
    transform = create_transforms(dataset_name="ImageNet", image_resize=image_resize, is_training=is_training,
                                  auto_augment=auto_augment)
    loader = create_loader(dataset=dataset, batch_size=4, drop_remainder=True, is_training=is_training,
                           transform=transform, num_parallel_workers=2)
    assert loader.output_shapes()[0] == [4, 3, image_resize, image_resize]
    assert loader.get_dataset_size() == 3


@pytest.mark.parametrize("image_resize", [224, 256])
@pytest.mark.parametrize("is_training", [True, False])
def test_transforms_standalone_dataset_mc(home, image_resize, is_training):
    """CIFAR-10 from the default root; the test split, since MindSpore's reader wants five full 30 MB files
    for the training split."""
    _write_cifar(os.path.join(get_dataset_download_root(), "cifar10", "cifar-10-batches-bin"), "test_batch.bin", 1, 10)
    dataset = create_dataset(name="CIFAR10", split="test", shuffle=True, num_samples=8, num_parallel_workers=2,
                             download=True)
    transform = create_transforms(dataset_name="CIFAR10", image_resize=image_resize, is_training=is_training)
    loader = create_loader(dataset=dataset, batch_size=4, drop_remainder=True, is_training=is_training,
                           transform=transform, num_parallel_workers=2)
    assert loader.output_shapes()[0] == [4, 3, image_resize, image_resize]


def test_crop_pct_above_one_pads_the_centre_crop_as_mindcv(tmp_path):
    """crop_pct 1.25 at size 40: the 60x80 image is resized to 32x42, and the 40x40 centre crop takes
    columns 1..40 and pads 4 black rows above and below (MindSpore's CenterCrop pads)."""
    path = tmp_path / "image.jpg"
    write_image(path, seed=4, size=(60, 80))
    out = _apply(create_transforms("", 40, crop_pct=1.25), np.fromfile(path, np.uint8))
    assert out.shape == (3, 40, 40)
    mean, std = np.array(IMAGENET_MEAN_255) / 255, np.array(IMAGENET_STD_255) / 255
    pixels = out.transpose(1, 2, 0) * std + mean
    expected = np.zeros((40, 40, 3))
    resized = Image.open(path).convert("RGB").resize((42, 32), Image.BILINEAR)
    expected[4:36] = np.asarray(resized, np.float64)[:, 1:41] / 255
    np.testing.assert_allclose(pixels, expected, atol=1 / 255 + 1e-6)
    # MindCV's own pipeline (MindSpore decode and resize) pads the same rows
    mindcv_style = [ds.vision.Decode(), ds.vision.Resize(math.floor(40 / 1.25)), ds.vision.CenterCrop(40)]
    padded_rows = (_apply(mindcv_style, np.fromfile(path, np.uint8)) == 0).all(axis=(1, 2))
    assert padded_rows.tolist() == [True] * 4 + [False] * 32 + [True] * 4
    with pytest.raises(InvalidValueError, match="crop_pct must be positive"):
        create_transforms("", 40, crop_pct=0)


@pytest.mark.parametrize("color_jitter,expected", [
    (0.4, dict(brightness=(0.6, 1.4), contrast=(0.6, 1.4), saturation=(0.6, 1.4), hue=(0, 0))),
    ([0.1, 0.2, 0.3], dict(brightness=(0.9, 1.1), contrast=(0.8, 1.2), saturation=(0.7, 1.3), hue=(0, 0))),
    ((0.1, 0.2, 0.3, 0.05), dict(brightness=(0.9, 1.1), contrast=(0.8, 1.2), saturation=(0.7, 1.3),
                                 hue=(-0.05, 0.05))),
])
def test_color_jitter_number_or_list_reaches_random_color_adjust(color_jitter, expected):
    transforms = create_transforms("", 32, is_training=True, color_jitter=color_jitter)
    adjust = transforms[3]
    assert type(adjust).__name__ == "RandomColorAdjust"
    for name, (low, high) in expected.items():
        assert getattr(adjust, name) == (pytest.approx(low), pytest.approx(high)), name


def test_color_jitter_is_checked_and_gives_way_to_auto_augment():
    with pytest.raises(InvalidValueError, match="3 or 4 numbers"):
        create_transforms("", 32, is_training=True, color_jitter=[0.1, 0.2])
    for policy in ("randaug-m9-mstd0.5-inc1", "3a"):  # MindCV applies jitter only without a policy
        transforms = create_transforms("", 32, is_training=True, color_jitter=0.4, auto_augment=policy)
        assert "RandomColorAdjust" not in _types(transforms)


def test_re_max_attempts_mean_and_std_reach_their_transforms(tmp_path):
    def erasing(**options):
        transforms = create_transforms("", 32, is_training=True, re_prob=1.0, re_value=1.0, re_scale=(0.1, 0.2),
                                       **options)
        assert type(transforms[-1]).__name__ == "RandomErasing"
        transforms[-1].set_seed(0)
        return transforms[-1]

    assert erasing(re_max_attempts=0).max_attempts == 0
    zeros = np.zeros((3, 32, 32), np.float32)
    np.testing.assert_array_equal(erasing(re_max_attempts=0)(zeros), zeros)  # no attempt: nothing erased
    assert erasing()(zeros).sum() > 0

    normalize = create_transforms("", 32, is_training=True, mean=(10, 20, 30), std=(2, 4, 8))[-2]
    assert normalize.mean == [10, 20, 30] and normalize.std == [2, 4, 8]
    path = tmp_path / "image.jpg"
    write_image(path, seed=1)
    plain = _apply(create_transforms("", 32, mean=(0, 0, 0), std=(255, 255, 255)), np.fromfile(path, np.uint8))
    imagenet = _apply(create_transforms("", 32), np.fromfile(path, np.uint8))
    np.testing.assert_allclose(plain, imagenet * np.array(IMAGENET_STD_255)[:, None, None] / 255
                               + np.array(IMAGENET_MEAN_255)[:, None, None] / 255, atol=1e-5)


# --- aug_splits: create_transforms(separate=True) + create_loader(separate=True) --------------------------------

def _split_loader(root, policy, image_resize=32, seed=None, **options):
    dataset = create_dataset(name="ImageNet", root=root, split="train", shuffle=False, num_parallel_workers=2)
    transform = create_transforms(dataset_name="ImageNet", image_resize=image_resize, is_training=True,
                                  auto_augment=policy, separate=True)
    return create_loader(dataset=dataset, batch_size=4, drop_remainder=True, is_training=True, transform=transform,
                         num_parallel_workers=2, separate=True, seed=seed, **options)


@pytest.mark.parametrize("image_resize", [224, 256])
@pytest.mark.parametrize("auto_augment", MINDCV_POLICIES)
def test_transforms_standalone_imagenet_aug_splits(canidae, auto_augment, image_resize):
    """MindCV's aug_splits=3 case: batches of 3 x batch_size rows, the clean images first."""
    loader = _split_loader(canidae, auto_augment, image_resize)
    assert loader.get_batch_size() == 4
    assert loader.output_shapes()[0] == [12, 3, image_resize, image_resize] and loader.output_shapes()[1] == [12]
    images, labels = _batches(loader)[0]
    assert labels[:4].tolist() == labels[4:8].tolist() == labels[8:].tolist() == [0, 0, 0, 0]
    # the two augmented copies differ from the clean image and from each other
    assert not np.allclose(images[:4], images[4:8]) and not np.allclose(images[4:8], images[8:])


def test_aug_splits_are_reproducible_and_mix_all_splits_alike(canidae):
    first = _batches(_split_loader(canidae, "augmix", seed=3))
    again = _batches(_split_loader(canidae, "augmix", seed=3))
    other = _batches(_split_loader(canidae, "augmix", seed=4))
    for (images_a, labels_a), (images_b, labels_b) in zip(first, again):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert not np.array_equal(first[0][0], other[0][0])
    # Mixup/CutMix on the stacked batch: every split gets the same soft targets (one mixed batch, three views)
    mixed = _batches(_split_loader(canidae, "augmix", mixup=0.8, cutmix=1.0, cutmix_prob=1.0, num_classes=2))
    for _, targets in mixed:
        assert targets.shape == (12, 2)
        np.testing.assert_allclose(targets[:4], targets[4:8])
        np.testing.assert_allclose(targets[:4], targets[8:])
        np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)


def test_aug_splits_need_the_three_groups(canidae):
    dataset = create_dataset("", canidae)
    with pytest.raises(InvalidValueError, match="separate=True needs transform"):
        create_loader(dataset, 4, is_training=True, separate=True, transform=create_transforms("", 32, True))
    with pytest.raises(InvalidValueError, match="pass separate=True to create_loader"):
        create_loader(dataset, 4, is_training=True, transform=create_transforms("", 32, True, "augmix", True))
    with pytest.warns(UserWarning, match="differ only through an auto_augment policy"):
        create_loader(dataset, 4, is_training=True, separate=True,
                      transform=create_transforms("", 32, True, color_jitter=0.4, separate=True))


def test_evaluation_ignores_separate_in_transforms_but_the_loader_refuses_it(canidae):
    """MindCV's aug_splits case with is_training=False: its create_transforms returns the evaluation list, which
    ours does too; its create_loader then ignores separate, where ours keeps refusing it (an existing test here,
    test_loader.py::test_separate_splits_are_refused, holds that behaviour)."""
    transforms = create_transforms("ImageNet", 224, is_training=False, auto_augment="augmix", separate=True)
    assert _types(transforms) == _types(create_transforms("ImageNet", 224, is_training=False))
    with pytest.raises(InvalidValueError, match="is_training=True"):
        create_loader(create_dataset("", canidae), 4, is_training=False, transform=transforms, separate=True)


# --- create_loader (test_loader.py, tutorials) -------------------------------------------------------------------

@pytest.mark.filterwarnings(NO_TRANSFORM_WARNING)
@pytest.mark.parametrize("batch_size,drop_remainder", [(1, True), (4, False)])
@pytest.mark.parametrize("is_training", [True, False])
@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("mixup", [0, 1])
def test_dataset_loader_standalone(canidae, batch_size, drop_remainder, is_training, one_hot, mixup):
    dataset = create_dataset(name="ImageNet", root=canidae, split="train", shuffle=False, num_parallel_workers=2)
    loader = create_loader(dataset=dataset, batch_size=batch_size, drop_remainder=drop_remainder,
                           is_training=is_training, transform=None, target_transform=[OneHot(2)] if one_hot else None,
                           mixup=mixup, num_classes=2, num_parallel_workers=2)
    assert loader.get_batch_size() == batch_size
    assert loader.output_shapes()[0] == [batch_size, 3, 224, 224]
    _, labels = _batches(loader)[0]  # the first images are all dogs (class 0)
    mixing = is_training and mixup > 0 and batch_size > 1  # MindCV mixes batches of two or more
    if mixing:  # soft targets, from class ids or one-hot rows alike
        assert labels.shape == (batch_size, 2) and labels.dtype == np.float32
        np.testing.assert_allclose(labels, [[1.0, 0.0]] * batch_size)
    elif one_hot:
        assert labels.shape == (batch_size, 2) and labels.tolist() == [[1, 0]] * batch_size
    else:
        assert labels.dtype == np.int32 and labels.tolist() == [0] * batch_size


@pytest.mark.parametrize("python_multiprocessing", [True, False])
def test_loader_with_python_multiprocessing(canidae, python_multiprocessing):
    loader = create_loader(create_dataset("", canidae, shuffle=False), 4, transform=create_transforms("", 32),
                           num_parallel_workers=2, python_multiprocessing=python_multiprocessing)
    images, labels = _batches(loader)[0]
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [0, 0, 0, 0]


def test_loader_without_transform_evaluates_as_mindcv(canidae):
    """MindCV: without a transform, the ImageNet evaluation transforms, with a warning; no augmentation even
    when training."""
    with pytest.warns(UserWarning, match="evaluation transforms"):
        default = _batches(create_loader(create_dataset("", canidae, shuffle=False), 4, is_training=True))
    explicit = _batches(create_loader(create_dataset("", canidae, shuffle=False), 4,
                                      transform=create_transforms("", is_training=False)))
    for (images_a, labels_a), (images_b, labels_b) in zip(default, explicit):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_loader(create_dataset("", canidae), 4)  # evaluation: the default is what it needs, no warning


def test_repeated_aug(canidae):
    """MindCV's test: with num_aug_repeats=3 a batch holds copies of one image (identical under evaluation
    transforms). One rank reads each drawn image 3 times in a row."""
    dataset = create_dataset(name="imagenet", root=canidae, split="val", shuffle=True, num_parallel_workers=2,
                             download=False, num_aug_repeats=3)
    loader = create_loader(dataset=dataset, batch_size=6, drop_remainder=True, is_training=False, transform=None,
                           num_classes=2, num_parallel_workers=2)
    batches = _batches(loader)
    assert len(batches) == 2
    for images, _ in batches:
        counts = Counter(int(value * 1e6) for value in images.mean(axis=(1, 2, 3)))
        assert sorted(counts.values()) == [3, 3]


def test_tutorial_calls(canidae, image_folder, tmp_path):
    """docs/en/tutorials: finetune (default name, val loader with is_training=True and the val transforms),
    inference (split 'test', batch 1) and quick_start (get_dataset_size)."""
    dataset_train = create_dataset(root=canidae, split="train", num_parallel_workers=2)
    dataset_val = create_dataset(root=canidae, split="val", num_parallel_workers=2)
    trans_train = create_transforms(dataset_name="ImageNet", is_training=True)
    trans_val = create_transforms(dataset_name="ImageNet", is_training=False)
    loader_train = create_loader(dataset=dataset_train, batch_size=4, is_training=True, num_classes=2,
                                 transform=trans_train, num_parallel_workers=2)
    loader_val = create_loader(dataset=dataset_val, batch_size=5, is_training=True, num_classes=2,
                               transform=trans_val, num_parallel_workers=2)
    assert loader_train.get_dataset_size() == 3 and loader_val.get_dataset_size() == 3
    images, labels = _batches(loader_val)[0]
    assert images.shape == (5, 3, 224, 224) and labels.dtype == np.int32

    image_folder({"dog": 1}, split="test")
    data_loader = create_loader(dataset=create_dataset(root=canidae, split="test", num_parallel_workers=2),
                                batch_size=1, is_training=False, num_classes=1000,
                                transform=create_transforms(dataset_name="imagenet", is_training=False),
                                num_parallel_workers=2)
    assert [images.shape for images, _ in _batches(data_loader)] == [(1, 3, 224, 224)]


def test_train_script_with_aug_splits(canidae):
    """MindCV's train.py: every option passed by keyword from its defaults, aug_splits 3 with augmix,
    num_classes read from the dataset, then its evaluation loader."""
    dataset_train = create_dataset(name="imagenet", root=canidae, split="train", shuffle=True, num_samples=None,
                                   num_shards=None, shard_id=None, num_parallel_workers=2, download=False,
                                   num_aug_repeats=0)
    num_classes = dataset_train.num_classes()
    assert num_classes == 2
    transform_list = create_transforms(
        dataset_name="imagenet", is_training=True, image_resize=32, scale=(0.08, 1.0), ratio=(0.75, 1.333),
        hflip=0.5, vflip=0.0, color_jitter=0.4, interpolation="bilinear", auto_augment="augmix",
        mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, re_prob=0.25, re_scale=(0.02, 0.33),
        re_ratio=(0.3, 3.3), re_value=0, re_max_attempts=10, separate=True)
    loader_train = create_loader(dataset=dataset_train, batch_size=4, drop_remainder=True, is_training=True,
                                 mixup=0.8, cutmix=1.0, cutmix_prob=1.0, num_classes=num_classes,
                                 transform=transform_list, num_parallel_workers=2, separate=True)
    assert loader_train.get_dataset_size() == 3
    images, targets = _batches(loader_train)[0]
    assert images.shape == (12, 3, 32, 32) and targets.shape == (12, 2)

    dataset_eval = create_dataset(name="imagenet", root=canidae, split="val", shuffle=False, num_parallel_workers=2)
    transform_list_eval = create_transforms(dataset_name="imagenet", image_resize=32, is_training=False,
                                            interpolation="bilinear", crop_pct=0.875, mean=IMAGENET_DEFAULT_MEAN,
                                            std=IMAGENET_DEFAULT_STD)
    loader_eval = create_loader(dataset=dataset_eval, batch_size=4, drop_remainder=False, is_training=False,
                                transform=transform_list_eval, num_parallel_workers=2)
    assert [labels.tolist() for _, labels in _batches(loader_eval)] == [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]]


# --- the policy builders (mindcv.data.auto_augment) -------------------------------------------------------------

HPARAMS = dict(translate_const=100, img_mean=(124, 116, 104), interpolation=Inter.BICUBIC)  # as create_transforms


def _image(seed=0, size=(24, 32)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)


def _ops(policy):
    return [(op.name, op.prob, op.magnitude) for op in policy]


def test_rand_augment_transform():
    policy = rand_augment_transform("randaug-m9-mstd0.5-inc1", dict(HPARAMS))
    assert type(policy) is RandAugment and policy.num_layers == 2 and policy.choice_weights is None
    assert {(prob, magnitude) for _, prob, magnitude in _ops(policy.ops)} == {(0.5, 9)}
    assert {"PosterizeIncreasing", "SolarizeIncreasing", "Rotate"} <= {name for name, _, _ in _ops(policy.ops)}
    params = policy.ops[0].params
    assert (params.magnitude_std, params.fill, params.resample) == (0.5, (124, 116, 104), Image.BICUBIC)

    weighted = rand_augment_transform("randaug-w0-n3-mstd0.5", dict(HPARAMS))  # MindCV's docstring example
    assert weighted.num_layers == 3
    weights = dict(zip((op.name for op in weighted.ops), weighted.choice_weights))
    assert weights["Invert"] == 0 and weights["Rotate"] / weights["ShearX"] == pytest.approx(1.5)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weighted(_image()).shape == (24, 32, 3)

    assert rand_augment_transform("randaug", dict(HPARAMS)).ops[0].magnitude == 10
    assert rand_augment_transform("randaug", dict(HPARAMS)).ops[0].params.magnitude_std == 0.5  # MindCV's default
    assert rand_augment_transform("rand-m9", dict(HPARAMS)).ops[0].params.magnitude_std == 0  # timm's
    with pytest.raises(UnknownNameError, match="Accepted: rand, randaug"):
        rand_augment_transform("autoaug", {})


def test_auto_augment_transform():
    autoaug = auto_augment_transform("autoaug", dict(HPARAMS))
    assert type(autoaug) is AutoAugment and len(autoaug.policy) == 25
    assert _ops(autoaug.policy[0]) == [("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)]  # the paper's policy
    assert _ops(auto_augment_transform("autoaugr", dict(HPARAMS)).policy[0])[0] == ("PosterizeIncreasing", 0.4, 8)
    three = auto_augment_transform("3a", dict(HPARAMS))
    assert [_ops(sub) for sub in three.policy] == [[("Solarize", 1.0, 5)], [("Desaturate", 1.0, 10)],
                                                   [("GaussianBlurRand", 1.0, 10)]]
    assert autoaug.policy[0][0].params.magnitude_std == 0.5
    assert auto_augment_transform("autoaug-mstd0.3", dict(HPARAMS)).policy[0][0].params.magnitude_std == 0.3
    out = three(_image())
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8


def test_trivial_augment_wide_transform():
    policy = trivial_augment_wide_transform("trivialaugwide", dict(HPARAMS))
    assert type(policy) is TrivialAugmentWide and len(policy.ops) == 14
    assert {(op.prob, op.magnitude) for op in policy.ops} == {(1.0, 31)}
    params = policy.ops[0].params
    assert (params.magnitude_max, params.magnitude_std, params.wide, params.translate_pct) == (31, math.inf, True, 0.15)
    assert trivial_augment_wide_transform("trivialaugwide-m20", None).ops[0].params.magnitude_max == 20
    policy.set_seed(0)
    outputs = [policy(_image(i)) for i in range(8)]
    assert all(out.shape == (24, 32, 3) for out in outputs)
    assert sum(not np.array_equal(out, _image(i)) for i, out in enumerate(outputs)) >= 6


def test_wide_ranges_reach_their_ends_at_magnitude_max():
    img = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16).repeat(3).reshape(16, 16, 3))
    params = AugmentParams(magnitude_max=31, wide=True)
    rng = np.random.default_rng(0)
    solarized = AugmentOp("Solarize", 1.0, 15.5, params)(img, rng)  # threshold 255 * 15.5 / 31
    assert np.array_equal(np.asarray(solarized), np.asarray(ImageOps.solarize(img, 127)))
    posterized = AugmentOp("Posterize", 1.0, 0, params)(img, rng)  # 2 bits kept at magnitude 0, 8 at 31
    assert np.array_equal(np.asarray(posterized), np.asarray(ImageOps.posterize(img, 2)))
    assert np.array_equal(np.asarray(AugmentOp("Posterize", 1.0, 31, params)(img, rng)), np.asarray(img))


def test_augment_and_mix_transform():
    policy = augment_and_mix_transform("augmix-m5-w4-d2-a0.5")
    assert type(policy) is AugMixAugment and (policy.width, policy.depth, policy.alpha) == (4, 2, 0.5)
    assert {(op.prob, op.magnitude) for op in policy.ops} == {(1.0, 5)}
    assert policy.ops[0].params.magnitude_std == math.inf and policy.ops[0].params.translate_pct == 0.45
    assert augment_and_mix_transform("augmix", dict(HPARAMS, translate_pct=0.3)).ops[0].params.translate_pct == 0.3
    assert policy(_image()).dtype == np.uint8


def test_hparams_are_checked():
    with pytest.raises(InvalidValueError, match="Unknown auto_augment hparams img_std"):
        rand_augment_transform("randaug", dict(img_std=(1, 2, 3)))
    with pytest.raises(UnknownNameError, match="auto_augment interpolation 'AREA'"):
        auto_augment_transform("autoaug", dict(interpolation=Inter.AREA))
    resample = auto_augment_transform("autoaug", {}).policy[0][1].params.resample
    assert set(resample) == {Image.BILINEAR, Image.NEAREST, Image.BICUBIC}  # drawn per warp, as MindCV
