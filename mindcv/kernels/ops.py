"""The fused kernels as MindSpore AOT custom operators, each with its backward."""
import contextlib

from mindspore import context, ops

from ..foundation.graph_cache import fresh_graph_cache
from .build import library_path


def fused_kernels_available():
    """True when running on CPU with the kernel library built."""
    return context.get_context("device_target") == "CPU" and library_path() is not None


@contextlib.contextmanager
def without_fused_kernels(model):
    """``model`` computing with MindSpore's own operators only, restored on exit: for export, since a graph with
    custom operators needs this machine's kernel library. Cells hold their fused operator as ``fused``."""
    cells = [cell for _, cell in model.cells_and_names() if getattr(cell, "fused", None) is not None]
    fused = [cell.fused for cell in cells]
    for cell in cells:
        cell.fused = None
    try:
        with fresh_graph_cache(model):
            yield model
    finally:
        for cell, op in zip(cells, fused):
            cell.fused = op


def _custom(name, out_shape, out_dtype, bprop=None):
    return ops.Custom(f"{library_path()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      bprop=bprop)


def _same(x, *_):
    return x


def bias_gelu_op():
    """``gelu(x + bias)`` (exact GELU ``z * Phi(z)``) over the last axis of fp32 tensors, differentiable in both:
    the bias add of the layer before and the activation in one pass over the largest activations of the model."""
    backward = _custom("BiasGeluBackward", lambda x, bias, dy: (x, bias), lambda x, bias, dy: (x, x))

    def bprop(x, bias, out, dout):
        return backward(x, bias, dout)

    return _custom("BiasGeluForward", lambda x, bias: x, lambda x, bias: x, bprop)


def gelu_linear_op():
    """``op(h, bias, weight)``: ``gelu(h + bias) @ weight.T`` of fp32 ``h (M, K)``, ``bias (K)``, ``weight (N, K)``
    as (M, N), differentiable in all three: an MLP's GELU and second matmul, with the activations never stored. The
    backward recomputes them from ``h``, so training keeps one (M, K) tensor per MLP instead of two."""
    backward = _custom("GeluLinearBackward", lambda dy, h, bias, weight: (h, bias, weight),
                       lambda dy, h, bias, weight: (h, h, h))

    def bprop(h, bias, weight, out, dout):
        return backward(dout, h, bias, weight)

    return _custom("GeluLinearForward", lambda h, bias, weight: [h[0], weight[0]], lambda h, bias, weight: h, bprop)


def peg_op():
    """``x + depthwise_conv3x3(x, weight, padding=1) + bias`` on fp32 channels-last ``x`` (B, H, W, C), with
    ``weight`` (C, 1, 3, 3) and ``bias`` (C,) as nn.Conv2d holds them; differentiable in all three."""
    backward_input = _custom("PegBackwardInput", _same, _same)
    backward_weight = _custom("PegBackwardWeight", lambda x, dy: ([x[3], 1, 3, 3], [x[3]]),
                              lambda x, dy: (x, x))

    def bprop(x, weight, bias, out, dout):
        dweight, dbias = backward_weight(x, dout)
        return backward_input(dout, weight), dweight, dbias

    return _custom("PegForward", _same, _same, bprop)


def layer_norm_op():
    """LayerNorm over the last axis of an fp32 tensor: ``op(x, gamma, beta, eps)`` with ``eps`` a (1,) tensor;
    differentiable in x, gamma and beta."""
    backward = _custom("LayerNormBackward", lambda x, gamma, dy, eps: (x, gamma, gamma),
                       lambda x, gamma, dy, eps: (x, x, x))

    def bprop(x, gamma, beta, eps, out, dout):
        dx, dgamma, dbeta = backward(x, gamma, dout, eps)
        return dx, dgamma, dbeta, ops.zeros_like(eps)

    return _custom("LayerNormForward", _same, _same, bprop)


def bf16_matmul_op():
    """``op(x, weight)``: ``x (M, K) @ weight (N, K).T`` of fp32 tensors with both rounded to bf16 and the products
    summed in fp32 (oneDNN's bf16 GEMM), as an fp32 (M, N) tensor. Its gradients are bf16 GEMMs of the same kind."""
    backward = _custom("MatMulBf16Backward", lambda dy, x, weight: (x, weight), lambda dy, x, weight: (x, x))

    def bprop(x, weight, out, dout):
        return backward(dout, x, weight)

    return _custom("MatMulBf16", lambda x, weight: [x[0], weight[0]], lambda x, weight: x, bprop)


def attention_op():
    """``op(q, kv, heads)``: multi-head ``softmax(q k^T / sqrt(head_dim)) v`` of fp32 tokens q (B, Lq, C) and
    kv (B, Lk, 2C) (k, then v), the heads being channel groups and ``heads`` their number as a (1,) tensor; the
    output is (B, Lq, C). Differentiable in q and kv."""
    backward = _custom("AttentionBackward", lambda q, kv, heads, out, dout: (q, kv),
                       lambda q, kv, heads, out, dout: (q, q))

    def bprop(q, kv, heads, out, dout):
        dq, dkv = backward(q, kv, heads, out, dout)
        return dq, dkv, ops.zeros_like(heads)

    return _custom("AttentionForward", lambda q, kv, heads: q, lambda q, kv, heads: q, bprop)


def packed_attention_op():
    """``op(qkv, heads)``: ``attention_op``'s attention with q, k and v packed as qkv (B, L, 3C); (B, L, C) out."""
    backward = _custom("PackedAttentionBackward", lambda qkv, heads, out, dout: qkv, _same)

    def bprop(qkv, heads, out, dout):
        return backward(qkv, heads, out, dout), ops.zeros_like(heads)

    return _custom("PackedAttentionForward", lambda qkv, heads: list(qkv[:-1]) + [qkv[-1] // 3], _same, bprop)


def sum_of_squares_op():
    """``op(*tensors)``: the sum of squares of every element of any number of fp32 tensors, as a (1,) tensor."""
    return _custom("SumOfSquares", lambda *shapes: [1], lambda *dtypes: dtypes[0])


def bias_add_op():
    """``x + bias`` over the last axis of fp32 tensors; its bias gradient is one column-sum kernel."""
    backward = _custom("BiasAddBackward", lambda dy: [dy[-1]], _same)

    def bprop(x, bias, out, dout):
        return dout, backward(dout)

    return _custom("BiasAddForward", lambda x, bias: x, lambda x, bias: x, bprop)
