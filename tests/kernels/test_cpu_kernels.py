"""The fused CPU kernels compute what MindSpore's own operators compute, values and gradients."""
import ctypes
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from mindcv.models import create_model
from mindcv import kernels as cpu_kernels
from mindcv.kernels import build


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """library_path() re-decided under the test's environment, and again afterwards."""
    monkeypatch.setenv(cpu_kernels.CACHE_ENV, str(tmp_path / "kernels"))
    cpu_kernels.library_path.cache_clear()
    yield
    cpu_kernels.library_path.cache_clear()


class ErfBiasGelu(nn.Cell):
    def __init__(self, bias):
        super().__init__()
        self.bias = bias

    def construct(self, x):
        x = x + self.bias
        return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


class FusedBiasGelu(ErfBiasGelu):
    def __init__(self, bias):
        super().__init__(bias)
        self.op = cpu_kernels.bias_gelu_op()

    def construct(self, x):
        return self.op(x, self.bias)


class GeluThenLinear(nn.Cell):
    def __init__(self, bias, weight, out_bias):
        super().__init__()
        self.gelu = ErfBiasGelu(bias)
        self.weight = weight
        self.out_bias = out_bias

    def construct(self, h):
        return ops.matmul(self.gelu(h), self.weight.T) + self.out_bias


class ConvPeg(nn.Cell):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def construct(self, x):
        return self.conv(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1) + x


class FusedPeg(nn.Cell):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.op = cpu_kernels.peg_op()

    def construct(self, x):
        return self.op(x, self.conv.weight, self.conv.bias)


def assert_same_values_and_gradients(fused, reference, x, dy, weights, names):
    """Output, input gradient and weight gradients (vector-Jacobian products with ``dy``) of the two nets agree to
    1e-5 relative to each quantity's magnitude."""
    results = []
    for net in (fused, reference):
        grad_x, grad_weights = ms.grad(Projected(net, dy), grad_position=0, weights=weights)(x)
        results.append([net(x).asnumpy(), grad_x.asnumpy()] + [g.asnumpy() for g in grad_weights])
    for fused_value, reference_value, name in zip(*results, ("output", "d input") + names):
        scale = max(np.abs(reference_value).max(), 1.0)
        assert np.abs(fused_value - reference_value).max() < 1e-5 * scale, name


def test_kernel_library_builds_on_this_machine():
    assert cpu_kernels.fused_kernels_available(), "the CI machine has g++: the fused kernels must build"


def test_loading_the_kernels_leaves_denormals_alone():
    ctypes.CDLL(cpu_kernels.library_path())
    assert np.float32(1e-40) * np.float32(1.0) != 0, "the library switched on flush-to-zero for the process"


def test_fused_bias_gelu_equals_erf_gelu_and_its_gradients():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 7, 11, 37)) * 4).astype(np.float32)
    x[0, 0, 0, :4] = [0.0, -0.0, 30.0, -30.0]
    dy = ms.Tensor(rng.standard_normal(x.shape).astype(np.float32))
    bias = ms.Parameter(ms.Tensor(rng.standard_normal(37).astype(np.float32)), name="bias")
    results = []
    for net in (FusedBiasGelu(bias), ErfBiasGelu(bias)):
        grad_x, (grad_bias,) = ms.grad(Projected(net, dy), grad_position=0, weights=[bias])(ms.Tensor(x))
        results.append([net(ms.Tensor(x)).asnumpy(), grad_x.asnumpy(), grad_bias.asnumpy()])
    (y, grad_x, grad_bias), (y_ref, grad_x_ref, grad_bias_ref) = results
    assert np.abs(y - y_ref).max() < 2e-6 * np.abs(x).max()
    assert np.abs(grad_x - grad_x_ref).max() < 1e-5
    assert np.abs(grad_bias - grad_bias_ref).max() < 1e-5 * np.abs(grad_bias_ref).max()


