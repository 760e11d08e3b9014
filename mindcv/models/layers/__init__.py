"""Layers shared by the models: channels-last Linear and LayerNorm, DropPath, the MLP, the patch embedding."""
from .drop import DropPath, dropout
from .export_form import export_form
from .linear import BiasAdd, Linear
from .mlp import Mlp, rational_erf
from .norm import LayerNorm
from .patch_embed import PatchConv, PatchEmbed, conv_init

__all__ = ["BiasAdd", "DropPath", "LayerNorm", "Linear", "Mlp", "PatchConv", "PatchEmbed", "conv_init", "dropout",
           "export_form", "rational_erf"]
