import dataclasses
import hashlib
import os
import warnings

import numpy as np
import pytest

from mindcv.data import DATASETS, ShardSampler, SkippedImagesWarning, create_dataset, create_loader, create_transforms
from mindcv.foundation.errors import DownloadError, UnknownNameError

from .conftest import write_image


def _rows(dataset, epochs=1):
    iterator = dataset.create_tuple_iterator(output_numpy=True, num_epochs=epochs)
    return [[(hashlib.md5(image.tobytes()).hexdigest(), int(label)) for image, label in iterator]
            for _ in range(epochs)]


def test_image_folder_sorts_classes_and_reads_every_image_once(image_folder):
    root = image_folder({"zebra": 2, "ant": 3, "Moth": 1})
    rows = _rows(create_dataset("", root, "train", shuffle=False))[0]
    assert [label for _, label in rows] == [0, 1, 1, 1, 2, 2]  # Moth, ant, zebra (sorted names)
    assert len({digest for digest, _ in rows}) == 6
    assert create_dataset("imagenet", root, "train", num_samples=4).get_dataset_size() == 4


@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_are_disjoint_and_together_complete(image_folder, shuffle):
    root = image_folder({"a": 4, "b": 3, "c": 3})
    everything = sorted(_rows(create_dataset("", root, "train", shuffle=False))[0])
    shards = [_rows(create_dataset("", root, "train", shuffle=shuffle, num_shards=3, shard_id=rank, seed=7), epochs=2)
              for rank in range(3)]
    for epoch in range(2):
        parts = [shard[epoch] for shard in shards]
        assert sorted(len(p) for p in parts) == [3, 3, 4]
        assert sorted(row for part in parts for row in part) == everything
    if shuffle:
        assert shards[0][0] != shards[0][1]  # reshuffled every epoch


