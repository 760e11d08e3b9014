"""Fused fp32 CPU kernels for Twins as MindSpore AOT custom operators: bias + exact GELU, LayerNorm, bias add,
the PEG depthwise conv, and a sum of squares over many tensors (gradient clipping).

MindSpore's CPU Erf, LayerNorm gradient, BiasAdd gradient and depthwise Conv2D kernels took most of a Twins
step outside the matmuls; these kernels do the same arithmetic on channels-last tensors in one vectorised
pass. The C++ source next to this file is
compiled with the system C++ compiler on first use into ``$MINDCV_KERNEL_CACHE`` (default
``~/.cache/mindcv/kernels``), keyed by the source, the flags and the CPU. Set ``MINDCV_FUSED_KERNELS=0`` to
use MindSpore's own operators instead; without a compiler that happens automatically, with a warning.
"""
import contextlib
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time

from mindspore import context, ops

_logger = logging.getLogger(__name__)
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_kernels.cc")
_COMPILE_FLAGS = ["-std=c++20", "-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-fopenmp-simd",
                  "-fPIC", "-pthread"]
# Linked in a separate step: g++ < 13 given -ffast-math at link time adds crtfastmath.o, which turns on
# flush-to-zero for the whole process when the library loads.
_LINK_FLAGS = ["-shared", "-pthread"]
SWITCH_ENV = "MINDCV_FUSED_KERNELS"
CACHE_ENV = "MINDCV_KERNEL_CACHE"


def _cpu_fingerprint():
    """-march=native code must not run on another CPU, e.g. from a home directory shared between machines."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def _compile(compiler, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as scratch:
        objects, library = os.path.join(scratch, "kernels.o"), os.path.join(scratch, "kernels.so")
        _run([compiler, *_COMPILE_FLAGS, "-c", _SOURCE, "-o", objects])
        _run([compiler, *_LINK_FLAGS, objects, "-o", library])
        os.replace(library, target)  # atomic: concurrent ranks never load a half-written library


@functools.lru_cache(maxsize=None)
def library_path():
    """Path of the compiled kernel library, building it if needed; None when the kernels are off or unbuildable."""
    if os.environ.get(SWITCH_ENV, "1") == "0":
        return None
    with open(_SOURCE, "rb") as source:
        flags = " ".join(_COMPILE_FLAGS + _LINK_FLAGS).encode()
        key = hashlib.sha256(source.read() + flags + _cpu_fingerprint().encode()).hexdigest()
    cache = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mindcv", "kernels")
    target = os.path.join(cache, f"twins_cpu_{key[:16]}.so")
    if os.path.exists(target):
        return target
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    try:
        if compiler is None:
            raise RuntimeError("no C++ compiler found (install g++ or set CXX)")
        _compile(compiler, target)
    except (OSError, RuntimeError) as error:
        _logger.warning("Fused CPU kernels unavailable, using MindSpore's operators (slower): %s", error)
        return None
    return target


def fused_kernels_available():
    """True when running on CPU with the kernel library built."""
    return context.get_context("device_target") == "CPU" and library_path() is not None


@contextlib.contextmanager
def without_fused_kernels(model):
    """``model`` computing with MindSpore's own operators only, restored on exit: for export, since a graph with
    custom operators needs this machine's kernel library. Cells hold their fused operator as ``fused``."""
    cells = [cell for _, cell in model.cells_and_names() if getattr(cell, "fused", None) is not None]
    fused = [cell.fused for cell in cells]
    created = model.create_time
    for cell in cells:
        cell.fused = None
    # GRAPH mode caches compiled graphs under the cell's creation time: a new one compiles the plain graph.
    object.__setattr__(model, "_create_time", time.time_ns())
    try:
        yield model
    finally:
        for cell, op in zip(cells, fused):
            cell.fused = op
        object.__setattr__(model, "_create_time", created)


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


def sum_of_squares_op():
    """``op(*tensors)``: the sum of squares of every element of any number of fp32 tensors, as a (1,) tensor."""
    return _custom("SumOfSquares", lambda *shapes: [1], lambda *dtypes: dtypes[0])


def bias_add_op():
    """``x + bias`` over the last axis of fp32 tensors; its bias gradient is one column-sum kernel."""
    backward = _custom("BiasAddBackward", lambda dy: [dy[-1]], _same)

    def bprop(x, bias, out, dout):
        return dout, backward(dout)

    return _custom("BiasAddForward", lambda x, bias: x, lambda x, bias: x, bprop)
