"""Fused fp32 CPU kernels (bias + exact GELU, LayerNorm, bias add, the PEG depthwise conv, multi-head attention on
tokens, LSA's window partition and merge, stochastic depth's scaled residual add, a sum of squares for gradient
clipping, AdamW's step in place), and matmuls, dense layers with their bias (and a residual), whole MLPs (with their
residual in inference; in training keeping the first layer's output for a backward through both layers) and patch
convolutions in fp32 or bf16 (oneDNN's GEMMs, and on AMX its matmul primitive), as MindSpore AOT custom operators.
Models, the optimizers and the train step use only these names.

MindSpore's CPU Erf, LayerNorm gradient, BiasAdd gradient and depthwise Conv2D kernels took most of a Twins
step outside the matmuls; these kernels do the same arithmetic on channels-last tensors in one vectorised pass.
``python -m mindcv.kernels`` builds the library ahead of time (see ``build``).
"""
from .build import CACHE_ENV, SWITCH_ENV, has_bf16_instructions, library_path
from .ops import (adamw_update_op, attention_op, bias_add_op, bias_gelu_op, drop_path_add_op, fused_kernels_available,
                  layer_norm_op, linear_op, linear_residual_op, matmul_op, mlp_op, mlp_training_op, packed_attention_op,
                  patch_linear_op, peg_op, sum_of_squares_op, window_ops, without_fused_kernels)

__all__ = ["CACHE_ENV", "SWITCH_ENV", "adamw_update_op", "attention_op", "bias_add_op", "bias_gelu_op",
           "drop_path_add_op", "fused_kernels_available", "has_bf16_instructions", "layer_norm_op", "library_path",
           "linear_op", "linear_residual_op", "matmul_op", "mlp_op", "mlp_training_op", "packed_attention_op",
           "patch_linear_op", "peg_op", "sum_of_squares_op", "window_ops", "without_fused_kernels"]
