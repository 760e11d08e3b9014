"""Export to MINDIR, ONNX and AIR. A model that computes differently for deployment (custom CPU kernels, ops a
format cannot hold) provides ``export_form(file_format)``, a context manager in which it has that form."""
import contextlib
import os
import re

import numpy as np

import mindspore as ms

from ..foundation.errors import InvalidValueError, UnknownNameError
from .inference import check_image_size

__all__ = ["EXPORT_FORMATS", "check_export_format", "export_model"]

EXPORT_FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
EXPORT_PATH_PATTERN = r"[0-9a-zA-Z@_\-.:/\\]+"  # what mindspore.export accepts


def check_export_format(file_format):
    """``file_format`` in capitals, if this device can export it."""
    file_format = file_format.upper()
    if file_format not in EXPORT_FORMATS:
        raise UnknownNameError("export format", file_format, EXPORT_FORMATS)
    device = ms.get_context("device_target")
    if file_format == "AIR" and device != "Ascend":
        raise InvalidValueError(f"AIR export needs an Ascend device; this run's device is {device}. "
                                "Export MINDIR (MindSpore, MindSpore Lite) or ONNX instead.")
    return file_format


def export_model(model, file_format, image_size, batch_size=1, output=""):
    """Export ``model`` for a fixed ``(batch_size, 3, height, width)`` float32 input; returns the file written.

    ``output``: the path, with or without the format's extension; by default ``<architecture>_<H>x<W>_bs<B>``.
    """
    file_format = check_export_format(file_format)
    height, width = check_image_size(image_size)
    if batch_size < 1:
        raise InvalidValueError(f"--batch_size must be >= 1, got {batch_size}.")
    extension = EXPORT_FORMATS[file_format]
    output = output or f"{model.default_cfg['architecture']}_{height}x{width}_bs{batch_size}"
    path = output if output.endswith(extension) else output + extension
    if not re.fullmatch(EXPORT_PATH_PATTERN, path):
        raise InvalidValueError(f"Export path '{path}' has characters that MindSpore rejects; use only letters, "
                                "digits and @ _ - . : / \\")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    example = ms.Tensor(np.zeros((batch_size, 3, height, width), np.float32))
    export_form = getattr(model, "export_form", None)
    with export_form(file_format) if export_form else contextlib.nullcontext():
        ms.export(model, example, file_name=path, file_format=file_format)
    return path
