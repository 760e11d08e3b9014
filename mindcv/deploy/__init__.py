"""Deployment: inference on images, export to MINDIR/ONNX/AIR, and weight conversion from other libraries."""
from .convert import convert_checkpoint, infer_twins_variant, read_state_dict
from .export import EXPORT_FORMATS, check_export_format, export_model
from .inference import (CLASS_NAMES_FILE, create_inference_model, eval_transforms, list_images, predict,
                        read_class_names, resolve_class_names, top_k, write_class_names)

__all__ = ["CLASS_NAMES_FILE", "EXPORT_FORMATS", "check_export_format", "convert_checkpoint", "create_inference_model",
           "eval_transforms", "export_model", "infer_twins_variant", "list_images", "predict", "read_class_names",
           "read_state_dict", "resolve_class_names", "top_k", "write_class_names"]
