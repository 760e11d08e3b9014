"""Dense layers over the last axis of channels-last tensors, with the bias add as a fused CPU kernel, and the
matmul precision switch (fp32, or bf16 on CPUs that multiply bf16 in hardware)."""
import logging

from mindspore import nn, ops
from mindspore.common import dtype as mstype

from ...foundation.errors import InvalidValueError
from ...foundation.graph_cache import renew_graph_cache
from ...kernels import (bias_add_op, fused_kernels_available, has_bf16_instructions, linear_op, linear_residual_op,
                        matmul_op)
from .init import TruncatedNormal

__all__ = ["BiasAdd", "Linear", "PRECISIONS", "RowLinear", "RowMatMul", "set_matmul_precision"]

_logger = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16")


class RowMatMul(nn.Cell):
    """``x (..., in) @ weight (out, in).T``. On fp32 ``x`` with the fused kernels, one kernel (``fused``) multiplies
    in the matmul precision (``set_matmul_precision``), a block of rows at a time, whatever the rank of ``x``;
    otherwise MindSpore's MatMul on ``x``'s rows."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.MatMul(transpose_b=True)  # not ``fp32``: Cell.to_float sets that name as a flag
        self.use_precision("fp32")

    def use_precision(self, precision):
        self.fused = matmul_op(precision) if fused_kernels_available() else None

    def construct(self, x, weight):
        weight = weight.astype(x.dtype)
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, weight)
        return self.matmul(x.reshape(-1, x.shape[-1]), weight).reshape(x.shape[:-1] + (-1,))


class RowLinear(nn.Cell):
    """``x (..., in) @ weight (out, in).T + bias``, plus ``residual (..., out)`` where given. On fp32 ``x`` with the
    fused kernels, one kernel (``fused``, or ``fused_residual``) multiplies in the matmul precision and adds the bias
    and the residual to each block of the output while it is in the cache, whatever the rank of ``x``; otherwise
    MindSpore's MatMul and adds on ``x``'s rows."""

    def __init__(self):
        super().__init__()
        self.matmul = RowMatMul()
        self.add_bias = BiasAdd()
        self.use_precision("fp32")

    def use_precision(self, precision):
        self.fused = linear_op(precision) if fused_kernels_available() else None
        self.fused_residual = linear_residual_op(precision) if fused_kernels_available() else None

    def construct(self, x, weight, bias, residual=None):
        fp32 = x.dtype == mstype.float32
        if residual is not None and self.fused_residual is not None and fp32:
            return self.fused_residual(x, weight, bias, residual)
        if residual is None and self.fused is not None and fp32:
            return self.fused(x, weight, bias)
        out = self.add_bias(self.matmul(x.reshape(-1, x.shape[-1]), weight), bias).reshape(x.shape[:-1] + (-1,))
        return out if residual is None else out + residual


def set_matmul_precision(model, precision):
    """Run ``model``'s matmuls (the projections, the MLP, the patch convs, the head) in ``precision``: ``fp32``, or
    ``bf16`` (both operands rounded to bf16, fp32 accumulation), where LayerNorm, softmax, attention and the
    residuals stay fp32. bf16 needs a CPU with AVX-512-BF16 or AMX and the fused kernels; elsewhere it warns and
    keeps fp32. Every cell with a ``use_precision`` method takes it. Returns the precision in effect."""
    if precision not in PRECISIONS:
        raise InvalidValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "bf16" and not fused_kernels_available():
        _logger.warning("precision bf16 runs on CPU with the fused kernels only; running fp32.")
        precision = "fp32"
    elif precision == "bf16" and not has_bf16_instructions():
        _logger.warning("This CPU has no bf16 instructions (avx512_bf16 or amx_bf16); running fp32.")
        precision = "fp32"
    for _, cell in model.cells_and_names():
        if callable(getattr(cell, "use_precision", None)):
            cell.use_precision(precision)
    renew_graph_cache(model)
    return precision


class BiasAdd(nn.Cell):
    """``x + bias`` over the last axis of 2-D ``x``; fp32 runs the fused CPU kernel, whose bias gradient is far
    cheaper than MindSpore's BiasAddGrad."""

    def __init__(self):
        super().__init__()
        self.fused = bias_add_op() if fused_kernels_available() else None

    def construct(self, x, bias):
        bias = bias.astype(x.dtype)
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, bias)
        return ops.bias_add(x, bias)


class Linear(nn.Dense):
    """nn.Dense (parameters ``weight``, ``bias``) over the last axis of input of any rank."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, weight_init=TruncatedNormal(sigma=0.02), bias_init="zeros")
        self.dense = RowLinear()

    def without_bias(self, x):
        """x @ weight.T, the bias left for a fused consumer to add."""
        return self.dense.matmul(x, self.weight)

    def construct(self, x, residual=None):
        """``x`` through the layer, plus ``residual`` (shaped as the output) where given."""
        return self.dense(x, self.weight, self.bias, residual)
