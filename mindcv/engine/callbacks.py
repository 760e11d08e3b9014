"""MindCV's ``mindspore.Model`` callbacks: ``StateMonitor`` (step and epoch logs, validation, best and periodic
checkpoints, ``result.log`` and summaries) and ``ValCallback`` (evaluation progress), with ``AllReduceSum``,
the cross-device sum they use to average validation results."""
import logging
import os
from time import time

import numpy as np

import mindspore as ms
from mindspore import nn, ops
from mindspore.communication import GlobalComm
from mindspore.train import Callback, SummaryRecord

from ..foundation.errors import InvalidValueError
from .checkpoint import CheckpointManager, save_weights
from .train_step import TrainStep, swap_ema_weights

__all__ = ["AllReduceSum", "StateMonitor", "ValCallback"]

_logger = logging.getLogger(__name__)
_COLUMN = "{:<20}"


class AllReduceSum(nn.Cell):
    """``x`` summed over every device of the job; ``x`` itself in a process that joined no job."""

    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM) if GlobalComm.INITED else None

    def construct(self, x):
        if self.all_reduce is None:
            return x
        return self.all_reduce(x)


class ValCallback(Callback):
    """Prints ``batch: i/n, time: ...s`` every ``log_interval`` evaluation batches and at the last one."""

    def __init__(self, log_interval=100):
        super().__init__()
        self.log_interval = log_interval
        self.ts = time()

    def on_eval_step_end(self, run_context):
        cb_params = run_context.original_args()
        step, batches = cb_params.cur_step_num, cb_params.batch_num
        if step % self.log_interval == 0 or step == batches:
            print(f"batch: {step}/{batches}, time: {time() - self.ts:.6f}s")
            self.ts = time()