class LayerByLayerMlp(nn.Cell):
    """gelu(x @ weight1.T + bias1) @ weight2.T + bias2 layer by layer."""

    def __init__(self, weight1, bias1, weight2, bias2):
        super().__init__()
        self.weight1 = weight1
        self.then = GeluThenLinear(bias1, weight2, bias2)

    def construct(self, x):
        return self.then(ops.matmul(x, self.weight1.T))


class ResidualMlp(LayerByLayerMlp):
    """x + MLP(x) layer by layer: the residual is the MLP's own input, so d input holds both paths."""

    def construct(self, x):
        return super().construct(x) + x


class FusedResidualMlp(ResidualMlp):
    def __init__(self, weight1, bias1, weight2, bias2):
        super().__init__(weight1, bias1, weight2, bias2)
        self.op = cpu_kernels.mlp_op()

    def construct(self, x):
        return self.op(x, self.weight1, self.then.gelu.bias, self.then.weight, self.then.out_bias, x)


def assert_mlps_agree(fused, reference, rng, rows, dim, hidden):
    """The two MLP nets, on random parameters and input (``rows`` + (dim,)), agree as
    ``assert_same_values_and_gradients`` asks."""
    shapes = {"weight1": (hidden, dim), "bias1": (hidden,), "weight2": (dim, hidden), "bias2": (dim,)}
    parameters = [ms.Parameter(ms.Tensor((rng.standard_normal(shape) / shape[-1] ** 0.5).astype(np.float32)),
                               name=name) for name, shape in shapes.items()]
    x = ms.Tensor((rng.standard_normal(rows + (dim,)) * 2).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal(rows + (dim,)).astype(np.float32))
    assert_same_values_and_gradients(fused(*parameters), reference(*parameters), x, dy, parameters,
                                     tuple(f"d {name}" for name in shapes))


# Rows: under one block; several blocks per thread with a partial last one, as (batch, tokens), enough for the
# weights' transposed copies (kTransposedWeightMinRows) where the CPU's GEMM is slower on them as they lie, and for
# fc2's fp32 packed matmul on Intel CPUs with AVX-512 (PackedMatmul::Fp32Layer); widths of
# PCPVT's first and third stages; one image's last-stage tokens, too few to split, so the hidden and output columns
# split instead.
@pytest.mark.parametrize("rows, dim, hidden", [((5,), 4, 12), ((8, 130), 64, 512), ((530,), 320, 1280),
                                               ((1, 49), 136, 520)])
def test_fused_mlp_with_its_residual_equals_layer_by_layer_and_its_gradients(rows, dim, hidden):
    assert_mlps_agree(FusedResidualMlp, ResidualMlp, np.random.default_rng(3), rows, dim, hidden)


class FusedTrainingMlp(LayerByLayerMlp):
    def __init__(self, weight1, bias1, weight2, bias2):
        super().__init__(weight1, bias1, weight2, bias2)
        self.op = cpu_kernels.mlp_training_op()

    def construct(self, x):
        y, _ = self.op(x, self.weight1, self.then.gelu.bias, self.then.weight, self.then.out_bias)
        return y


# Rows: under one block; several blocks per thread with a partial last one, as (batch, tokens), over
# kBlockedMlpGradientElements activations, so the backward goes through both layers a block at a time (and fc2 on
# Intel CPUs with AVX-512 through the fp32 packed matmul, the last block through the GEMM function); fewer, the
# backward layer by layer with the activations recomputed a block at a time (over kWholeGeluElements) and whole
# (under it); one image's last-stage tokens, too few to split, so the hidden and output columns split, at widths off
# the vector lanes.
@pytest.mark.parametrize("rows, dim, hidden", [((5,), 3, 12), ((4, 1125), 64, 512), ((1100,), 96, 1280),
                                               ((530,), 320, 1280), ((1, 49), 130, 300)])
