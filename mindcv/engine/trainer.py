"""MindCV's trainer factory: ``create_trainer`` turns a network, loss and optimizer into a ``mindspore.Model``
(over this package's TrainStep when plain ``Model`` cannot do what is asked), with the helpers MindCV's
train.py calls around it: ``get_metrics``, ``require_customized_train_step``, ``auto_mixed_precision`` and
``set_seed``."""
import random

import numpy as np

import mindspore as ms
from mindspore import nn, ops
from mindspore.train import DynamicLossScaleManager, FixedLossScaleManager, Model

from ..foundation.errors import InvalidValueError
from .amp import apply_amp
from .train_step import TrainStep, create_loss_scale

__all__ = ["auto_mixed_precision", "create_trainer", "get_metrics", "require_customized_train_step", "set_seed"]

_LOSS_SCALE_TYPES = ("fixed", "dynamic", "auto")
_AMP_LEVELS = ("O0", "O1", "O2", "O3", "auto")


def set_seed(seed=42, rank=0):
    """Seed Python's, NumPy's and MindSpore's generators with ``seed + rank``, so that ranks differ."""
    seed = seed + (rank or 0)
    random.seed(seed)
    np.random.seed(seed)
    ms.set_seed(seed)


def get_metrics(num_classes):
    """Top-1 accuracy, plus top-5 when there are at least 5 classes."""
    metrics = {"Top_1_Accuracy": nn.Top1CategoricalAccuracy()}
    if num_classes >= 5:
        metrics["Top_5_Accuracy"] = nn.Top5CategoricalAccuracy()
    return metrics


def require_customized_train_step(ema=False, clip_grad=False, gradient_accumulation_steps=1, amp_cast_list=None):
    """Whether these options need TrainStep rather than the step ``mindspore.Model`` builds itself."""
    return bool(ema or clip_grad or gradient_accumulation_steps > 1 or amp_cast_list)


def auto_mixed_precision(network, amp_level="O0", amp_cast_list=None):
    """Cast ``network`` for ``amp_level`` (see ``apply_amp``) and return it. ``amp_cast_list``: the cells O2
    keeps in fp32, as MindCV's string (``"[nn.LayerNorm, nn.Softmax]"``), comma-separated names or classes."""
    return apply_amp(network, amp_level, _cell_names(amp_cast_list))


def _cell_names(amp_cast_list):
    if not amp_cast_list:
        return None
    if isinstance(amp_cast_list, str):
        names = amp_cast_list.strip("[]() ").split(",")
    else:
        names = [getattr(cell, "__name__", str(cell)) for cell in amp_cast_list]
    return ",".join(name.strip().rpartition(".")[2] for name in names if name.strip())


def create_trainer(network, loss, optimizer, metrics, amp_level, amp_cast_list, loss_scale_type, loss_scale=1.0,
                   drop_overflow_update=False, ema=False, ema_decay=0.9999, clip_grad=False, clip_value=15.0,
                   gradient_accumulation_steps=1):
    """A ``mindspore.Model`` that trains ``network`` with ``loss`` and ``optimizer`` and evaluates ``metrics``.

    Plain ``Model`` when it can do the job; otherwise ``Model`` over TrainStep (EMA, clipping, accumulation,
    a custom amp cast list, and on CPU any loss scale that skips overflowing steps, which ``Model`` refuses
    there), evaluated through ``nn.WithEvalCell``."""
    scale_type = _check_trainer_options(amp_level, loss_scale_type, loss_scale, drop_overflow_update,
                                        gradient_accumulation_steps)
    skips_overflow = drop_overflow_update or scale_type == "dynamic"
    on_cpu = ms.get_context("device_target") == "CPU"
    if not require_customized_train_step(ema, clip_grad, gradient_accumulation_steps, amp_cast_list) and not (
            on_cpu and skips_overflow):
        return Model(network, loss_fn=loss, optimizer=optimizer, metrics=metrics, amp_level=amp_level,
                     **_loss_scale_manager(scale_type, loss_scale, drop_overflow_update))
    # Built before the cast: the casts change the network's cells in place, the wrapper returned only its output.
    eval_network = nn.WithEvalCell(network, loss, amp_level in ("O2", "O3", "auto"))
    train_network = auto_mixed_precision(network, amp_level, amp_cast_list)
    step = TrainStep(_LossInFloat32(train_network, loss), optimizer,
                     create_loss_scale(scale_type, loss_scale, amp_level), drop_overflow_update=drop_overflow_update,
                     clip_grad=clip_grad, clip_value=clip_value, ema=ema, ema_decay=ema_decay,
                     gradient_accumulation_steps=gradient_accumulation_steps)
    return Model(step.set_train(), eval_network=eval_network, metrics=metrics, eval_indexes=[0, 1, 2])


def _check_trainer_options(amp_level, loss_scale_type, loss_scale, drop_overflow_update, gradient_accumulation_steps):
    """The lower-cased loss-scale type, once every option is known to be usable."""
    if amp_level not in _AMP_LEVELS:
        raise InvalidValueError(f"amp_level must be one of {', '.join(_AMP_LEVELS)}; got {amp_level!r}.")
    scale_type = str(loss_scale_type).lower()
    if scale_type not in _LOSS_SCALE_TYPES:
        raise InvalidValueError(f"loss_scale_type must be one of {', '.join(_LOSS_SCALE_TYPES)}; "
                                f"got {loss_scale_type!r}.")
    if loss_scale < 1.0:
        raise InvalidValueError(f"loss_scale must be >= 1.0, got {loss_scale}.")
    if scale_type == "dynamic" and not drop_overflow_update:
        raise InvalidValueError("loss_scale_type 'dynamic' always skips overflowing steps: set "
                                "drop_overflow_update=True, or use loss_scale_type 'fixed'.")
    if not isinstance(gradient_accumulation_steps, int) or gradient_accumulation_steps < 1:
        raise InvalidValueError(f"gradient_accumulation_steps must be an integer >= 1, got "
                                f"{gradient_accumulation_steps!r}.")
    return scale_type


def _loss_scale_manager(scale_type, loss_scale, drop_overflow_update):
    # "auto" leaves the choice to Model, which picks one from amp_level.
    if scale_type == "fixed":
        return {"loss_scale_manager": FixedLossScaleManager(loss_scale, drop_overflow_update=drop_overflow_update)}
    if scale_type == "dynamic":
        return {"loss_scale_manager": DynamicLossScaleManager(loss_scale, scale_factor=2, scale_window=2000)}
    return {}


class _LossInFloat32(nn.Cell):
    """The loss on the network's output cast to fp32, so that an fp16 network still gets an fp32 loss."""

    def __init__(self, backbone, loss_fn):
        super().__init__(auto_prefix=False)  # parameter names stay the network's, as in nn.WithLossCell
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data, label):
        return self._loss_fn(ops.cast(self._backbone(data), ms.float32), label)
