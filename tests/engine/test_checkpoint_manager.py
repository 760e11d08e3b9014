"""The checkpoint folder: the manifest, pruning, and choosing the file to resume from without reading the others."""
import json
import logging
import os

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.engine import checkpoint
from mindcv.engine.checkpoint import (MANIFEST, CheckpointManager, PartialEpoch, find_latest_checkpoint,
                                      load_train_state, resume_candidates, save_train_state)
from mindcv.foundation import NonFiniteLossError
from mindcv.foundation.checkpoint_io import save_checkpoint_atomic


class _TinyTrainStep(nn.Cell):
    """Stands in for a train step: its parameters are all that a training-state file holds."""

    def __init__(self, fill=0.0):
        super().__init__()
        self.dense = nn.Dense(2, 2, weight_init="zeros", bias_init="zeros")
        self.dense.weight.set_data(ms.Tensor(np.full((2, 2), fill, np.float32)))


def _manifest(folder):
    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
        return json.load(f)["checkpoints"]


def _manifest_files(folder):
    return [entry["file"] for entry in _manifest(folder)]


def _ckpt_files(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".ckpt"))


def _save_epochs(manager, metrics, steps_per_epoch=10):
    """Save epochs 1..len(metrics) with these metrics, checking after each save that the manifest lists only
    files that exist."""
    for epoch, metric in enumerate(metrics, start=1):
        manager.save(_TinyTrainStep(epoch), epoch, epoch * steps_per_epoch, {"run": "test"}, metric)
        assert all(os.path.isfile(os.path.join(manager.folder, name)) for name in _manifest_files(manager.folder))


def _corrupt(path):
    """Flip a byte in the middle, keeping the CRC trailer: the file is present but fails verification."""
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


def _save_without_manifest(folder, name, epoch, metric):
    """What a kill between a checkpoint's rename and the manifest's write leaves: the file, unlisted."""
    save_train_state(os.path.join(folder, name), _TinyTrainStep(epoch), epoch, epoch * 10, {"run": "test"}, metric)


@pytest.fixture
def read_counter(monkeypatch):
    """Counts the checkpoint files that ``mindcv.engine.checkpoint`` reads."""
    reads = []
    real_read = checkpoint.read_checkpoint

    def counting_read(path, names=None):
        reads.append(os.path.basename(path))
        return real_read(path, names=names)

    monkeypatch.setattr(checkpoint, "read_checkpoint", counting_read)
    return reads


def test_manifest_lists_each_saved_file_with_its_epoch_steps_and_metric(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=5)
    _save_epochs(manager, [0.25, None, 0.75])
    assert _manifest(tmp_path) == [
        {"file": "net-1.ckpt", "epoch": 1, "steps_done": 10, "metric": 0.25},
        {"file": "net-2.ckpt", "epoch": 2, "steps_done": 20, "metric": -1.0},
        {"file": "net-3.ckpt", "epoch": 3, "steps_done": 30, "metric": 0.75},
    ]


def test_saved_train_state_restores_parameters_epoch_steps_and_metric(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=5)
    _save_epochs(manager, [0.5, 0.625])
    restored = _TinyTrainStep(fill=-7.0)
    assert load_train_state(str(tmp_path / "net-2.ckpt"), restored) == (2, 20, 0.625)
    assert np.array_equal(restored.dense.weight.asnumpy(), np.full((2, 2), 2.0, np.float32))


def test_a_state_with_non_finite_parameters_is_not_saved(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=5)
    _save_epochs(manager, [0.5])
    diverged = _TinyTrainStep()
    diverged.dense.bias.set_data(ms.Tensor(np.array([0.0, np.nan], np.float32)))
    with pytest.raises(NonFiniteLossError, match=r"After step 17 1 parameters hold NaN .*first: dense\.bias"):
        manager.save_partial(diverged, 1, 17, {}, PartialEpoch([0.25]))
    assert _ckpt_files(tmp_path) == ["net-1.ckpt"] and _manifest_files(tmp_path) == ["net-1.ckpt"]


def test_latest_k_deletes_the_oldest_files_and_the_manifest_never_lists_a_deleted_one(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=2)
    _save_epochs(manager, [0.875, 0.125, 0.5, 0.25])
    assert _ckpt_files(tmp_path) == ["net-3.ckpt", "net-4.ckpt"]
    assert _manifest_files(tmp_path) == ["net-3.ckpt", "net-4.ckpt"]
    assert [(epoch, metric) for epoch, metric, _ in manager.kept] == [(4, 0.25), (3, 0.5)]


def test_the_manifest_drops_a_file_before_the_file_is_deleted(tmp_path, monkeypatch):
    deleted_while_listed = []
    real_remove = os.remove

    def checking_remove(path):  # MindSpore removes its own temp files too, before any manifest exists
        if os.path.isfile(tmp_path / MANIFEST) and os.path.basename(path) in _manifest_files(tmp_path):
            deleted_while_listed.append(os.path.basename(path))
        real_remove(path)

    monkeypatch.setattr(checkpoint.os, "remove", checking_remove)
    _save_epochs(CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=1), [0.5, 0.25, 0.125])
    assert _ckpt_files(tmp_path) == ["net-3.ckpt"]
    assert deleted_while_listed == []


