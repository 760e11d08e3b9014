"""A checkpoint folder on a full disk: the save stops with one clear error, the checkpoints already written stay
whole and listed, and no partial file takes a checkpoint's name."""
import json
import math
import os

import pytest

import mindspore as ms
from mindspore import nn

from mindcv.engine.checkpoint import MANIFEST, CheckpointManager, find_latest_checkpoint, load_train_state
from mindcv.foundation import CheckpointWriteError

from ..small_disk import contents, fill_disk, mounted_small_disk  # noqa: F401

CONFIG = {"run": "disk full"}


def _train_step(fill):
    """A real (small) training state: weights plus the optimizer's moments and step."""
    net = nn.Dense(128, 128, weight_init=ms.common.initializer.Constant(fill), bias_init="zeros")
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9)
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)


def _save_epochs(manager, epochs):
    for epoch in epochs:
        manager.save(_train_step(epoch), epoch, epoch * 10, CONFIG, metric=epoch / 10)


def test_a_checkpoint_that_does_not_fit_stops_the_save_and_leaves_the_folder_as_it_was(small_disk):
    manager = CheckpointManager(str(small_disk), "net", "latest_k", keep_max=2)
    _save_epochs(manager, [1, 2])
    before = contents(small_disk)
    fill_disk(small_disk, leave=16 * 1024)
    with pytest.raises(CheckpointWriteError) as raised:
        _save_epochs(manager, [3])  # keep_max=2: net-1 is the one it would drop
    message = str(raised.value)
    assert f"{small_disk / 'net-3.ckpt'}: No space left on device (0.02 MiB free in {small_disk}" in message
    assert "MiB needed" in message and "\n" not in message
    assert contents(small_disk) == before  # net-1 and net-2 byte-identical, manifest unchanged, no net-3 or temp file
    assert [e["file"] for e in json.loads(before[MANIFEST])["checkpoints"]] == ["net-1.ckpt", "net-2.ckpt"]
    assert [epoch for epoch, _, _ in manager.kept] == [2, 1]
    assert find_latest_checkpoint(str(small_disk), "net-*.ckpt") == str(small_disk / "net-2.ckpt")


def test_a_manifest_that_no_longer_fits_keeps_the_new_checkpoint_whole_and_deletes_nothing(small_disk, tmp_path):
    probe = CheckpointManager(str(tmp_path / "probe"), "net", "latest_k", keep_max=2)
    _save_epochs(probe, [3])
    new_size = os.path.getsize(tmp_path / "probe" / "net-3.ckpt")
    manager = CheckpointManager(str(small_disk), "net", "latest_k", keep_max=2)
    _save_epochs(manager, [1, 2])
    before = contents(small_disk)
    fill_disk(small_disk, leave=math.ceil(new_size / 4096) * 4096)  # room for the checkpoint, none for the manifest
    with pytest.raises(CheckpointWriteError, match=f"Could not write {small_disk / MANIFEST}: No space left"):
        _save_epochs(manager, [3])
    after = contents(small_disk)
    assert after.pop("net-3.ckpt") == (tmp_path / "probe" / "net-3.ckpt").read_bytes()
    assert after == before  # net-1 is not pruned while the manifest still lists it
    assert load_train_state(str(small_disk / "net-3.ckpt"), _train_step(0)) == (3, 30, pytest.approx(0.3))


@pytest.mark.parametrize("policy", ["latest_k", "top_k"])
def test_mindcv_form_keeps_the_file_it_would_drop_when_the_new_one_does_not_fit(small_disk, policy):
    manager = CheckpointManager(ckpt_save_policy=policy)
    manager.save_ckpoint(_train_step(1), num_ckpt=1, metric=0.1, save_path=str(small_disk / "net_1.ckpt"))
    before = contents(small_disk)
    fill_disk(small_disk)
    with pytest.raises(CheckpointWriteError, match="0.00 MiB free"):
        manager.save_ckpoint(_train_step(2), num_ckpt=1, metric=0.2, save_path=str(small_disk / "net_2.ckpt"))
    assert contents(small_disk) == before
    assert [os.path.basename(saved if policy == "latest_k" else saved[0]) for saved in manager.ckpoint_filelist] \
        == ["net_1.ckpt"]