def test_fused_training_mlp_equals_layer_by_layer_and_its_gradients(rows, dim, hidden):
    assert_mlps_agree(FusedTrainingMlp, LayerByLayerMlp, np.random.default_rng(2), rows, dim, hidden)


def test_fused_training_mlp_returns_the_first_layers_output():
    rng = np.random.default_rng(4)
    x, weight1, bias1, weight2, bias2 = (rng.standard_normal(shape).astype(np.float32)
                                         for shape in ((2, 70, 16), (48, 16), (48,), (16, 48), (16,)))
    _, hidden = cpu_kernels.mlp_training_op()(*(ms.Tensor(a) for a in (x, weight1, bias1, weight2, bias2)))
    np.testing.assert_allclose(hidden.asnumpy(), x @ weight1.T, rtol=1e-5, atol=1e-5)


# The inference MLP on 1040 rows, 64 wide, 512 hidden: fc2 (512 -> 64) qualifies for the fp32 packed matmul.
_MLP_SCRIPT = """
import numpy as np, mindspore as ms
from mindcv.kernels import mlp_op
rng = np.random.default_rng(0)
t = lambda *shape: ms.Tensor(rng.standard_normal(shape).astype(np.float32))
mlp_op()(t(1040, 64), t(512, 64), t(512), t(64, 512), t(64), t(1040, 64)).asnumpy()
"""


def _intel_avx512():
    with open("/proc/cpuinfo") as info:
        intel = "GenuineIntel" in info.read()
    return intel and "avx512f" in build._cpu_flags()


