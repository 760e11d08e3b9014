"""MindCV-style model zoo centred on the Twins vision transformers (PCPVT, SVT)."""
from . import models, utils
from .models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "models", "utils"]
