"""MindCV users' ``mindcv.utils`` calls (its train.py, examples/finetune and tests/modules) work here, on a
Twins model for the training run and on a one-layer network where only the wiring is under test."""
import hashlib
import logging
import os
import random
import tarfile

import numpy as np
import pytest

import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Model

import mindcv.utils
from mindcv.foundation import logger as foundation_logger
from mindcv.foundation.checkpoint_io import read_checkpoint
from mindcv.foundation.errors import DownloadError, InvalidValueError
from mindcv.loss import create_loss
from mindcv.models import create_model
from mindcv.optim import create_optimizer
from mindcv.utils import (AllReduceSum, CheckpointManager, DownLoad, GradientAccumulation, StateMonitor, TrainStep,
                          ValCallback, auto_mixed_precision, create_trainer, get_metrics,
                          require_customized_train_step, set_logger, set_seed)

MINDCV_NAMES = ("set_seed", "set_logger", "AllReduceSum", "create_trainer", "get_metrics", "StateMonitor",
                "ValCallback", "require_customized_train_step", "GradientAccumulation", "auto_mixed_precision",
                "DownLoad", "TrainStep", "CheckpointManager")


def _batches(samples, seed, batch_size=4):
    rng = np.random.default_rng(seed)
    columns = {"image": rng.standard_normal((samples, 3, 32, 32)).astype(np.float32),
               "label": rng.integers(0, 3, samples).astype(np.int32)}
    return ds.NumpySlicesDataset(columns, shuffle=False).batch(batch_size)


def _dense_batches(samples=8):
    rng = np.random.default_rng(3)
    columns = {"x": rng.standard_normal((samples, 4)).astype(np.float32),
               "y": rng.integers(0, 3, samples).astype(np.int32)}
    return ds.NumpySlicesDataset(columns, shuffle=False).batch(4)


def _dense_trainer(**options):
    net = nn.Dense(4, 3)
    optimizer = nn.SGD(net.trainable_params(), 0.1)
    options = {"amp_level": "O0", "amp_cast_list": None, "loss_scale_type": "fixed", **options}
    return create_trainer(net, nn.CrossEntropyLoss(), optimizer, get_metrics(3), **options)


def test_mindcv_utils_names_are_exported():
    assert all(name in mindcv.utils.__all__ and hasattr(mindcv.utils, name) for name in MINDCV_NAMES)


@pytest.fixture
def restore_mindcv_logger():
    """set_logger(name="mindcv") stops the package's records reaching the root logger; later tests need them."""
    yield
    logger = logging.getLogger("mindcv")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    foundation_logger._named_loggers.pop("mindcv", None)


def test_finetune_recipe_trains_svt_and_writes_mindcv_outputs(tmp_path, capsys, restore_mindcv_logger):
    set_seed(42)
    set_logger(name="mindcv", output_dir=str(tmp_path), rank=0, color=False)
    network = create_model("svt_small", num_classes=3)
    optimizer = create_optimizer(network.trainable_params(), opt="adamw", lr=1e-3, weight_decay=0.05)
    metrics = get_metrics(3)
    trainer = create_trainer(network, create_loss("CE"), optimizer, metrics, amp_level="O0", amp_cast_list=None,
                             loss_scale_type="fixed", loss_scale=1.0, drop_overflow_update=False, ema=True,
                             ema_decay=0.9, clip_grad=True, clip_value=15.0, gradient_accumulation_steps=1)
    assert isinstance(trainer, Model) and isinstance(trainer.train_network, TrainStep)
    state_cb = StateMonitor(trainer, model_name="svt_small", model_ema=True, dataset_sink_mode=False,
                            dataset_val=_batches(4, seed=1), metric_name=list(metrics.keys()),
                            ckpt_save_dir=str(tmp_path), ckpt_save_policy="latest_k", ckpt_keep_max=1,
                            summary_dir=str(tmp_path / "summary"), log_interval=1)
    trainer.train(2, _batches(8, seed=0), callbacks=[state_cb], dataset_sink_mode=False)

    rows = [line.split() for line in (tmp_path / "result.log").read_text().splitlines()]
    assert rows[0] == ["Epoch", "TrainLoss", "Top_1_Accuracy", "TrainTime", "EvalTime", "TotalTime"]
    assert [row[0] for row in rows[1:]] == ["1", "2"] and all(np.isfinite(float(row[1])) for row in rows[1:])
    saved = sorted(name for name in os.listdir(tmp_path) if name.endswith(".ckpt"))
    best = ["svt_small_best.ckpt"] if state_cb.best_epoch > 0 else []
    assert saved == sorted(["optim_svt_small.ckpt", "svt_small-2_2.ckpt", *best])  # latest_k kept one
    assert "ema.norm.gamma" in read_checkpoint(str(tmp_path / "svt_small-2_2.ckpt"))
    log = (tmp_path / "rank0.log").read_text()
    assert "Epoch: [2/2], batch: [2/2]" in log and "Validation Top_1_Accuracy" in log and "Finish training!" in log
    assert os.listdir(tmp_path / "summary")

    capsys.readouterr()
    accuracy = trainer.eval(_batches(4, seed=1), callbacks=[ValCallback(log_interval=1)], dataset_sink_mode=False)
    assert 0.0 <= accuracy["Top_1_Accuracy"] <= 1.0
    assert "batch: 1/1, time:" in capsys.readouterr().out


