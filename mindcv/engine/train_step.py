"""One training step as a graph: loss scaling, data-parallel gradient mean, overflow skipping, gradient
clipping, gradient accumulation and an exponential moving average of the weights."""
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.train.loss_scale_manager import DynamicLossScaleManager

from ..foundation.errors import InvalidValueError
from ..foundation.jit import compile_construct
from ..kernels import fused_kernels_available, sum_of_squares_op

__all__ = ["GradientAccumulation", "TrainStep", "create_loss_scale", "swap_ema_weights"]

_grad_scale = ops.MultitypeFuncGraph("grad_scale")
_clip_scale = ops.MultitypeFuncGraph("clip_scale")
_half_sum_of_squares = ops.MultitypeFuncGraph("half_sum_of_squares")
_l2_loss = ops.L2Loss()
_ema_update = ops.MultitypeFuncGraph("ema_update")
_accumulate = ops.MultitypeFuncGraph("accumulate")
_reset = ops.MultitypeFuncGraph("reset")
_non_finite = ops.MultitypeFuncGraph("non_finite")


@_grad_scale.register("Tensor", "Tensor")
def _unscale(scale, grad):
    return grad * ops.cast(ops.reciprocal(scale), ops.dtype(grad))


@_half_sum_of_squares.register("Tensor")
def _half_square_sum(grad):
    return _l2_loss(grad.astype(ms.float32))


@_clip_scale.register("Tensor", "Tensor")
def _scale_by(factor, grad):
    return grad * ops.cast(factor, ops.dtype(grad))


@_ema_update.register("Tensor", "Tensor", "Tensor")
def _update_average(decay, average, weight):
    return ops.assign(average, average * decay + weight * (1.0 - decay))


@_accumulate.register("Tensor", "Tensor")
def _add_grad(accumulated, grad):
    return ops.assign_add(accumulated, ops.cast(grad, ops.dtype(accumulated)))


@_reset.register("Tensor")
def _zero(accumulated):
    return ops.assign(accumulated, ops.zeros_like(accumulated))


@_non_finite.register("Tensor")
def _is_non_finite(grad):
    return ops.cast(ops.logical_not(ops.isfinite(grad).all()), ms.float32)


def create_loss_scale(loss_scale_type, loss_scale, amp_level="O0"):
    """``scale_sense`` for TrainStep: a fixed scale Tensor or a dynamic scale cell (x2 after 2000 steps without
    overflow, /2 on overflow, as MindCV's). ``auto`` is what ``mindspore.Model`` picks for ``amp_level`` when no
    loss-scale manager is given: MindSpore's default DynamicLossScaleManager (from 2**24) for O2, none otherwise."""
    if loss_scale_type == "auto":
        default = DynamicLossScaleManager()
        loss_scale_type, loss_scale = ("dynamic", default.get_loss_scale()) if amp_level == "O2" else ("fixed", 1.0)
    if loss_scale_type == "dynamic":
        return nn.DynamicLossScaleUpdateCell(loss_scale_value=loss_scale, scale_factor=2, scale_window=2000)
    return Tensor(loss_scale, ms.float32)


def _accumulation_steps(steps):
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidValueError(f"gradient_accumulation_steps must be an integer >= 1, got {steps!r}.")
    return steps


