"""Inference: trained models, class names, images preprocessed as in evaluation, top-k predictions."""
import importlib.resources
import os

import numpy as np

import mindspore as ms

from ..data import create_transforms
from ..data.image_check import image_problem
from ..foundation.checkpoint_io import read_checkpoint
from ..foundation.errors import InvalidValueError, MissingPathError
from ..models import create_model, get_pretrained_cfg
from ..models.helpers import load_checkpoint_into

__all__ = ["CLASS_NAMES_FILE", "IMAGE_EXTENSIONS", "MIN_IMAGE_SIZE", "UnreadableImageError", "check_image_size",
           "create_inference_model", "eval_transforms", "imagenet_class_names", "list_images", "load_image", "predict",
           "read_class_names", "resolve_class_names", "top_k", "write_class_names"]

CLASS_NAMES_FILE = "class_names.txt"  # beside a checkpoint: its class names, one per line, in label order
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # what the dataset pipeline reads
MIN_IMAGE_SIZE = 32  # the stride-32 stage needs a grid of at least 1x1


class UnreadableImageError(InvalidValueError):
    """An image file that cannot be decoded."""


def read_class_names(path):
    """Class names from a text file: one per line, line i naming class i."""
    if not os.path.isfile(path):
        raise MissingPathError(f"Class names file not found: {path}")
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
            raise InvalidValueError(f"{path} lists {len(names)} class names but the model has {num_classes} classes.")
        return names
    if num_classes == 1000:
        return imagenet_class_names()
    return [str(i) for i in range(num_classes)]


def create_inference_model(model_name, ckpt_path="", pretrained=False, num_classes=None, precision="fp32"):
    """``model_name`` with trained weights (a checkpoint or the published ones), in evaluation mode, its matmuls
    in ``precision`` (``create_model``'s).

    ``num_classes`` None takes the size of the weights' classifier; a number must match it, since a
    classifier that the weights do not fill would predict at random.
    """
    if bool(ckpt_path) == bool(pretrained):
        raise InvalidValueError("Give the weights to use: either --ckpt_path CKPT or --pretrained, not both nor "
                                "neither.")
    cfg = get_pretrained_cfg(model_name)
    param_dict = None if pretrained else read_checkpoint(ckpt_path)
    weight_classes = _classifier_size(param_dict, cfg) or num_classes or cfg["num_classes"]
    if num_classes is not None and num_classes != weight_classes:
        source = ckpt_path or f"the published {model_name} weights"
        raise InvalidValueError(f"--num_classes {num_classes} does not match {source}, whose classifier has "
                                f"{weight_classes} classes.")
    model = create_model(model_name, num_classes=weight_classes, pretrained=pretrained, precision=precision)
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
        raise InvalidValueError(f"The image size must be at least {MIN_IMAGE_SIZE} on each side; got {height}x{width}.")
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
                raise MissingPathError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {item}")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise MissingPathError(f"Image not found: {item}")
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
