"""Image folders laid out as ``<split dir>/<class>/<image>``: scanning, corrupt-file screening, reading."""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..foundation.errors import InvalidValueError
from .image_check import image_problem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # what MindSpore's Decode reads
_MAX_NAMED = 20


class SkippedImagesWarning(UserWarning):
    """Image files left out of a dataset because they cannot be decoded."""


def _class_folders(split_dir):
    with os.scandir(split_dir) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _image_names(class_dir):
    with os.scandir(class_dir) as entries:
        return sorted(e.name for e in entries
                      if not e.is_dir() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


def scan_image_folder(split_dir, check_workers=16):
    """``(classes, relative paths, labels)`` of the decodable images under ``split_dir``.

    Classes are the sorted sub-folder names, and label ``i`` is ``classes[i]``, so ids are stable across runs
    and machines. Files that fail ``image_problem`` are left out with one ``SkippedImagesWarning`` naming them.
    """
    classes = _class_folders(split_dir)
    if not classes:
        raise InvalidValueError(f"No class folders in {split_dir}: expected {split_dir}/<class>/<image>.")
    paths, labels = [], []
    for label, name in enumerate(classes):
        images = _image_names(os.path.join(split_dir, name))
        if not images:
            raise InvalidValueError(f"Class folder has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                                    f"{os.path.join(split_dir, name)}")
        paths += [os.path.join(name, image) for image in images]
        labels += [label] * len(images)

    with ThreadPoolExecutor(check_workers) as pool:
        problems = list(pool.map(image_problem, (os.path.join(split_dir, p) for p in paths), chunksize=256))
    bad = [(path, problem) for path, problem in zip(paths, problems) if problem]
    if bad:
        _warn_skipped(split_dir, bad)
        kept = [i for i, problem in enumerate(problems) if not problem]
        paths, labels = [paths[i] for i in kept], [labels[i] for i in kept]
    if not paths:
        raise InvalidValueError(f"No decodable images under {split_dir}.")
    return classes, paths, labels


def _warn_skipped(split_dir, bad):
    named = "; ".join(f"{os.path.join(split_dir, path)} ({problem})" for path, problem in bad[:_MAX_NAMED])
    more = f"; and {len(bad) - _MAX_NAMED} more" if len(bad) > _MAX_NAMED else ""
    warnings.warn(f"Skipping {len(bad)} unreadable or corrupt image file(s): {named}{more}", SkippedImagesWarning,
                  stacklevel=5)


class EncodedImageSource:
    """Random-access source for ``GeneratorDataset``: (encoded image bytes, label) by index.

    Decoding is left to the pipeline's ``Decode`` so it runs in MindSpore's worker threads.
    """

    def __init__(self, split_dir, paths, labels):
        self.split_dir = split_dir
        self.paths = np.array([os.fsencode(p) for p in paths])  # fixed-width bytes: compact for millions of files
        self.labels = np.asarray(labels, np.int32)

    def __getitem__(self, index):
        with open(os.path.join(os.fsencode(self.split_dir), self.paths[index]), "rb") as f:
            return np.frombuffer(f.read(), np.uint8), self.labels[index]

    def __len__(self):
        return len(self.labels)
