"""The transformer MLP: fc1, exact GELU, fc2, with fc1's bias and the GELU as one fused CPU kernel."""
from mindspore import nn, ops
from mindspore.common import dtype as mstype

from ...kernels import bias_gelu_op, fused_kernels_available
from .drop import dropout
from .linear import Linear

__all__ = ["Mlp", "rational_erf"]

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


class Mlp(nn.Cell):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout. ``erf_free`` computes erf by ``rational_erf``
    (for ONNX export)."""

    def __init__(self, dim, hidden_dim, drop=0.0):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.fc2 = Linear(hidden_dim, dim)
        self.drop = dropout(drop)
        self.fused = bias_gelu_op() if fused_kernels_available() else None
        self.erf_free = False

    def hidden(self, x):
        """gelu(fc1(x)), exact (erf) GELU as the reference."""
        if self.fused is not None and x.dtype == mstype.float32:
            hidden = self.fused(self.fc1.rows_without_bias(x), self.fc1.bias)
            return hidden.reshape(x.shape[:-1] + (-1,))
        # nn.GELU(approximate=False) computes the same with a slower Div.
        x = self.fc1(x)
        erf = rational_erf if self.erf_free else ops.erf
        return 0.5 * x * (1.0 + erf(x * 0.7071067811865476))

    def construct(self, x):
        return self.drop(self.fc2(self.drop(self.hidden(x))))
