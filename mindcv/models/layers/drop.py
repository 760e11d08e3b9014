"""Regularisation layers, dropout and stochastic depth, whose random masks can be replayed.

The masks come from a counter-based generator, not from MindSpore's kernel RNG (whose state cannot be saved):
a 32-bit integer hash of a key (the global seed, the data-parallel rank and the layer's stream number) and of
the layer's call count. The call count is a parameter of the layer (``<layer>.random_step``), so a training
checkpoint holds it, and a run resumed from one draws exactly the masks the uninterrupted run drew. The hash
uses only integer tensor operations, the same on every device.
"""
import itertools
import operator

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common import dtype as mstype

from ...kernels import drop_path_add_op, fused_kernels_available

__all__ = ["RANDOM_STEP", "DropPath", "Dropout", "counter_uniform", "drop_path_layer", "dropout",
           "number_random_streams"]

RANDOM_STEP = "random_step"
_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
_MULTIPLIERS = (0x7FEB352D, 0x5BD1E995)  # odd and below 2**31: a product with a 32-bit value fits in int64
_unnumbered = itertools.count(1 << 20)  # streams of layers built outside a numbered model


def _mix32(x):
    """A bijective avalanche of 32-bit values held in int64 tensors or Python integers."""
    shift = ops.bitwise_right_shift if isinstance(x, Tensor) else operator.rshift
    x = x ^ shift(x, 16)
    x = (x * _MULTIPLIERS[0]) & _MASK32
    x = x ^ shift(x, 15)
    x = (x * _MULTIPLIERS[1]) & _MASK32
    return x ^ shift(x, 16)


def _stream_key(stream):
    seed = ms.get_seed() or 0
    key = 0
    for part in (seed, _rank(), stream):
        key = _mix32((key + (part & _MASK32) * _GOLDEN) & _MASK32)
    return key


def _rank():
    from mindspore.communication import GlobalComm, get_rank

    return get_rank() if GlobalComm.INITED else 0


def counter_uniform(shape, key, step):
    """float32 values uniform in [0, 1) of ``shape``, a function of the int64 tensors ``key`` and ``step``."""
    size = int(np.prod(shape))
    counter = _mix32(ops.bitwise_xor(key, step) & _MASK32)
    bits = _mix32((counter + ops.arange(0, size, dtype=ms.int64) * _GOLDEN) & _MASK32)
    return (ops.cast(ops.bitwise_right_shift(bits, 8), ms.float32) * (1.0 / (1 << 24))).reshape(shape)


class _Replayable(nn.Cell):
    """A layer that draws one set of masks per training call from its own stream."""

    def __init__(self):
        super().__init__()
        self.random_step = Parameter(Tensor(0, ms.int64), name=RANDOM_STEP, requires_grad=False)
        self.set_stream(next(_unnumbered))

    def set_stream(self, stream):
        self.key = Tensor(_stream_key(stream), ms.int64)

    def next_step(self):
        return ops.assign_add(self.random_step, Tensor(1, ms.int64))

    def next_uniform(self, shape):
        return counter_uniform(shape, self.key, self.next_step())


def number_random_streams(model):
    """Give the model's replayable layers the streams 0, 1, ... in their order in the model, so that a model
    built again (in a resumed process) draws the same masks whatever was built before it."""
    layers = [cell for _, cell in model.cells_and_names() if isinstance(cell, _Replayable)]
    for stream, layer in enumerate(layers):
        layer.set_stream(stream)
    return model


class Dropout(_Replayable):
    """``nn.Dropout(p=p)``: zeroes each element with probability ``p`` while training, scaling the rest by
    ``1 / (1 - p)``."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.scale = 1.0 / (1.0 - p)

    def construct(self, x):
        if not self.training:
            return x
        keep = ops.cast(self.next_uniform(x.shape) >= self.p, x.dtype)
        return x * ops.stop_gradient(keep * self.scale)


class DropPath(_Replayable):
    """Stochastic depth: drops the whole residual branch per sample with probability ``drop_prob`` while
    training, scaling kept samples by ``1 / (1 - drop_prob)`` when ``scale_by_keep`` (MindCV's and timm's
    arguments). Given the ``residual`` the branch joins, returns their sum: on fp32 CPU tensors one kernel that
    draws the samples' factors itself (``fused``), where the tensor operations of the draw, the multiply and the add
    were ~20 graph nodes per layer and two passes over the branch."""

    def __init__(self, drop_prob=0.0, scale_by_keep=True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale = 1.0 / (1.0 - drop_prob) if scale_by_keep and drop_prob < 1.0 else 1.0
        self.probability_and_scale = Tensor([drop_prob, self.scale], ms.float32)
        self.fused = drop_path_add_op() if fused_kernels_available() else None

    def construct(self, x, residual=None):
        if not self.training or self.drop_prob == 0.0:
            return x if residual is None else x + residual
        step = self.next_step()
        if self.fused is not None and residual is not None and x.dtype == mstype.float32:
            return self.fused(x, residual, self.key, step, self.probability_and_scale)
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = ops.cast(counter_uniform(shape, self.key, step) >= self.drop_prob, x.dtype)
        # One multiply of the branch by a per-sample factor that needs no gradient (its own would keep the branch
        # alive for the backward pass).
        x = x * ops.stop_gradient(keep * self.scale)
        return x if residual is None else x + residual


class _Undropped(nn.Cell):
    """A drop path of rate 0: the branch as it is, or added to the ``residual``; no random stream."""

    def construct(self, x, residual=None):
        return x if residual is None else x + residual


def drop_path_layer(rate):
    """``DropPath(rate)``, or at rate 0 a cell with no parameter and no random draw (the same call signature)."""
    return DropPath(rate) if rate > 0 else _Undropped()


def dropout(rate):
    """``Dropout(rate)``, or an identity at rate 0 (no kernel in the graph)."""
    return Dropout(rate) if rate > 0 else nn.Identity()
