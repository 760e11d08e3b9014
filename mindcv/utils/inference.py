"""Inference and deployment: trained models, class names, images preprocessed as in evaluation, top-k
predictions, and export to MINDIR, ONNX and AIR."""
import contextlib
import importlib.resources
import os
import re
import time

import numpy as np

import mindspore as ms
from mindspore import nn, ops

from ..data import create_transforms
from ..data.image_check import image_problem
from ..models import create_model, get_pretrained_cfg
from ..models.helpers import load_checkpoint_into
from ..models.layers.cpu_kernels import without_fused_kernels
from ..models.twins import Mlp
from .checkpoint import read_checkpoint
from .errors import UnknownNameError

__all__ = ["CLASS_NAMES_FILE", "EXPORT_FORMATS", "IMAGE_EXTENSIONS", "UnreadableImageError", "add_weights_arguments",
           "check_export_format", "check_image_size", "create_inference_model", "eval_transforms", "export_model",
           "imagenet_class_names", "list_images", "load_image", "predict", "read_class_names", "resolve_class_names",
           "top_k", "write_class_names"]

CLASS_NAMES_FILE = "class_names.txt"  # beside a checkpoint: its class names, one per line, in label order
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # what the dataset pipeline reads
EXPORT_FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
EXPORT_PATH_PATTERN = r"[0-9a-zA-Z@_\-.:/\\]+"  # what mindspore.export accepts
MIN_IMAGE_SIZE = 32  # the stride-32 stage needs a grid of at least 1x1


class UnreadableImageError(ValueError):
    """An image file that cannot be decoded."""


def add_weights_arguments(parser):
    """The command-line options naming a model and its weights, shared by infer.py and export.py."""
    parser.add_argument("--model", required=True, help="model name, e.g. svt_small or twins_pcpvt_base")
    parser.add_argument("--ckpt_path", default="", help="MindSpore checkpoint to load")
    parser.add_argument("--pretrained", action="store_true",
                        help="use the published ImageNet-1k weights instead of --ckpt_path")
    parser.add_argument("--num_classes", type=int, default=None,
                        help="classifier size (default: that of the weights; given, it must match them)")


def read_class_names(path):
    """Class names from a text file: one per line, line i naming class i."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Class names file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f.read().strip().splitlines()]


def write_class_names(folder, names):
    """``folder/class_names.txt`` in ``read_class_names``'s format, written atomically."""
    path = os.path.join(folder, CLASS_NAMES_FILE)
    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))
    os.replace(f"{path}.tmp", path)
    return path


