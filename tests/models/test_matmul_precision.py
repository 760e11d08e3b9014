"""precision="bf16": the matmuls take bf16-rounded operands and sum in fp32, everything else stays fp32; the switch
is reversible, refuses unknown values, and falls back to fp32 with a warning where the CPU has no bf16."""
import logging
import math

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.foundation import InvalidValueError
from mindcv.kernels import has_bf16_instructions, linear_op, matmul_op, mlp_op, mlp_training_op, patch_linear_op
from mindcv.models import create_model, set_matmul_precision
from mindcv.models.layers import Mlp, PatchConv, RowLinear, RowMatMul, linear

needs_bf16 = pytest.mark.skipif(not has_bf16_instructions(), reason="this CPU has no bf16 instructions")


def to_bf16(array):
    """Round float32 to the nearest bf16 (ties to even), as float64."""
    bits = array.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def gelu(z):
    """The exact (erf) GELU, in float64."""
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


class Product(nn.Cell):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def construct(self, *inputs):
        return self.op(*inputs)


class Weighted(Product):
    """sum(op(*inputs) * upstream): its gradients are the op's backward given ``upstream``."""

    def __init__(self, op, upstream):
        super().__init__(op)
        self.upstream = upstream

    def construct(self, *inputs):
        return (self.op(*inputs) * self.upstream).sum()


@needs_bf16
def test_bf16_matmul_rounds_both_operands_and_sums_in_fp32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 72)).astype(np.float32)  # rows split over the threads, not a multiple of 64
    weight = rng.standard_normal((40, 72)).astype(np.float32)
    x[7, 3] = np.nan
    y = Product(matmul_op("bf16"))(ms.Tensor(x), ms.Tensor(weight)).asnumpy()
    expected = to_bf16(x) @ to_bf16(weight).T
    assert np.isnan(y[7]).all() and not np.isnan(np.delete(y, 7, axis=0)).any()
    finite = np.delete(np.arange(150), 7)
    np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-5, atol=1e-5)
    fp32_error = np.abs(y[finite] - (x @ weight.T)[finite]).max()
    assert 1e-3 < fp32_error < 0.5  # the operands were rounded, and only to bf16


@needs_bf16
def test_bf16_matmul_gradients_are_bf16_gemms_of_the_rounded_operands():
    rng = np.random.default_rng(1)
    x, weight, upstream = (rng.standard_normal(shape).astype(np.float32) for shape in ((150, 24), (40, 24), (150, 40)))
    dx, dweight = ms.grad(Weighted(matmul_op("bf16"), ms.Tensor(upstream)), grad_position=(0, 1))(
        ms.Tensor(x), ms.Tensor(weight))
    np.testing.assert_allclose(dx.asnumpy(), to_bf16(upstream) @ to_bf16(weight), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dweight.asnumpy(), to_bf16(upstream).T @ to_bf16(x), rtol=1e-5, atol=1e-5)
    assert np.abs(dweight.asnumpy() - upstream.T @ x).max() > 1e-3  # rounded, so not the fp32 gradient


# On AMX CPUs oneDNN's matmul primitive multiplies 600 rows, fewer its GEMM function, and it takes the gradients
# from 1500 rows, fewer the GEMM function. A layer 256 or more wide in (kTransposeMinColumns) has its weight gradient
# multiply a transposed copy of the upstream gradient, here of a size off the copy's 8 x 8 blocks. Too few rows to
# split, the output columns split.
@needs_bf16
@pytest.mark.parametrize("rows, width_in, width_out",
                         [(150, 72, 40), (600, 72, 40), (1500, 72, 40), (150, 300, 37), (49, 72, 200)])
def test_bf16_dense_layer_adds_its_bias_to_the_bf16_product_and_sums_its_gradient(rows, width_in, width_out):
    rng = np.random.default_rng(3)
    x, weight, bias, upstream = (rng.standard_normal(shape).astype(np.float32)
                                 for shape in ((rows, width_in), (width_out, width_in), (width_out,),
                                               (rows, width_out)))
    inputs = [ms.Tensor(array) for array in (x, weight, bias)]
    y = Product(linear_op("bf16"))(*inputs).asnumpy()
    np.testing.assert_allclose(y, to_bf16(x) @ to_bf16(weight).T + bias, rtol=1e-5, atol=1e-5)
    dx, dweight, dbias = ms.grad(Weighted(linear_op("bf16"), ms.Tensor(upstream)), grad_position=(0, 1, 2))(*inputs)
    np.testing.assert_allclose(dx.asnumpy(), to_bf16(upstream) @ to_bf16(weight), rtol=1e-5, atol=1e-5)
    # dw sums over the rows in fp32: its rounding grows with their number (AVX-512-BF16's GEMM, 1500 rows: 5e-5)
    row_sum_error = rows * np.finfo(np.float32).eps
    np.testing.assert_allclose(dweight.asnumpy(), to_bf16(upstream).T @ to_bf16(x), rtol=1e-5, atol=row_sum_error)
    np.testing.assert_allclose(dbias.asnumpy(), upstream.sum(axis=0), rtol=1e-5, atol=row_sum_error)