def test_top_k_keeps_the_best_metrics_and_deletes_the_rest(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "top_k", keep_max=2)
    _save_epochs(manager, [0.375, 0.875, 0.125, 0.5, 0.4375])
    assert _ckpt_files(tmp_path) == ["net-2.ckpt", "net-4.ckpt"]
    assert _manifest_files(tmp_path) == ["net-2.ckpt", "net-4.ckpt"]
    assert [(epoch, metric) for epoch, metric, _ in manager.kept] == [(2, 0.875), (4, 0.5)]


def test_a_new_manager_continues_from_the_manifest_without_reading_checkpoints(tmp_path, read_counter):
    _save_epochs(CheckpointManager(str(tmp_path), "net", "top_k", keep_max=3), [0.3, 0.9, 0.1])
    resumed = CheckpointManager(str(tmp_path), "net", "top_k", keep_max=3)
    assert read_counter == []
    _save_epochs_from(resumed, 4, [0.5])
    assert _ckpt_files(tmp_path) == ["net-1.ckpt", "net-2.ckpt", "net-4.ckpt"]


def _save_epochs_from(manager, first_epoch, metrics):
    for epoch, metric in enumerate(metrics, start=first_epoch):
        manager.save(_TinyTrainStep(epoch), epoch, epoch * 10, {"run": "test"}, metric)


def test_resume_candidates_lists_newest_first_without_reading_checkpoint_files(tmp_path, read_counter):
    _save_epochs(CheckpointManager(str(tmp_path), "net", "top_k", keep_max=10), [0.9, 0.1, 0.5])
    for name in _ckpt_files(tmp_path):
        _corrupt(str(tmp_path / name))  # listing must not notice: it never opens them
    assert resume_candidates(str(tmp_path), "net-*.ckpt") == [str(tmp_path / f"net-{e}.ckpt") for e in (3, 2, 1)]
    assert read_counter == []


def test_find_latest_checkpoint_skips_a_corrupt_newest_file_and_reads_no_further(tmp_path, read_counter, caplog):
    _save_epochs(CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=10), [0.1, 0.2, 0.3, 0.4])
    _corrupt(str(tmp_path / "net-4.ckpt"))
    with caplog.at_level(logging.WARNING):
        assert find_latest_checkpoint(str(tmp_path), "net-*.ckpt") == str(tmp_path / "net-3.ckpt")
    assert read_counter == ["net-4.ckpt", "net-3.ckpt"]
    assert "Skipping" in caplog.text and "net-4.ckpt" in caplog.text


def test_find_latest_checkpoint_is_none_for_an_empty_or_missing_folder(tmp_path):
    assert find_latest_checkpoint(str(tmp_path)) is None
    assert find_latest_checkpoint(str(tmp_path / "absent")) is None
    assert resume_candidates(str(tmp_path / "absent")) == []


def test_a_file_left_out_of_the_manifest_by_a_kill_is_found_and_adopted_with_its_real_metric(tmp_path):
    _save_epochs(CheckpointManager(str(tmp_path), "net", "top_k", keep_max=2), [0.3, 0.2])
    _save_without_manifest(str(tmp_path), "net-3.ckpt", 3, 0.875)
    assert "net-3.ckpt" not in _manifest_files(tmp_path)
    assert resume_candidates(str(tmp_path), "net-*.ckpt")[0] == str(tmp_path / "net-3.ckpt")
    assert find_latest_checkpoint(str(tmp_path), "net-*.ckpt") == str(tmp_path / "net-3.ckpt")

    manager = CheckpointManager(str(tmp_path), "net", "top_k", keep_max=2)
    assert manager.entries["net-3.ckpt"] == {"file": "net-3.ckpt", "epoch": 3, "steps_done": 30, "metric": 0.875}
    _save_epochs_from(manager, 4, [0.1])  # ranks last: the adopted 0.875 and 0.3 stay
    assert _ckpt_files(tmp_path) == ["net-1.ckpt", "net-3.ckpt"]
    assert _manifest(tmp_path)[1] == {"file": "net-3.ckpt", "epoch": 3, "steps_done": 30, "metric": 0.875}


@pytest.mark.parametrize("manifest_text", [None, "{not json", '["a list"]', '{"checkpoints": 3}',
                                           '{"checkpoints": [{"file": "net-2.ckpt"}, {"file": "net-9.ckpt", '
                                           '"epoch": "9"}]}'],
                         ids=["missing", "not-json", "wrong-shape", "not-a-list", "entries-without-int-epoch"])