@pytest.mark.parametrize("num_classes, keys", [(3, ["Top_1_Accuracy"]), (10, ["Top_1_Accuracy", "Top_5_Accuracy"])])
def test_get_metrics_keys(num_classes, keys):
    metrics = get_metrics(num_classes)
    assert list(metrics) == keys and isinstance(metrics["Top_1_Accuracy"], nn.Top1CategoricalAccuracy)


@pytest.mark.parametrize("options, expected", [
    ({}, False), ({"ema": True}, True), ({"clip_grad": True}, True), ({"gradient_accumulation_steps": 2}, True),
    ({"gradient_accumulation_steps": 1}, False), ({"amp_cast_list": "[nn.LayerNorm]"}, True),
    ({"amp_cast_list": ""}, False)])
def test_require_customized_train_step_truth_table(options, expected):
    assert require_customized_train_step(**options) is expected


def test_set_seed_makes_draws_repeat_and_offsets_by_rank():
    def draws():
        return random.random(), float(np.random.rand()), ms.get_seed()

    set_seed(7)
    first = draws()
    set_seed(7)
    assert draws() == first and first[2] == 7
    set_seed(7, rank=1)
    assert draws()[2] == 8 and draws()[0] != first[0]
    set_seed(7, rank=None)
    assert draws() == first


def test_all_reduce_sum_in_one_process_is_the_input():
    values = ms.Tensor([0.25, 0.5], ms.float32)
    np.testing.assert_allclose(AllReduceSum()(values).asnumpy(), [0.25, 0.5])


def test_create_trainer_routes_like_mindcv():
    plain = _dense_trainer(loss_scale=8.0)
    assert isinstance(plain, Model) and not isinstance(plain.train_network, TrainStep)
    weights = plain.predict_network.trainable_params()[0]
    before = weights.asnumpy().copy()
    plain.train(1, _dense_batches(), dataset_sink_mode=False)
    assert not np.allclose(before, weights.asnumpy())
    step = _dense_trainer(gradient_accumulation_steps=2).train_network
    assert isinstance(step, TrainStep) and step.accumulation_steps == 2 and step.clip_value == 15.0


def test_create_trainer_dynamic_loss_scale_trains_on_cpu():
    trainer = _dense_trainer(loss_scale_type="dynamic", loss_scale=1024.0, drop_overflow_update=True)
    step = trainer.train_network
    assert isinstance(step, TrainStep) and isinstance(step.loss_scaling_manager, nn.DynamicLossScaleUpdateCell)
    assert float(step.scale_sense.asnumpy()) == 1024.0
    before = step.network.trainable_params()[0].asnumpy().copy()
    trainer.train(1, _dense_batches(), dataset_sink_mode=False)
    assert not np.allclose(before, step.network.trainable_params()[0].asnumpy())


@pytest.mark.parametrize("options", [
    {"loss_scale": 0.5}, {"loss_scale_type": "dynamic", "drop_overflow_update": False},
    {"gradient_accumulation_steps": 0}, {"loss_scale_type": "static"}, {"amp_level": "O4"}])
def test_create_trainer_rejects_bad_values(options):
    with pytest.raises(InvalidValueError):
        _dense_trainer(**options)


def test_train_step_takes_mindcv_keywords():
    net = nn.Dense(4, 3)
    with_loss = nn.WithLossCell(net, nn.CrossEntropyLoss())
    step = TrainStep(with_loss, nn.SGD(net.trainable_params(), 0.1), scale_sense=1.0, ema=True, ema_decay=0.9,
                     clip_grad=True, gradient_accumulation_steps=3)
    assert step.accumulation_steps == 3 and step.clip_value == 15.0 and step.ema
    assert float(step.updates.asnumpy()) == 0.0
    positional = TrainStep(with_loss, nn.SGD(net.trainable_params(), 0.1), 1.0, True, 0.5, True, 2.0, 2)
    assert (positional.ema, float(positional.ema_decay.asnumpy()), positional.clip_grad, positional.clip_value,
            positional.accumulation_steps) == (True, 0.5, True, 2.0, 2)


