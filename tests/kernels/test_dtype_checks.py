"""The kernels refuse tensors that are not float32 instead of reading their memory as float32, and MindSpore turns
the refusal into an error."""
import ctypes
import os
import re

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv import kernels

from .aot import call_kernel

# The shapes each entry point is called with: its inputs, then its outputs.
ENTRY_POINTS = {
    "BiasGeluForward": [(4, 8), (8,), (4, 8)],
    "BiasGeluBackward": [(4, 8), (8,), (4, 8), (4, 8), (8,)],
    "LinearForward": [(4, 8), (3, 8), (3,), (4, 3)],
    "LinearBackward": [(4, 3), (4, 8), (3, 8), (4, 8), (3, 8), (3,)],
    "LinearBf16Forward": [(4, 8), (3, 8), (3,), (4, 3)],
    "LinearBf16Backward": [(4, 3), (4, 8), (3, 8), (4, 8), (3, 8), (3,)],
    "MlpForward": [(4, 8), (6, 8), (6,), (3, 6), (3,), (4, 3), (4, 3)],
    "MlpBf16Forward": [(4, 8), (6, 8), (6,), (3, 6), (3,), (4, 3), (4, 3)],
    "MlpTrainingForward": [(4, 8), (6, 8), (6,), (3, 6), (3,), (4, 3), (4, 6)],
    "MlpTrainingBf16Forward": [(4, 8), (6, 8), (6,), (3, 6), (3,), (4, 3), (4, 6)],
    "MlpBackward": [(4, 3), (4, 8), (4, 6), (6,), (6, 8), (3, 6), (4, 8), (6, 8), (6,), (3, 6), (3,)],
    "MlpBf16Backward": [(4, 3), (4, 8), (4, 6), (6,), (6, 8), (3, 6), (4, 8), (6, 8), (6,), (3, 6), (3,)],
    "LinearResidualForward": [(4, 8), (3, 8), (3,), (4, 3), (4, 3)],
    "LinearResidualBf16Forward": [(4, 8), (3, 8), (3,), (4, 3), (4, 3)],
    "WindowPartition": [(2, 4, 6, 3), (12, 4, 3)],
    "WindowMerge": [(12, 4, 3), (2, 4, 6, 3), (2, 4, 6, 3)],
    "PegForward": [(1, 3, 3, 8), (8, 1, 3, 3), (8,), (1, 3, 3, 8)],
    "PegBackwardInput": [(1, 3, 3, 8), (8, 1, 3, 3), (1, 3, 3, 8)],
    "PegBackwardWeight": [(1, 3, 3, 8), (1, 3, 3, 8), (8, 1, 3, 3), (8,)],
    "LayerNormForward": [(4, 8), (8,), (8,), (1,), (4, 8)],
    "LayerNormBackward": [(4, 8), (8,), (4, 8), (1,), (4, 8), (8,), (8,)],
    "BiasAddForward": [(4, 8), (8,), (4, 8)],
    "BiasAddBackward": [(4, 8), (8,)],
    "SumOfSquares": [(4, 8), (3,), (1,)],
    "MatMulForward": [(4, 8), (3, 8), (4, 3)],
    "MatMulBackward": [(4, 3), (4, 8), (3, 8), (4, 8), (3, 8)],
    "MatMulBf16Forward": [(4, 8), (3, 8), (4, 3)],
    "MatMulBf16Backward": [(4, 3), (4, 8), (3, 8), (4, 8), (3, 8)],
    "PatchLinearForward": [(1, 4, 5, 2), (3, 2, 2, 2), (3,), (1, 2, 2, 3)],
    "PatchLinearBackward": [(1, 2, 2, 3), (1, 4, 5, 2), (3, 2, 2, 2), (1, 4, 5, 2), (3, 2, 2, 2), (3,)],
    "PatchLinearBf16Forward": [(1, 4, 5, 2), (3, 2, 2, 2), (3,), (1, 2, 2, 3)],
    "PatchLinearBf16Backward": [(1, 2, 2, 3), (1, 4, 5, 2), (3, 2, 2, 2), (1, 4, 5, 2), (3, 2, 2, 2), (3,)],
    "AttentionForward": [(2, 4, 8), (2, 3, 16), (1,), (2, 4, 8)],
    "AttentionBackward": [(2, 4, 8), (2, 3, 16), (1,), (2, 4, 8), (2, 4, 8), (2, 4, 8), (2, 3, 16)],
    "PackedAttentionForward": [(2, 4, 24), (1,), (2, 4, 8)],
    "PackedAttentionBackward": [(2, 4, 24), (1,), (2, 4, 8), (2, 4, 8), (2, 4, 24)],
    "DropPathAddForward": [(4, 3, 2), (4, 3, 2), (), (), (2,), (4, 3, 2)],
    "DropPathAddBackward": [(4, 3, 2), (), (), (2,), (4, 3, 2)],
    "AdamWUpdate": [(4, 8), (3,)] * 4 + [(2,), (1, 2), (5,), (1,)],
}
OUTPUTS = {"BiasGeluBackward": 2, "MlpTrainingForward": 2, "MlpTrainingBf16Forward": 2, "MlpBackward": 5,
           "MlpBf16Backward": 5, "LinearBackward": 3, "LinearBf16Backward": 3, "PegBackwardWeight": 2,
           "LayerNormBackward": 3, "AttentionBackward": 2, "MatMulBackward": 2, "MatMulBf16Backward": 2,
           "PatchLinearBackward": 3, "PatchLinearBf16Backward": 3}
