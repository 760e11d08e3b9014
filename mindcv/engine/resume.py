"""Where a run continues from: its own newest checkpoint (``auto_resume``), a training-state file of ours given
as ``ckpt_path``, or the pair of files MindCV's train.py writes: ``<model>-<epoch>_<step>.ckpt`` (its train
network's parameters) and ``optim_<model>.ckpt`` (its optimizer's)."""
import logging
import os
import re

import numpy as np

import mindspore as ms

from ..foundation.checkpoint_io import read_checkpoint
from ..foundation.errors import CheckpointError
from ..models.helpers import load_checkpoint_into
from .checkpoint import PartialEpoch, resume_candidates, restore_train_state

__all__ = ["ResumePoint", "resume_point"]

_logger = logging.getLogger(__name__)
_MINDCV_NAME = re.compile(r"-(\d+)_(\d+)\.ckpt$")
# Train-step state that a resumed run rebuilds: the schedule from its config, empty accumulation buffers at an
# epoch boundary, and the configured loss scale where the file has none.
_REBUILT = ("learning_rate", "micro_step", "scale_sense")
_REBUILT_PREFIXES = ("accumulated_grad.",)


class ResumePoint:
    """Where to continue: ``epoch`` epochs done, ``global_step`` batches done in all, of which ``batches_done``
    in epoch ``epoch + 1`` with the losses of ``partial_epoch``."""

    def __init__(self, epoch=0, global_step=0, steps_per_epoch=1, partial_epoch=None):
        self.epoch, self.global_step = epoch, global_step
        self.batches_done = global_step - epoch * steps_per_epoch
        self.partial_epoch = partial_epoch or PartialEpoch()


def resume_point(train_step, model, *, model_name, ckpt_save_dir, auto_resume=False, ckpt_path="", resume_opt=False,
                 steps_per_epoch=1, gradient_accumulation_steps=1):
    """Restore ``train_step`` and return the ResumePoint to continue from: the newest valid checkpoint in
    ``ckpt_save_dir`` with ``auto_resume``, else ``ckpt_path`` with ``resume_opt``; the start for a fresh run."""
    if auto_resume:
        for path in resume_candidates(ckpt_save_dir, f"{model_name}-*.ckpt"):
            try:
                params = read_checkpoint(path)
            except CheckpointError as err:
                _logger.warning("Skipping %s", err)
                continue
            return _restored(params, path, train_step, steps_per_epoch)
    if ckpt_path and resume_opt:
        params = read_checkpoint(ckpt_path)
        if "epoch" in params:
            return _restored(params, ckpt_path, train_step, steps_per_epoch)
        optimizer_path = _mindcv_optimizer_file(ckpt_path, model_name, ckpt_save_dir)
        epoch, global_step = restore_mindcv_train_state(params, ckpt_path, read_checkpoint(optimizer_path),
                                                        train_step, model, steps_per_epoch,
                                                        gradient_accumulation_steps)
        return _resumed(f"{ckpt_path} and {optimizer_path}", ResumePoint(epoch, global_step, steps_per_epoch))
    return ResumePoint()


def _restored(params, path, train_step, steps_per_epoch):
    partial_epoch = PartialEpoch.read(params)
    epoch, global_step, _ = restore_train_state(params, path, train_step)
    point = ResumePoint(epoch, global_step, steps_per_epoch, partial_epoch)
    # Every batch done: the run stopped during the epoch's validation, which it runs again.
    if not 0 <= point.batches_done <= steps_per_epoch:
        raise CheckpointError(f"{path} holds {global_step} steps after {epoch} epochs, which is not a position in "
                              f"an epoch of this run's {steps_per_epoch} steps: the batch size, device count or "
                              "dataset differ from the run that wrote it.")
    return _resumed(path, point)


def _resumed(source, point):
    inside = f", batch {point.batches_done} of epoch {point.epoch + 1}" if point.batches_done else ""
    _logger.info("Resumed from %s: epoch %d done%s, global step %d.", source, point.epoch, inside,
                 point.global_step)
    return point


def _mindcv_optimizer_file(ckpt_path, model_name, ckpt_save_dir):
    """MindCV's train.py reads ``optim_<model>.ckpt`` from ckpt_save_dir; beside ckpt_path is accepted too."""
    name = f"optim_{model_name}.ckpt"
    folders = list(dict.fromkeys([ckpt_save_dir, os.path.dirname(os.path.abspath(ckpt_path))]))
    for folder in folders:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise CheckpointError(f"{ckpt_path} holds no training state of ours, and MindCV's optimizer state {name} is in "
                          f"none of {', '.join(folders)}; --resume_opt True needs one of them. Use --resume_opt "
                          "False to start from the weights with a fresh optimizer.")


def restore_mindcv_train_state(params, path, optimizer_params, train_step, model, steps_per_epoch,
                               gradient_accumulation_steps):
    """Load MindCV's weights file and optimizer file into ``model`` and ``train_step``; returns (epoch, global
    step). The epoch comes from the file name, as in MindCV; the step from the optimizer's counter, which MindCV
    advances once per micro-batch."""
    match = _MINDCV_NAME.search(os.path.basename(path))
    if not match:
        raise CheckpointError(f"{path} holds no training state of ours and is not named as MindCV's "
                              "<model>-<epoch>_<step>.ckpt, so the epoch to resume from is unknown. Use "
                              "--resume_opt False to start from its weights with a fresh optimizer.")
    epoch = int(match.group(1))
    load_checkpoint_into(model, params, path)
    state = {**params, **optimizer_params}
    if "global_step" not in state:
        raise CheckpointError(f"{path} and its optimizer file hold no global_step: not MindCV's training files.")
    micro_steps = int(np.asarray(_as_array(state["global_step"])).reshape(-1)[0])
    if micro_steps != epoch * steps_per_epoch:
        raise CheckpointError(f"{path} ends epoch {epoch} after {micro_steps} steps, but this run has "
                              f"{steps_per_epoch} steps per epoch ({epoch * steps_per_epoch} by then): the batch "
                              "size, device count or dataset differ from the run that wrote it.")
    state["global_step"] = np.array([micro_steps // gradient_accumulation_steps], np.int32)
    _load_train_step_state(train_step, model, state, path)
    return epoch, micro_steps


def _as_array(value):
    return value.asnumpy() if isinstance(value, (ms.Tensor, ms.Parameter)) else value


def _load_train_step_state(train_step, model, state, source):
    """Strictly load the optimizer, EMA and loss-scale state (everything of ``train_step`` but the model)."""
    weights = {p.name for p in model.get_parameters()}
    own = {name: p for name, p in train_step.parameters_dict().items() if name not in weights}
    needed = [n for n in own if n not in _REBUILT and not n.startswith(_REBUILT_PREFIXES)]
    missing = sorted(n for n in needed if n not in state)
    mismatched = sorted(f"{n} {tuple(np.shape(_as_array(state[n])))} vs {tuple(own[n].shape)}"
                        for n in needed if n in state and tuple(np.shape(_as_array(state[n]))) != tuple(own[n].shape))
    if missing or mismatched:
        raise CheckpointError(f"{source} and its optimizer file do not hold this run's training state: "
                              + "; ".join(f"{title}: {', '.join(items[:10])}" for title, items in
                                          (("missing", missing), ("shape mismatch", mismatched)) if items))
    loaded = needed + [n for n in ("scale_sense",) if n in own and n in state]
    ms.load_param_into_net(train_step, {n: ms.Parameter(ms.Tensor(_as_array(state[n]), own[n].dtype), name=n)
                                        for n in loaded}, strict_load=True)