def test_gradient_accumulation_applies_the_mean_every_nth_call():
    weight = ms.Parameter(ms.Tensor(np.zeros(2, np.float32)), name="w")
    optimizer = nn.SGD([weight], learning_rate=[1.0] * 4)  # a schedule: its step counter is what moves
    accumulate = GradientAccumulation(2, optimizer, nn.Identity())
    accumulate(ms.Tensor(1.0), (ms.Tensor([2.0, 4.0]),))
    np.testing.assert_allclose(weight.asnumpy(), [0.0, 0.0])
    accumulate(ms.Tensor(1.0), (ms.Tensor([4.0, 0.0]),))
    np.testing.assert_allclose(weight.asnumpy(), [-3.0, -2.0])
    assert int(optimizer.global_step.asnumpy()[0]) == 2  # the step between advances the schedule, as MindCV's


@pytest.mark.parametrize("policy, metrics, kept", [
    ("top_k", [0.2, 0.9, 0.5], [("net_2.ckpt", 0.9), ("net_3.ckpt", 0.5)]),
    ("latest_k", [0.2, 0.9, 0.5], ["net_2.ckpt", "net_3.ckpt"])])
def test_checkpoint_manager_mindcv_form(tmp_path, policy, metrics, kept):
    manager = CheckpointManager(ckpt_save_policy=policy)
    network = nn.Dense(4, 3)
    for epoch, metric in enumerate(metrics, 1):
        files = manager.save_ckpoint(network, num_ckpt=2, metric=metric, save_path=str(tmp_path / f"net_{epoch}.ckpt"))
    names = [(os.path.basename(f[0]), pytest.approx(f[1])) if policy == "top_k" else os.path.basename(f) for f in files]
    assert names == kept and manager.ckpoint_num == 2
    assert sorted(os.listdir(tmp_path)) == sorted(name if policy == "latest_k" else name[0] for name in kept)


def test_checkpoint_manager_without_policy_keeps_every_file(tmp_path):
    manager = CheckpointManager()
    for epoch in range(3):
        manager.save_ckpoint(nn.Dense(4, 3), num_ckpt=1, save_path=str(tmp_path / f"net_{epoch}.ckpt"))
    assert len(os.listdir(tmp_path)) == 3
    with pytest.raises(InvalidValueError):
        CheckpointManager(ckpt_save_policy="every")


def test_auto_mixed_precision_takes_mindcv_cast_list():
    net = nn.SequentialCell([nn.Dense(4, 4), nn.LayerNorm((4,))])
    assert auto_mixed_precision(net, "O0") is net
    cast = auto_mixed_precision(nn.SequentialCell([nn.Dense(4, 4), nn.LayerNorm((4,))]), "O2", "[nn.LayerNorm]")
    assert cast(ms.Tensor(np.ones((2, 4), np.float32))).shape == (2, 4)
    with pytest.raises(InvalidValueError):
        auto_mixed_precision(net, "O2", "[nn.NoSuchCell]")


def test_set_logger_writes_rank_file_once(tmp_path):
    logger = set_logger(name="mindcv_compat_test", output_dir=str(tmp_path), rank=1, color=False)
    assert set_logger(name="mindcv_compat_test") is logger and not logger.propagate
    assert [type(h) for h in logger.handlers] == [logging.FileHandler]  # only rank 0 prints
    logger.info("hello from rank 1")
    for handler in logger.handlers:
        handler.flush()
    assert "mindcv_compat_test INFO - hello from rank 1" in (tmp_path / "rank1.log").read_text()


def test_download_verifies_md5_and_extracts(tmp_path):
    (tmp_path / "payload.txt").write_text("twins")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "payload.txt", arcname="payload.txt")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    loader = DownLoad()
    assert loader.calculate_md5(str(archive)) == md5
    loader.download_and_extract_archive(archive.as_uri(), download_path=str(tmp_path / "dl"),
                                        extract_path=str(tmp_path / "out"), md5=md5, remove_finished=True)
    assert (tmp_path / "out" / "payload.txt").read_text() == "twins" and not os.listdir(tmp_path / "dl")
    with pytest.raises(DownloadError):
        loader.download_url(archive.as_uri(), path=str(tmp_path / "bad"), md5="0" * 32)
    assert not os.listdir(tmp_path / "bad")