class TrainStep(nn.TrainOneStepWithLossScaleCell):
    """``step(*inputs) -> (loss, overflow, loss_scale)`` for a network that returns its loss.

    The arguments are MindCV's, in its order, plus ``drop_overflow_update``. With a dynamic loss scale, or
    ``drop_overflow_update``, a step whose gradients overflow is skipped. ``ema`` keeps ``ema.<name>`` copies of
    the weights (saved with the checkpoint), updated with MindCV's warmed-up decay
    ``ema_decay * (1 - exp(-updates / 2000))``, ``updates`` counting the applied updates. With
    ``gradient_accumulation_steps`` > 1, gradients of that many calls are averaged into one optimizer update.
    In PYNATIVE mode the whole step runs compiled, as in GRAPH mode (``MINDCV_JIT``).
    """

    def __init__(self, network, optimizer, scale_sense=1.0, ema=False, ema_decay=0.9999, clip_grad=False,
                 clip_value=15.0, gradient_accumulation_steps=1, drop_overflow_update=False):
        accumulation_steps = _accumulation_steps(gradient_accumulation_steps)
        if not isinstance(scale_sense, (Tensor, nn.Cell)):
            scale_sense = Tensor(scale_sense, ms.float32)
        super().__init__(network, optimizer, scale_sense)
        self.skip_overflow = drop_overflow_update or isinstance(scale_sense, nn.Cell)
        fp32 = all(weight.dtype == ms.float32 for weight in self.weights)
        self.sum_of_squares = sum_of_squares_op() if clip_grad and fp32 and fused_kernels_available() else None
        self.unit_scale = not isinstance(scale_sense, nn.Cell) and float(scale_sense.asnumpy()) == 1.0
        self.clip_grad = clip_grad
        self.clip_value = clip_value
        self.optimizer_scales = hasattr(optimizer, "update_scaled")
        self.accumulation_steps = accumulation_steps
        self.ema = ema
        if ema:
            self.ema_decay = Tensor(ema_decay, ms.float32)
            self.updates = Parameter(Tensor(0.0, ms.float32), name="updates", requires_grad=False)
            self.ema_weights = self.weights.clone(prefix="ema", init="same")
        if accumulation_steps > 1:
            self.accumulated = self.weights.clone(prefix="accumulated_grad", init="zeros")
            self.micro_step = Parameter(Tensor(0, ms.int32), name="micro_step", requires_grad=False)
        compile_construct(self)

    def clip_factor(self, grads):
        """What ``ops.clip_by_global_norm`` multiplies the gradients by, with the global norm from one fused kernel
        on CPU, else one L2Loss kernel per gradient (instead of a Square and a ReduceSum)."""
        if self.sum_of_squares is not None:
            norm = ops.sqrt(self.sum_of_squares(*grads)[0])
        else:
            norm = ops.sqrt(2.0 * ops.addn(self.hyper_map(_half_sum_of_squares, grads)))
        return self.clip_value / ops.maximum(norm, self.clip_value)

    def update(self, grads):
        """The optimizer's step on the (clipped) gradients; an optimizer with ``update_scaled`` (AdamW) takes the
        clipping factor itself instead of a pass over every gradient."""
        if not self.clip_grad:
            return self.optimizer(grads)
        factor = self.clip_factor(grads)
        if self.optimizer_scales:
            return self.optimizer.update_scaled(grads, factor)
        return self.optimizer(self.hyper_map(ops.partial(_clip_scale, factor), grads))

    def get_overflow_status(self, status, compute_output):
        # MindSpore's checks use float-status kernels that its CPU backend lacks; an isfinite reduction over the
        # gradients works on every device.
        if self.ascend_910a_target or self.ascend_910b_target:
            return super().get_overflow_status(status, compute_output)
        flags = ops.addn(self.hyper_map(_is_non_finite, compute_output))
        if self.is_distributed:
            flags = self.allreduce(flags)
        return flags > 0

    def construct(self, *inputs):
        loss = self.network(*inputs)
        scale = self.scale_sense
        status = Tensor([0] * 8, ms.int32)
        sens = ops.fill(loss.dtype, loss.shape, ops.cast(scale, loss.dtype))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.grad_reducer(grads)
        if not self.unit_scale:
            grads = self.hyper_map(ops.partial(_grad_scale, scale), grads)
        # Each of these passes over every gradient costs a few kernels per parameter: only when they are used.
        overflow = Tensor(False)
        if self.skip_overflow:
            overflow = self.process_loss_scale(self.get_overflow_status(status, grads))
            if overflow:
                return loss, overflow, scale
        if self.accumulation_steps > 1:
            loss = ops.depend(loss, self.hyper_map(_accumulate, self.accumulated, grads))
            loss = ops.depend(loss, ops.assign_add(self.micro_step, Tensor(1, ms.int32)))
            if self.micro_step % self.accumulation_steps != 0:
                return loss, overflow, scale
            grads = self.hyper_map(ops.partial(_grad_scale, Tensor(self.accumulation_steps, ms.float32)),
                                   self.accumulated)
            loss = ops.depend(loss, grads)
            loss = ops.depend(loss, self.hyper_map(_reset, self.accumulated))
        loss = ops.depend(loss, self.update(grads))
        if self.ema:
            loss = ops.depend(loss, self.ema_update())
        return loss, overflow, scale

    def ema_update(self):
        updates = ops.assign_add(self.updates, Tensor(1.0, ms.float32))
        decay = self.ema_decay * (1.0 - ops.exp(-updates / 2000.0))
        return self.hyper_map(ops.partial(_ema_update, decay), self.ema_weights, self.weights)


class GradientAccumulation(nn.Cell):
    """MindCV's accumulation cell: ``cell(loss, grads) -> loss`` adds ``grads / max_accumulation_step`` to a
    buffer; every ``max_accumulation_step``-th call reduces the buffer across devices with ``grad_reducer``,
    applies ``optimizer`` and clears it. The calls between advance only the optimizer's step (and so its
    learning rate), as MindCV's does. TrainStep accumulates on its own: it clips the averaged gradient and
    advances the schedule once per update."""

    def __init__(self, max_accumulation_step, optimizer, grad_reducer):
        super().__init__(auto_prefix=False)
        self.max_accumulation_step = _accumulation_steps(max_accumulation_step)
        self.optimizer = optimizer
        self.grad_reducer = grad_reducer
        self.hyper_map = ops.HyperMap()
        self.steps = Tensor(self.max_accumulation_step, ms.float32)
        self.accumulated = optimizer.parameters.clone(prefix="grad_accumulation", init="zeros")
        self.accumulation_step = Parameter(Tensor(0, ms.int32), name="accumulation_step", requires_grad=False)

    def construct(self, loss, grads):
        grads = self.hyper_map(ops.partial(_grad_scale, self.steps), grads)
        loss = ops.depend(loss, self.hyper_map(_accumulate, self.accumulated, grads))
        loss = ops.depend(loss, ops.assign_add(self.accumulation_step, Tensor(1, ms.int32)))
        if self.accumulation_step >= self.max_accumulation_step:
            loss = ops.depend(loss, self.optimizer(self.grad_reducer(self.accumulated)))
            loss = ops.depend(loss, self.hyper_map(_reset, self.accumulated))
            loss = ops.depend(loss, ops.assign(self.accumulation_step, Tensor(0, ms.int32)))
        else:
            # MindCV calls optimizer.get_lr() here, which advanced the step in older MindSpore; now only the
            # optimizer's own call does, so the step is advanced explicitly.
            loss = ops.depend(loss, ops.assign_add(self.optimizer.global_step,
                                                   self.optimizer.global_step_increase_tensor))
        return loss


class swap_ema_weights:
    """Context manager: the network's trainable weights hold their EMA inside the block (to evaluate it)."""

    def __init__(self, train_step):
        self.train_step = train_step

    def __enter__(self):
        self.saved = [w.value().copy() for w in self.train_step.weights]
        for weight, average in zip(self.train_step.weights, self.train_step.ema_weights):
            weight.set_data(average.value().copy())
        return self

    def __exit__(self, *exc):
        for weight, saved in zip(self.train_step.weights, self.saved):
            weight.set_data(saved)
