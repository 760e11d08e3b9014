"""LayerNorm over the last axis, as a fused CPU kernel in fp32."""
from mindspore import Tensor, nn
from mindspore.common import dtype as mstype

from ...kernels import fused_kernels_available, layer_norm_op

__all__ = ["LayerNorm"]


class LayerNorm(nn.LayerNorm):
    """LayerNorm over the last axis (parameters ``gamma``, ``beta``); fp32 input runs the fused CPU kernel."""

    def __init__(self, dim, eps):
        super().__init__((dim,), begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)
        self.fused = layer_norm_op() if fused_kernels_available() else None
        self.eps_tensor = Tensor([eps], mstype.float32)

    def construct(self, x):
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, self.gamma, self.beta, self.eps_tensor)
        return super().construct(x)
