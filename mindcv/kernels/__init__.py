"""Fused fp32 CPU kernels (bias + exact GELU, LayerNorm, bias add, the PEG depthwise conv, a sum of squares for
gradient clipping) as MindSpore AOT custom operators. Models and the train step use only these names.

MindSpore's CPU Erf, LayerNorm gradient, BiasAdd gradient and depthwise Conv2D kernels took most of a Twins
step outside the matmuls; these kernels do the same arithmetic on channels-last tensors in one vectorised pass.
``python -m mindcv.kernels`` builds the library ahead of time (see ``build``).
"""
from .build import CACHE_ENV, SWITCH_ENV, library_path
from .ops import (bias_add_op, bias_gelu_op, fused_kernels_available, layer_norm_op, peg_op, sum_of_squares_op,
                  without_fused_kernels)

__all__ = ["CACHE_ENV", "SWITCH_ENV", "bias_add_op", "bias_gelu_op", "fused_kernels_available", "layer_norm_op",
           "library_path", "peg_op", "sum_of_squares_op", "without_fused_kernels"]