def test_a_corrupt_or_missing_manifest_falls_back_to_file_names(tmp_path, manifest_text):
    for epoch, metric in [(2, 0.375), (10, 0.625), (9, 0.75)]:
        _save_without_manifest(str(tmp_path), f"net-{epoch}.ckpt", epoch, metric)
    if manifest_text is not None:
        (tmp_path / MANIFEST).write_text(manifest_text, encoding="utf-8")
    assert resume_candidates(str(tmp_path), "net-*.ckpt") == [str(tmp_path / f"net-{e}.ckpt") for e in (10, 9, 2)]
    manager = CheckpointManager(str(tmp_path), "net", "top_k", keep_max=2)
    assert [(epoch, metric) for epoch, metric, _ in manager.kept] == [(9, 0.75), (10, 0.625), (2, 0.375)]
    _save_epochs_from(manager, 11, [0.5])
    assert _ckpt_files(tmp_path) == ["net-10.ckpt", "net-9.ckpt"]
    assert _manifest_files(tmp_path) == ["net-9.ckpt", "net-10.ckpt"]


def test_a_manifest_entry_whose_file_is_gone_is_ignored(tmp_path):
    _save_epochs(CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=3), [0.1, 0.2, 0.3])
    os.remove(tmp_path / "net-3.ckpt")
    assert "net-3.ckpt" in _manifest_files(tmp_path)
    assert resume_candidates(str(tmp_path), "net-*.ckpt") == [str(tmp_path / f"net-{e}.ckpt") for e in (2, 1)]
    assert find_latest_checkpoint(str(tmp_path), "net-*.ckpt") == str(tmp_path / "net-2.ckpt")
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=3)
    assert sorted(manager.entries) == ["net-1.ckpt", "net-2.ckpt"]
    _save_epochs_from(manager, 3, [0.35])
    assert _manifest_files(tmp_path) == ["net-1.ckpt", "net-2.ckpt", "net-3.ckpt"]


def test_a_file_deleted_by_hand_during_the_run_does_not_stop_pruning(tmp_path):
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=2)
    _save_epochs(manager, [0.1, 0.2])
    os.remove(tmp_path / "net-1.ckpt")
    _save_epochs_from(manager, 3, [0.3])
    assert _ckpt_files(tmp_path) == ["net-2.ckpt", "net-3.ckpt"]
    assert _manifest_files(tmp_path) == ["net-2.ckpt", "net-3.ckpt"]


def test_two_prefixes_in_one_folder_keep_each_others_files_and_entries(tmp_path):
    # "net-tiny-<n>.ckpt" matches the glob "net-*.ckpt": the "net" manager must still leave it alone.
    net = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=1)
    tiny = CheckpointManager(str(tmp_path), "net-tiny", "latest_k", keep_max=2)
    _save_epochs_from(tiny, 1, [0.1, 0.2])
    _save_epochs_from(net, 1, [0.5, 0.6, 0.7])
    _save_epochs_from(tiny, 3, [0.3])
    assert _ckpt_files(tmp_path) == ["net-3.ckpt", "net-tiny-2.ckpt", "net-tiny-3.ckpt"]
    assert sorted(_manifest_files(tmp_path)) == ["net-3.ckpt", "net-tiny-2.ckpt", "net-tiny-3.ckpt"]
    assert sorted(CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=1).entries) == ["net-3.ckpt"]


def test_equal_metrics_rank_by_epoch_whether_read_from_the_manifest_or_from_a_file(tmp_path):
    # 1/3 is not a float32: the file holds it rounded, and the manifest must hold that same value.
    _save_without_manifest(str(tmp_path), "net-1.ckpt", 1, 1 / 3)
    manager = CheckpointManager(str(tmp_path), "net", "top_k", keep_max=1)
    _save_epochs_from(manager, 2, [1 / 3])
    assert _ckpt_files(tmp_path) == ["net-2.ckpt"]
    assert _manifest(tmp_path)[0]["metric"] == float(np.float32(1 / 3))


def test_files_without_a_training_state_are_neither_counted_nor_deleted(tmp_path):
    save_checkpoint_atomic({"dense.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "net-99.ckpt"))
    _save_without_manifest(str(tmp_path), "net-98.ckpt", 98, 0.9)
    _corrupt(str(tmp_path / "net-98.ckpt"))
    manager = CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=1)
    assert manager.entries == {}
    _save_epochs(manager, [0.1, 0.2])
    assert _ckpt_files(tmp_path) == ["net-2.ckpt", "net-98.ckpt", "net-99.ckpt"]
    assert _manifest_files(tmp_path) == ["net-2.ckpt"]
    assert find_latest_checkpoint(str(tmp_path), "net-*.ckpt") == str(tmp_path / "net-2.ckpt")


def test_leftovers_of_interrupted_writes_are_removed(tmp_path):
    leftovers = [".tmp-a1b2.ckpt", ".tmp-a1b2.ckpt.tmp", ".tmp-c3d4.json"]
    for name in leftovers:
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_bytes(b"not ours")
    CheckpointManager(str(tmp_path), "net", "latest_k", keep_max=2)
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp"]