class FirstOutput(Product):
    def construct(self, *inputs):
        return self.op(*inputs)[0]


class WeightedFirstOutput(Weighted):
    def construct(self, *inputs):
        return (self.op(*inputs)[0] * self.upstream).sum()


def gelu_slope(z):
    """The exact GELU's derivative, in float64."""
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


@needs_bf16
# the backward from 2^21 hidden activations on, GELU and fc2's from 2^20, and AMX's packed weights for layers over
# 1024 wide and for fc2's input gradient from 1024 rows on
@pytest.mark.parametrize("rows, width", [(300, 96), (1100, 512), (1100, 1000), (2148, 1040)],
                         ids=["layer by layer", "layer by layer from 1024 rows",
                              "GELU and fc2 a block of rows at a time", "both layers a block of rows at a time"])
def test_bf16_training_mlp_multiplies_rounded_operands_and_recomputes_the_activations_for_its_gradients(rows, width):
    rng = np.random.default_rng(4)
    x, bias1, bias2, upstream = (rng.standard_normal(shape).astype(np.float32)
                                 for shape in ((rows, 64), (width,), (24,), (rows, 24)))
    weight1, weight2 = ((rng.standard_normal(shape) / shape[1] ** 0.5).astype(np.float32)
                        for shape in ((width, 64), (24, width)))
    inputs = [ms.Tensor(array) for array in (x, weight1, bias1, weight2, bias2)]
    y, hidden = (out.asnumpy() for out in mlp_training_op("bf16")(*inputs))
    np.testing.assert_allclose(hidden, to_bf16(x) @ to_bf16(weight1).T, rtol=1e-5, atol=1e-5)
    z = hidden.astype(np.float64) + bias1
    activations = gelu(z)
    # erf approximated to 1.5e-7 may round an activation lying on a bf16 midpoint the other way: one 2^-8 step
    np.testing.assert_allclose(y, to_bf16(activations) @ to_bf16(weight2).T + bias2, rtol=0, atol=2e-3)
    assert np.abs(y - (activations @ weight2.T + bias2)).max() > 4e-3  # rounded to bf16, not fp32
    dx, dweight1, dbias1, dweight2, dbias2 = ms.grad(WeightedFirstOutput(mlp_training_op("bf16"), ms.Tensor(upstream)),
                                                     grad_position=(0, 1, 2, 3, 4))(*inputs)
    dh = (to_bf16(upstream) @ to_bf16(weight2)) * gelu_slope(z)
    np.testing.assert_allclose(dbias1.asnumpy(), dh.sum(axis=0), rtol=0, atol=1e-3)
    # summed over every row, each activation rounded the other way adds its 2^-8 step times its upstream gradient
    np.testing.assert_allclose(dweight2.asnumpy(), to_bf16(upstream).T @ to_bf16(activations), rtol=0, atol=5e-2)
    np.testing.assert_allclose(dbias2.asnumpy(), upstream.sum(axis=0), rtol=1e-5, atol=1e-5)
    # dh is rounded to bf16 for fc1's gradients: one near a midpoint may round the other way
    np.testing.assert_allclose(dx.asnumpy(), to_bf16(dh) @ to_bf16(weight1), rtol=0, atol=2e-2)
    np.testing.assert_allclose(dweight1.asnumpy(), to_bf16(dh).T @ to_bf16(x), rtol=0, atol=5e-2)


