"""Models: the registry, ``create_model``, the shared layers and the Twins family."""
from mindspore.nn import Identity

from . import features, layers, twins
from .features import FeatureExtractWrapper
from .helpers import load_model_checkpoint, load_pretrained
from .layers import PRECISIONS, DropPath, set_matmul_precision
from .model_factory import create_model
from .registry import (
    get_pretrained_cfg,
    get_pretrained_cfg_value,
    has_pretrained_cfg_key,
    is_model,
    is_model_in_modules,
    is_model_pretrained,
    list_models,
    list_modules,
    model_entrypoint,
    register_model,
)
from .twins import *  # noqa: F401,F403  (every registered model is importable from mindcv.models)

__all__ = [
    "DropPath",
    "FeatureExtractWrapper",
    "Identity",
    "PRECISIONS",
    "create_model",
    "get_pretrained_cfg",
    "get_pretrained_cfg_value",
    "has_pretrained_cfg_key",
    "is_model",
    "is_model_in_modules",
    "is_model_pretrained",
    "list_models",
    "list_modules",
    "load_model_checkpoint",
    "load_pretrained",
    "model_entrypoint",
    "register_model",
    "set_matmul_precision",
] + twins.__all__