class StateMonitor(Callback):
    """MindCV's training monitor for ``Model.train``.

    Logs loss, learning rate and time every ``log_interval`` steps; after each epoch validates on
    ``dataset_val`` (every ``val_interval`` epochs from ``val_start_epoch``; on the EMA weights with
    ``model_ema``), and on rank 0 saves ``<model_name>_best.ckpt`` when the first metric improves and, every
    ``ckpt_save_interval`` epochs and at the last, ``<model_name>-<epoch>_<batch>.ckpt`` (kept under
    ``ckpt_save_policy`` / ``ckpt_keep_max``) with ``optim_<model_name>.ckpt``, and appends a row to
    ``<ckpt_save_dir>/result.log``. Used as a context manager (``Model.train`` does), it also records
    summaries in ``summary_dir``. ``last_epoch`` offsets the epoch and step numbers of a resumed run."""

    def __init__(self, model, model_name="", model_ema=False, last_epoch=0, dataset_sink_mode=True,
                 dataset_val=None, metric_name=("accuracy",), val_interval=1, val_start_epoch=1, save_best_ckpt=True,
                 ckpt_save_dir="./", ckpt_save_interval=1, ckpt_save_policy=None, ckpt_keep_max=10,
                 summary_dir="./", log_interval=100, rank_id=None, device_num=None):
        super().__init__()
        self.model, self.model_name, self.last_epoch = model, model_name, last_epoch
        self.dataset_sink_mode = dataset_sink_mode
        self.dataset_val, self.metric_name = dataset_val, list(metric_name)
        self.val_interval, self.val_start_epoch = val_interval, val_start_epoch
        self.save_best_ckpt, self.ckpt_save_dir = save_best_ckpt, ckpt_save_dir
        self.ckpt_save_interval, self.ckpt_keep_max = ckpt_save_interval, ckpt_keep_max
        self.ckpt_manager = CheckpointManager(ckpt_save_policy=ckpt_save_policy)
        self.summary_dir, self.log_interval = summary_dir, log_interval
        self.rank_id, self.device_num = rank_id or 0, device_num or 1
        self.ema_step = _ema_train_step(model) if model_ema else None
        self.all_reduce = AllReduceSum() if self.device_num > 1 else None
        self.best_res, self.best_epoch = 0, -1
        self.summary_record = None
        self.step_ts = self.epoch_ts = None
        self.step_time_accum = 0.0
        self.log_file = os.path.join(ckpt_save_dir, "result.log")
        if self.rank_id == 0:
            os.makedirs(ckpt_save_dir, exist_ok=True)
            self._write_row(["Epoch", "TrainLoss", *self.metric_name, "TrainTime", "EvalTime", "TotalTime"], "w")

    def __enter__(self):
        self.summary_record = SummaryRecord(self.summary_dir)
        return self

    def __exit__(self, *exc):
        self.summary_record.close()

    def on_train_epoch_begin(self, run_context):
        self.epoch_ts = time()

    def on_train_step_begin(self, run_context):
        self.step_ts = time()

    def on_train_step_end(self, run_context):
        cb_params = run_context.original_args()
        epoch, batch, _ = self._position(cb_params)
        self.step_time_accum += time() - self.step_ts
        if batch % self.log_interval == 0 or batch in (1, cb_params.batch_num):
            _logger.info(f"Epoch: [{epoch}/{cb_params.epoch_num}], batch: [{batch}/{cb_params.batch_num}], "
                         f"loss: {_loss_of(cb_params):.6f}, lr: {_current_lr(self._optimizer(cb_params)):.6f}, "
                         f"time: {self.step_time_accum:.6f}s")
            self.step_time_accum = 0.0

    def on_train_epoch_end(self, run_context):
        cb_params = run_context.original_args()
        epoch, batch, step = self._position(cb_params)
        train_time = time() - self.epoch_ts
        loss = _loss_of(cb_params)
        res, val_time = np.zeros(len(self.metric_name), np.float32), 0.0
        if self._validates_after(epoch):
            val_start = time()
            res = self._validate()
            val_time = time() - val_start
            self._report_validation(res, val_time, epoch)
        if self.rank_id == 0:
            self._save_checkpoints(cb_params, epoch, batch, res)
        total_time = time() - self.epoch_ts
        _logger.info(f"Total time since last epoch: {total_time:.6f}(train: {train_time:.6f}, val: {val_time:.6f})s, "
                     f"ETA: {(cb_params.epoch_num - epoch) * total_time:.6f}s")
        _logger.info("-" * 80)
        if self.rank_id == 0:
            self._write_row([epoch, f"{loss:.6f}", *[f"{value:.4%}" for value in res], f"{train_time:.2f}",
                             f"{val_time:.2f}", f"{total_time:.2f}"], "a")
        self._record_summary(loss, res, step)

    def on_train_end(self, run_context):
        _logger.info("Finish training!")
        if self.dataset_val is not None:
            _logger.info(f"The best validation {self.metric_name[0]} is: {self.best_res:.4%} at epoch "
                         f"{self.best_epoch}.")
        _logger.info("=" * 80)

    def apply_eval(self, run_context=None):
        """The validation metrics (averaged over devices) as a float array, in the metrics' order."""
        return self._validate()

    def _position(self, cb_params):
        """(epoch, batch within it, step) counted from 1 and shifted by ``last_epoch``."""
        step = cb_params.cur_step_num + self.last_epoch * cb_params.batch_num
        return cb_params.cur_epoch_num + self.last_epoch, (step - 1) % cb_params.batch_num + 1, step

    def _validates_after(self, epoch):
        return (self.dataset_val is not None and epoch >= self.val_start_epoch
                and (epoch - self.val_start_epoch) % self.val_interval == 0)

    def _validate(self):
        if self.ema_step is not None:
            with swap_ema_weights(self.ema_step):
                results = self.model.eval(self.dataset_val, dataset_sink_mode=False)
        else:
            results = self.model.eval(self.dataset_val, dataset_sink_mode=False)
        values = ms.Tensor(list(results.values()), ms.float32)
        if self.all_reduce is not None:
            values = self.all_reduce(values) / self.device_num
        return values.asnumpy()

    def _report_validation(self, res, val_time, epoch):
        scores = "".join(f"{name}: {value:.4%}, " for name, value in zip(self.metric_name, res))
        _logger.info(f"Validation {scores}time: {val_time:.6f}s")
        if res[0] > self.best_res:
            self.best_res, self.best_epoch = float(res[0]), epoch
            _logger.info(f"=> New best val acc: {res[0]:.4%}")

    def _save_checkpoints(self, cb_params, epoch, batch, res):
        network = cb_params.train_network
        if self.save_best_ckpt and self.best_epoch == epoch:
            save_weights(network, os.path.join(self.ckpt_save_dir, f"{self.model_name}_best.ckpt"))
        if epoch % self.ckpt_save_interval == 0 or epoch == cb_params.epoch_num:
            save_weights(self._optimizer(cb_params), os.path.join(self.ckpt_save_dir, f"optim_{self.model_name}.ckpt"))
            path = os.path.join(self.ckpt_save_dir, f"{self.model_name}-{epoch}_{batch}.ckpt")
            _logger.info(f"Saving model to {path}")
            self.ckpt_manager.save_ckpoint(network, num_ckpt=self.ckpt_keep_max, metric=res[0], save_path=path)

    def _write_row(self, cells, mode):
        with open(self.log_file, mode, encoding="utf-8") as f:
            f.write("".join(_COLUMN.format(str(cell)) for cell in cells) + "\n")

    def _record_summary(self, loss, res, step):
        if self.summary_record is None:  # not entered as a context manager: no summary folder was opened
            return
        self.summary_record.add_value("scalar", f"train_loss_{self.rank_id}", ms.Tensor(loss, ms.float32))
        for name, value in zip(self.metric_name, res):
            self.summary_record.add_value("scalar", f"val_{name}_{self.rank_id}", ms.Tensor(value, ms.float32))
        self.summary_record.record(step)

    def _optimizer(self, cb_params):
        if cb_params.optimizer is not None:
            return cb_params.optimizer
        network = cb_params.train_network
        # In sink mode the train step may sit inside MindSpore's dataset wrapper.
        return network.optimizer if hasattr(network, "optimizer") else network.network.optimizer


def _ema_train_step(model):
    step = model.train_network
    if not (isinstance(step, TrainStep) and step.ema):
        raise InvalidValueError("model_ema=True needs a Model made by create_trainer(..., ema=True).")
    return step


def _loss_of(cb_params):
    """The mean of the step's loss (the first output when the step returns several) as a float."""
    output = cb_params.net_outputs
    loss = output[0] if isinstance(output, (tuple, list)) else output
    return float(np.mean(loss.asnumpy() if isinstance(loss, ms.Tensor) else loss))


def _current_lr(optimizer):
    """The learning rate of the step just taken (of the first parameter group when groups differ)."""
    first = optimizer.learning_rate
    first = first[0] if isinstance(first, (nn.CellList, tuple)) else first  # parameter groups: the first one's
    if not optimizer.dynamic_lr:
        return float(first.asnumpy().reshape(-1)[0])
    # global_step already counts the step just taken; 0 means no update happened yet (e.g. an overflow).
    step = ms.Tensor(max(int(optimizer.global_step.asnumpy().reshape(-1)[0]) - 1, 0), ms.int32)
    return float(first(step).asnumpy().reshape(-1)[0])