@needs_bf16
def test_bf16_mlp_with_its_residual_rounds_the_input_and_the_activations_as_the_training_mlp_does():
    rng = np.random.default_rng(6)
    x, bias1, bias2 = (rng.standard_normal(shape).astype(np.float32) for shape in ((600, 64), (256,), (64,)))
    weight1, weight2 = ((rng.standard_normal(shape) / shape[1] ** 0.5).astype(np.float32)
                        for shape in ((256, 64), (64, 256)))
    inputs = [ms.Tensor(array) for array in (x, weight1, bias1, weight2, bias2)]
    y = Product(mlp_op("bf16"))(*inputs, inputs[0]).asnumpy() - x
    np.testing.assert_allclose(y, FirstOutput(mlp_training_op("bf16"))(*inputs).asnumpy(), rtol=1e-5, atol=1e-5)
    activations = gelu(to_bf16(x) @ to_bf16(weight1).T + bias1)
    # as in the training MLP: an activation on a bf16 midpoint may round the other way
    np.testing.assert_allclose(y, to_bf16(activations) @ to_bf16(weight2).T + bias2, rtol=0, atol=2e-3)
    assert np.abs(y - (gelu(x.astype(np.float64) @ weight1.T + bias1) @ weight2.T + bias2)).max() > 4e-3


@needs_bf16
def test_bf16_patch_conv_multiplies_the_rounded_patches():
    rng = np.random.default_rng(5)
    x, weight, bias = (rng.standard_normal(shape).astype(np.float32) for shape in ((2, 9, 10, 6), (5, 6, 2, 2), (5,)))
    y = Product(patch_linear_op("bf16"))(*(ms.Tensor(array) for array in (x, weight, bias))).asnumpy()
    patches = x[:, :8, :, :].reshape(2, 4, 2, 5, 2, 6).transpose(0, 1, 3, 2, 4, 5).reshape(40, 24)
    weight_rows = weight.transpose(0, 2, 3, 1).reshape(5, 24)
    expected = (to_bf16(patches) @ to_bf16(weight_rows).T + bias).reshape(2, 4, 5, 5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@needs_bf16
def test_bf16_model_is_close_to_fp32_and_switches_back(pynative_mode):
    # GRAPH mode's bf16 model runs in the infer.py and compare_precision tests.
    ms.set_seed(0)
    model = create_model("pcpvt_small", num_classes=10)
    model.set_train(False)
    x = ms.Tensor(np.random.default_rng(2).standard_normal((2, 3, 64, 96)).astype(np.float32))
    fp32 = model(x).asnumpy()
    assert set_matmul_precision(model, "bf16") == "bf16"
    bf16 = model(x).asnumpy()
    assert set_matmul_precision(model, "fp32") == "fp32"
    np.testing.assert_array_equal(model(x).asnumpy(), fp32)
    difference = np.abs(bf16 - fp32).max()
    assert 0 < difference < 0.02 * np.abs(fp32).max()


def kernel_names(model):
    """The kernel each matmul-holding cell of ``model`` runs, by cell name."""
    return {name: cell.fused.func.rpartition(":")[2] for name, cell in model.cells_and_names()
            if isinstance(cell, (RowMatMul, RowLinear, Mlp, PatchConv)) and cell.fused is not None}


def test_create_model_takes_the_precision():
    model = create_model("svt_small", num_classes=2, precision="bf16")
    kernels = kernel_names(model)
    expected = {"head.dense": "LinearBf16Forward", "patch_embeds.0.proj": "PatchLinearBf16Forward",
                "blocks.0.0.attn.qkv.dense": "LinearBf16Forward", "blocks.0.0.mlp": "MlpTrainingBf16Forward",
                "blocks.0.0.mlp.fc1.dense.matmul": "MatMulBf16Forward", "blocks.0.1.attn.sr": "PatchLinearBf16Forward"}
    if not has_bf16_instructions():
        expected = {name: kernel.replace("Bf16", "") for name, kernel in expected.items()}
    assert expected.items() <= kernels.items()
    assert len(set(kernels.values())) == 4, "one precision throughout"
    inference_mlp = model.blocks[0][0].mlp.fused_inference.func.rpartition(":")[2]
    assert inference_mlp == ("MlpBf16Forward" if has_bf16_instructions() else "MlpForward")


def test_a_cpu_without_bf16_warns_and_keeps_fp32(monkeypatch, caplog):
    monkeypatch.setattr(linear, "has_bf16_instructions", lambda: False)
    model = create_model("pcpvt_small", num_classes=2)
    with caplog.at_level(logging.WARNING):
        assert set_matmul_precision(model, "bf16") == "fp32"
    assert "no bf16 instructions (avx512_bf16 or amx_bf16); running fp32" in caplog.text
    assert not any("Bf16" in kernel for kernel in kernel_names(model).values())


def test_an_unknown_precision_is_refused_with_the_accepted_ones():
    with pytest.raises(InvalidValueError, match=r"precision 'fp16': use one of fp32, bf16\."):
        set_matmul_precision(nn.Cell(), "fp16")
