"""Models: the registry, ``create_model`` and the Twins family."""
from . import twins
from .helpers import load_model_checkpoint, load_pretrained
from .model_factory import create_model
from .registry import (
    get_pretrained_cfg,
    is_model,
    is_model_pretrained,
    list_models,
    list_modules,
    model_entrypoint,
    register_model,
)
from .twins import *  # noqa: F401,F403  (every registered model is importable from mindcv.models)

__all__ = [
    "create_model",
    "get_pretrained_cfg",
    "is_model",
    "is_model_pretrained",
    "list_models",
    "list_modules",
    "load_model_checkpoint",
    "load_pretrained",
    "model_entrypoint",
    "register_model",
] + twins.__all__