def imagenet_class_names():
    """The 1000 ImageNet-1k class names, in label order."""
    text = importlib.resources.files("mindcv.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return text.strip().splitlines()


def resolve_class_names(num_classes, class_names_path="", ckpt_path=""):
    """Labels for the model's classes: ``class_names_path``, else ``class_names.txt`` beside the checkpoint,
    else ImageNet-1k's for 1000 classes, else the class indices."""
    beside_ckpt = os.path.join(os.path.dirname(os.path.abspath(ckpt_path)), CLASS_NAMES_FILE) if ckpt_path else ""
    path = class_names_path or (beside_ckpt if os.path.isfile(beside_ckpt) else "")
    if path:
        names = read_class_names(path)
        if len(names) != num_classes:
            raise ValueError(f"{path} lists {len(names)} class names but the model has {num_classes} classes.")
        return names
    if num_classes == 1000:
        return imagenet_class_names()
    return [str(i) for i in range(num_classes)]


def create_inference_model(model_name, ckpt_path="", pretrained=False, num_classes=None):
    """``model_name`` with trained weights (a checkpoint or the published ones), in evaluation mode.

    ``num_classes`` None takes the size of the weights' classifier; a number must match it, since a
    classifier that the weights do not fill would predict at random.
    """
    if bool(ckpt_path) == bool(pretrained):
        raise ValueError("Give the weights to use: either --ckpt_path CKPT or --pretrained, not both nor neither.")
    cfg = get_pretrained_cfg(model_name)
    param_dict = None if pretrained else read_checkpoint(ckpt_path)
    weight_classes = _classifier_size(param_dict, cfg) or num_classes or cfg["num_classes"]
    if num_classes is not None and num_classes != weight_classes:
        source = ckpt_path or f"the published {model_name} weights"
        raise ValueError(f"--num_classes {num_classes} does not match {source}, whose classifier has "
                         f"{weight_classes} classes.")
    model = create_model(model_name, num_classes=weight_classes, pretrained=pretrained)
    if param_dict is not None:
        load_checkpoint_into(model, param_dict, ckpt_path)
    model.set_train(False)
    return model


def _classifier_size(param_dict, cfg):
    if param_dict is None:
        return cfg["num_classes"]
    weight = param_dict.get(f"{cfg['classifier']}.weight")
    return None if weight is None else int(weight.shape[0])


def check_image_size(image_size):
    """``(height, width)`` from an int or a pair, each at least MIN_IMAGE_SIZE."""
    height, width = (image_size,) * 2 if isinstance(image_size, int) else (int(s) for s in image_size)
    if min(height, width) < MIN_IMAGE_SIZE:
        raise ValueError(f"The image size must be at least {MIN_IMAGE_SIZE} on each side; got {height}x{width}.")
    return height, width


def eval_transforms(default_cfg, image_size=None, crop_pct=None, interpolation=None):
    """The evaluation transforms of validate.py (resize to size / crop_pct, centre crop, normalise) with the
    model's default_cfg for any option not given."""
    size = check_image_size(image_size or default_cfg["input_size"][1:])
    return create_transforms("", size, is_training=False, crop_pct=crop_pct or default_cfg["crop_pct"],
                             interpolation=interpolation or default_cfg["interpolation"], mean=default_cfg["mean"],
                             std=default_cfg["std"])


def list_images(inputs):
    """The image files named in ``inputs``: files as given, and the images under folders (recursively, by
    extension), in sorted order."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(folder, name) for folder, _, names in os.walk(item) for name in names
                           if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {item}")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"Image not found: {item}")
    return paths


def load_image(path, transforms):
    """The preprocessed (C, H, W) float32 array of the image at ``path``; UnreadableImageError if it cannot
    be decoded."""
    problem = image_problem(path)
    if problem:
        raise UnreadableImageError(f"{path}: {problem}")
    try:
        image = np.fromfile(path, np.uint8)
        for transform in transforms:
            image = transform(image)
    except (OSError, ValueError, RuntimeError) as err:
        raise UnreadableImageError(f"{path}: {str(err).strip().splitlines()[0]}") from err
    return image


def predict(model, paths, transforms, batch_size):
    """Yield ``(path, probabilities, None)`` per image in batches of ``batch_size``, or ``(path, None, reason)``
    for an image that cannot be read."""
    batch_size = max(1, min(batch_size, len(paths)))
    for start in range(0, len(paths), batch_size):
        images, readable = [], []
        for path in paths[start:start + batch_size]:
            try:
                images.append(load_image(path, transforms))
                readable.append(path)
            except UnreadableImageError as err:
                yield path, None, str(err)
        if images:
            for path, probabilities in zip(readable, _probabilities(model, images, batch_size)):
                yield path, probabilities, None


def _probabilities(model, images, batch_size):
    # Pad to the full batch: GRAPH mode compiles the model once per input shape.
    batch = np.stack(images + [np.zeros_like(images[0])] * (batch_size - len(images)))
    logits = model(ms.Tensor(batch)).asnumpy()[:len(images)].astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def top_k(probabilities, k, class_names):
    """The ``k`` most probable classes, as dicts of class_id, label and probability."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"class_id": int(i), "label": class_names[i], "probability": float(probabilities[i])} for i in order]


def check_export_format(file_format):
    """``file_format`` in capitals, if this device can export it."""
    file_format = file_format.upper()
    if file_format not in EXPORT_FORMATS:
        raise UnknownNameError("export format", file_format, EXPORT_FORMATS)
    device = ms.get_context("device_target")
    if file_format == "AIR" and device != "Ascend":
        raise ValueError(f"AIR export needs an Ascend device; this run's device is {device}. "
                         "Export MINDIR (MindSpore, MindSpore Lite) or ONNX instead.")
    return file_format


def export_model(model, file_format, image_size, batch_size=1, output=""):
    """Export ``model`` for a fixed ``(batch_size, 3, height, width)`` float32 input; returns the file written.

    ``output``: the path, with or without the format's extension; by default ``<architecture>_<H>x<W>_bs<B>``.
    """
    file_format = check_export_format(file_format)
    height, width = check_image_size(image_size)
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}.")
    extension = EXPORT_FORMATS[file_format]
    output = output or f"{model.default_cfg['architecture']}_{height}x{width}_bs{batch_size}"
    path = output if output.endswith(extension) else output + extension
    if not re.fullmatch(EXPORT_PATH_PATTERN, path):
        raise ValueError(f"Export path '{path}' has characters that MindSpore rejects; use only letters, digits and "
                         "@ _ - . : / \\")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    example = ms.Tensor(np.zeros((batch_size, 3, height, width), np.float32))
    with without_fused_kernels(model), _erf_free(model) if file_format == "ONNX" else contextlib.nullcontext():
        ms.export(model, example, file_name=path, file_format=file_format)
    return path


# MindSpore 2.10 cannot export Erf to ONNX ("Can not find key Erf in convert map"), and the exact GELU of the
# Mlp needs it. For ONNX the Mlp computes erf as Eigen's float32 rational approximation (|error| < 4e-7),
# from ops that export.
_ERF_NUMERATOR = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                  -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_DENOMINATOR = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                    -1.42647390514189e-02)


def _polynomial(x, coefficients):
    result = coefficients[0]
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def _rational_erf(x):
    x = ops.clamp(x, -4.0, 4.0)  # erf is +-1 to float32 precision beyond
    squared = x * x
    return x * _polynomial(squared, _ERF_NUMERATOR) / _polynomial(squared, _ERF_DENOMINATOR)


class _ErfFreeMlp(nn.Cell):
    """A twins ``Mlp`` (its own layers) whose GELU uses ``_rational_erf``."""

    def __init__(self, mlp):
        super().__init__(auto_prefix=False)  # the layers keep their parameter names in the model
        self.fc1, self.fc2, self.drop = mlp.fc1, mlp.fc2, mlp.drop

    def construct(self, x):
        x = self.fc1(x)
        x = 0.5 * x * (1.0 + _rational_erf(x * 0.7071067811865476))
        return self.drop(self.fc2(self.drop(x)))


@contextlib.contextmanager
def _erf_free(model):
    """``model`` with every Mlp replaced by an _ErfFreeMlp, restored on exit."""
    replaced = [(cell, name, child) for _, cell in model.cells_and_names()
                for name, child in cell.name_cells().items() if isinstance(child, Mlp)]
    created = model.create_time
    for cell, name, child in replaced:
        cell.insert_child_to_cell(name, _ErfFreeMlp(child))
    # GRAPH mode caches a compiled graph per phase ('export.onnx', ...) under the cell's creation time, even one
    # whose export failed (a direct ms.export to ONNX). A new time compiles the swapped cells; the old one,
    # restored, finds the model's own graphs again.
    object.__setattr__(model, "_create_time", time.time_ns())
    try:
        yield model
    finally:
        for cell, name, child in replaced:
            cell.insert_child_to_cell(name, child)
        object.__setattr__(model, "_create_time", created)
