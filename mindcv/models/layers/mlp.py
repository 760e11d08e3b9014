"""The transformer MLP: fc1, exact GELU, fc2, one CPU kernel in training and in inference."""
from mindspore import nn, ops
from mindspore.common import dtype as mstype

from ...kernels import bias_gelu_op, fused_kernels_available, mlp_op, mlp_training_op
from .drop import dropout
from .linear import Linear

__all__ = ["BiasGelu", "Mlp", "rational_erf"]

# Eigen's float32 rational approximation of erf (|error| < 4e-7), for graphs that cannot hold Erf: MindSpore 2.10
# cannot export Erf to ONNX ("Can not find key Erf in convert map").
_ERF_NUMERATOR = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                  -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_DENOMINATOR = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                    -1.42647390514189e-02)


def _polynomial(x, coefficients):
    result = coefficients[0]
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def rational_erf(x):
    """erf from multiplications and one division only."""
    x = ops.clamp(x, -4.0, 4.0)  # erf is +-1 to float32 precision beyond
    squared = x * x
    return x * _polynomial(squared, _ERF_NUMERATOR) / _polynomial(squared, _ERF_DENOMINATOR)


class BiasGelu(nn.Cell):
    """``gelu(x + bias)`` over the last axis, the exact (erf) GELU as the reference; fp32 runs the fused kernel.
    ``erf_free`` computes erf by ``rational_erf`` (for ONNX export)."""

    def __init__(self):
        super().__init__()
        self.fused = bias_gelu_op() if fused_kernels_available() else None
        self.erf_free = False

    def construct(self, x, bias):
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, bias)
        # nn.GELU(approximate=False) computes the same with a slower Div.
        x = x + bias.astype(x.dtype)
        erf = rational_erf if self.erf_free else ops.erf
        return 0.5 * x * (1.0 + erf(x * 0.7071067811865476))


class Mlp(nn.Cell):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout. Without dropout, on fp32 input with the fused kernels,
    in the matmul precision, the whole MLP is one kernel, a block of rows at a time: in training (``fused``) it keeps
    fc1's output for the backward, which recomputes the activations from it, so a step keeps one hidden-width tensor
    per MLP, not two; given a ``residual`` to add (inference, where dropout is off; ``fused_inference``), the add runs
    in the kernel too, and no hidden-width tensor reaches memory."""

    def __init__(self, dim, hidden_dim, drop=0.0):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.fc2 = Linear(hidden_dim, dim)
        self.drop = dropout(drop)
        self.act = BiasGelu()
        self.can_fuse = fused_kernels_available() and drop == 0
        self.use_precision("fp32")

    def use_precision(self, precision):
        self.fused = mlp_training_op(precision) if self.can_fuse else None
        self.fused_inference = mlp_op(precision) if self.can_fuse else None

    def construct(self, x, residual=None):
        if residual is not None and self.fused_inference is not None and x.dtype == mstype.float32:
            return self.fused_inference(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias, residual)
        if self.fused is not None and x.dtype == mstype.float32:
            out, _ = self.fused(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)
        else:
            out = self.fc2(self.drop(self.act(self.fc1.without_bias(x), self.fc1.bias)))
        out = self.drop(out)
        return out if residual is None else out + residual
