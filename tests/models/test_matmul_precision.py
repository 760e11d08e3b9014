"""precision="bf16": the matmuls take bf16-rounded operands and sum in fp32, everything else stays fp32; the switch
is reversible, refuses unknown values, and falls back to fp32 with a warning where the CPU has no bf16."""
import logging

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.foundation import InvalidValueError
from mindcv.kernels import bf16_matmul_op, has_bf16_instructions
from mindcv.models import create_model, set_matmul_precision
from mindcv.models.layers import RowMatMul, linear

needs_bf16 = pytest.mark.skipif(not has_bf16_instructions(), reason="this CPU has no bf16 instructions")


def to_bf16(array):
    """Round float32 to the nearest bf16 (ties to even), as float64."""
    bits = array.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


class Product(nn.Cell):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def construct(self, x, weight):
        return self.op(x, weight)


class Weighted(Product):
    """sum(op(x, weight) * upstream): its gradients are the op's backward given ``upstream``."""

    def __init__(self, op, upstream):
        super().__init__(op)
        self.upstream = upstream

    def construct(self, x, weight):
        return (self.op(x, weight) * self.upstream).sum()


@needs_bf16
def test_bf16_matmul_rounds_both_operands_and_sums_in_fp32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 72)).astype(np.float32)  # rows split over the threads, not a multiple of 64
    weight = rng.standard_normal((40, 72)).astype(np.float32)
    x[7, 3] = np.nan
    y = Product(bf16_matmul_op())(ms.Tensor(x), ms.Tensor(weight)).asnumpy()
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
    dx, dweight = ms.grad(Weighted(bf16_matmul_op(), ms.Tensor(upstream)), grad_position=(0, 1))(
        ms.Tensor(x), ms.Tensor(weight))
    np.testing.assert_allclose(dx.asnumpy(), to_bf16(upstream) @ to_bf16(weight), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dweight.asnumpy(), to_bf16(upstream).T @ to_bf16(x), rtol=1e-5, atol=1e-5)
    assert np.abs(dweight.asnumpy() - upstream.T @ x).max() > 1e-3  # rounded, so not the fp32 gradient


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


def test_create_model_takes_the_precision():
    model = create_model("svt_small", num_classes=2, precision="bf16")
    switched = {name for name, cell in model.cells_and_names() if isinstance(cell, RowMatMul) and cell.fused}
    expected = {"head.matmul", "patch_embeds.0.proj.matmul", "blocks.0.0.attn.matmul", "blocks.0.0.mlp.fc1.matmul",
                "blocks.0.1.attn.sr.matmul"} if has_bf16_instructions() else set()
    assert expected <= switched


def test_a_cpu_without_bf16_warns_and_keeps_fp32(monkeypatch, caplog):
    monkeypatch.setattr(linear, "has_bf16_instructions", lambda: False)
    model = create_model("pcpvt_small", num_classes=2)
    with caplog.at_level(logging.WARNING):
        assert set_matmul_precision(model, "bf16") == "fp32"
    assert "no bf16 instructions (avx512_bf16 or amx_bf16); running fp32" in caplog.text
    assert all(cell.fused is None for _, cell in model.cells_and_names() if isinstance(cell, RowMatMul))


def test_an_unknown_precision_is_refused_with_the_accepted_ones():
    with pytest.raises(InvalidValueError, match=r"precision 'fp16': use one of fp32, bf16\."):
        set_matmul_precision(nn.Cell(), "fp16")
