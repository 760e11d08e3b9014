"""The fused kernels as MindSpore AOT custom operators, each with its backward."""
import contextlib

from mindspore import context, ops
from mindspore.ops import signature

from ..foundation.graph_cache import fresh_graph_cache
from .build import library_path

# The attributes in which cells hold a fused operator (None where they use MindSpore's own operators).
_FUSED_ATTRIBUTES = ("fused", "fused_inference", "fused_residual", "fused_partition", "fused_merge")


def fused_kernels_available():
    """True when running on CPU with the kernel library built."""
    return context.get_context("device_target") == "CPU" and library_path() is not None


@contextlib.contextmanager
def without_fused_kernels(model):
    """``model`` computing with MindSpore's own operators only, restored on exit: for export, since a graph with
    custom operators needs this machine's kernel library. Cells hold their fused operators as ``_FUSED_ATTRIBUTES``."""
    held = [(cell, name, getattr(cell, name)) for _, cell in model.cells_and_names() for name in _FUSED_ATTRIBUTES
            if getattr(cell, name, None) is not None]
    for cell, name, _ in held:
        setattr(cell, name, None)
    try:
        with fresh_graph_cache(model):
            yield model
    finally:
        for cell, name, op in held:
            setattr(cell, name, op)


def _custom(name, out_shape, out_dtype, bprop=None):
    return ops.Custom(f"{library_path()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      bprop=bprop)


# The dense-layer kernels' names by matmul precision.
_DENSE_KERNELS = {"fp32": "", "bf16": "Bf16"}


def _same(x, *_):
    return x


def _rows_by(x, weight):
    """The shape of ``x (..., K) @ weight (N, K).T``: the dense kernels take ``x`` of any rank."""
    return list(x[:-1]) + [weight[0]]


def bias_gelu_op():
    """``gelu(x + bias)`` (exact GELU ``z * Phi(z)``) over the last axis of fp32 tensors, differentiable in both:
    the bias add of the layer before and the activation in one pass over the largest activations of the model."""
    backward = _custom("BiasGeluBackward", lambda x, bias, dy: (x, bias), lambda x, bias, dy: (x, x))

    def bprop(x, bias, out, dout):
        return backward(x, bias, dout)

    return _custom("BiasGeluForward", lambda x, bias: x, lambda x, bias: x, bprop)


def matmul_op(precision="fp32"):
    """``op(x, weight)``: ``x @ weight.T`` of fp32 ``x (..., K)`` and ``weight (N, K)`` as (..., N), the matmul in
    ``precision`` ("fp32", or "bf16": operands rounded to bf16, fp32 sums); differentiable in both, its gradients
    matmuls of the same precision."""
    name = _DENSE_KERNELS[precision]
    backward = _matmul_backward(name)

    def bprop(x, weight, out, dout):
        return backward(dout, x, weight)

    return _matmul_forward(name, bprop)


def _matmul_forward(name, bprop=None):
    return _custom(f"MatMul{name}Forward", lambda x, weight: _rows_by(x, weight), lambda x, weight: x, bprop)


def _matmul_backward(name):
    return _custom(f"MatMul{name}Backward", lambda dy, x, weight: (x, weight), lambda dy, x, weight: (x, x))


def _linear_backward(name):
    return _custom(f"Linear{name}Backward", lambda dy, x, weight: (x, weight, dy[-1:]), lambda dy, x, weight: (x, x, x))


def mlp_op(precision="fp32"):
    """``op(x, weight1, bias1, weight2, bias2, residual)``: ``gelu(x @ weight1.T + bias1) @ weight2.T + bias2 +
    residual`` of fp32 ``x (..., C)``, ``weight1 (H, C)``, ``bias1 (H)``, ``weight2 (N, H)``, ``bias2 (N)``,
    ``residual (..., N)`` as (..., N), the matmuls in ``precision`` (as ``matmul_op``'s). A whole MLP and the
    residual connection after it a block of rows at a time: its (..., H) activations, the model's largest, stay in the
    cache instead of going to memory and back, which is what inference needs. Differentiable in all six; the
    backward first recomputes ``x @ weight1.T``, which ``mlp_training_op`` keeps instead."""
    name = _DENSE_KERNELS[precision]
    hidden = _matmul_forward(name)
    backward = _mlp_backward(name)

    def bprop(x, weight1, bias1, weight2, bias2, residual, out, dout):
        return backward(dout, x, hidden(x, weight1), bias1, weight1, weight2) + (dout,)

    return _custom(f"Mlp{name}Forward", lambda x, weight1, bias1, weight2, bias2, residual: residual,
                   lambda x, weight1, bias1, weight2, bias2, residual: x, bprop)


def mlp_training_op(precision="fp32"):
    """``op(x, weight1, bias1, weight2, bias2)``: ``(gelu(h + bias1) @ weight2.T + bias2, h)`` with
    ``h = x @ weight1.T``, of fp32 tensors shaped as ``mlp_op``'s, the matmuls in ``precision``. An MLP for training:
    the forward runs a block of rows at a time as ``mlp_op``'s and also writes ``h``, the one hidden-width tensor the
    backward needs (it recomputes the activations from it); on many rows the backward goes through both layers a block
    of rows at a time too, so the hidden gradient is never written whole. Differentiable in all five (``h`` is the
    forward's record for the backward: its own gradient is not taken)."""
    name = _DENSE_KERNELS[precision]
    backward = _mlp_backward(name)

    def bprop(x, weight1, bias1, weight2, bias2, out, dout):
        return backward(dout[0], x, out[1], bias1, weight1, weight2)

    return _custom(f"MlpTraining{name}Forward",
                   lambda x, weight1, bias1, weight2, bias2: (_rows_by(x, weight2), _rows_by(x, weight1)),
                   lambda x, weight1, bias1, weight2, bias2: (x, x), bprop)


def _mlp_backward(name):
    return _custom(f"Mlp{name}Backward",
                   lambda dy, x, h, bias1, weight1, weight2: (x, weight1, bias1, weight2, dy[-1:]),
                   lambda dy, x, h, bias1, weight1, weight2: (x,) * 5)


def linear_op(precision="fp32"):
    """``op(x, weight, bias)``: ``x @ weight.T + bias`` of fp32 ``x (..., K)``, ``weight (N, K)``, ``bias (N)`` as
    (..., N), the matmul in ``precision`` (as ``matmul_op``'s) and the bias added while each block of the output
    is in the cache; differentiable in all three."""
    name = _DENSE_KERNELS[precision]
    backward = _linear_backward(name)

    def bprop(x, weight, bias, out, dout):
        return backward(dout, x, weight)

    return _custom(f"Linear{name}Forward", lambda x, weight, bias: _rows_by(x, weight), lambda x, weight, bias: x,
                   bprop)


def linear_residual_op(precision="fp32"):
    """``op(x, weight, bias, residual)``: ``linear_op``'s ``x @ weight.T + bias`` plus ``residual (..., N)``, added with
    the bias while each block of the output is in the cache; differentiable in all four."""
    name = _DENSE_KERNELS[precision]
    backward = _linear_backward(name)

    def bprop(x, weight, bias, residual, out, dout):
        dx, dweight, dbias = backward(dout, x, weight)
        return dx, dweight, dbias, dout

    return _custom(f"LinearResidual{name}Forward", lambda x, weight, bias, residual: residual,
                   lambda x, weight, bias, residual: x, bprop)


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


def patch_linear_op(precision="fp32"):
    """``op(x, weight, bias)``: the convolution with kernel == stride of a channels-last fp32 grid ``x (B, H, W, C)`` by
    the conv weight ``weight (N, C, p, p)`` plus ``bias (N)``, as (B, H // p, W // p, N), the matmul in ``precision``
    (as ``matmul_op``'s) and the patches gathered as the GEMM takes them. Differentiable in all three."""
    name = _DENSE_KERNELS[precision]
    backward = _custom(f"PatchLinear{name}Backward", lambda dy, x, weight: (x, weight, dy[-1:]),
                       lambda dy, x, weight: (x, x, x))

    def bprop(x, weight, bias, out, dout):
        return backward(dout, x, weight)

    return _custom(f"PatchLinear{name}Forward", lambda x, w, bias: [x[0], x[1] // w[2], x[2] // w[3], w[0]],
                   lambda x, weight, bias: x, bprop)


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


def adamw_update_op(count):
    """``op(*params, *m, *v, *grads, set, per_set, shared)``: PyTorch's AdamW step on ``count`` fp32 parameters and
    their moments, written in place (the last three inputs as the kernel ``AdamWUpdate`` reads them); returns a
    (1,) zero. The parameters and moments are declared written, so MindSpore orders the update after every read of
    them, as it does its own optimizers' in-place kernels."""
    op = _custom("AdamWUpdate", lambda *shapes: [1], lambda *dtypes: dtypes[0])
    written = [signature.make_sig(f"state{i}", signature.sig_rw.RW_WRITE) for i in range(3 * count)]
    read = [signature.make_sig(f"input{i}") for i in range(count + 3)]
    op.__mindspore_signature__ = tuple(written + read)
    op.add_prim_attr("side_effect_mem", True)
    return op


def bias_add_op():
    """``x + bias`` over the last axis of fp32 tensors; its bias gradient is one column-sum kernel."""
    backward = _custom("BiasAddBackward", lambda dy: [dy[-1]], _same)

    def bprop(x, bias, out, dout):
        return dout, backward(dout)

    return _custom("BiasAddForward", lambda x, bias: x, lambda x, bias: x, bprop)


def drop_path_add_op():
    """``op(x, residual, key, step, probability_and_scale)``: ``residual + x * factor[b]`` over each sample b of fp32
    ``x`` and ``residual`` (B, ...), stochastic depth's factors drawn from its counter-based generator (int64 scalars
    ``key`` and ``step``; ``probability_and_scale`` (2) fp32: sample b is kept, scaled, when its uniform draw is at
    least the drop probability), as ``DropPath`` draws them. Differentiable in ``x`` and ``residual``; the backward
    draws the factors again from the same key and step."""
    backward = _custom("DropPathAddBackward", lambda dy, key, step, rates: dy, lambda dy, key, step, rates: dy)

    def bprop(x, residual, key, step, rates, out, dout):
        return backward(dout, key, step, rates), dout, ops.zeros_like(key), ops.zeros_like(step), ops.zeros_like(rates)

    return _custom("DropPathAddForward", lambda x, *_: x, lambda x, *_: x, bprop)


def window_ops(size):
    """``(partition, merge)``: ``partition(grid)`` splits a channels-last fp32 grid (B, H, W, C), H and W whole
    multiples of ``size``, into windows (B * H/size * W/size, size * size, C), window (b, i, j) holding the grid's
    rows i * size... and columns j * size... in row-major order; ``merge(windows, grid)`` puts such windows back
    into a grid shaped as ``grid`` (whose values it does not read). Each is the other's gradient."""

    def windows_shape(grid):
        return [grid[0] * (grid[1] // size) * (grid[2] // size), size * size, grid[3]]

    plain_partition = _custom("WindowPartition", windows_shape, _same)
    plain_merge = _custom("WindowMerge", lambda windows, grid: grid, _same)

    def partition_bprop(grid, out, dout):
        return (plain_merge(dout, grid),)

    def merge_bprop(windows, grid, out, dout):
        return plain_partition(dout), ops.zeros_like(grid)

    return (_custom("WindowPartition", windows_shape, _same, partition_bprop),
            _custom("WindowMerge", lambda windows, grid: grid, _same, merge_bprop))