def test_fp32_fc2_runs_onednns_packed_weight_matmul_on_intel_avx512_and_the_sgemm_elsewhere():
    env = dict(os.environ, ONEDNN_VERBOSE="1", GLOG_v="3")
    result = subprocess.run([sys.executable, "-c", _MLP_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    executed = [line for line in result.stdout.splitlines() if ",exec," in line]
    packed = [line for line in executed if "brg_matmul" in line and "wei:f32:a:blocked" in line]
    sgemm = [line for line in executed if ",gemm_api," in line]
    assert sgemm, "fc1 and the remainder blocks go through the sgemm function"
    if _intel_avx512():
        assert packed, "no fp32 matmul on a packed weight ran:\n" + "\n".join(executed)
    else:
        assert not packed, "the fp32 packed matmul ran off Intel AVX-512:\n" + "\n".join(packed)

class MindSporeDense(nn.Cell):
    """x @ weight.T (+ bias) by MindSpore's own operators."""

    def __init__(self, weight, bias=None):
        super().__init__()
        self.weight = weight
        self.bias = bias

    def construct(self, x):
        y = ops.matmul(x, self.weight.T)
        return y if self.bias is None else y + self.bias


class FusedDense(MindSporeDense):
    def __init__(self, weight, bias=None):
        super().__init__(weight, bias)
        self.op = cpu_kernels.matmul_op() if bias is None else cpu_kernels.linear_op()

    def construct(self, x):
        return self.op(x, self.weight) if self.bias is None else self.op(x, self.weight, self.bias)


class ResidualDense(MindSporeDense):
    """x @ weight.T + bias + x: the residual is the layer's own input."""

    def construct(self, x):
        return super().construct(x) + x


class FusedResidualDense(MindSporeDense):
    def __init__(self, weight, bias):
        super().__init__(weight, bias)
        self.op = cpu_kernels.linear_residual_op()

    def construct(self, x):
        return self.op(x, self.weight, self.bias, x)


# (batch, tokens) rows as the models pass; too few rows to split, so the columns split
@pytest.mark.parametrize("rows, width", [((5,), 12), ((8, 125), 256), ((1, 49), 200)])
def test_fused_dense_layer_with_its_residual_equals_mindspores_and_its_gradients(rows, width):
    rng = np.random.default_rng(6)
    weight = ms.Parameter(ms.Tensor((rng.standard_normal((width, width)) / width ** 0.5).astype(np.float32)),
                          name="weight")
    bias = ms.Parameter(ms.Tensor(rng.standard_normal(width).astype(np.float32)), name="bias")
    x = ms.Tensor(rng.standard_normal(rows + (width,)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal(rows + (width,)).astype(np.float32))
    assert_same_values_and_gradients(FusedResidualDense(weight, bias), ResidualDense(weight, bias), x, dy,
                                     [weight, bias], ("d weight", "d bias"))


# Rows: under one chunk; several chunks, as (batch, tokens); few rows against a long input row (GSA's sub-sampling
# conv); more rows than the weight gradient transposes at a time for a wide layer (an MLP's first layer), so that it
# sums blocks. Where the CPU's GEMM multiplies a transposed copy of the weight (from kTransposedWeightMinRows rows, or
# a weight kTransposedWeightMinRatio times longer than wide), sizes off the copy's 8 x 8 blocks. Too few rows to
# split, the output columns split: wide (off the vector lanes), and a weight long enough to be copied transposed on
# more rows (kTransposedWeightFewestRows).
@pytest.mark.parametrize("rows, inputs, out", [((5,), 12, 3), ((8, 125), 256, 64), ((392,), 4096, 64),
                                               ((2100,), 256, 1024), ((1030,), 37, 19), ((7,), 100, 3),
                                               ((49,), 512, 300), ((49,), 2048, 130)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_fp32_matmul_and_dense_layer_equal_mindspores_and_their_gradients(rows, inputs, out, with_bias):
    rng = np.random.default_rng(5)
    weight = ms.Parameter(ms.Tensor((rng.standard_normal((out, inputs)) / inputs ** 0.5).astype(np.float32)),
                          name="weight")
    bias = ms.Parameter(ms.Tensor(rng.standard_normal(out).astype(np.float32)), name="bias") if with_bias else None
    x = ms.Tensor(rng.standard_normal(rows + (inputs,)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal(rows + (out,)).astype(np.float32))
    weights = [weight, bias] if with_bias else [weight]
    assert_same_values_and_gradients(FusedDense(weight, bias), MindSporeDense(weight, bias), x, dy, weights,
                                     ("d weight", "d bias")[:len(weights)])


class StridedConv(nn.Cell):
    """MindSpore's Conv2d (kernel == stride == patch, no padding) on a channels-last grid, plus bias."""

    def __init__(self, weight, bias, patch):
        super().__init__()
        self.weight, self.bias, self.patch = weight, bias, patch
        self.conv = ops.Conv2D(weight.shape[0], patch, stride=patch)

    def construct(self, x):
        return (self.conv(x.transpose(0, 3, 1, 2), self.weight).transpose(0, 2, 3, 1) + self.bias)


class FusedPatchConv(StridedConv):
    def __init__(self, weight, bias, patch):
        super().__init__(weight, bias, patch)
        self.op = cpu_kernels.patch_linear_op()

    def construct(self, x):
        return self.op(x, self.weight, self.bias)


def patch_conv_parameters(rng, channels, out, patch):
    weight = rng.standard_normal((out, channels, patch, patch)) / (channels * patch * patch) ** 0.5
    return (ms.Parameter(ms.Tensor(weight.astype(np.float32)), name="weight"),
            ms.Parameter(ms.Tensor(rng.standard_normal(out).astype(np.float32)), name="bias"))


# Grids with rows and columns beyond the last whole patch (dropped, zero gradient), PCPVT's stem and its GSA's
# sub-sampling at stride 8; one image's 49 patches, too few to split, so the output columns split.
@pytest.mark.parametrize("shape, patch, out", [((2, 9, 10, 5), 2, 7), ((2, 56, 56, 3), 4, 64),
                                               ((1, 16, 24, 64), 8, 64), ((1, 14, 14, 32), 2, 144)])
def test_fused_patch_conv_equals_strided_conv_and_its_gradients(shape, patch, out):
    rng = np.random.default_rng(8)
    weight, bias = patch_conv_parameters(rng, shape[-1], out, patch)
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((shape[0], shape[1] // patch, shape[2] // patch, out)).astype(np.float32))
    assert_same_values_and_gradients(FusedPatchConv(weight, bias, patch), StridedConv(weight, bias, patch), x, dy,
                                     [weight, bias], ("d weight", "d bias"))


def test_patch_conv_refuses_a_weight_for_other_channels():
    weight, bias = patch_conv_parameters(np.random.default_rng(9), 3, 3, 2)
    with pytest.raises(RuntimeError, match=r"function\(PatchLinearForward\) is 5"):
        FusedPatchConv(weight, bias, 2)(ms.Tensor(np.ones((1, 4, 4, 2), np.float32))).asnumpy()


def test_fused_gelu_propagates_nan_and_inf():
    x = ms.Tensor(np.array([np.nan, np.inf, -np.inf, 1.0], np.float32))
    y = FusedBiasGelu(ms.Tensor(np.zeros(4, np.float32)))(x).asnumpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[3] == pytest.approx(0.8413447, abs=1e-6)


@pytest.mark.parametrize("shape", [(2, 1, 1, 5), (2, 3, 5, 8), (1, 7, 9, 64), (2, 14, 14, 3)])
def test_fused_peg_equals_depthwise_conv_and_its_gradients(shape):
    channels = shape[-1]
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(channels, channels, 3, pad_mode="pad", padding=1, group=channels, has_bias=True,
                     weight_init=ms.Tensor(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32)),
                     bias_init=ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    assert_same_values_and_gradients(FusedPeg(conv), ConvPeg(conv), x, dy, [conv.weight, conv.bias],
                                     ("d weight", "d bias"))


class FusedLayerNorm(nn.Cell):
    def __init__(self, norm):
        super().__init__()
        self.norm = norm
        self.op = cpu_kernels.layer_norm_op()

    def construct(self, x):
        return self.op(x, self.norm.gamma, self.norm.beta, ms.Tensor([self.norm.epsilon], ms.float32))


class Projected(nn.Cell):
    """sum(net(x) * direction): its input gradient is the vector-Jacobian product with ``direction``."""

    def __init__(self, net, direction):
        super().__init__()
        self.net = net
        self.direction = direction

    def construct(self, x):
        return (self.net(x) * self.direction).sum()


@pytest.mark.parametrize("shape, eps", [((2, 5, 7, 64), 1e-6), ((3, 49, 320), 1e-5), ((4, 3), 1e-5)])
def test_fused_layer_norm_equals_layer_norm_and_its_gradients(shape, eps):
    rng = np.random.default_rng(3)
    channels = shape[-1]
    norm = nn.LayerNorm((channels,), begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps,
                        gamma_init=ms.Tensor(rng.standard_normal(channels).astype(np.float32)),
                        beta_init=ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
    x = ms.Tensor((rng.standard_normal(shape) * 3 + 5).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    assert_same_values_and_gradients(FusedLayerNorm(norm), norm, x, dy, [norm.gamma, norm.beta],
                                     ("d gamma", "d beta"))


class FusedBiasAdd(nn.Cell):
    def __init__(self, bias):
        super().__init__()
        self.bias = bias
        self.op = cpu_kernels.bias_add_op()

    def construct(self, x):
        return self.op(x, self.bias)


class PlainBiasAdd(FusedBiasAdd):
    def construct(self, x):
        return ops.bias_add(x, self.bias)


def test_fused_bias_add_equals_bias_add_and_its_gradients():
    rng = np.random.default_rng(5)
    x = ms.Tensor(rng.standard_normal((1000, 96)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((1000, 96)).astype(np.float32))
    bias = ms.Parameter(ms.Tensor(rng.standard_normal(96).astype(np.float32)), name="bias")
    assert_same_values_and_gradients(FusedBiasAdd(bias), PlainBiasAdd(bias), x, dy, [bias], ("d bias",))


class SumOfSquares(nn.Cell):
    def __init__(self):
        super().__init__()
        self.op = cpu_kernels.sum_of_squares_op()

    def construct(self, *tensors):
        return self.op(*tensors)


def test_sum_of_squares_covers_every_element_of_every_tensor():
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in [(3,), (70000,), (5, 7), (1,), (300, 200)]]
    total = SumOfSquares()(*[ms.Tensor(a) for a in arrays]).asnumpy()
    expected = sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)
    assert total.shape == (1,) and total[0] == pytest.approx(expected, rel=1e-6)


def split_heads(tokens, heads):
    b, length, c = tokens.shape
    return tokens.reshape(b, length, heads, c // heads).transpose(0, 2, 1, 3)


def heads_attention(q, k, v, heads):
    """The reference's attention: heads split into an axis, softmax(q k^T * scale) v, heads merged again."""
    b, length, c = q.shape
    scores = ops.matmul(split_heads(q, heads), split_heads(k, heads).swapaxes(-1, -2)) * (c // heads) ** -0.5
    out = ops.matmul(ops.softmax(scores, axis=-1), split_heads(v, heads))
    return out.transpose(0, 2, 1, 3).reshape(b, length, c)


class PairAttention(nn.Cell):
    """q attending to a Parameter kv (B, Lk, 2C); ``fused`` picks the kernel or heads_attention."""

    def __init__(self, kv, heads, fused):
        super().__init__()
        self.kv, self.heads = kv, heads
        self.op = cpu_kernels.attention_op() if fused else None

    def construct(self, q):
        if self.op is not None:
            return self.op(q, self.kv, ms.Tensor([self.heads], ms.float32))
        c = q.shape[-1]
        return heads_attention(q, self.kv[..., :c], self.kv[..., c:], self.heads)


class PackedAttention(nn.Cell):
    def __init__(self, heads, fused):
        super().__init__()
        self.heads = heads
        self.op = cpu_kernels.packed_attention_op() if fused else None

    def construct(self, qkv):
        if self.op is not None:
            return self.op(qkv, ms.Tensor([self.heads], ms.float32))
        c = qkv.shape[-1] // 3
        return heads_attention(qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:], self.heads)


# (batch, query tokens, key tokens, channels, heads): GSA's shapes, one whose queries span several blocks of the
# kernel (and so sum dk and dv over blocks), and self-attention over more keys than queries per block, by heads of
# 8 and 64 channels (heads a whole number of vectors wide take the kernel's own products, others the GEMM function).
@pytest.mark.parametrize("batch, queries, keys, channels, heads", [(2, 50, 9, 64, 2), (1, 800, 49, 40, 1),
                                                                   (2, 7, 700, 32, 4), (1, 20, 700, 128, 2)])
def test_fused_attention_equals_split_heads_attention_and_its_gradients(batch, queries, keys, channels, heads):
    rng = np.random.default_rng(6)
    q = ms.Tensor(rng.standard_normal((batch, queries, channels)).astype(np.float32))
    kv = ms.Parameter(ms.Tensor(rng.standard_normal((batch, keys, 2 * channels)).astype(np.float32)), name="kv")
    dy = ms.Tensor(rng.standard_normal((batch, queries, channels)).astype(np.float32))
    assert_same_values_and_gradients(PairAttention(kv, heads, True), PairAttention(kv, heads, False), q, dy, [kv],
                                     ("d kv",))


def test_fused_packed_attention_equals_split_heads_attention_and_its_gradients():
    rng = np.random.default_rng(7)
    qkv = ms.Tensor(rng.standard_normal((6, 49, 3 * 64)).astype(np.float32) * 2)
    dy = ms.Tensor(rng.standard_normal((6, 49, 64)).astype(np.float32))
    assert_same_values_and_gradients(PackedAttention(2, True), PackedAttention(2, False), qkv, dy, [], ())


class WindowOp(nn.Cell):
    def __init__(self, op, grid=None):
        super().__init__()
        self.op = op
        self.grid = grid

    def construct(self, x):
        return self.op(x) if self.grid is None else self.op(x, self.grid)


def test_window_partition_and_merge_are_lsas_transposes_and_each_others_gradients():
    partition, merge = cpu_kernels.window_ops(3)
    rng = np.random.default_rng(8)
    grid = rng.standard_normal((2, 6, 9, 5)).astype(np.float32)
    expected = grid.reshape(2, 2, 3, 3, 3, 5).transpose(0, 1, 3, 2, 4, 5).reshape(12, 9, 5)
    windows = partition(ms.Tensor(grid))
    np.testing.assert_array_equal(windows.asnumpy(), expected)
    np.testing.assert_array_equal(merge(windows, ms.Tensor(grid)).asnumpy(), grid)
    upstream = ms.Tensor(rng.standard_normal(expected.shape).astype(np.float32))
    grad_grid = ms.grad(Projected(WindowOp(partition), upstream))(ms.Tensor(grid))
    np.testing.assert_array_equal(grad_grid.asnumpy(), merge(upstream, ms.Tensor(grid)).asnumpy())
    grad_windows = ms.grad(Projected(WindowOp(merge, ms.Tensor(grid)), ms.Tensor(grid)))(windows)
    np.testing.assert_array_equal(grad_windows.asnumpy(), expected)


def test_window_partition_refuses_a_grid_that_is_not_whole_windows():
    partition, _ = cpu_kernels.window_ops(3)
    with pytest.raises(RuntimeError, match=r"function\(WindowPartition\) is 6"):
        partition(ms.Tensor(np.ones((1, 4, 6, 2), np.float32))).asnumpy()


@pytest.mark.parametrize("heads", [0.0, 3.0, 1.5])
def test_attention_refuses_a_head_count_that_does_not_divide_the_channels(heads):
    q, kv = ms.Tensor(np.ones((1, 4, 8), np.float32)), ms.Parameter(ms.Tensor(np.ones((1, 3, 16), np.float32)))
    op = PairAttention(kv, heads, True)
    with pytest.raises(RuntimeError, match=r"function\(AttentionForward\) is 4"):
        op(q).asnumpy()


def test_model_is_the_same_with_and_without_fused_kernels(fresh_library, monkeypatch, tmp_path):
    fused_model = create_model("svt_small", num_classes=10)
    checkpoint = tmp_path / "weights.ckpt"
    ms.save_checkpoint(fused_model, str(checkpoint))
    monkeypatch.setenv(cpu_kernels.SWITCH_ENV, "0")
    cpu_kernels.library_path.cache_clear()
    plain_model = create_model("svt_small", num_classes=10, checkpoint_path=str(checkpoint))
    assert fused_model.blocks[0][0].mlp.fused is not None
    assert plain_model.blocks[0][0].mlp.fused is None
    images = ms.Tensor(np.random.default_rng(2).standard_normal((2, 3, 72, 104)).astype(np.float32))
    for model in (fused_model, plain_model):
        model.set_train(False)
    diff = np.abs(fused_model(images).asnumpy() - plain_model(images).asnumpy()).max()
    assert diff < 1e-4


def test_without_a_compiler_the_model_falls_back_with_a_warning(fresh_library, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with caplog.at_level(logging.WARNING):
        assert not cpu_kernels.fused_kernels_available()
        model = create_model("svt_small", num_classes=10)
    assert "Fused CPU kernels unavailable" in caplog.text and "no-such-compiler" in caplog.text
    assert model.pos_block[0].fused is None
    assert not list((tmp_path / "kernels").glob("*.so")), "no partial library may be left in the cache"
