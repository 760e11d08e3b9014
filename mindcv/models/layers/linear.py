"""Dense layers over the last axis of channels-last tensors, with the bias add as a fused CPU kernel."""
from mindspore import nn, ops
from mindspore.common import dtype as mstype
from mindspore.common.initializer import TruncatedNormal

from ...kernels import bias_add_op, fused_kernels_available

__all__ = ["BiasAdd", "Linear"]


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
        self.add_bias = BiasAdd()

    def rows_without_bias(self, x):
        """x @ weight.T as (tokens, out_features), the bias left for a fused consumer to add."""
        return self.matmul(x.reshape(-1, x.shape[-1]), self.weight.astype(x.dtype))

    def construct(self, x):
        return self.add_bias(self.rows_without_bias(x), self.bias).reshape(x.shape[:-1] + (-1,))
