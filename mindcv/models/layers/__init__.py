"""Layers shared by the models: channels-last Linear and LayerNorm, DropPath, the MLP, the patch embedding, grid
padding and cropping."""
from .drop import RANDOM_STEP, DropPath, Dropout, drop_path_layer, dropout, number_random_streams
from .export_form import export_form
from .grid import crop_grid, pad_grid
from .init import TruncatedNormal
from .linear import PRECISIONS, BiasAdd, Linear, RowLinear, RowMatMul, set_matmul_precision
from .mlp import Mlp, rational_erf
from .norm import LayerNorm
from .patch_embed import PatchConv, PatchEmbed, conv_init

__all__ = ["BiasAdd", "DropPath", "Dropout", "LayerNorm", "Linear", "Mlp", "PRECISIONS", "PatchConv", "PatchEmbed",
           "RANDOM_STEP", "RowLinear", "RowMatMul", "TruncatedNormal", "conv_init", "crop_grid", "drop_path_layer",
           "dropout", "export_form", "number_random_streams", "pad_grid", "rational_erf", "set_matmul_precision"]