# Inputs that are counts rather than data: (entry point, position) -> value.
COUNTS = {("AttentionForward", 2): 2, ("AttentionBackward", 2): 2, ("PackedAttentionForward", 1): 2,
          ("PackedAttentionBackward", 1): 2}
# Inputs that are int64 (a random generator's key and step): (entry point, position).
INTEGERS = {("DropPathAddForward", 2), ("DropPathAddForward", 3), ("DropPathAddBackward", 1),
            ("DropPathAddBackward", 2)}
# Inputs that are int32 row numbers, all 0 here (each parameter's set in AdamW's update): (entry point, position).
ROW_NUMBERS = {("AdamWUpdate", 8)}


def test_every_entry_point_of_the_source_is_checked_here():
    with open(os.path.join(os.path.dirname(kernels.__file__), "cpu_kernels.cc")) as source:
        defined = re.findall(r"^(?:int |DENSE_ENTRY\()(\w+)(?:\(int nparam, void \*\*params|,)", source.read(),
                             re.MULTILINE)
    assert sorted(defined) == sorted(ENTRY_POINTS)


def arrays_for(name):
    """Positive float32 (or, where the kernel takes integers, int64 or int32 row numbers) inputs and NaN-filled
    outputs, the inputs and outputs of ``name``."""
    shapes = ENTRY_POINTS[name]
    inputs = len(shapes) - OUTPUTS.get(name, 1)
    rng = np.random.default_rng(0)
    return ([np.full(shape, COUNTS[name, i], np.float32) if (name, i) in COUNTS
             else np.full(shape, 3, np.int64) if (name, i) in INTEGERS
             else np.zeros(shape, np.int32) if (name, i) in ROW_NUMBERS
             else rng.uniform(0.5, 1.5, shape).astype(np.float32) for i, shape in enumerate(shapes[:inputs])]
            + [np.full(shape, np.nan, np.float32) for shape in shapes[inputs:]]), inputs


@pytest.fixture(scope="module")
def library():
    return ctypes.CDLL(kernels.library_path())


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_an_entry_point_computes_when_everything_is_float32_or_its_integers_int64_or_int32(library, name):
    arrays, inputs = arrays_for(name)
    assert call_kernel(library, name, arrays) == 0
    assert all(np.isfinite(output).all() for output in arrays[inputs:])


@pytest.mark.parametrize("name, position", [(name, position) for name, shapes in sorted(ENTRY_POINTS.items())
                                            for position in range(len(shapes))])
def test_an_entry_point_refuses_any_tensor_of_another_type(library, name, position):
    arrays, inputs = arrays_for(name)
    dtypes = [str(array.dtype) for array in arrays]
    dtypes[position] = "float16"
    assert call_kernel(library, name, arrays, dtypes) != 0
    assert all(np.isnan(output).all() for output in arrays[inputs:]), "it wrote its outputs anyway"


class Apply(nn.Cell):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def construct(self, *tensors):
        return self.op(*tensors)


@pytest.mark.parametrize("make_op, entry", [(kernels.bias_gelu_op, "BiasGeluForward"),
                                            (kernels.bias_add_op, "BiasAddForward"),
                                            (kernels.layer_norm_op, "LayerNormForward"),
                                            (kernels.peg_op, "PegForward"),
                                            (kernels.sum_of_squares_op, "SumOfSquares")])
def test_mindspore_raises_on_float16_tensors_instead_of_computing(make_op, entry):
    """MindSpore's AOT operator passes float16 tensors through to the kernel as they are; the kernel's non-zero
    return is what makes it raise."""
    arrays, inputs = arrays_for(entry)
    tensors = [ms.Tensor(array.astype(np.float16)) for array in arrays[:inputs]]
    with pytest.raises(RuntimeError, match=f"function\\({entry}\\) is 2"):
        Apply(make_op())(*tensors).asnumpy()
