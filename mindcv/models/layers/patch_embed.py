"""Patch embedding on channels-last grids: a kernel == stride convolution computed as one matmul."""
import math

from mindspore import Parameter, nn
from mindspore.common import dtype as mstype
from mindspore.common.initializer import Normal, initializer

from ...kernels import fused_kernels_available, patch_linear_op
from .grid import crop_grid
from .linear import RowLinear
from .norm import LayerNorm

__all__ = ["PatchConv", "PatchEmbed", "conv_init"]


def conv_init(shape, groups=1):
    """The reference's conv init: normal(0, sqrt(2 / fan_out)), fan_out = k*k*out_channels / groups."""
    out_channels, _, kh, kw = shape
    return initializer(Normal(sigma=math.sqrt(2.0 / (kh * kw * out_channels // groups))), shape)


class PatchConv(nn.Cell):
    """Conv2d with kernel == stride == ``patch_size`` on a channels-last grid, as one matmul over patches: on fp32
    input with the fused kernels one kernel (``fused``) in the matmul precision that gathers the patches as it
    multiplies, otherwise a transpose into patches and a dense layer.

    Holds the reference Conv2d's parameters (OIHW ``weight``, ``bias``) and gives its result, including
    the floor on grids that are not a multiple of the patch size.
    """

    def __init__(self, in_channels, out_channels, patch_size):
        super().__init__()
        self.patch_size = patch_size
        self.weight = Parameter(conv_init((out_channels, in_channels, patch_size, patch_size)), name="weight")
        self.bias = Parameter(initializer("zeros", (out_channels,)), name="bias")
        self.dense = RowLinear()
        self.use_precision("fp32")

    def use_precision(self, precision):
        self.fused = patch_linear_op(precision) if fused_kernels_available() else None

    def construct(self, x):
        b, h, w, c = x.shape
        p = self.patch_size
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, self.weight, self.bias)
        gh, gw = h // p, w // p
        patches = crop_grid(x, gh * p, gw * p).reshape(b, gh, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5)
        patches = patches.reshape(b * gh * gw, p * p * c)
        weight = self.weight.astype(x.dtype).transpose(0, 2, 3, 1).reshape(self.weight.shape[0], p * p * c)
        out = self.dense(patches, weight, self.bias)
        return out.reshape(b, gh, gw, -1)


class PatchEmbed(nn.Cell):
    """Patches of ``patch_size`` projected to ``embed_dim`` and layer-normalised, channels-last."""

    def __init__(self, in_channels, embed_dim, patch_size):
        super().__init__()
        self.proj = PatchConv(in_channels, embed_dim, patch_size)
        self.norm = LayerNorm(embed_dim, eps=1e-5)

    def construct(self, x):
        return self.norm(self.proj(x))