def test_repeated_augmentation_sends_copies_to_different_ranks():
    shards = [list(ShardSampler(8, num_shards=3, shard_id=r, shuffle=True, num_repeats=3, seed=1)) for r in range(3)]
    assert [len(s) for s in shards] == [8 // 3] * 3
    for shard in shards:
        assert len(set(shard)) == len(shard)
    drawn = [i for shard in shards for i in shard]
    assert max(drawn.count(i) for i in drawn) == 3


def test_layout_errors_name_the_path(image_folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="Dataset root does not exist: .*nowhere"):
        create_dataset("", str(tmp_path / "nowhere"))
    root = image_folder({"a": 1})
    with pytest.raises(FileNotFoundError, match=r"Split folder does not exist: .*val \(expected"):
        create_dataset("", root, "val")
    os.makedirs(tmp_path / "empty_split")
    with pytest.raises(ValueError, match="No class folders in .*empty_split"):
        create_dataset("", str(tmp_path), "empty_split")
    os.makedirs(tmp_path / "train" / "b")
    with open(tmp_path / "train" / "b" / "notes.txt", "w") as f:
        f.write("not an image")
    with pytest.raises(ValueError, match="Class folder has no images .*train.b$") as info:
        create_dataset("", root, "train")
    assert "\n" not in str(info.value)


def _damaged_files(folder, good_jpeg):
    """Files that make MindSpore's Decode raise or crash the process, by name."""
    dht = good_jpeg.index(b"\xff\xc4")
    bogus_huffman = good_jpeg[:dht + 5] + b"\x03" + good_jpeg[dht + 6:]  # three 1-bit codes cannot exist
    write_image(folder / "progressive.jpg", seed=9, size=(60, 80), progressive=True)
    progressive = (folder / "progressive.jpg").read_bytes()
    cut = len(progressive) * 2 // 3
    write_image(folder / "lossless.png", seed=9, size=(60, 80), fmt="PNG")
    png = bytearray((folder / "lossless.png").read_bytes())
    png[len(png) // 2] ^= 0xFF
    return {
        "cut_in_header.jpg": good_jpeg[:200],  # SIGFPE
        "half.jpg": good_jpeg[:len(good_jpeg) // 2],
        "bogus_huffman.jpg": bogus_huffman,
        "bad_scan_marker.jpg": progressive[:cut] + b"\xff\x89" + progressive[cut + 2:],
        "bad_crc.png": bytes(png),
        "page.jpg": b"<html>404</html>",
    }


def test_corrupt_files_are_skipped_and_reported_once(image_folder, tmp_path):
    root = image_folder({"a": 3, "b": 3})
    folder = tmp_path / "train" / "b"
    damaged = _damaged_files(folder, (tmp_path / "train" / "a" / "000.jpg").read_bytes())
    for name, data in damaged.items():
        (folder / name).write_bytes(data)
    os.symlink(tmp_path / "missing.jpg", folder / "dangling.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = create_dataset("", root, "train", shuffle=False)
    skipped = [w for w in caught if issubclass(w.category, SkippedImagesWarning)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert message.startswith(f"Skipping {len(damaged) + 1} unreadable or corrupt image file(s)")
    for name in [*damaged, "dangling.jpg"]:
        assert name in message
    assert "progressive.jpg" not in message and "lossless.png" not in message
    loader = create_loader(dataset, 2, is_training=True, num_classes=2,
                           transform=create_transforms("", 32, is_training=True))
    assert sum(len(labels) for _, labels in loader.create_tuple_iterator(output_numpy=True, num_epochs=1)) == 8


def test_unknown_dataset_lists_accepted_names(tmp_path):
    with pytest.raises(UnknownNameError, match="Accepted: , cifar10, cifar100, imagenet, mnist"):
        create_dataset("cifar", str(tmp_path))


CIFAR_RECORDS = 10000  # MindSpore's reader wants full CIFAR files


def _write_cifar_file(path, label_bytes):
    """Record ``i``: labels ``i % 10`` (and ``i % 7`` for the fine label), red plane ``i % 256``, green 7."""
    index = np.arange(CIFAR_RECORDS)
    records = np.zeros((CIFAR_RECORDS, label_bytes + 3 * 1024), np.uint8)
    records[:, 0] = index % 10
    records[:, label_bytes - 1] = index % (10 if label_bytes == 1 else 7)
    records[:, label_bytes:label_bytes + 1024] = (index % 256)[:, None]
    records[:, label_bytes + 1024:label_bytes + 2048] = 7
    os.makedirs(os.path.dirname(path), exist_ok=True)
    records.tofile(path)


def test_cifar_reads_the_standard_binary_files(tmp_path):
    _write_cifar_file(str(tmp_path / "c10" / "cifar-10-batches-bin" / "test_batch.bin"), 1)
    rows = list(create_dataset("cifar10", str(tmp_path / "c10"), "val", shuffle=False, num_samples=5)
                .create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [int(label) for _, label in rows] == [0, 1, 2, 3, 4]
    assert rows[3][0].shape == (32, 32, 3)
    np.testing.assert_array_equal(rows[3][0][5, 9], [3, 7, 0])
    _write_cifar_file(str(tmp_path / "c100" / "test.bin"), 2)
    cifar100 = create_dataset("cifar100", str(tmp_path / "c100"), "test", shuffle=False, num_samples=9)
    assert cifar100.get_col_names() == ["image", "label"]
    assert [int(label) for _, label in cifar100.create_tuple_iterator(output_numpy=True, num_epochs=1)] == \
        [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_mnist_reads_the_idx_files(tmp_path):
    for prefix, count in (("train", 4), ("t10k", 2)):
        pixels = np.arange(count * 28 * 28, dtype=np.uint32).astype(np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([2051, count, 28, 28], ">u4").tobytes() + pixels.tobytes())
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([2049, count], ">u4").tobytes() + bytes(range(count)))
    rows = list(create_dataset("mnist", str(tmp_path), "train", shuffle=False)
                .create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [int(label) for _, label in rows] == [0, 1, 2, 3]
    assert rows[1][0].shape == (28, 28, 1) and rows[1][0][0, 0, 0] == (28 * 28) % 256


def test_missing_standard_files_are_listed(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar10 files missing .*data_batch_1.bin.*download=True"):
        create_dataset("cifar10", str(tmp_path), "train")


def test_offline_download_names_the_url_and_the_layout(tmp_path, monkeypatch):
    unreachable = "http://127.0.0.1:9/cifar-10-binary.tar.gz"  # the discard port: refused at once
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], urls=(unreachable,)))
    with pytest.raises(DownloadError) as info:
        create_dataset("cifar10", str(tmp_path / "cifar"), "train", download=True)
    message = str(info.value)
    assert unreachable in message and "cifar-10-batches-bin/{data_batch_1.bin" in message
    _write_cifar_file(str(tmp_path / "ready" / "cifar-10-batches-bin" / "test_batch.bin"), 1)
    assert create_dataset("cifar10", str(tmp_path / "ready"), "test", download=True).get_dataset_size() == 10000
    with pytest.raises(DownloadError, match=r"<class>/<image>"):
        create_dataset("imagenet", str(tmp_path), "train", download=True)
