"""The form of a model built from these layers that a deployment format can hold."""
import contextlib

from ...kernels import without_fused_kernels
from .mlp import BiasGelu

__all__ = ["export_form"]


@contextlib.contextmanager
def export_form(model, file_format):
    """Inside the block ``model`` computes with MindSpore's own operators only (an exported graph must not need
    this machine's kernel library) and, for ONNX, with an Erf-free GELU; restored on exit."""
    gelus = [cell for _, cell in model.cells_and_names() if isinstance(cell, BiasGelu)] if file_format == "ONNX" else []
    for gelu in gelus:
        gelu.erf_free = True
    try:
        with without_fused_kernels(model):
            yield model
    finally:
        for gelu in gelus:
            gelu.erf_free = False
