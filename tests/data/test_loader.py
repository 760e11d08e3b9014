import numpy as np
import pytest

import mindspore.dataset as ds

from mindcv.data import Mixup, create_dataset, create_loader, create_transforms
from mindcv.data.mixup import one_hot


class _BatchInfo:
    def __init__(self, epoch=0, batch=0):
        self.epoch, self.batch = epoch, batch

    def get_epoch_num(self):
        return self.epoch

    def get_batch_num(self):
        return self.batch


def _constant_batch(size=6, height=20, width=30):
    """Image ``i`` is filled with ``i + 1``, label ``i``: every pixel tells where it came from."""
    images = [np.full((3, height, width), i + 1, np.float32) for i in range(size)]
    return images, [np.int32(i) for i in range(size)]


@pytest.mark.parametrize("batch", range(8))
def test_cutmix_targets_sum_to_one_and_match_the_pasted_area(batch):
    images, labels = _constant_batch()
    mixed, targets = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=6, seed=3)(images, labels,
                                                                                     _BatchInfo(0, batch))
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    for i in range(6):
        partner = 5 - i
        pasted = np.mean(mixed[i] == partner + 1)
        assert targets[i, partner] == pytest.approx(pasted, abs=1e-6)
        assert targets[i, i] == pytest.approx(1 - pasted, abs=1e-6)


@pytest.mark.parametrize("batch", range(4))
def test_mixup_targets_equal_the_pixel_blend_with_smoothing_folded_in(batch):
    images, labels = _constant_batch()
    eps, classes = 0.1, 8
    mixed, targets = Mixup(mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=eps, num_classes=classes,
                           seed=5)(images, labels, _BatchInfo(1, batch))
    lam = (mixed[0, 0, 0, 0] - 6) / (1 - 6)  # image 0 (value 1) blended with image 5 (value 6)
    assert (mixed[0] == mixed[0, 0, 0, 0]).all()
    expected = (1 - eps) * (lam * np.eye(classes)[0] + (1 - lam) * np.eye(classes)[5]) + eps / classes
    np.testing.assert_allclose(targets[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)


def test_switching_mixes_some_batches_with_each_and_prob_skips_others():
    images, labels = _constant_batch()
    kinds = []
    for batch in range(40):
        mixed, targets = Mixup(0.8, 1.0, prob=0.5, num_classes=6, seed=0)(images, labels, _BatchInfo(0, batch))
        values = np.unique(mixed[0])
        kinds.append("none" if targets[0, 0] == 1 else "cutmix" if len(values) == 2 else "mixup")
    assert {"none", "cutmix", "mixup"} == set(kinds)


def test_one_hot_checks_num_classes():
    np.testing.assert_allclose(one_hot([2], 4, 0.2), [[0.05, 0.05, 0.85, 0.05]])
    with pytest.raises(ValueError, match="Label 4 is outside num_classes=4"):
        one_hot([4], 4)


def _training_batches(root, seed=None, shard=None, epochs=1, **kwargs):
    sharding = dict(num_shards=2, shard_id=shard) if shard is not None else {}
    dataset = create_dataset("", root, seed=11, **sharding)
    transform = create_transforms("", 32, is_training=True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5,
                                  re_value="random")
    loader = create_loader(dataset, 4, drop_remainder=True, is_training=True, mixup=0.8, cutmix=1.0, cutmix_prob=1.0,
                           num_classes=3, transform=transform, label_smoothing=0.1, seed=seed, **kwargs)
    iterator = loader.create_tuple_iterator(output_numpy=True, num_epochs=epochs)
    return [list(iterator) for _ in range(epochs)]


def test_training_loader_is_deterministic_given_a_seed(image_folder):
    root = image_folder({"a": 4, "b": 4, "c": 5})
    first, second = _training_batches(root, seed=1, epochs=2), _training_batches(root, seed=1, epochs=2)
    other = _training_batches(root, seed=2)
    assert len(first[0]) == 3  # 13 images, batches of 4, remainder dropped
    for batch_a, batch_b in zip(first[0] + first[1], second[0] + second[1]):
        np.testing.assert_array_equal(batch_a[0], batch_b[0])
        np.testing.assert_array_equal(batch_a[1], batch_b[1])
    assert not np.array_equal(first[0][0][0], other[0][0][0])
    images, targets = first[0][0]
    assert targets.shape == (4, 3) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    assert targets.min() >= 0.1 / 3 - 1e-6  # smoothing floor


def test_ranks_augment_differently(image_folder, tmp_path):
    root = image_folder({"a": 8}, size=(48, 48))
    same = (tmp_path / "train" / "a" / "000.jpg").read_bytes()
    for i in range(1, 8):
        (tmp_path / "train" / "a" / f"{i:03d}.jpg").write_bytes(same)  # identical images on both ranks
    rank0, rank1 = _training_batches(root, shard=0)[0], _training_batches(root, shard=1)[0]
    assert not np.array_equal(rank0[0][0], rank1[0][0])


def test_training_ranks_run_the_same_number_of_steps(image_folder):
    root = image_folder({"a": 5, "b": 6})
    steps = []
    for rank in range(3):
        dataset = create_dataset("", root, num_shards=3, shard_id=rank)
        assert dataset.get_dataset_size() == (4 if rank < 2 else 3)
        loader = create_loader(dataset, 1, is_training=True, num_classes=2,
                               transform=create_transforms("", 16, is_training=True))
        steps.append(sum(1 for _ in loader.create_tuple_iterator(num_epochs=1)))
        evaluation = create_loader(create_dataset("", root, num_shards=3, shard_id=rank), 1, num_classes=2,
                                   transform=create_transforms("", 16))
        assert sum(1 for _ in evaluation.create_tuple_iterator(num_epochs=1)) == (4 if rank < 2 else 3)
    assert steps == [3, 3, 3]


def test_without_mixing_labels_stay_class_ids_for_the_loss_to_smooth(image_folder):
    loader = create_loader(create_dataset("", image_folder({"a": 2, "b": 2}), shuffle=False), 4, is_training=True,
                           num_classes=2, label_smoothing=0.1, transform=create_transforms("", 16, is_training=True))
    _, labels = next(loader.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert labels.tolist() == [0, 0, 1, 1] and labels.dtype == np.int32


def test_evaluation_loader_keeps_hard_labels_and_the_remainder(image_folder):
    root = image_folder({"a": 3, "b": 2})
    loader = create_loader(create_dataset("", root, shuffle=False), 2, is_training=False, mixup=0.8, num_classes=2,
                           num_parallel_workers=64)
    batches = list(loader.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [labels.tolist() for _, labels in batches] == [[0, 0], [0, 1], [1]]
    assert batches[0][0].shape == (2, 3, 224, 224)


def test_separate_splits_are_refused(image_folder):
    with pytest.raises(ValueError, match="JSD"):
        create_loader(create_dataset("", image_folder({"a": 1})), 1, separate=True)


def test_loader_sets_the_rank_seed_for_mindspore_ops(image_folder):
    root = image_folder({"a": 2})
    create_loader(create_dataset("", root, num_shards=2, shard_id=1, seed=40), 1)
    assert ds.config.get_seed() == 41
